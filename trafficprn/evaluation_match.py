"""Which true vehicle each of our tracks and passages was, for scoring a run on a sim
scene (`evaluation.score_scene`): per-frame one-to-one matches of boxes by IoU, voted
over a track's frames, and over every fragment a passage took over."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from trafficprn.geometry.boxes import iou_matrix

if TYPE_CHECKING:
    from trafficprn.evaluation import Scene, SceneRun

__all__ = ["passage_to_truth", "track_to_truth"]


def _track_votes(scene: Scene, run: SceneRun, iou_min: float) -> dict[int, Counter[int]]:
    """Per reported track id, in how many frames each true vehicle was its box's match
    (per-frame one-to-one assignment by IoU >= iou_min)."""
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for frame, dets in zip(scene.frames, run.tracks, strict=False):
        if dets.track_id is None or not len(dets) or not frame["objects"]:
            continue
        gt = np.array([o["xyxy"] for o in frame["objects"]], dtype=np.float64)
        ids = [int(o["track_id"]) for o in frame["objects"]]
        iou = iou_matrix(dets.xyxy, gt)
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols, strict=True):
            if iou[r, c] >= iou_min:
                votes[int(dets.track_id[r])][ids[c]] += 1
    return votes


def track_to_truth(scene: Scene, run: SceneRun, iou_min: float = 0.3) -> dict[int, int]:
    """Each reported track id -> the true vehicle id its boxes overlap most (per-frame
    one-to-one assignment by IoU)."""
    return {t: c.most_common(1)[0][0] for t, c in _track_votes(scene, run, iou_min).items()}


def passage_to_truth(scene: Scene, run: SceneRun, iou_min: float = 0.3) -> dict[int, int]:
    """Each passage's track id -> the true vehicle its boxes overlap most over the whole
    passage: its own track and the fragments it took over (`extras["merged_track_ids"]`).
    A passage's speeds, colour and plate are measured over all of them, so it is scored
    against the vehicle most of them were, not the one its last fragment ended on."""
    votes = _track_votes(scene, run, iou_min)
    out: dict[int, int] = {}
    for p in run.passages:
        total: Counter[int] = Counter()
        for tid in [*p.extras.get("merged_track_ids", []), p.track_id]:
            total.update(votes.get(int(tid), Counter()))
        if total:
            out[p.track_id] = total.most_common(1)[0][0]
    return out
