"""Detection mAP: mAP@0.5 and mAP@0.5:0.95 over a set of images.

Matching follows COCO: per image and class, predictions in descending confidence each
take the unmatched ground-truth box of highest IoU, if that IoU >= the threshold.
Average precision is the area under the precision envelope:

- ``"all_point"`` (default): VOC2010+ all-point interpolation, exact area under the
  monotone precision envelope at every recall step;
- ``"coco101"``: COCO's 101-point interpolation, mean of the envelope sampled at
  recall 0, 0.01, ..., 1 (what pycocotools reports).

mAP is the mean over classes that have ground truth; a class with ground truth and no
predictions scores 0. Boxes are xyxy in any consistent unit (image px).

    acc = MapAccumulator(num_classes=5)
    for pred, gt in pairs:
        acc.add(pred.xyxy, pred.confidence, pred.class_id, gt_xyxy, gt_class_id)
    result = acc.compute()
    result.map50, result.map50_95
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError
from trafficprn.geometry.boxes import as_boxes, iou_matrix

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
APMethod = Literal["all_point", "coco101"]

COCO_IOU_THRESHOLDS: FloatArray = np.linspace(0.5, 0.95, 10)


def average_precision(recall: npt.ArrayLike, precision: npt.ArrayLike, method: APMethod = "all_point") -> float:
    """Area under a precision-recall curve.

    recall, precision: (K,) values along detections sorted by descending confidence
    (recall non-decreasing). Returns AP in [0, 1]; 0 for an empty curve.
    """
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise GeometryError(f"recall and precision must have the same shape, got {rec.shape} and {prec.shape}")
    if rec.size == 0:
        return 0.0
    if method == "all_point":
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[0.0], prec, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    if method == "coco101":
        envelope = np.maximum.accumulate(prec[::-1])[::-1]
        points = np.linspace(0.0, 1.0, 101)
        idx = np.searchsorted(rec, points, side="left")
        sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
        return float(np.mean(sampled))
    raise ValueError(f"method must be 'all_point' or 'coco101', got {method!r}")


def match_predictions(
    pred_xyxy: npt.ArrayLike,
    pred_confidence: npt.ArrayLike,
    pred_class_id: npt.ArrayLike,
    gt_xyxy: npt.ArrayLike,
    gt_class_id: npt.ArrayLike,
    iou_thresholds: npt.ArrayLike = COCO_IOU_THRESHOLDS,
    gt_ignore: npt.ArrayLike | None = None,
) -> tuple[BoolArray, BoolArray]:
    """(N, T) true-positive and (N, T) ignored flags of N predictions of one image at T
    IoU thresholds.

    Greedy COCO matching per class: predictions in descending confidence (stable for
    ties) each take the still-unmatched ground-truth box of the same class with the
    highest IoU, if it is >= the threshold. `gt_ignore` (M,) marks boxes that need not be
    found (too small, hidden): a prediction left unmatched that overlaps one of them by
    the threshold is ignored, neither a true nor a false positive.
    """
    pred = as_boxes(pred_xyxy, "pred_xyxy")
    gt = as_boxes(gt_xyxy, "gt_xyxy")
    conf = np.asarray(pred_confidence, dtype=np.float64).reshape(-1)
    pcls = np.asarray(pred_class_id, dtype=np.int64).reshape(-1)
    gcls = np.asarray(gt_class_id, dtype=np.int64).reshape(-1)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    if len(conf) != len(pred) or len(pcls) != len(pred):
        raise GeometryError(
            f"pred_confidence and pred_class_id must have shape ({len(pred)},), got {conf.shape} and {pcls.shape}"
        )
    if len(gcls) != len(gt):
        raise GeometryError(f"gt_class_id must have shape ({len(gt)},), got {gcls.shape}")
    ignore = np.zeros(len(gt), dtype=bool) if gt_ignore is None else np.asarray(gt_ignore, dtype=bool).reshape(-1)
    if len(ignore) != len(gt):
        raise GeometryError(f"gt_ignore must have shape ({len(gt)},), got {ignore.shape}")
    tp = np.zeros((len(pred), len(thresholds)), dtype=bool)
    ignored = np.zeros_like(tp)
    if len(pred) == 0 or len(gt) == 0:
        return tp, ignored
    iou = iou_matrix(pred, gt)
    iou[pcls[:, None] != gcls[None, :]] = -1.0
    iou_ignored = np.where(ignore[None, :], iou, -1.0)
    iou[:, ignore] = -1.0
    best_ignored = iou_ignored.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(gt), dtype=bool)
        for i in order:
            row = np.where(taken, -1.0, iou[i])
            j = int(np.argmax(row))
            if row[j] >= thr:
                taken[j] = True
                tp[i, t] = True
            elif best_ignored[i] >= thr:
                ignored[i, t] = True
    return tp, ignored


@dataclass(frozen=True)
class DetectionMetrics:
    """mAP result.

    ap: (C, T) AP per class and IoU threshold; NaN for classes without ground truth.
    iou_thresholds: (T,). n_gt, n_pred: (C,) counts per class.
    recall: (C,) recall at the lowest confidence kept, IoU 0.5 (NaN without ground truth).
    """

    class_names: list[str]
    ap: FloatArray
    iou_thresholds: FloatArray
    n_gt: IntArray
    n_pred: IntArray
    recall: FloatArray
    method: str = "all_point"

    def _column(self, iou: float) -> int:
        hits = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if hits.size == 0:
            raise ValueError(f"IoU {iou} was not evaluated; thresholds are {self.iou_thresholds.tolist()}")
        return int(hits[0])

    def ap_at(self, iou: float) -> FloatArray:
        """(C,) AP per class at one evaluated IoU threshold (NaN without ground truth)."""
        return self.ap[:, self._column(iou)]

    @property
    def map50(self) -> float:
        """mAP@0.5 over classes with ground truth (NaN if none has any)."""
        return _nanmean(self.ap_at(0.5))

    @property
    def map50_95(self) -> float:
        """mAP averaged over all evaluated IoU thresholds (0.5:0.05:0.95 by default)."""
        has_gt = self.n_gt > 0
        return _nanmean(self.ap[has_gt].mean(axis=1)) if has_gt.any() else float("nan")

    def as_dict(self) -> dict[str, object]:
        per_class: dict[str, dict[str, float | int | None]] = {}
        ap50 = self.ap_at(0.5)
        for c, name in enumerate(self.class_names):
            has_gt = self.n_gt[c] > 0
            per_class[name] = {
                "ap50": float(ap50[c]) if has_gt else None,
                "ap50_95": float(np.mean(self.ap[c])) if has_gt else None,
                "recall": float(self.recall[c]) if has_gt else None,
                "n_gt": int(self.n_gt[c]),
                "n_pred": int(self.n_pred[c]),
            }
        return {
            "map50": _none_if_nan(self.map50),
            "map50_95": _none_if_nan(self.map50_95),
            "method": self.method,
            "per_class": per_class,
        }


def _nanmean(values: FloatArray) -> float:
    finite = values[~np.isnan(values)]
    return float(np.mean(finite)) if finite.size else float("nan")


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else value


@dataclass
class MapAccumulator:
    """Collects predictions and ground truth image by image; `compute()` gives mAP.

    Memory grows with the number of predictions (one row of T flags each); keep the
    detector's confidence threshold low (0.001-0.01) for mAP, as is customary.
    """

    num_classes: int
    class_names: list[str] | None = None
    iou_thresholds: FloatArray = field(default_factory=lambda: COCO_IOU_THRESHOLDS.copy())
    method: APMethod = "all_point"
    _tp: list[BoolArray] = field(default_factory=list, init=False, repr=False)
    _ignored: list[BoolArray] = field(default_factory=list, init=False, repr=False)
    _conf: list[FloatArray] = field(default_factory=list, init=False, repr=False)
    _cls: list[IntArray] = field(default_factory=list, init=False, repr=False)
    _n_gt: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.class_names is None:
            self.class_names = [str(i) for i in range(self.num_classes)]
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names must have {self.num_classes} names, got {len(self.class_names)}")
        self.iou_thresholds = np.asarray(self.iou_thresholds, dtype=np.float64).reshape(-1)
        self._n_gt = np.zeros(self.num_classes, dtype=np.int64)

    def add(
        self,
        pred_xyxy: npt.ArrayLike,
        pred_confidence: npt.ArrayLike,
        pred_class_id: npt.ArrayLike,
        gt_xyxy: npt.ArrayLike,
        gt_class_id: npt.ArrayLike,
        gt_ignore: npt.ArrayLike | None = None,
    ) -> None:
        """Add one image: (N, 4) predictions with (N,) confidence and class, (M, 4) ground
        truth, optionally (M,) flags of ground truth to ignore (see `match_predictions`)."""
        pcls = np.asarray(pred_class_id, dtype=np.int64).reshape(-1)
        gcls = np.asarray(gt_class_id, dtype=np.int64).reshape(-1)
        for name, cls in (("pred_class_id", pcls), ("gt_class_id", gcls)):
            if cls.size and (cls.min() < 0 or cls.max() >= self.num_classes):
                raise GeometryError(f"{name} must lie in [0, {self.num_classes}), got values {np.unique(cls)}")
        tp, ignored = match_predictions(pred_xyxy, pred_confidence, pcls, gt_xyxy, gcls, self.iou_thresholds, gt_ignore)
        self._tp.append(tp)
        self._ignored.append(ignored)
        self._conf.append(np.asarray(pred_confidence, dtype=np.float64).reshape(-1))
        self._cls.append(pcls)
        counted = gcls if gt_ignore is None else gcls[~np.asarray(gt_ignore, dtype=bool).reshape(-1)]
        self._n_gt += np.bincount(counted, minlength=self.num_classes)

    def compute(self) -> DetectionMetrics:
        t = len(self.iou_thresholds)
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, t), dtype=bool)
        ignored = np.concatenate(self._ignored) if self._ignored else np.zeros((0, t), dtype=bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        cls = np.concatenate(self._cls) if self._cls else np.zeros(0, dtype=np.int64)
        order = np.argsort(-conf, kind="stable")
        tp, ignored, cls = tp[order], ignored[order], cls[order]
        ap = np.full((self.num_classes, t), np.nan)
        recall = np.full(self.num_classes, np.nan)
        n_pred = np.bincount(cls, minlength=self.num_classes).astype(np.int64)
        for c in range(self.num_classes):
            n_gt = int(self._n_gt[c])
            if n_gt == 0:
                continue
            tpc = tp[cls == c]
            tp_cum = np.cumsum(tpc, axis=0, dtype=np.float64)
            fp_cum = np.cumsum(~tpc & ~ignored[cls == c], axis=0, dtype=np.float64)
            rec = tp_cum / n_gt
            prec = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
            ap[c] = [average_precision(rec[:, k], prec[:, k], self.method) for k in range(t)]
            k50 = int(np.argmin(np.abs(self.iou_thresholds - 0.5)))
            recall[c] = rec[-1, k50] if len(rec) else 0.0
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        return DetectionMetrics(
            class_names=list(names),
            ap=ap,
            iou_thresholds=self.iou_thresholds.copy(),
            n_gt=self._n_gt.copy(),
            n_pred=n_pred,
            recall=recall,
            method=self.method,
        )
