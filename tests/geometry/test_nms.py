from __future__ import annotations

import numpy as np
import pytest

from trafficprn.errors import GeometryError
from trafficprn.geometry.nms import nms


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "iou", "expected"),
    [
        ([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], [0.9, 0.8, 0.7], None, 0.45, [0, 2]),
        ([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], [0.5, 0.8, 0.7], None, 0.45, [1, 2]),
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.9, 0.8], [0, 1], 0.45, [0, 1]),  # other class survives
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.9, 0.8], [2, 2], 0.45, [0]),
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.9, 0.8], None, 0.9, [0, 1]),  # IoU 0.68 < 0.9
        (np.zeros((0, 4)), [], None, 0.5, []),
    ],
)
def test_nms_table(boxes: list, scores: list, classes: list | None, iou: float, expected: list[int]) -> None:
    assert nms(boxes, scores, iou, class_id=classes).tolist() == expected


def test_nms_matches_opencv(rng: np.random.Generator) -> None:
    cv2 = pytest.importorskip("cv2")
    xy = rng.uniform(0, 200, (200, 2))
    wh = rng.uniform(10, 60, (200, 2))
    boxes = np.hstack([xy, xy + wh])
    scores = rng.uniform(0, 1, 200)
    ours = sorted(nms(boxes, scores, 0.4).tolist())
    ref = cv2.dnn.NMSBoxes(np.hstack([xy, wh]).tolist(), scores.tolist(), 0.0, 0.4)
    assert ours == sorted(np.asarray(ref).reshape(-1).tolist())


def test_nms_bad_scores() -> None:
    with pytest.raises(GeometryError, match="scores"):
        nms([[0, 0, 1, 1]], [0.1, 0.2])
