"""Box formats and IoU, vectorised over N boxes.

Formats: xyxy (x1, y1, x2, y2); xywh (x1, y1, w, h); cxcysr (centre x, centre y,
area s = w * h, aspect r = w / h), the state z of SORT's Kalman filter. All in px.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.geometry.arrays import as_rows

FloatArray = npt.NDArray[np.float64]


def as_boxes(boxes: npt.ArrayLike, name: str = "xyxy") -> FloatArray:
    """(N, 4) float64 view of `boxes`; an empty input becomes (0, 4)."""
    return as_rows(boxes, 4, name)


def box_area(xyxy: npt.ArrayLike) -> FloatArray:
    """(N,) areas in px^2 of (N, 4) xyxy boxes; inverted boxes have area 0."""
    b = as_boxes(xyxy)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def iou_matrix(a_xyxy: npt.ArrayLike, b_xyxy: npt.ArrayLike) -> FloatArray:
    """(N, M) intersection over union of (N, 4) and (M, 4) xyxy boxes, in [0, 1]."""
    a = as_boxes(a_xyxy, "a_xyxy")
    b = as_boxes(b_xyxy, "b_xyxy")
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.clip(iou, 0.0, 1.0)


def xyxy_to_xywh(xyxy: npt.ArrayLike) -> FloatArray:
    """(N, 4) xyxy -> (N, 4) (x1, y1, w, h)."""
    b = as_boxes(xyxy)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def xywh_to_xyxy(xywh: npt.ArrayLike) -> FloatArray:
    """(N, 4) (x1, y1, w, h) -> (N, 4) xyxy."""
    b = as_boxes(xywh, "xywh")
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def xyxy_to_cxcywh(xyxy: npt.ArrayLike) -> FloatArray:
    """(N, 4) xyxy -> (N, 4) (centre x, centre y, w, h)."""
    b = as_boxes(xyxy)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w, h], axis=1)


def cxcywh_to_xyxy(cxcywh: npt.ArrayLike) -> FloatArray:
    """(N, 4) (centre x, centre y, w, h) -> (N, 4) xyxy."""
    b = as_boxes(cxcywh, "cxcywh")
    return np.stack(
        [b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=1
    )


def xyxy_to_cxcysr(xyxy: npt.ArrayLike) -> FloatArray:
    """(N, 4) xyxy -> (N, 4) SORT state z = (centre x, centre y, area px^2, aspect w/h)."""
    b = xyxy_to_cxcywh(xyxy)
    w, h = b[:, 2], b[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(h > 0, w / np.where(h > 0, h, 1.0), 0.0)
    return np.stack([b[:, 0], b[:, 1], w * h, r], axis=1)


def cxcysr_to_xyxy(cxcysr: npt.ArrayLike) -> FloatArray:
    """(N, 4) SORT state (cx, cy, s, r) -> (N, 4) xyxy. Negative areas/aspects clip to 0."""
    b = as_boxes(cxcysr, "cxcysr")
    s = np.clip(b[:, 2], 0, None)
    r = np.clip(b[:, 3], 0, None)
    w = np.sqrt(s * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(w > 0, s / np.where(w > 0, w, 1.0), 0.0)
    return cxcywh_to_xyxy(np.stack([b[:, 0], b[:, 1], w, h], axis=1))


def clip_boxes(xyxy: npt.ArrayLike, width: int, height: int) -> FloatArray:
    """(N, 4) xyxy clipped to the image [0, width] x [0, height]."""
    b = as_boxes(xyxy).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b
