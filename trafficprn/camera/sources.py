"""Frame sources: a video file, an RTSP/HTTP stream or a local device behind one interface,
yielding ``(frame_bgr, FrameMeta(camera_id, ts, index))``.

- ts is the capture time in seconds since the UTC epoch. For a file it is the file's start
  time (given, or now) plus the frame's presentation time; for a live stream or a device it
  is the wall clock when the frame was grabbed. ts never goes backwards, across reconnects too.
- index counts every frame read from the source, dropped ones included.
- A live source reads on its own thread into a bounded queue: when the consumer is slow the
  oldest frame is dropped and counted, so the consumer always gets a recent frame.
- A file source decodes ahead on its own thread into a bounded queue (`read_ahead` frames),
  so decoding overlaps the consumer's work on another core; nothing is dropped: a full
  queue blocks the reader, never the consumer. `read_ahead=0` decodes on the consumer's thread.
- FFmpeg decodes with `decode_threads` threads (default 1: on a small box a second decode
  thread only competes with the detector for the cores; None lets FFmpeg choose).
- `process_fps` drops (and counts) frames beyond that rate.
- A dropped stream reconnects with exponential backoff and never raises into the consumer;
  `SourceError` is only for what reconnecting cannot fix (an unsupported URL scheme, a
  missing file).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np

from trafficprn.errors import SourceError
from trafficprn.types import FrameMeta

SourceKind = Literal["file", "stream", "device"]
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
Frame = tuple[np.ndarray, FrameMeta]


@dataclass
class SourceStats:
    """Counters of one source (read them any time; they only grow).

    frames: frames read from the source. delivered: frames handed to the consumer.
    dropped: frames not delivered (dropped_slow: the consumer was behind, the queue was full;
    dropped_fps: beyond process_fps). reconnects: successful reopenings after a failure.
    up: the source is currently connected. last_error: the latest failure, if any.
    """

    frames: int = 0
    delivered: int = 0
    dropped_slow: int = 0
    dropped_fps: int = 0
    reconnects: int = 0
    up: bool = False
    last_error: str | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_slow + self.dropped_fps


def classify_uri(uri: str) -> SourceKind:
    """file, stream or device; SourceError for an unsupported scheme."""
    if uri.isdigit() or uri.startswith("/dev/video"):
        return "device"
    parsed = urlparse(uri)
    if parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        scheme = parsed.scheme.lower()
        if scheme in STREAM_SCHEMES:
            return "stream"
        if scheme == "file":
            return "file"
        raise SourceError(
            f"unsupported source scheme {scheme!r} in {uri!r}; expected one of {', '.join(STREAM_SCHEMES)}, a file or /dev/videoN"
        )
    return "file"


class _Throttle:
    """Keeps frames at most `fps` per second of ts; tolerant to jitter of 20 % of a period."""

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps else 0.0
        self.next_due: float | None = None

    def keep(self, ts: float) -> bool:
        if not self.period:
            return True
        if self.next_due is None or ts >= self.next_due - 0.2 * self.period:
            due = ts if self.next_due is None else self.next_due
            self.next_due = due + self.period if ts - due < self.period else ts + self.period
            return True
        return False


def _open_capture(uri: str, kind: SourceKind, timeout_s: float, decode_threads: int | None = None) -> Any:
    import cv2

    if kind == "device":
        index: int | str = int(uri) if uri.isdigit() else uri
        return cv2.VideoCapture(index)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(timeout_s * 1000),
    ]
    if decode_threads is not None:
        params += [cv2.CAP_PROP_N_THREADS, int(decode_threads)]
    target = uri.removeprefix("file://") if kind == "file" else uri
    return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)


class FrameSource:
    """Iterate ``(frame_bgr, FrameMeta)``; see the module doc. Use `open_source` to make one."""

    def __init__(
        self,
        uri: str,
        camera_id: str,
        *,
        kind: SourceKind,
        process_fps: float | None = None,
        start_ts: float | None = None,
        queue_size: int = 2,
        timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        clock: Callable[[], float] = time.time,
        read_ahead: int = 4,
        decode_threads: int | None = 1,
    ):
        if queue_size < 1:
            raise SourceError(f"queue_size must be at least 1, got {queue_size}")
        if read_ahead < 0:
            raise SourceError(f"read_ahead must be at least 0, got {read_ahead}")
        if decode_threads is not None and decode_threads < 1:
            raise SourceError(f"decode_threads must be at least 1 or None, got {decode_threads}")
        self.uri, self.camera_id, self.kind = uri, camera_id, kind
        self.stats = SourceStats()
        self._clock = clock
        self._start_ts = clock() if start_ts is None else float(start_ts)
        self._throttle = _Throttle(process_fps)
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._index = 0
        self._last_ts = -np.inf
        self._decode_threads = decode_threads
        self._closed = threading.Event()
        # live: a ring that drops the oldest; file: unbounded deque, the reader keeps it <= read_ahead
        self._queue: deque[Frame] = deque(maxlen=None if kind == "file" else queue_size)
        self._read_ahead = read_ahead
        self._ended = False  # the file reader reached the end (or failed: _error)
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cap: Any = None
        if kind == "file":
            self._cap = _open_capture(uri, kind, timeout_s, decode_threads)
            if not self._cap.isOpened():
                raise SourceError(f"cannot open video file {uri!r} (missing, unreadable or not a video)")
            self.stats.up = True
            if read_ahead > 0:
                self._thread = threading.Thread(target=self._run_file, name=f"decode-{camera_id}", daemon=True)
                self._thread.start()
        else:
            self._thread = threading.Thread(target=self._run_live, name=f"source-{camera_id}", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------ consumer side
    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self.read()
            if item is None:
                return
            yield item

    def read(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame; None at the end of a file, after close(), or when `timeout_s`
        passes without a frame (a live source keeps reconnecting meanwhile). SourceError
        when decoding a file fails with an exception."""
        if self.kind == "file" and self._thread is None:
            item = self._read_file()
            if item is not None:
                self.stats.delivered += 1
            return item
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._queue or self._closed.is_set():
                if self._closed.is_set():
                    return None
                if self._ended:
                    if self._error is not None:
                        raise SourceError(f"decoding {self.uri!r} failed: {self._error!r}") from self._error
                    return None
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(0.5 if wait is None else min(wait, 0.5))
            item = self._queue.popleft()
            self.stats.delivered += 1
            self._cond.notify_all()  # a file reader may wait for room
            return item

    def close(self) -> None:
        """Stop reading and release the capture; safe to call twice."""
        self._closed.set()
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._timeout_s + 2.0)
        reader_busy = self._thread is not None and self._thread.is_alive()
        if self._cap is not None and not reader_busy:  # never release under a read in progress
            self._cap.release()
            self._cap = None
        self.stats.up = False

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ files
    def _run_file(self) -> None:
        """Decode-ahead thread: keep up to read_ahead frames queued; block (never drop) when full."""
        try:
            while True:
                item = self._read_file()
                with self._cond:
                    while len(self._queue) >= self._read_ahead and not self._closed.is_set():
                        self._cond.wait(0.5)
                    if self._closed.is_set():
                        return
                    if item is None:
                        self._ended = True
                    else:
                        self._queue.append(item)
                    self._cond.notify_all()
                if item is None:
                    return
        except BaseException as exc:  # handed to the consumer by read()
            with self._cond:
                self._error, self._ended = exc, True
                self._cond.notify_all()

    def _read_file(self) -> Frame | None:
        import cv2

        while not self._closed.is_set() and self._cap is not None:
            ok, frame = self._cap.read()
            if not ok:
                self.stats.up = False
                return None
            pts_s = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            meta = self._meta(self._start_ts + pts_s)
            if not self._throttle.keep(meta.ts):
                self.stats.dropped_fps += 1
                continue
            return frame, meta
        return None

    def _meta(self, ts: float) -> FrameMeta:
        ts = max(ts, self._last_ts + 1e-6)  # never backwards
        self._last_ts = ts
        meta = FrameMeta(self.camera_id, ts, self._index)
        self._index += 1
        self.stats.frames += 1
        return meta

    # ------------------------------------------------------------ live
    def _run_live(self) -> None:
        failures = 0
        while not self._closed.is_set():
            cap = _open_capture(self.uri, self.kind, self._timeout_s, self._decode_threads)
            if cap.isOpened():
                if self._pump(cap):
                    failures = 0  # it worked for a while: start the backoff over
            else:
                self.stats.last_error = f"cannot open {self.uri}"
            cap.release()
            self.stats.up = False
            delay = min(self._backoff_s[0] * 2**failures, self._backoff_s[1])
            failures += 1
            self._closed.wait(delay)

    def _pump(self, cap: Any) -> bool:
        """Read frames until the stream fails or the source closes; True if any arrived."""
        got = False
        while not self._closed.is_set():
            ok, frame = cap.read()
            if not ok:
                self.stats.last_error = f"stream {self.uri} stopped delivering frames"
                return got
            if not got:
                if self.stats.frames:  # frames came before: this is a reconnection
                    self.stats.reconnects += 1
                got = True
                self.stats.up = True
            meta = self._meta(self._clock())
            if not self._throttle.keep(meta.ts):
                self.stats.dropped_fps += 1
                continue
            with self._cond:
                if len(self._queue) == self._queue.maxlen:
                    self.stats.dropped_slow += 1  # deque drops the oldest
                self._queue.append((frame, meta))
                self._cond.notify()
        return got


