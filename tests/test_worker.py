"""The worker on a real short video: real decoding (open_source), the real pipeline with a
colour-blob detector (the synthetic cars are the only saturated pixels), the real
database sink (SQLite) and the worker's HTTP endpoint (/metrics, /live.mjpg, /snapshot.jpg)."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.config import parse_site
from trafficprn.events import CameraStatus, ListSink
from trafficprn.live_view import LiveFrames, annotate
from trafficprn.types import Detections, FrameMeta
from trafficprn.worker import CountingSink, Worker, WorkerHTTP, WorkerMetrics, prometheus_text

W, H, FPS, SECONDS = 640, 360, 10, 8
START_TS = 1_773_100_800.0  # 2026-03-10T00:00:00Z


class BlobDetector:
    """Boxes of saturated blobs: exact for the synthetic video below."""

    class_names = ["car"]

    def detect(self, image_bgr: np.ndarray) -> Detections:
        hsv = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2HSV)
        mask = ((hsv[..., 1] > 120) & (hsv[..., 2] > 80)).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:] if area > 150]
        k = len(boxes)
        return Detections(xyxy=np.array(boxes, float).reshape(-1, 4), confidence=np.full(k, 0.9),
                          class_id=np.zeros(k, dtype=np.int64))


def site_config(live_url: str | None = None) -> dict[str, object]:
    def rect(x1: float, y1: float, x2: float, y2: float) -> list[list[float]]:
        return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]

    return {
        "site": {"name": "test-junction", "timezone": "UTC"},
        "privacy": {"plates": "off"},
        "cameras": [{
            "name": "pole-1", "source": "video.mp4", "process_fps": FPS, "live_url": live_url,
            "lens": {"model": "pinhole", "image_size": [W, H], "fx": 500, "fy": 500, "cx": W / 2, "cy": H / 2},
            "calibration": {"points": [{"image_px": [0, 0], "ground_m": [0, 0]},
                                       {"image_px": [W, 0], "ground_m": [32, 0]},
                                       {"image_px": [W, H], "ground_m": [32, 18]},
                                       {"image_px": [0, H], "ground_m": [0, 18]}]},
            "legs": [
                {"name": "N", "entry": rect(250, 0, 320, 110), "exit": rect(320, 0, 390, 110)},
                {"name": "S", "entry": rect(320, 250, 390, 360), "exit": rect(250, 250, 320, 360)},
                {"name": "W", "entry": rect(0, 180, 150, 250), "exit": rect(0, 110, 150, 180)},
                {"name": "E", "entry": rect(490, 110, 640, 180), "exit": rect(490, 180, 640, 250)},
            ],
            "lanes": [{"name": "N-1", "leg": "N", "polygon": rect(250, 0, 320, 110),
                       "stop_line": [[250, 110], [320, 110]]}],
        }],
    }


def write_video(path: Path) -> Path:
    """A red car driving from the north edge to the south edge, on the west half of the road."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(FPS * SECONDS):
        img = np.full((H, W, 3), (60, 100, 60), np.uint8)
        cv2.rectangle(img, (250, 0), (390, H), (90, 90, 90), -1)
        cv2.rectangle(img, (0, 110), (W, 250), (90, 90, 90), -1)
        y = -70 + (H + 140) * i / (FPS * SECONDS - 1)
        cv2.rectangle(img, (265, int(y)), (305, int(y) + 60), (30, 30, 220), -1)
        out.write(img)
    out.release()
    return path


@pytest.fixture
def scene(tmp_path: Path) -> tuple[object, Path]:
    site = parse_site(site_config())
    return site, write_video(tmp_path / "video.mp4")


def _get(url: str, n: int | None = None) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as res:
        return res.status, res.headers["Content-Type"], res.read(n) if n else res.read()


