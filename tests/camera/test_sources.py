from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.camera.sources import classify_uri, open_source
from trafficprn.errors import SourceError


# ---------------------------------------------------------------- files
def write_video(path: Path, pts_ms: list[int], size: tuple[int, int] = (160, 120)) -> None:
    """An H.264 video whose frame i has presentation time pts_ms[i] and shows i in its pixels."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1000)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.options = {"bf": "0", "g": "10"}
        for i, pts in enumerate(pts_ms):
            img = np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = pts
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_file_ts_follow_presentation_times(tmp_path: Path, suffix: str) -> None:
    pts_ms = [0, 40, 100, 120, 200, 330, 340, 500, 520, 700, 1000, 1040]  # variable frame times
    path = tmp_path / f"vfr{suffix}"
    write_video(path, pts_ms)
    start = 1_700_000_000.0
    with open_source(str(path), "cam", start_ts=start) as src:
        frames = list(src)
    assert len(frames) == len(pts_ms)
    ts = np.array([m.ts for _, m in frames])
    np.testing.assert_allclose(ts - start, np.array(pts_ms) / 1000.0, atol=1e-3)
    assert [m.index for _, m in frames] == list(range(len(pts_ms)))
    assert all(m.camera_id == "cam" for _, m in frames)
    assert src.stats.frames == len(pts_ms) and src.stats.dropped == 0


def test_file_process_fps_drops_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "cfr.mp4"
    write_video(path, [round(i * 1000 / 30) for i in range(60)])  # 2 s at 30 fps
    with open_source(str(path), "cam", start_ts=0.0, process_fps=10) as src:
        frames = list(src)
    assert 19 <= len(frames) <= 21
    assert src.stats.frames == 60 and src.stats.dropped_fps == 60 - len(frames)
    gaps = np.diff([m.ts for _, m in frames])
    assert gaps.min() >= 0.09
    assert frames[-1][1].index >= 57  # index counts dropped frames too


def test_file_start_ts_defaults_to_now(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    write_video(path, [0, 40])
    before = time.time()
    with open_source(str(path), "cam") as src:
        _, meta = next(iter(src))
    assert before - 1 <= meta.ts <= time.time() + 1


@pytest.mark.parametrize(
    ("read_ahead", "decode_threads", "consumer_sleep_s"),
    [
        (0, 1, 0.0),  # decoded on the consumer's thread
        (1, 1, 0.01),
        (4, 1, 0.01),  # slow consumer: the reader blocks, nothing is dropped
        (4, None, 0.0),  # FFmpeg's own thread count
        (64, 2, 0.0),
    ],
)
def test_file_read_ahead_delivers_every_frame_in_order(
    tmp_path: Path, read_ahead: int, decode_threads: int | None, consumer_sleep_s: float
) -> None:
    n = 30
    path = tmp_path / "cfr.mp4"
    write_video(path, [i * 40 for i in range(n)])
    with open_source(str(path), "cam", start_ts=0.0, read_ahead=read_ahead, decode_threads=decode_threads) as src:
        frames = []
        for frame, meta in src:
            frames.append((int(np.median(frame)), meta.index, meta.ts))
            time.sleep(consumer_sleep_s)
        assert src.read() is None  # stays at the end
    assert [f[1] for f in frames] == list(range(n))
    np.testing.assert_allclose([f[2] for f in frames], np.arange(n) * 0.04, atol=1e-3)
    np.testing.assert_allclose([f[0] for f in frames], [(i * 7) % 256 for i in range(n)], atol=3)  # H.264 is lossy
    assert src.stats.frames == n and src.stats.delivered == n and src.stats.dropped == 0


def test_file_reader_stays_at_most_read_ahead_frames_ahead(tmp_path: Path) -> None:
    path = tmp_path / "cfr.mp4"
    write_video(path, [i * 40 for i in range(40)])
    src = open_source(str(path), "cam", start_ts=0.0, read_ahead=3)
    time.sleep(0.5)  # the reader fills the queue, then blocks
    assert src.stats.frames <= 3 + 1  # 3 queued, at most 1 decoded and waiting for room
    assert src.stats.delivered == 0
    _, meta = next(iter(src))
    assert meta.index == 0
    src.close()  # while the reader waits for room: it ends, nothing hangs
    assert src._thread is not None and not src._thread.is_alive()
    assert src.read() is None
    src.close()  # twice is fine


@pytest.mark.parametrize(("kwargs", "match"), [({"read_ahead": -1}, "read_ahead"), ({"decode_threads": 0}, "decode_threads")])
def test_file_bad_decode_options_raise(tmp_path: Path, kwargs: dict[str, int], match: str) -> None:
    path = tmp_path / "a.mp4"
    write_video(path, [0, 40])
    with pytest.raises(SourceError, match=match):
        open_source(str(path), "cam", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("ftp://example.com/video.mp4", "unsupported source scheme 'ftp'"),
        ("gopher://x", "unsupported source scheme"),
        ("/no/such/video.mp4", "not found"),
    ],
)
def test_unfixable_sources_raise(uri: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(uri, "cam")


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("rtsp://10.0.0.2/stream1", "stream"),
        ("http://127.0.0.1:8080/live.mjpg", "stream"),
        ("/dev/video0", "device"),
        ("0", "device"),
        ("video.mp4", "file"),
        ("file:///tmp/video.mp4", "file"),
    ],
)
def test_classify(uri: str, kind: str) -> None:
    assert classify_uri(uri) == kind


def test_not_a_video(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="cannot open"):
        open_source(str(bad), "cam")


# ---------------------------------------------------------------- live HTTP MJPEG
class MjpegServer:
    """An MJPEG (multipart/x-mixed-replace) stream on 127.0.0.1 that can be killed and restarted."""

    def __init__(self, fps: float = 40.0):
        self.fps = fps
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.mjpg"

    def start(self) -> None:
        self._stop = threading.Event()
        outer, stop = self, self._stop

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not stop.is_set():
                        img = np.full((96, 128, 3), (outer.sent * 5) % 256, np.uint8)
                        jpg = cv2.imencode(".jpg", img)[1].tobytes()
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n".encode()
                        self.wfile.write(head + jpg + b"\r\n")
                        self.wfile.flush()
                        outer.sent += 1
                        time.sleep(1.0 / outer.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def mjpeg() -> Iterator[MjpegServer]:
    server = MjpegServer()
    server.start()
    yield server
    server.kill()


def wait_for(cond: object, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(60)
def test_stream_reconnects_and_ts_stay_monotonic(mjpeg: MjpegServer) -> None:
    src = open_source(mjpeg.url, "cam", timeout_s=2.0, backoff_s=(0.1, 0.5))
    metas = []
    try:
        for _, meta in src:
            metas.append(meta)
            if len(metas) == 10:
                break
        mjpeg.kill()
        assert wait_for(lambda: not src.stats.up, 10)
        while src.read(timeout_s=0.2) is not None:  # drain what was queued
            pass
        time.sleep(0.5)  # a few failed reconnection attempts, none raises
        mjpeg.start()
        for _, meta in src:
            metas.append(meta)
            if len(metas) == 20:
                break
    finally:
        src.close()
    assert src.stats.reconnects >= 1
    ts = [m.ts for m in metas]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False))
    idx = [m.index for m in metas]
    assert all(b > a for a, b in zip(idx, idx[1:], strict=False))
    assert src.read(timeout_s=0.1) is None  # closed


@pytest.mark.timeout(60)
def test_slow_consumer_drops_oldest_frames(mjpeg: MjpegServer) -> None:
    with open_source(mjpeg.url, "cam", queue_size=1, timeout_s=2.0) as src:
        got = []
        for _, meta in src:
            got.append((meta, time.time()))
            time.sleep(0.15)  # much slower than the 40 fps stream
            if len(got) == 8:
                break
        assert src.stats.dropped_slow > 10
        assert src.stats.frames >= src.stats.delivered + src.stats.dropped_slow
        # the consumer gets fresh frames, not a backlog: each is younger than two consumer cycles
        ages = [now - meta.ts for meta, now in got[2:]]
        assert max(ages) < 0.6  # a backlog would have grown past 1 s by now


@pytest.mark.timeout(30)
def test_dead_stream_never_raises() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open_source(f"http://127.0.0.1:{port}/none.mjpg", "cam", timeout_s=0.5, backoff_s=(0.05, 0.2)) as src:
        assert src.read(timeout_s=1.0) is None
        assert not src.stats.up and src.stats.last_error
