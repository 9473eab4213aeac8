"""SORT: Simple Online and Realtime Tracking (Bewley et al. 2016), batched over tracks.

Each frame: predict every track's box with the Kalman filter, match detections to the
predictions by IoU with the Hungarian algorithm, correct matched tracks, start a track
for each unmatched detection, and drop tracks unseen for more than `max_age` frames.
A track is reported once it has been matched `min_hits` frames in a row (or during the
first `min_hits` frames of the sequence). The tracker works in image px only.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from trafficprn.errors import TrackingError
from trafficprn.track.kalman import BatchedBoxFilter, x_to_xyxy, xyxy_to_z
from trafficprn.types import Detections, FloatArray, IntArray


def iou_matrix(a_xyxy: FloatArray, b_xyxy: FloatArray) -> FloatArray:
    """(N, 4) x (M, 4) boxes in image px -> (N, M) intersection over union (0 where empty)."""
    a = a_xyxy[:, None, :]
    b = b_xyxy[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return np.asarray(out, dtype=np.float64)


def associate(
    det_xyxy: FloatArray, trk_xyxy: FloatArray, iou_threshold: float
) -> tuple[IntArray, IntArray, IntArray]:
    """Match detections (N, 4) to predicted track boxes (M, 4).

    Returns (matches (K, 2) of [det, trk] indices, unmatched det indices, unmatched
    track indices). A one-to-one overlap pattern is taken as is; otherwise the Hungarian
    algorithm maximises total IoU. Pairs below `iou_threshold` are not matches.
    """
    n, m = len(det_xyxy), len(trk_xyxy)
    if n == 0 or m == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    iou = iou_matrix(det_xyxy, trk_xyxy)
    above = iou > iou_threshold
    if above.sum(axis=1).max() == 1 and above.sum(axis=0).max() == 1:
        rows, cols = np.nonzero(above)
    else:
        rows, cols = linear_sum_assignment(-iou)
    good = iou[rows, cols] >= iou_threshold
    rows, cols = rows[good], cols[good]
    det_free = np.ones(n, dtype=bool)
    det_free[rows] = False
    trk_free = np.ones(m, dtype=bool)
    trk_free[cols] = False
    matches = np.stack([rows, cols], axis=1).astype(np.int64)
    return matches, np.flatnonzero(det_free), np.flatnonzero(trk_free)


class SortTracker:
    """SORT over `Detections` in image px. Each tracker owns its ID counter (ids start at 1).

    max_age: frames a track survives without a match.
    min_hits: consecutive matches before a track is reported.
    iou_threshold: minimum IoU of a detection-track match.

    `update(dets)` returns the reported tracks of this frame as Detections with
    `track_id`; boxes are the filtered Kalman boxes, class_id and confidence those of the
    matched detection, and ``data["det_index"]`` the row of that detection in `dets`.
    """

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3):
        if max_age < 0:
            raise TrackingError(f"max_age must be >= 0 frames, got {max_age}")
        if min_hits < 0:
            raise TrackingError(f"min_hits must be >= 0, got {min_hits}")
        if not 0.0 <= iou_threshold <= 1.0:
            raise TrackingError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.frame_count = 0
        self._next_id = 1
        self._kf = BatchedBoxFilter()
        self._ids: IntArray = np.zeros(0, dtype=np.int64)
        self._hits: IntArray = np.zeros(0, dtype=np.int64)
        self._streak: IntArray = np.zeros(0, dtype=np.int64)
        self._since_update: IntArray = np.zeros(0, dtype=np.int64)
        self._class_id: IntArray = np.zeros(0, dtype=np.int64)
        self._confidence: FloatArray = np.zeros(0)

    @property
    def ids_issued(self) -> int:
        """How many track ids this tracker has handed out."""
        return self._next_id - 1

    @property
    def live_ids(self) -> IntArray:
        """Ids of every track the tracker still holds (reported or not)."""
        return self._ids.copy()

    def _keep(self, mask: np.ndarray) -> None:
        self._kf.keep(mask)
        self._ids = self._ids[mask]
        self._hits = self._hits[mask]
        self._streak = self._streak[mask]
        self._since_update = self._since_update[mask]
        self._class_id = self._class_id[mask]
        self._confidence = self._confidence[mask]

    def update(self, dets: Detections) -> Detections:
        """Advance one frame with this frame's detections (possibly empty)."""
        self.frame_count += 1
        kf = self._kf
        kf.predict()
        self._streak[self._since_update > 0] = 0
        self._since_update += 1
        predicted = x_to_xyxy(kf.x)
        finite = np.asarray(np.isfinite(predicted).all(axis=1), dtype=bool)
        if not finite.all():
            self._keep(finite)
            predicted = predicted[finite]

        matches, free_dets, _ = associate(dets.xyxy, predicted, self.iou_threshold)
        det_rows, trk_rows = matches[:, 0], matches[:, 1]
        z = xyxy_to_z(dets.xyxy)
        kf.update(trk_rows, z[det_rows])
        self._since_update[trk_rows] = 0
        self._hits[trk_rows] += 1
        self._streak[trk_rows] += 1
        self._class_id[trk_rows] = dets.class_id[det_rows]
        self._confidence[trk_rows] = dets.confidence[det_rows]

        n_new = len(free_dets)
        if n_new:
            kf.add(z[free_dets])
            self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + n_new)])
            self._next_id += n_new
            zeros = np.zeros(n_new, dtype=np.int64)
            self._hits = np.concatenate([self._hits, zeros])
            self._streak = np.concatenate([self._streak, zeros])
            self._since_update = np.concatenate([self._since_update, zeros])
            self._class_id = np.concatenate([self._class_id, dets.class_id[free_dets]])
            self._confidence = np.concatenate([self._confidence, dets.confidence[free_dets]])

        det_of_track = np.full(len(self._ids), -1, dtype=np.int64)
        det_of_track[trk_rows] = det_rows
        det_of_track[len(self._ids) - n_new :] = free_dets
        report = (self._since_update < 1) & (
            (self._streak >= self.min_hits) | (self.frame_count <= self.min_hits)
        )
        out = Detections(
            xyxy=x_to_xyxy(kf.x[report]),
            confidence=self._confidence[report],
            class_id=self._class_id[report],
            track_id=self._ids[report],
            data={"det_index": det_of_track[report]},
        )
        alive = np.asarray(self._since_update <= self.max_age, dtype=bool)
        if not alive.all():
            self._keep(alive)
        return out
