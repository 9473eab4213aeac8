"""A per-track SORT built on filterpy's ``KalmanFilter``: the reference that the batched
tracker is tested and benchmarked against. Same algorithm as `SortTracker`, one Python
object and one filterpy filter per track (as in the paper's implementation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trafficprn.track.kalman import (
    initial_covariance,
    measurement_matrix,
    measurement_noise,
    process_noise,
    transition_matrix,
    x_to_xyxy,
    xyxy_to_z,
)
from trafficprn.track.sort import associate
from trafficprn.types import Detections, FloatArray


class _Track:
    def __init__(self, z: FloatArray, track_id: int, class_id: int, confidence: float):
        from filterpy.kalman import KalmanFilter

        kf: Any = KalmanFilter(dim_x=7, dim_z=4)
        kf.F = transition_matrix()
        kf.H = measurement_matrix()
        kf.R = measurement_noise()
        kf.Q = process_noise()
        kf.P = initial_covariance()
        kf.x[:4] = z.reshape(4, 1)
        self.kf = kf
        self.id = track_id
        self.hits = 0
        self.streak = 0
        self.since_update = 0
        self.class_id = class_id
        self.confidence = confidence

    def predict(self) -> FloatArray:
        if self.kf.x[6, 0] + self.kf.x[2, 0] <= 0:
            self.kf.x[6, 0] = 0.0
        self.kf.predict()
        if self.since_update > 0:
            self.streak = 0
        self.since_update += 1
        state: FloatArray = np.asarray(self.kf.x, dtype=np.float64).reshape(1, 7)
        box: FloatArray = x_to_xyxy(state).reshape(4)
        return box

    def update(self, z: FloatArray, class_id: int, confidence: float) -> None:
        self.since_update = 0
        self.hits += 1
        self.streak += 1
        self.class_id = class_id
        self.confidence = confidence
        self.kf.update(z.reshape(4, 1))

    def box(self) -> FloatArray:
        state: FloatArray = np.asarray(self.kf.x, dtype=np.float64).reshape(1, 7)
        box: FloatArray = x_to_xyxy(state).reshape(4)
        return box


class FilterpySortTracker:
    """Reference SORT with one filterpy KalmanFilter per track; same API as SortTracker."""

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3):
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.frame_count = 0
        self._next_id = 1
        self.tracks: list[_Track] = []

    def update(self, dets: Detections) -> Detections:
        self.frame_count += 1
        predicted = np.array([t.predict() for t in self.tracks]).reshape(-1, 4)
        finite = np.isfinite(predicted).all(axis=1)
        self.tracks = [t for t, ok in zip(self.tracks, finite, strict=True) if ok]
        predicted = predicted[finite]
        matches, free_dets, _ = associate(dets.xyxy, predicted, self.iou_threshold)
        z = xyxy_to_z(dets.xyxy)
        for d, t in matches:
            self.tracks[t].update(z[d], int(dets.class_id[d]), float(dets.confidence[d]))
        for d in free_dets:
            self.tracks.append(_Track(z[d], self._next_id, int(dets.class_id[d]), float(dets.confidence[d])))
            self._next_id += 1
        rows = [
            t
            for t in self.tracks
            if t.since_update < 1 and (t.streak >= self.min_hits or self.frame_count <= self.min_hits)
        ]
        self.tracks = [t for t in self.tracks if t.since_update <= self.max_age]
        if not rows:
            out = Detections.empty()
            return out.with_tracks(np.zeros(0, dtype=np.int64))
        return Detections(
            xyxy=np.array([t.box() for t in rows]),
            confidence=np.array([t.confidence for t in rows]),
            class_id=np.array([t.class_id for t in rows]),
            track_id=np.array([t.id for t in rows]),
        )
