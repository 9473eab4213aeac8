"""Detection accuracy on real labelled images: what `trafficprn model eval` prints.

Scores any detector with a `detect(image_bgr) -> Detections` and a `class_names` list
(ours, or a COCO model mapped by name) against ground truth in our five vehicle classes:

- ``ap50_vehicle``: AP@0.5 with every vehicle box as one class (does it find vehicles?);
- ``ap50``: AP@0.5 per class (does it name them?);
- ``ap50_by_size`` / ``recall_by_size``: the same by box size, the square root of the box
  area in image px, COCO-style: ground truth of other sizes is ignored, and so are
  unmatched predictions of other sizes;
- ``recall`` / ``precision`` at the operating confidence, the `detector.confidence` the
  pipeline runs with, so the figures say what the box would see; and
  ``boxes_per_image``, the predictions per image at that confidence (on a set of
  vehicle-free backgrounds every one of them is false).

AP needs the detector run at a low confidence (0.01, see `AP_CONFIDENCE`); the figures
at the operating confidence are taken from the same predictions, which is exact because
greedy matching in confidence order does not depend on the predictions below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from trafficprn.config import DetectorConfig
from trafficprn.datasets.formats import LabelledImage, read_labelled
from trafficprn.detect.classes import to_vehicle_class
from trafficprn.detect.metrics import MapAccumulator, average_precision, match_predictions
from trafficprn.errors import InputError
from trafficprn.types import Detections, VehicleClass

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

VEHICLE_CLASSES: tuple[str, ...] = tuple(c.label for c in VehicleClass if c is not VehicleClass.PERSON)
SIZE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<16", 0.0, 16.0),
    ("16-32", 16.0, 32.0),
    ("32-64", 32.0, 64.0),
    ("64-128", 64.0, 128.0),
    (">=128", 128.0, math.inf),
)
AP_CONFIDENCE = 0.01
IOU = 0.5


class ImageDetector(Protocol):
    """What `evaluate` needs of a detector."""

    class_names: list[str]

    def detect(self, image_bgr: np.ndarray) -> Detections: ...


@dataclass(frozen=True)
class Truth:
    """Ground truth of one image: (N, 4) xyxy px and (N,) indices into `VEHICLE_CLASSES`."""

    xyxy: FloatArray
    class_id: IntArray

    @classmethod
    def of(cls, xyxy: npt.ArrayLike, class_id: npt.ArrayLike) -> Truth:
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        ids = np.asarray(class_id, dtype=np.int64).reshape(-1)
        if len(ids) != len(boxes):
            raise InputError(f"ground truth has {len(boxes)} boxes but {len(ids)} class ids")
        if ids.size and (ids.min() < 0 or ids.max() >= len(VEHICLE_CLASSES)):
            raise InputError(f"ground-truth class ids must lie in [0, {len(VEHICLE_CLASSES)}), got {np.unique(ids)}")
        return cls(boxes, ids)


@dataclass(frozen=True)
class RealEvalResult:
    """The figures of one evaluation; `as_json()` is `model eval --json`."""

    images: int
    boxes: int
    confidence: float
    ap50_vehicle: float | None
    ap50: dict[str, float | None]
    recall: float | None
    precision: float | None
    boxes_per_image: float
    ap50_by_size: dict[str, float | None]
    recall_by_size: dict[str, float | None]
    boxes_by_size: dict[str, int]

    def as_json(self) -> dict[str, object]:
        return {
            "images": self.images,
            "boxes": self.boxes,
            "ap50_vehicle": _round(self.ap50_vehicle),
            "ap50": {k: _round(v) for k, v in self.ap50.items()},
            "recall": _round(self.recall),
            "precision": _round(self.precision),
            "confidence": self.confidence,
            "boxes_per_image": round(self.boxes_per_image, 4),
            "ap50_by_size": {k: _round(v) for k, v in self.ap50_by_size.items()},
            "recall_by_size": {k: _round(v) for k, v in self.recall_by_size.items()},
            "boxes_by_size": dict(self.boxes_by_size),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def box_sizes(xyxy: FloatArray) -> FloatArray:
    """Square root of each box's area, in the boxes' px."""
    w = np.clip(xyxy[:, 2] - xyxy[:, 0], 0.0, None)
    h = np.clip(xyxy[:, 3] - xyxy[:, 1], 0.0, None)
    return np.asarray(np.sqrt(w * h), dtype=np.float64)


def vehicle_predictions(dets: Detections, class_names: list[str]) -> tuple[FloatArray, FloatArray, IntArray]:
    """A detector's boxes in our vehicle classes (xyxy, confidence, class id); others dropped."""
    lookup = np.full(max(len(class_names), 1), -1, dtype=np.int64)
    for i, name in enumerate(class_names):
        vc = to_vehicle_class(name)
        if vc is not None and vc is not VehicleClass.PERSON:
            lookup[i] = int(vc)
    ids = lookup[dets.class_id] if len(dets) else np.zeros(0, dtype=np.int64)
    keep = ids >= 0
    return dets.xyxy[keep], dets.confidence[keep], ids[keep]


