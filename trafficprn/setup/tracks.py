"""Vehicle tracks observed in footage: what every suggestion is made from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ObservedTrack:
    """One tracked vehicle in source-image pixels (no calibration needed)."""

    track_id: int
    class_name: str  # majority vote over its frames: car, bus, truck, motorcycle, bicycle
    ts: FloatArray  # (n,) capture time, s, increasing
    boxes_px: FloatArray  # (n, 4) xyxy in source image px, one per ts

    def __post_init__(self) -> None:
        if self.boxes_px.shape != (len(self.ts), 4):
            raise ValueError(f"expected boxes of shape ({len(self.ts)}, 4), got {self.boxes_px.shape}")

    @property
    def duration_s(self) -> float:
        return float(self.ts[-1] - self.ts[0]) if len(self.ts) else 0.0

    @property
    def centres_px(self) -> FloatArray:
        b = self.boxes_px
        return np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2])
