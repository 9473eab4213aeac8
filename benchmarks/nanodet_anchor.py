"""The public anchor of the real-image benchmark: COCO-trained NanoDet-m (RangiLyu/nanodet,
Apache-2.0) on ONNX Runtime, in the ONNX export of hpc203/nanodet-opncv-dnn-cpp-python.

The model is not in this repository (fetched material is not committed). Bring it with
the search tool's `fetch` of github:hpc203/nanodet-opncv-dnn-cpp-python, then

    git --git-dir=/work/.mirror/hpc203+nanodet-opncv-dnn-cpp-python/repo show HEAD:nanodet_m.onnx > nanodet_m.onnx

`NanoDetM` has the `class_names` + `detect(image_bgr) -> Detections` of our detectors, so
`trafficprn.datasets.evaluate` scores it the same way (COCO names map onto our classes).

The decode is NanoDet's GFL head: per level (strides 8, 16, 32) class scores (already
sigmoid) and, per side, a softmax distribution over 0..7 bins whose expectation times
the stride is the distance from the cell centre to that side of the box.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from trafficprn.detect.classes import COCO_CLASSES
from trafficprn.types import Detections

STRIDES = (8, 16, 32)
REG_MAX = 7
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
DEFAULT_PATHS = (
    Path("/work/data/anchors/nanodet_m.onnx"),
    Path.home() / ".cache/trafficprn/nanodet_m.onnx",
)


def find_model(path: Path | None = None) -> Path | None:
    """The NanoDet-m ONNX file: `path`, else the first of `DEFAULT_PATHS` that exists."""
    for candidate in [path] if path is not None else DEFAULT_PATHS:
        if candidate is not None and candidate.is_file():
            return candidate
    return None


class NanoDetM:
    """NanoDet-m at 416 px on ONNX Runtime (CPU, `threads` intra-op threads)."""

    def __init__(self, onnx_path: Path, *, confidence: float = 0.01, nms_iou: float = 0.6, threads: int = 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the export lists its initializers as inputs: one warning each
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.size = int(self.session.get_inputs()[0].shape[-1])
        self.class_names = list(COCO_CLASSES)
        self.confidence = confidence
        self.nms_iou = nms_iou
        outputs = self.session.get_outputs()
        by_len: dict[int, dict[str, str]] = {}
        for out in outputs:
            n, channels = int(out.shape[-2]), int(out.shape[-1])
            by_len.setdefault(n, {})["cls" if channels == len(COCO_CLASSES) else "box"] = out.name
        self.levels: list[tuple[int, str, str, np.ndarray]] = []
        for stride in STRIDES:
            cells = (self.size // stride) ** 2
            names = by_len[cells]
            side = self.size // stride
            ys, xs = np.mgrid[0:side, 0:side]
            centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) * stride + 0.5 * (stride - 1)
            self.levels.append((stride, names["cls"], names["box"], centres))

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        h, w = image.shape[:2]
        scale = min(self.size / w, self.size / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        left, top = (self.size - nw) // 2, (self.size - nh) // 2
        canvas = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        canvas[top : top + nh, left : left + nw] = resized
        return canvas, scale, left, top

    def detect(self, image_bgr: np.ndarray) -> Detections:
        canvas, scale, left, top = self._letterbox(image_bgr)
        blob = ((canvas.astype(np.float32) - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None]
        names = [n for _, c, b, _ in self.levels for n in (c, b)]
        outs = dict(zip(names, self.session.run(names, {self.input_name: np.ascontiguousarray(blob)}), strict=True))
        boxes, scores = [], []
        for stride, cls_name, box_name, centres in self.levels:
            cls = outs[cls_name].reshape(-1, len(COCO_CLASSES))
            dist = outs[box_name].reshape(-1, 4, REG_MAX + 1)
            dist = np.exp(dist - dist.max(axis=2, keepdims=True))
            dist /= dist.sum(axis=2, keepdims=True)
            ltrb = (dist @ np.arange(REG_MAX + 1, dtype=np.float32)) * stride
            xyxy = np.concatenate([centres - ltrb[:, :2], centres + ltrb[:, 2:]], axis=1)
            boxes.append(xyxy)
            scores.append(cls)
        xyxy = np.concatenate(boxes).clip(0, self.size)
        score = np.concatenate(scores)
        class_id = score.argmax(axis=1)
        conf = score.max(axis=1)
        keep = conf >= self.confidence
        xyxy, conf, class_id = xyxy[keep], conf[keep], class_id[keep]
        if len(xyxy):
            wh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
            kept = cv2.dnn.NMSBoxesBatched(wh.tolist(), conf.tolist(), class_id.tolist(), self.confidence, self.nms_iou)
            idx = np.asarray(kept, dtype=np.int64).reshape(-1)[:300]
            xyxy, conf, class_id = xyxy[idx], conf[idx], class_id[idx]
        xyxy = (xyxy - np.array([left, top, left, top], dtype=np.float32)) / scale
        h, w = image_bgr.shape[:2]
        xyxy = xyxy.clip(0, [w, h, w, h])
        return Detections(xyxy=xyxy.astype(np.float64), confidence=conf.astype(np.float64), class_id=class_id)
