"""Anchor boxes fitted to a dataset: k-means on box shapes with 1 - IoU as the distance
(YOLOv2's recipe), so each head's anchors match the sizes the camera actually sees.

    wh = dataset_box_sizes(spec.train, num_classes, size=416)   # (N, 2) px at the input size
    anchors = kmeans_anchors(wh, k=6)                            # sorted by area
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from trafficprn.detect.train.dataset import label_path, read_labels
from trafficprn.errors import InputError

FloatArray = npt.NDArray[np.float64]


def shape_iou(wh: FloatArray, anchors: FloatArray) -> FloatArray:
    """(N, K) IoU of (N, 2) box shapes and (K, 2) anchors aligned at a common corner."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = wh[:, None].prod(2) + anchors[None].prod(2) - inter
    out: FloatArray = inter / union
    return out


def kmeans_anchors(wh: npt.ArrayLike, k: int, *, seed: int = 0, iterations: int = 100) -> FloatArray:
    """(k, 2) anchors (w, h) in the units of `wh`, sorted by area; medians of IoU clusters."""
    boxes = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    boxes = boxes[(boxes > 0).all(axis=1)]
    if len(boxes) < k:
        raise InputError(f"need at least {k} boxes to fit {k} anchors, got {len(boxes)}")
    rng = np.random.default_rng(seed)
    centres = boxes[rng.choice(len(boxes), k, replace=False)]
    assign = np.full(len(boxes), -1)
    for _ in range(iterations):
        new = np.argmax(shape_iou(boxes, centres), axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = boxes[assign == c]
            if len(members):
                centres[c] = np.median(members, axis=0)
    return centres[np.argsort(centres.prod(1))]


def mean_best_iou(wh: npt.ArrayLike, anchors: npt.ArrayLike) -> float:
    """Average over boxes of the best anchor IoU (how well the anchors fit)."""
    boxes = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    return float(shape_iou(boxes, np.asarray(anchors, dtype=np.float64)).max(axis=1).mean())


def dataset_box_sizes(images: list[Path], num_classes: int, size: int) -> FloatArray:
    """(N, 2) box sizes in px once each image's long side is scaled to `size`."""
    out = []
    for path in images:
        labels = read_labels(label_path(path), num_classes)
        if not len(labels):
            continue
        image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)  # only the aspect matters
        if image is None:
            raise InputError(f"cannot read image {path}")
        h, w = image.shape[:2]
        scale = size / max(h, w)
        out.append(labels[:, 3:5] * np.array([w * scale, h * scale]))
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 2))