@dataclass
class _Column:
    """Matched predictions of one view of the data (all sizes, or one size bucket)."""

    n_gt: int = 0
    conf: list[FloatArray] = field(default_factory=list)
    tp: list[BoolArray] = field(default_factory=list)
    ignored: list[BoolArray] = field(default_factory=list)

    def add(self, conf: FloatArray, tp: BoolArray, ignored: BoolArray, n_gt: int) -> None:
        self.conf.append(conf)
        self.tp.append(tp)
        self.ignored.append(ignored)
        self.n_gt += n_gt

    def _sorted(self) -> tuple[FloatArray, BoolArray, BoolArray]:
        if not self.conf:
            return np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
        conf = np.concatenate(self.conf)
        order = np.argsort(-conf, kind="stable")
        return conf[order], np.concatenate(self.tp)[order], np.concatenate(self.ignored)[order]

    def ap(self) -> float | None:
        if self.n_gt == 0:
            return None
        _, tp, ignored = self._sorted()
        counted = ~ignored
        tp_cum = np.cumsum(tp[counted], dtype=np.float64)
        fp_cum = np.cumsum(~tp[counted], dtype=np.float64)
        recall = tp_cum / self.n_gt
        precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
        return average_precision(recall, precision)

    def at(self, confidence: float) -> tuple[float | None, float | None]:
        """(recall, precision) of the predictions at or above `confidence`."""
        conf, tp, ignored = self._sorted()
        above = (conf >= confidence) & ~ignored
        hits = int(np.sum(tp & above))
        shown = int(np.sum(above))
        recall = hits / self.n_gt if self.n_gt else None
        precision = hits / shown if shown else None
        return recall, precision


class RealEvalAccumulator:
    """Adds images one at a time; `result()` gives the figures."""

    def __init__(self, confidence: float):
        if not 0.0 < confidence < 1.0:
            raise InputError(f"operating confidence must lie in (0, 1), got {confidence}")
        self.confidence = confidence
        self.images = 0
        self.boxes = 0
        self.shown = 0
        self._vehicle = _Column()
        self._sizes = {name: _Column() for name, _, _ in SIZE_BUCKETS}
        self._classes = MapAccumulator(
            num_classes=len(VEHICLE_CLASSES), class_names=list(VEHICLE_CLASSES), iou_thresholds=np.array([IOU])
        )

    def add(self, pred_xyxy: FloatArray, pred_conf: FloatArray, pred_class: IntArray, truth: Truth) -> None:
        """One image: predictions in our vehicle classes (see `vehicle_predictions`)."""
        self.images += 1
        self.boxes += len(truth.xyxy)
        self.shown += int(np.sum(pred_conf >= self.confidence))
        self._classes.add(pred_xyxy, pred_conf, pred_class, truth.xyxy, truth.class_id)
        one_pred = np.zeros(len(pred_xyxy), dtype=np.int64)
        one_gt = np.zeros(len(truth.xyxy), dtype=np.int64)
        tp, ignored = match_predictions(pred_xyxy, pred_conf, one_pred, truth.xyxy, one_gt, [IOU])
        self._vehicle.add(pred_conf, tp[:, 0], ignored[:, 0], len(truth.xyxy))
        gt_size = box_sizes(truth.xyxy)
        pred_size = box_sizes(pred_xyxy)
        for name, low, high in SIZE_BUCKETS:
            outside_gt = (gt_size < low) | (gt_size >= high)
            tp, ignored = match_predictions(pred_xyxy, pred_conf, one_pred, truth.xyxy, one_gt, [IOU], outside_gt)
            outside_pred = (pred_size < low) | (pred_size >= high)
            ignored_b = ignored[:, 0] | (~tp[:, 0] & outside_pred)
            self._sizes[name].add(pred_conf, tp[:, 0], ignored_b, int(np.sum(~outside_gt)))

    def result(self) -> RealEvalResult:
        if self.images == 0:
            raise InputError("no images to evaluate")
        per_class = self._classes.compute()
        ap50 = per_class.ap_at(IOU)
        recall, precision = self._vehicle.at(self.confidence)
        return RealEvalResult(
            images=self.images,
            boxes=self.boxes,
            confidence=self.confidence,
            ap50_vehicle=self._vehicle.ap(),
            ap50={name: (None if per_class.n_gt[i] == 0 else float(ap50[i])) for i, name in enumerate(VEHICLE_CLASSES)},
            recall=recall,
            precision=precision,
            boxes_per_image=self.shown / self.images,
            ap50_by_size={name: col.ap() for name, col in self._sizes.items()},
            recall_by_size={name: col.at(self.confidence)[0] for name, col in self._sizes.items()},
            boxes_by_size={name: col.n_gt for name, col in self._sizes.items()},
        )


