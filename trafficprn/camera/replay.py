"""A recorded video played like a live camera: paced in real time, looping.

`ReplaySource` decodes through `open_source` (the same file source the worker and
`process` use) and hands frames over at their presentation times, `speed` times faster
than real time. Each loop is a new time window: loop k's timestamps are
``start_ts + k * length_s + pts``, so its events are new ones (their ids derive from the
first-seen time) and the dashboard sees the traffic go on.

Pacing never drops a frame: a consumer slower than the pace makes the replay run slower
(it re-anchors its clock rather than bursting to catch up), so every frame is analysed,
as in `process`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np

from trafficprn.camera.sources import FrameSource, SourceStats, open_source
from trafficprn.errors import SourceError
from trafficprn.types import FrameMeta

Frame = tuple[np.ndarray, FrameMeta]
COUNTERS = ("frames", "delivered", "dropped_slow", "dropped_fps", "reconnects")  # SourceStats summed over loops
MAX_LAG_S = 0.5  # further behind its pace than this, the replay re-anchors instead of bursting


def video_length_s(path: str | Path) -> float:
    """Seconds of a video file from its container (frames / fps); SourceError if unknown."""
    cap = cv2.VideoCapture(str(path))
    try:
        frames, fps = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), float(cap.get(cv2.CAP_PROP_FPS) or 0)
    finally:
        cap.release()
    if frames <= 0 or fps <= 0:
        raise SourceError(f"{path}: cannot tell the video's length (frames {frames:g}, fps {fps:g})")
    return frames / fps


class ReplaySource:
    """Iterate ``(frame_bgr, FrameMeta)`` of a video file, paced and looping (see module doc).

    start_ts: capture time of loop 0's first frame, epoch s. length_s: how far each loop
    moves the clock (None: the video's own length). speed: playback rate (> 0).
    loops: how many times to play (None: until `close()`). process_fps: as for `open_source`.
    """

    kind = "file"  # the worker iterates it to the end (or its stop) like any file

    def __init__(self, uri: str, camera_id: str, *, start_ts: float, length_s: float | None = None,
                 speed: float = 1.0, loops: int | None = None, process_fps: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if not speed > 0:
            raise SourceError(f"speed must be above 0, got {speed}")
        if loops is not None and loops < 1:
            raise SourceError(f"loops must be at least 1 or None, got {loops}")
        self.uri, self.camera_id = uri, camera_id
        self.start_ts, self.speed, self.loops, self.process_fps = float(start_ts), float(speed), loops, process_fps
        self.length_s = float(length_s) if length_s is not None else video_length_s(uri)
        if not self.length_s > 0:
            raise SourceError(f"length_s must be above 0, got {self.length_s}")
        self.loop = 0  # the loop being played
        self._clock = clock
        self._closed = threading.Event()
        self._current: FrameSource | None = None
        self._finished = SourceStats()  # counters of the loops already played
        self._index = 0
        open_source(uri, camera_id).close()  # a missing or broken file fails here, not in the worker

    @property
    def stats(self) -> SourceStats:
        """Counters over every loop so far (up: a loop is playing)."""
        out = SourceStats(**{f.name: getattr(self._finished, f.name) for f in fields(SourceStats)})
        cur = self._current
        if cur is not None:
            for name in COUNTERS:
                setattr(out, name, getattr(out, name) + getattr(cur.stats, name))
            out.up, out.last_error = cur.stats.up, cur.stats.last_error
        return out

    def __iter__(self) -> Iterator[Frame]:
        anchor: float | None = None  # clock time at which footage offset 0 is due
        while not self._closed.is_set() and (self.loops is None or self.loop < self.loops):
            loop_start = self.start_ts + self.loop * self.length_s
            source = open_source(self.uri, self.camera_id, process_fps=self.process_fps, start_ts=loop_start)
            self._current = source
            try:
                for frame, meta in source:
                    offset_s = (meta.ts - self.start_ts) / self.speed
                    anchor = self._pace(offset_s, anchor)
                    if self._closed.is_set():
                        return
                    out = FrameMeta(self.camera_id, meta.ts, self._index)
                    self._index += 1
                    yield frame, out
            finally:
                self._retire(source)
            self.loop += 1

    def _pace(self, offset_s: float, anchor: float | None) -> float:
        """Wait until `offset_s` (wall seconds after the start) is due; the (new) anchor."""
        now = self._clock()
        if anchor is None:
            return now - offset_s
        due = anchor + offset_s
        if due > now:
            self._closed.wait(due - now)
            return anchor
        if now - due > MAX_LAG_S:  # the consumer is slower than the pace: play on from here
            return now - offset_s
        return anchor

    def _retire(self, source: FrameSource) -> None:
        source.close()
        for name in COUNTERS:
            setattr(self._finished, name, getattr(self._finished, name) + getattr(source.stats, name))
        self._current = None

    def close(self) -> None:
        """Stop after the frame in hand; safe to call twice and from another thread."""
        self._closed.set()
        cur = self._current
        if cur is not None:
            cur.close()

    def __enter__(self) -> ReplaySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
