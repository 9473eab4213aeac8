"""Scoring tracks with py-motmetrics (a dev dependency, imported lazily) and making
detections from ground truth boxes (noise, dropouts, false positives) for evaluations.

Rows are MOT-style arrays: (N, >=6) frame, id, left, top, width, height in image px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trafficprn.errors import DependencyError
from trafficprn.types import FloatArray


@dataclass(frozen=True)
class MotScores:
    mota: float
    idf1: float
    id_switches: int
    misses: int
    false_positives: int
    gt_objects: int


def spoil_boxes(
    xyxy: FloatArray, rng: np.random.Generator, noise_frac: float, dropout: float
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """(kept boxes (M, 4), keep mask (N,)) of true boxes (N, 4) x1 y1 x2 y2: each is kept with
    probability 1 - dropout and its corners jittered by N(0, noise_frac * box size); a box
    keeps at least 1 px of width and height."""
    keep = rng.random(len(xyxy)) >= dropout
    b = np.asarray(xyxy, dtype=np.float64)[keep]
    wh = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
    b = b + rng.normal(0.0, 1.0, b.shape) * noise_frac * wh
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1.0)
    return b, keep


def noisy_detections(
    gt: FloatArray,
    rng: np.random.Generator,
    *,
    noise_frac: float = 0.05,
    dropout: float = 0.1,
    fp_rate: float = 0.05,
    image_size: tuple[float, float] = (640.0, 480.0),
) -> FloatArray:
    """Detections (M, 7: frame, -1, left, top, w, h, conf) from ground-truth rows (N, >=6).

    Each true box is kept with probability 1 - dropout, its corners jittered by
    N(0, noise_frac * box size); false positives of random size and place are added,
    fp_rate of the true boxes in number, on random frames.
    """
    gt = np.asarray(gt, dtype=np.float64)
    xyxy, keep = spoil_boxes(np.column_stack([gt[:, 2:4], gt[:, 2:4] + gt[:, 4:6]]), rng, noise_frac, dropout)
    kept = gt[keep]
    dets = np.column_stack(
        [kept[:, 0], -np.ones(len(kept)), xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2], rng.uniform(0.5, 1.0, len(kept))]
    )
    n_fp = int(round(fp_rate * len(gt)))
    if n_fp and len(gt):
        frames = rng.choice(np.unique(gt[:, 0]), n_fp)
        size = rng.uniform(0.5, 1.5, (n_fp, 2)) * np.median(gt[:, 4:6], axis=0)
        pos = rng.uniform(0.0, 1.0, (n_fp, 2)) * (np.array(image_size) - size)
        fps = np.column_stack([frames, -np.ones(n_fp), pos, size, rng.uniform(0.3, 0.8, n_fp)])
        dets = np.concatenate([dets, fps])
    return dets[np.argsort(dets[:, 0], kind="stable")]


def score_tracks(gt: FloatArray, tracks: FloatArray, iou_threshold: float = 0.5) -> MotScores:
    """CLEAR-MOT and identity scores of track rows against ground-truth rows via motmetrics
    (box distance 1 - IoU, matches need IoU >= iou_threshold)."""
    try:
        import motmetrics as mm
    except ImportError:
        raise DependencyError("scoring needs py-motmetrics: pip install 'trafficprn[dev]'") from None
    if not hasattr(np, "asfarray"):  # NumPy 2 removed it; motmetrics 1.4 still calls it
        np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]
    acc = mm.MOTAccumulator(auto_id=False)
    frames = np.union1d(gt[:, 0], tracks[:, 0]).astype(np.int64)
    for frame in frames:
        g = gt[gt[:, 0] == frame]
        t = tracks[tracks[:, 0] == frame]
        dist = mm.distances.iou_matrix(g[:, 2:6], t[:, 2:6], max_iou=1.0 - iou_threshold)
        acc.update(g[:, 1].astype(np.int64).tolist(), t[:, 1].astype(np.int64).tolist(), dist, frameid=int(frame))
    mh = mm.metrics.create()
    summary = mh.compute(
        acc, metrics=["mota", "idf1", "num_switches", "num_misses", "num_false_positives", "num_objects"]
    )
    row = summary.iloc[0]
    return MotScores(
        mota=float(row["mota"]),
        idf1=float(row["idf1"]),
        id_switches=int(row["num_switches"]),
        misses=int(row["num_misses"]),
        false_positives=int(row["num_false_positives"]),
        gt_objects=int(row["num_objects"]),
    )