def open_source(
    uri: str,
    camera_id: str,
    *,
    process_fps: float | None = None,
    start_ts: float | None = None,
    queue_size: int = 2,
    timeout_s: float = 5.0,
    backoff_s: tuple[float, float] = (0.5, 30.0),
    read_ahead: int = 4,
    decode_threads: int | None = 1,
) -> FrameSource:
    """Open a video file, an RTSP/HTTP(S) URL or a device (/dev/videoN or N).

    process_fps: deliver at most this many frames per second of ts (None: all).
    start_ts: a file's start time, epoch s (None: now); ignored for live sources.
    queue_size: frames a live source buffers for a slow consumer (1-2 keeps latency low).
    timeout_s: open/read timeout of a live stream; backoff_s: first and largest reconnect delay.
    read_ahead: frames a file source decodes ahead on its own thread (0: on the caller's thread).
    decode_threads: FFmpeg decoding threads of a file or stream (None: FFmpeg's default).
    Raises SourceError for an unsupported scheme or a file that cannot be opened.
    """
    kind = classify_uri(uri)
    if kind == "file" and not Path(uri.removeprefix("file://")).is_file():
        raise SourceError(f"video file not found: {uri}")
    return FrameSource(
        uri,
        camera_id,
        kind=kind,
        process_fps=process_fps,
        start_ts=start_ts,
        queue_size=queue_size,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
        read_ahead=read_ahead,
        decode_threads=decode_threads,
    )
