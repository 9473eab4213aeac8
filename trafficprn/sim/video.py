"""H.264 mp4 writing through PyAV (OpenCV's pip wheels cannot encode H.264)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from trafficprn.errors import DependencyError


class VideoWriter:
    """Write BGR uint8 frames to an H.264 mp4 at a fixed frame rate."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, *, preset: str = "ultrafast", crf: int = 23,
                 threads: int = 2):
        try:
            import av
        except ImportError:
            raise DependencyError("PyAV is missing; install it with: pip install av") from None
        self._av: Any = av
        self._container: Any = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream: Any = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": preset, "crf": str(crf), "threads": str(threads)}
        self._stream.codec_context.thread_count = threads

    def write(self, frame_bgr: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(frame_bgr, format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