@dataclass(frozen=True)
class Scored:
    """One evaluated image, as `evaluate` yields it (for pictures)."""

    image_bgr: np.ndarray
    truth: Truth
    pred_xyxy: FloatArray
    pred_conf: FloatArray
    pred_class: IntArray


def evaluate(
    detector: ImageDetector, images: Iterable[tuple[np.ndarray, Truth]], accumulator: RealEvalAccumulator
) -> Iterator[Scored]:
    """Run `detector` on each (image, truth) and add it to `accumulator`; yields each one."""
    for image, truth in images:
        xyxy, conf, cls = vehicle_predictions(detector.detect(image), detector.class_names)
        accumulator.add(xyxy, conf, cls, truth)
        yield Scored(image, truth, xyxy, conf, cls)


def draw(scored: Scored, confidence: float) -> np.ndarray:
    """The image with ground truth (green) and predictions at `confidence` (red, with score)."""
    out = scored.image_bgr.copy()
    for x1, y1, x2, y2 in scored.truth.xyxy.astype(int):
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 200, 0), 2)
    for (x1, y1, x2, y2), conf, cls in zip(
        scored.pred_xyxy.astype(int), scored.pred_conf, scored.pred_class, strict=True
    ):
        if conf < confidence:
            continue
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 2)
        label = f"{VEHICLE_CLASSES[int(cls)]} {conf:.2f}"
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1, cv2.LINE_AA)
    return out


def operating_confidence() -> float:
    """The confidence the pipeline runs the detector with by default (`detector.confidence`)."""
    return float(DetectorConfig.model_fields["confidence"].default)


@dataclass(frozen=True)
class LoadedSet:
    """A labelled folder read for scoring: each image's label and its truth in our classes."""

    images: list[LabelledImage]
    truths: list[Truth]
    dropped: dict[str, int]  # boxes of classes that are not vehicles (person, ...), by name


def load_set(path: Path) -> LoadedSet:
    """Read a YOLO / VOC / COCO labelled set (see `formats.read_labelled`) into our classes.

    Class names are mapped by `to_vehicle_class` (car, bus, truck, motorcycle/motorbike,
    bicycle); boxes of other classes are left out and counted in `dropped`.
    """
    images = read_labelled(path)
    if not images:
        raise InputError(f"{path}: no labelled images found")
    truths: list[Truth] = []
    dropped: dict[str, int] = {}
    for im in images:
        ids = []
        for name in im.class_names:
            vc = to_vehicle_class(name)
            if vc is None or vc is VehicleClass.PERSON:
                dropped[name] = dropped.get(name, 0) + 1
                ids.append(-1)
            else:
                ids.append(int(vc))
        keep = np.asarray(ids, dtype=np.int64) >= 0
        truths.append(Truth.of(im.boxes_xyxy[keep], np.asarray(ids, dtype=np.int64)[keep]))
    return LoadedSet(images, truths, dropped)


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: cannot decode image")
    return image


def score_set(
    detector: ImageDetector, data: LoadedSet, confidence: float, pictures: Path | None = None
) -> RealEvalResult:
    """Score `detector` (run at `AP_CONFIDENCE` or lower) on `data`; `pictures`: write each
    image with truth and the boxes at `confidence` there."""
    acc = RealEvalAccumulator(confidence)
    pairs = ((read_image(im.path), truth) for im, truth in zip(data.images, data.truths, strict=True))
    if pictures is not None:
        pictures.mkdir(parents=True, exist_ok=True)
    for im, scored in zip(data.images, evaluate(detector, pairs, acc), strict=True):
        if pictures is not None:
            cv2.imwrite(str(pictures / f"{im.path.stem}.jpg"), draw(scored, confidence))
    return acc.result()
