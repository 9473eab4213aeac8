"""mAP: hand-computed cases and pycocotools as the reference implementation."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from trafficprn.detect.metrics import (
    COCO_IOU_THRESHOLDS,
    MapAccumulator,
    average_precision,
    match_predictions,
)
from trafficprn.errors import GeometryError


def box(x: float, y: float, w: float = 10.0, h: float = 10.0) -> list[float]:
    return [x, y, x + w, y + h]


@pytest.mark.parametrize(
    ("recall", "precision", "method", "expected", "raises"),
    [
        # all-point: envelope [1, 1, 2/3 ...]; steps at 0.5 (p=1) and 1.0 (p=2/3)
        ([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], "all_point", 0.5 * 1.0 + 0.5 * 2 / 3, None),
        ([1.0], [1.0], "all_point", 1.0, None),
        ([0.0, 0.0], [0.0, 0.0], "all_point", 0.0, None),
        ([], [], "all_point", 0.0, None),
        # recall never reaches 1: the rest of the area is 0
        ([0.25, 0.5], [1.0, 1.0], "all_point", 0.5, None),
        # coco101: points 0..0.5 (51 of them) see precision 1, the rest 0
        ([0.25, 0.5], [1.0, 1.0], "coco101", 51 / 101, None),
        ([0.5], [1.0, 1.0], "all_point", None, GeometryError),
        ([0.5], [1.0], "voc07", None, ValueError),
    ],
)
def test_average_precision(recall, precision, method, expected, raises):
    if raises:
        with pytest.raises(raises):
            average_precision(recall, precision, method)
        return
    assert average_precision(recall, precision, method) == pytest.approx(expected)


def test_match_prefers_confidence_then_iou():
    gt = np.array([box(0, 0), box(100, 100)])
    pred = np.array([box(1, 0), box(0, 0), box(100, 104), box(300, 300)])
    conf = np.array([0.6, 0.9, 0.8, 0.7])
    tp, _ = match_predictions(pred, conf, [0, 0, 0, 0], gt, [0, 0], iou_thresholds=[0.5, 0.75])
    # box(0,0) (conf .9) takes gt 0; box(1,0) is a duplicate; box(100,104) has IoU 0.6/1.4=0.4286 -> miss
    np.testing.assert_array_equal(tp, [[False, False], [True, True], [False, False], [False, False]])


def test_match_respects_class():
    tp, _ = match_predictions([box(0, 0)], [0.9], [1], [box(0, 0)], [0], iou_thresholds=[0.5])
    assert not tp.any()


def test_ignored_ground_truth_neither_counts_nor_punishes():
    acc = MapAccumulator(num_classes=1)
    # one real car found; one tiny car flagged ignore, found at conf .95; one clutter box at .1
    acc.add([box(0, 0), box(50, 50), box(90, 90)], [0.9, 0.95, 0.1], [0, 0, 0],
            [box(0, 0), box(50, 50)], [0, 0], gt_ignore=[False, True])
    result = acc.compute()
    assert result.n_gt[0] == 1
    assert result.map50 == 1.0  # without ignore the .95 box would be a false positive on top
    plain = MapAccumulator(num_classes=1)
    plain.add([box(0, 0), box(90, 90)], [0.9, 0.1], [0, 0], [box(0, 0)], [0])
    assert plain.compute().map50 == 1.0


@pytest.mark.parametrize(
    ("pred", "conf", "cls", "gt", "gt_cls", "raises"),
    [
        ([box(0, 0)], [0.9, 0.1], [0], [box(0, 0)], [0], GeometryError),
        ([box(0, 0)], [0.9], [0], [box(0, 0)], [0, 1], GeometryError),
        ([[0, 0, 1]], [0.9], [0], [box(0, 0)], [0], GeometryError),
    ],
)
def test_match_rejects_bad_shapes(pred, conf, cls, gt, gt_cls, raises):
    with pytest.raises(raises):
        match_predictions(pred, conf, cls, gt, gt_cls)


def test_hand_computed_map():
    acc = MapAccumulator(num_classes=2, class_names=["car", "bus"])
    # image 1: two cars; one hit (conf .9), one false positive (conf .8)
    acc.add([box(0, 0), box(50, 50)], [0.9, 0.8], [0, 0], [box(0, 0), box(20, 20)], [0, 0])
    # image 2: one car hit at conf .7, a bus missed entirely
    acc.add([box(0, 0)], [0.7], [0], [box(0, 0), box(80, 80)], [0, 1])
    result = acc.compute()
    # car: tp, fp, tp over 3 gt -> recall .33,.33,.67 precision 1,.5,.67 -> AP = 1/3*1 + 1/3*2/3
    assert result.ap_at(0.5)[0] == pytest.approx(1 / 3 + 2 / 9)
    assert result.ap_at(0.5)[1] == 0.0
    assert result.map50 == pytest.approx((1 / 3 + 2 / 9) / 2)
    # exact boxes: every threshold scores the same
    assert result.map50_95 == pytest.approx(result.map50)
    summary = result.as_dict()
    assert summary["per_class"]["car"]["n_gt"] == 3
    assert summary["per_class"]["bus"]["recall"] == 0.0


def test_classes_without_ground_truth_are_left_out():
    acc = MapAccumulator(num_classes=3)
    acc.add([box(0, 0), box(40, 40)], [0.9, 0.5], [0, 2], [box(0, 0)], [0])
    result = acc.compute()
    assert result.map50 == 1.0
    assert np.isnan(result.ap_at(0.5)[2])
    assert result.as_dict()["per_class"]["2"]["ap50"] is None


def test_empty_accumulator_is_nan():
    result = MapAccumulator(num_classes=1).compute()
    assert np.isnan(result.map50)
    assert result.as_dict()["map50"] is None


def test_rejects_class_out_of_range():
    acc = MapAccumulator(num_classes=2)
    with pytest.raises(GeometryError):
        acc.add([box(0, 0)], [0.9], [2], [box(0, 0)], [0])


def _random_case(rng: np.random.Generator, n_images: int, n_classes: int):
    images = []
    for _ in range(n_images):
        m = int(rng.integers(0, 8))
        xy = rng.uniform(0, 200, (m, 2))
        wh = rng.uniform(8, 60, (m, 2))
        gt = np.concatenate([xy, xy + wh], axis=1)
        gt_cls = rng.integers(0, n_classes, m)
        # predictions: jittered copies of some gt (some with a wrong class) plus clutter
        keep = rng.random(m) < 0.8
        jitter = rng.normal(0, 4, (int(keep.sum()), 4))
        pred = [gt[keep] + jitter]
        pcls = [np.where(rng.random(int(keep.sum())) < 0.9, gt_cls[keep], rng.integers(0, n_classes, int(keep.sum())))]
        k = int(rng.integers(0, 4))
        cxy = rng.uniform(0, 200, (k, 2))
        pred.append(np.concatenate([cxy, cxy + rng.uniform(8, 60, (k, 2))], axis=1))
        pcls.append(rng.integers(0, n_classes, k))
        p = np.concatenate(pred)
        p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 1)
        images.append((p, rng.random(len(p)), np.concatenate(pcls), gt, gt_cls))
    return images


def _pycocotools_ap(images, n_classes: int) -> np.ndarray:
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    gt_json: dict = {"images": [], "annotations": [], "categories": [{"id": c + 1} for c in range(n_classes)]}
    dets = []
    for i, (p, conf, pcls, gt, gt_cls) in enumerate(images):
        gt_json["images"].append({"id": i + 1, "width": 300, "height": 300})
        for b, c in zip(gt, gt_cls, strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            gt_json["annotations"].append(
                {"id": len(gt_json["annotations"]) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                 "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0}
            )
        for b, s, c in zip(p, conf, pcls, strict=True):
            dets.append({"image_id": i + 1, "category_id": int(c) + 1,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_mod.COCO()
        coco.dataset = gt_json
        coco.createIndex()
        ev = cocoeval_mod.COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
    # precision: (T, R, K, A, M); area "all", maxDets 100
    prec = ev.eval["precision"][:, :, :, 0, -1]
    return np.where((prec > -1).all(axis=1), prec.mean(axis=1), np.nan).T  # (K, T)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    images = _random_case(rng, n_images=12, n_classes=3)
    acc = MapAccumulator(num_classes=3, iou_thresholds=COCO_IOU_THRESHOLDS, method="coco101")
    for p, conf, pcls, gt, gt_cls in images:
        acc.add(p, conf, pcls, gt, gt_cls)
    ours = acc.compute()
    reference = _pycocotools_ap(images, 3)
    np.testing.assert_allclose(ours.ap, reference, atol=1e-9)
    assert ours.map50_95 == pytest.approx(np.nanmean(reference))


def test_reference_case_is_not_trivial():
    images = _random_case(np.random.default_rng(0), n_images=12, n_classes=3)
    reference = _pycocotools_ap(images, 3)
    assert 0.1 < np.nanmean(reference) < 0.95
    assert np.nanstd(reference) > 0.01