def test_worker_end_to_end_on_a_video(scene: tuple[object, Path], tmp_path: Path) -> None:
    from trafficprn.camera.sources import open_source
    from trafficprn.pipeline import Pipeline
    from trafficprn.store import queries
    from trafficprn.store.db import make_engine, upgrade
    from trafficprn.store.sink import DatabaseSink

    site, video = scene
    camera = site.cameras[0]  # type: ignore[attr-defined]
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    upgrade(url)
    metrics = WorkerMetrics(camera.name)
    sink = DatabaseSink(url, tmp_path / "spool", flush_s=0.2)
    memory = ListSink()
    counted = CountingSink(sink, metrics)
    pipeline = Pipeline(site, camera, BlobDetector(), sinks=[counted, memory])  # type: ignore[arg-type]
    source = open_source(str(video), camera.name, process_fps=FPS, start_ts=START_TS)
    live = LiveFrames(camera, ["car", "bus", "truck", "motorcycle", "bicycle"])
    http = WorkerHTTP(live, metrics, host="127.0.0.1", port=0, source_stats=lambda: source.stats,
                      sink_stats=lambda: sink.stats).start()
    try:
        worker = Worker(camera, source, pipeline, counted, metrics, live)
        thread = threading.Thread(target=worker.run)
        thread.start()
        thread.join(60)
        assert not thread.is_alive()
        assert sink.flush(10)
        base = f"http://127.0.0.1:{http.port}"
        status, ctype, body = _get(f"{base}/metrics")
        text = body.decode()
        assert status == 200 and ctype.startswith("text/plain")
        values = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("trafficprn_")}
        assert values["trafficprn_frames_total"] == FPS * SECONDS
        assert values["trafficprn_passages_total"] == 1
        assert values["trafficprn_detections_total"] > 0 and values["trafficprn_fps"] > 0
        assert values["trafficprn_spool_events"] == 0 and values["trafficprn_db_lag_seconds"] == 0
        assert "# TYPE trafficprn_frames_total counter" in text
        status, ctype, jpg = _get(f"{base}/snapshot.jpg")
        assert ctype == "image/jpeg" and cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == (H, W, 3)
        status, ctype, chunk = _get(f"{base}/live.mjpg", n=4096)
        assert ctype.startswith("multipart/x-mixed-replace") and b"--frame\r\nContent-Type: image/jpeg" in chunk
    finally:
        http.close()
        sink.close()
    engine = make_engine(url)
    with engine.connect() as conn:
        page = queries.passages(conn)
        cams = queries.cameras(conn)
    engine.dispose()
    assert len(page.items) == 1
    p = page.items[0]
    assert (p.entry_leg, p.exit_leg, p.movement, p.vehicle_class) == ("N", "S", "T", "car")
    assert START_TS < p.passage_ts < START_TS + SECONDS
    # 510 px in 7.9 s at 0.05 m/px: 11.6 km/h
    assert p.speed_median_kmh == pytest.approx(11.6, rel=0.15)
    assert cams[0].status == "down"  # the video ended
    assert [e.movement for e in memory.events if hasattr(e, "movement")] == ["T"]


def test_annotate_draws_zones_and_leaves_illegible_plates(scene: tuple[object, Path]) -> None:
    """At 0.05 m/px a 0.52 m plate spans 10 px: no one can read it, so the vehicle is left
    as it is (tests/test_live_view.py checks the blur where plates can be read)."""
    site, _ = scene
    camera = site.cameras[0]  # type: ignore[attr-defined]
    img = np.full((H, W, 3), 128, np.uint8)
    img[200:260, 100:200] = np.indices((60, 100)).sum(axis=0)[..., None] % 2 * 255  # a sharp "plate" texture
    dets = Detections(xyxy=np.array([[100.0, 140.0, 200.0, 260.0]]), confidence=np.array([0.9]),
                      class_id=np.array([0]), track_id=np.array([4]))
    out = annotate(img, dets, camera, ["car"])
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert np.array_equal(out[200:250, 160:195], img[200:250, 160:195])  # inside the box, off the zones: untouched
    leg_n = np.array(camera.legs[0].entry, int)
    x, y = leg_n[0]
    assert not np.array_equal(out[y + 1, x + 1], img[y + 1, x + 1]) or not np.array_equal(out[y, x], img[y, x])


