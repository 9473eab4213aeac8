"""Non-maximum suppression, greedy by score, optionally per class."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError
from trafficprn.geometry.boxes import as_boxes, iou_matrix


def nms(
    xyxy: npt.ArrayLike,
    scores: npt.ArrayLike,
    iou: float = 0.45,
    class_id: npt.ArrayLike | None = None,
) -> npt.NDArray[np.int64]:
    """Indices of the boxes to keep, highest score first.

    xyxy: (N, 4) boxes in px; scores: (N,); iou: a box is suppressed when its IoU with a
    kept, higher-scoring box is above this. class_id: (N,) ints; when given, boxes of
    different classes never suppress each other.
    """
    boxes = as_boxes(xyxy)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(boxes)
    if len(s) != n:
        raise GeometryError(f"scores must have shape ({n},) to match xyxy, got {s.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if class_id is not None:
        cls = np.asarray(class_id).reshape(-1)
        if len(cls) != n:
            raise GeometryError(f"class_id must have shape ({n},) to match xyxy, got {cls.shape}")
        # Offset each class far apart so boxes of different classes cannot overlap.
        span = float(np.abs(boxes).max()) + 1.0
        _, cls_index = np.unique(cls, return_inverse=True)
        boxes = boxes + (cls_index.astype(np.float64) * 2.0 * span)[:, None]
    order = np.argsort(-s, kind="stable")
    overlaps = iou_matrix(boxes[order], boxes[order])
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i] > iou
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64)
