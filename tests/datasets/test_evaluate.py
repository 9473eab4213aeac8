"""Real-image scoring: AP, recall/precision at the operating confidence, size buckets."""

from __future__ import annotations

import numpy as np
import pytest

from trafficprn.datasets.evaluate import (
    VEHICLE_CLASSES,
    RealEvalAccumulator,
    Truth,
    box_sizes,
    evaluate,
    vehicle_predictions,
)
from trafficprn.errors import InputError
from trafficprn.types import Detections

SMALL = [10.0, 10.0, 30.0, 30.0]  # 20 px
LARGE = [100.0, 100.0, 200.0, 200.0]  # 100 px
HUGE = [300.0, 300.0, 500.0, 500.0]  # 200 px


def _add(acc: RealEvalAccumulator, pred: list[list[float]], conf: list[float], cls: list[int], truth: Truth) -> None:
    acc.add(
        np.array(pred, dtype=np.float64).reshape(-1, 4),
        np.array(conf, dtype=np.float64),
        np.array(cls, dtype=np.int64),
        truth,
    )


def test_perfect_predictions_score_one() -> None:
    acc = RealEvalAccumulator(confidence=0.25)
    truth = Truth.of([SMALL, LARGE], [0, 1])
    _add(acc, [SMALL, LARGE], [0.9, 0.8], [0, 1], truth)
    r = acc.result()
    assert r.images == 1 and r.boxes == 2
    assert r.ap50_vehicle == pytest.approx(1.0)
    assert r.ap50["car"] == pytest.approx(1.0) and r.ap50["bus"] == pytest.approx(1.0)
    assert r.ap50["truck"] is None  # no ground truth of that class
    assert r.recall == pytest.approx(1.0) and r.precision == pytest.approx(1.0)
    assert r.boxes_per_image == 2.0


def test_wrong_class_counts_for_vehicle_ap_but_not_class_ap() -> None:
    acc = RealEvalAccumulator(confidence=0.25)
    _add(acc, [LARGE], [0.9], [2], Truth.of([LARGE], [0]))  # a car called a truck
    r = acc.result()
    assert r.ap50_vehicle == pytest.approx(1.0)
    assert r.ap50["car"] == pytest.approx(0.0)


def test_operating_confidence_separates_recall_and_precision() -> None:
    acc = RealEvalAccumulator(confidence=0.5)
    truth = Truth.of([SMALL, LARGE], [0, 0])
    # the small car is found only at 0.3 (below the operating point); a false box at 0.6
    _add(acc, [LARGE, HUGE, SMALL], [0.9, 0.6, 0.3], [0, 0, 0], truth)
    r = acc.result()
    assert r.recall == pytest.approx(0.5)  # only the large one at >= 0.5
    assert r.precision == pytest.approx(0.5)  # large right, huge wrong
    assert r.boxes_per_image == 2.0
    # AP sees all three: recall 1 reached at precision 2/3
    assert r.ap50_vehicle == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))


def test_size_buckets_ignore_other_sizes() -> None:
    acc = RealEvalAccumulator(confidence=0.25)
    truth = Truth.of([SMALL, LARGE], [0, 0])
    # finds the large car and fires a false 200 px box; misses the small car
    _add(acc, [LARGE, HUGE], [0.9, 0.8], [0, 0], truth)
    r = acc.result()
    assert r.boxes_by_size == {"<16": 0, "16-32": 1, "32-64": 0, "64-128": 1, ">=128": 0}
    assert r.ap50_by_size["64-128"] == pytest.approx(1.0)  # the 200 px false box is another size
    assert r.ap50_by_size["16-32"] == pytest.approx(0.0)
    assert r.ap50_by_size["<16"] is None
    assert r.recall_by_size["64-128"] == pytest.approx(1.0)
    assert r.recall_by_size["16-32"] == pytest.approx(0.0)
    assert r.ap50_vehicle == pytest.approx(0.5)  # half the cars, found first


def test_backgrounds_count_false_boxes_per_image() -> None:
    acc = RealEvalAccumulator(confidence=0.25)
    empty = Truth.of(np.zeros((0, 4)), np.zeros(0))
    _add(acc, [LARGE], [0.3], [0], empty)
    _add(acc, [LARGE], [0.2], [0], empty)  # below the operating point
    _add(acc, [], [], [], empty)
    r = acc.result()
    assert r.boxes_per_image == pytest.approx(1 / 3)
    assert r.ap50_vehicle is None and r.recall is None
    assert r.precision == pytest.approx(0.0)
    assert r.as_json()["boxes_per_image"] == pytest.approx(0.3333)


def test_coco_names_map_onto_vehicle_classes() -> None:
    names = ["person", "bicycle", "car", "motorbike", "bus", "truck", "dog"]
    dets = Detections(
        xyxy=np.tile(LARGE, (7, 1)), confidence=np.linspace(0.9, 0.3, 7), class_id=np.arange(7, dtype=np.int64)
    )
    xyxy, conf, cls = vehicle_predictions(dets, names)
    assert [VEHICLE_CLASSES[c] for c in cls] == ["bicycle", "car", "motorcycle", "bus", "truck"]
    assert len(xyxy) == len(conf) == 5


class _Oracle:
    """Detector that returns the boxes it is given for each image (keyed by its mean)."""

    class_names = list(VEHICLE_CLASSES)

    def __init__(self, answers: dict[int, Detections]):
        self.answers = answers

    def detect(self, image_bgr: np.ndarray) -> Detections:
        return self.answers[int(image_bgr.mean())]


def test_evaluate_runs_a_detector_over_images() -> None:
    images = [np.full((64, 64, 3), v, np.uint8) for v in (10, 20)]
    truths = [Truth.of([LARGE], [0]), Truth.of([SMALL], [3])]
    oracle = _Oracle(
        {
            10: Detections(xyxy=np.array([LARGE]), confidence=np.array([0.9]), class_id=np.array([0])),
            20: Detections(xyxy=np.zeros((0, 4)), confidence=np.zeros(0), class_id=np.zeros(0, np.int64)),
        }
    )
    acc = RealEvalAccumulator(confidence=0.25)
    scored = list(evaluate(oracle, zip(images, truths, strict=True), acc))
    assert len(scored) == 2 and len(scored[0].pred_xyxy) == 1
    r = acc.result()
    assert r.recall == pytest.approx(0.5)
    assert r.ap50["motorcycle"] == pytest.approx(0.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="class ids"):
        Truth.of([LARGE], [7])
    with pytest.raises(InputError, match="operating confidence"):
        RealEvalAccumulator(confidence=1.5)
    with pytest.raises(InputError, match="no images"):
        RealEvalAccumulator(confidence=0.25).result()


def test_box_sizes_are_root_area() -> None:
    assert box_sizes(np.array([SMALL, LARGE, [0, 0, 4, 16]])).tolist() == [20.0, 100.0, 8.0]