def test_camera_goes_down_when_frames_stop(scene: tuple[object, Path]) -> None:
    site, _ = scene
    camera = site.cameras[0]  # type: ignore[attr-defined]
    events = ListSink()
    metrics = WorkerMetrics(camera.name)
    release = threading.Event()
    frame = np.zeros((H, W, 3), np.uint8)

    def stalling_source():  # type: ignore[no-untyped-def]
        yield frame, FrameMeta(camera.name, START_TS, 0)
        release.wait(10)  # the camera stops delivering
        yield frame, FrameMeta(camera.name, START_TS + 5, 1)

    class Echo:
        def process(self, frame_bgr: np.ndarray, meta: FrameMeta) -> object:
            return None

        def finish(self, ts: float) -> list[object]:
            return []

    worker = Worker(camera, stalling_source(), Echo(), events, metrics, down_after_s=0.5)
    thread = threading.Thread(target=worker.run)
    thread.start()
    for _ in range(50):
        if not metrics.camera_up and metrics.frames:
            break
        threading.Event().wait(0.1)
    release.set()
    thread.join(10)
    ups = [(e.up, e.reason) for e in events.of_type(CameraStatus)]
    assert [u for u, _ in ups] == [True, False, True, False]
    assert "no frames" in ups[1][1]


def test_prometheus_text_format() -> None:
    m = WorkerMetrics('cam "1"', frames=10, passages=2)
    text = prometheus_text(m, {"dropped": 3}, {"pending": 4, "lag_s": 1.5, "db_ok": True})
    assert 'trafficprn_frames_total{camera="cam \\"1\\""} 10' in text
    assert 'trafficprn_spool_events{camera="cam \\"1\\""} 4' in text
    assert 'trafficprn_db_lag_seconds{camera="cam \\"1\\""} 1.5' in text
    assert 'trafficprn_db_up{camera="cam \\"1\\""} 1' in text


def test_a_looping_replay_counts_each_loop_as_new_passages(scene: tuple[object, Path], tmp_path: Path) -> None:
    """The demo's path: `run_worker` on a `ReplaySource` (real decoding, the real pipeline, the
    database sink, the worker's endpoint), two loops: the car passes once per loop, each
    passage a new event one video length later."""
    from trafficprn.camera.replay import ReplaySource
    from trafficprn.services_commands import run_worker
    from trafficprn.settings import Settings
    from trafficprn.store import queries
    from trafficprn.store.db import make_engine, upgrade

    site, video = scene
    camera = site.cameras[0]  # type: ignore[attr-defined]
    url = f"sqlite:///{tmp_path / 'loop.sqlite'}"
    upgrade(url)
    source = ReplaySource(str(video), camera.name, start_ts=START_TS, speed=50.0, loops=2, process_fps=FPS)
    ports: list[int] = []
    frames = run_worker(site, camera, Settings(database_url=url), site_path=str(tmp_path / "site.yaml"),
                        http_host="127.0.0.1", http_port=0, spool_dir=tmp_path / "spool", detector=BlobDetector(),
                        source=source, clock="footage", banner="SIMULATED SCENE", ready=ports.append)
    assert frames == 2 * FPS * SECONDS and ports
    engine = make_engine(url)
    with engine.connect() as conn:
        items = sorted(queries.passages(conn).items, key=lambda p: p.passage_ts)
    engine.dispose()
    assert len(items) == 2 and items[0].uuid != items[1].uuid
    assert items[1].passage_ts - items[0].passage_ts == pytest.approx(SECONDS, abs=0.2)  # one loop later
    assert [p.movement for p in items] == ["T", "T"]
