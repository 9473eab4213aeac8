"""Core types that travel between stages: `Detections` (numpy columns) with a `FrameMeta`.

Stages return new objects (`dataclasses.replace`) instead of editing their input.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class VehicleClass(enum.IntEnum):
    """Classes of the bundled model. COCO models are mapped onto these by name."""

    CAR = 0
    BUS = 1
    TRUCK = 2
    MOTORCYCLE = 3
    BICYCLE = 4
    PERSON = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> VehicleClass:
        try:
            return cls[label.upper()]
        except KeyError:
            names = ", ".join(c.label for c in cls)
            raise ValueError(f"unknown vehicle class {label!r}, expected one of: {names}") from None


HEAVY_CLASSES = frozenset({VehicleClass.BUS, VehicleClass.TRUCK})


@dataclass(frozen=True)
class FrameMeta:
    """Where and when a frame was captured.

    camera_id: the camera's name in the site config.
    ts: capture time, seconds since the UTC epoch.
    index: frame number from the source, counting dropped frames too.
    """

    camera_id: str
    ts: float
    index: int


@dataclass(frozen=True)
class Detections:
    """N detections of one frame, as numpy columns.

    xyxy: (N, 4) float64 boxes in image px (x1, y1, x2, y2).
    confidence: (N,) float64 in [0, 1].
    class_id: (N,) int64 class indices of the model's class list.
    track_id: (N,) int64 track ids, or None before tracking.
    data: extra per-detection columns, each with first dimension N.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    track_id: IntArray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float64)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            if xyxy.size == 0:
                xyxy = xyxy.reshape(0, 4)
            else:
                raise GeometryError(f"xyxy must be a 2D array with shape (N, 4), got shape {xyxy.shape}")
        n = len(xyxy)
        object.__setattr__(self, "xyxy", xyxy)
        columns: dict[str, np.ndarray] = {
            "confidence": np.asarray(self.confidence, dtype=np.float64).reshape(-1),
            "class_id": np.asarray(self.class_id, dtype=np.int64).reshape(-1),
        }
        if self.track_id is not None:
            columns["track_id"] = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        for name, col in columns.items():
            if len(col) != n:
                raise GeometryError(f"{name} must have shape ({n},) to match xyxy, got shape {col.shape}")
            object.__setattr__(self, name, col)
        for name, col in self.data.items():
            if len(col) != n:
                raise GeometryError(f"data[{name!r}] must have {n} rows to match xyxy, got {len(col)}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4)),
            confidence=np.zeros(0),
            class_id=np.zeros(0, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: slice | np.ndarray | list[int]) -> Detections:
        """Select rows by slice, integer indices or boolean mask."""
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            track_id=None if self.track_id is None else self.track_id[index],
            data={k: v[index] for k, v in self.data.items()},
        )

    def with_tracks(self, track_id: IntArray) -> Detections:
        return replace(self, track_id=np.asarray(track_id, dtype=np.int64))

    @property
    def anchor_px(self) -> FloatArray:
        """(N, 2) bottom-centre points in image px: where a vehicle touches the road."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        tracks = [p.track_id for p in parts]
        keys = set(parts[0].data)
        return Detections(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            track_id=None if any(t is None for t in tracks) else np.concatenate(tracks),  # type: ignore[arg-type]
            data={k: np.concatenate([p.data[k] for p in parts]) for k in keys if all(k in p.data for p in parts)},
        )


class Detector(Protocol):
    """Anything that turns a BGR uint8 image (H, W, 3) into Detections in image px."""

    class_names: list[str]

    def detect(self, image_bgr: np.ndarray) -> Detections: ...
