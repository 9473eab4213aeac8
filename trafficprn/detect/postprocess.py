"""Pre- and post-processing around a YOLO network, in numpy (no torch needed).

- `letterbox(image_bgr, (w, h))`: darknet's letterbox: keep the aspect ratio, resize (box-filter
  halvings first past 2x, then bilinear),
  centre on grey 0.5, RGB, float32 in [0, 1], NCHW.
- `decode_heads(heads, specs, ...)`: raw head tensors (B, A*(5+C), H, W) -> boxes in
  network-input px, with darknet's `scale_x_y`, objectness x class probability.
- `postprocess(...)`: decode, class-aware NMS, undo the letterbox -> `Detections` in
  source-image px.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError, InputError
from trafficprn.geometry.nms import nms
from trafficprn.types import Detections

LETTERBOX_FILL = 0.5  # darknet fills the border with 0.5 grey


@dataclass(frozen=True)
class HeadSpec:
    """What decoding one head needs: stride (input px per cell), its anchors (w, h) in
    input px, class count and darknet's `scale_x_y`."""

    stride: int
    anchors_px: tuple[tuple[float, float], ...]
    classes: int
    scale_x_y: float = 1.0

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HeadSpec:
        anchors = data["anchors_px"]
        if not isinstance(anchors, list):
            raise ValueError("anchors_px must be a list of [w, h]")
        return cls(
            stride=int(data["stride"]),  # type: ignore[call-overload]
            anchors_px=tuple((float(a[0]), float(a[1])) for a in anchors),
            classes=int(data["classes"]),  # type: ignore[call-overload]
            scale_x_y=float(data.get("scale_x_y", 1.0)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Letterbox:
    """How a source image sits inside the network input: input_px = src_px * scale + pad
    (per axis; the two scales differ only by rounding)."""

    scale_x: float
    scale_y: float
    pad_x_px: float
    pad_y_px: float
    src_width_px: int
    src_height_px: int

    def to_source(self, xyxy_input_px: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """(N, 4) boxes in network-input px -> source-image px, clipped to the image."""
        out = np.empty_like(xyxy_input_px)
        xs, ys = out[:, 0::2], out[:, 1::2]  # views: (x1, x2) and (y1, y2)
        xs[:] = (xyxy_input_px[:, 0::2] - self.pad_x_px) / self.scale_x
        ys[:] = (xyxy_input_px[:, 1::2] - self.pad_y_px) / self.scale_y
        np.clip(xs, 0, self.src_width_px, out=xs)
        np.clip(ys, 0, self.src_height_px, out=ys)
        return out


def check_image(image_bgr: np.ndarray) -> None:
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = getattr(image_bgr, "shape", None)
        raise InputError(f"expected a BGR image with shape (H, W, 3), got shape {shape}")
    if image_bgr.shape[0] < 1 or image_bgr.shape[1] < 1:
        raise InputError(f"expected a non-empty image, got shape {image_bgr.shape}")


def letterbox(image_bgr: np.ndarray, size_px: tuple[int, int]) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """BGR uint8 (H, W, 3) -> ((3, h, w) float32 RGB in [0, 1], Letterbox) for an input of
    `size_px` = (w, h)."""
    check_image(image_bgr)
    net_w, net_h = size_px
    src_h, src_w = image_bgr.shape[:2]
    scale = min(net_w / src_w, net_h / src_h)
    new_w = max(1, min(net_w, int(round(src_w * scale))))
    new_h = max(1, min(net_h, int(round(src_h * scale))))
    pad_x, pad_y = (net_w - new_w) // 2, (net_h - new_h) // 2
    resized = image_bgr
    # Bilinear alone aliases badly past 2x (a 1280 px fisheye to 416: small vehicles turn to
    # noise, unlike the area-downsampled training images); halve with a box filter first,
    # which cv2 does on its fast path (+~0.4 ms at 1280 px, vs ~7 ms for INTER_AREA to 416).
    while resized.shape[1] >= 2 * new_w and resized.shape[0] >= 2 * new_h:
        resized = cv2.resize(resized, (resized.shape[1] // 2, resized.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (new_w, new_h) != (resized.shape[1], resized.shape[0]):
        resized = cv2.resize(resized, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((net_h, net_w, 3), np.uint8(round(LETTERBOX_FILL * 255)), dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    # BGR -> RGB, HWC -> CHW, in one copy.
    chw = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)
    chw *= np.float32(1.0 / 255.0)
    box = Letterbox(
        scale_x=new_w / src_w,
        scale_y=new_h / src_h,
        pad_x_px=float(pad_x),
        pad_y_px=float(pad_y),
        src_width_px=src_w,
        src_height_px=src_h,
    )
    return chw, box


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))
    return out


def decode_dense(raw: np.ndarray, spec: HeadSpec, input_size_px: tuple[int, int]) -> np.ndarray:
    """Every cell and anchor of one head, darknet's layout: (B, H*W*A, 5+C) rows of
    (cx, cy, w, h) in input px, objectness, objectness x class probability; row index
    (y*W + x)*A + a. For checks and tools; `decode_heads` is the fast path."""
    n_anchor = len(spec.anchors_px)
    b, _, h, w = raw.shape
    grid = raw.reshape(b, n_anchor, 5 + spec.classes, h, w).astype(np.float64).transpose(0, 3, 4, 1, 2)
    s = spec.scale_x_y
    xs = np.arange(w, dtype=np.float64)[None, None, :, None]
    ys = np.arange(h, dtype=np.float64)[None, :, None, None]
    anchors = np.asarray(spec.anchors_px, dtype=np.float64)
    out = np.empty_like(grid)
    out[..., 0] = (xs + _sigmoid(grid[..., 0]) * s - 0.5 * (s - 1.0)) * (input_size_px[0] / w)
    out[..., 1] = (ys + _sigmoid(grid[..., 1]) * s - 0.5 * (s - 1.0)) * (input_size_px[1] / h)
    out[..., 2] = np.exp(np.clip(grid[..., 2], -20.0, 20.0)) * anchors[:, 0]
    out[..., 3] = np.exp(np.clip(grid[..., 3], -20.0, 20.0)) * anchors[:, 1]
    out[..., 4] = _sigmoid(grid[..., 4])
    out[..., 5:] = out[..., 4:5] * _sigmoid(grid[..., 5:])
    return out.reshape(b, h * w * n_anchor, 5 + spec.classes)


@dataclass(frozen=True)
class RawBoxes:
    """Decoded candidates of one image, before NMS, in network-input px."""

    xyxy: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]


def decode_heads(
    heads: Sequence[np.ndarray],
    specs: Sequence[HeadSpec],
    input_size_px: tuple[int, int],
    confidence: float = 0.25,
    max_candidates: int = 2000,
) -> list[RawBoxes]:
    """Decode raw head tensors of a batch into candidate boxes per image.

    heads[k]: (B, A*(5+C), H, W) from head k. A box's confidence is objectness times its
    best class probability (both logistic); candidates at or below `confidence` are
    dropped, and per head (over the batch) at most the best `max_candidates` kept. Returns one `RawBoxes`
    per image, boxes in network-input px.
    """
    if len(heads) != len(specs):
        raise GeometryError(f"expected {len(specs)} head tensors, got {len(heads)}")
    net_w, net_h = input_size_px
    batch = heads[0].shape[0] if heads else 0
    per_image: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(batch)]
    for raw, spec in zip(heads, specs, strict=True):
        n_anchor = len(spec.anchors_px)
        b, c, h, w = raw.shape
        if c != n_anchor * (5 + spec.classes):
            raise GeometryError(
                f"head tensor has {c} channels, expected {n_anchor}*(5+{spec.classes}) = {n_anchor * (5 + spec.classes)}"
            )
        grid = raw.reshape(b, n_anchor, 5 + spec.classes, h, w)
        objectness = _sigmoid(grid[:, :, 4].astype(np.float64))  # (B, A, H, W)
        bi, ai, yi, xi = np.nonzero(objectness > confidence)
        if len(bi) == 0:
            continue
        cells = grid[bi, ai, :, yi, xi].astype(np.float64)  # (K, 5+C)
        class_prob = _sigmoid(cells[:, 5:])
        best = np.argmax(class_prob, axis=1)
        score = objectness[bi, ai, yi, xi] * class_prob[np.arange(len(best)), best]
        s = spec.scale_x_y
        cx = (xi + _sigmoid(cells[:, 0]) * s - 0.5 * (s - 1.0)) * (net_w / w)
        cy = (yi + _sigmoid(cells[:, 1]) * s - 0.5 * (s - 1.0)) * (net_h / h)
        anchors = np.asarray(spec.anchors_px, dtype=np.float64)[ai]
        bw = np.exp(np.clip(cells[:, 2], -20.0, 20.0)) * anchors[:, 0]
        bh = np.exp(np.clip(cells[:, 3], -20.0, 20.0)) * anchors[:, 1]
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        keep = score > confidence
        if np.count_nonzero(keep) > max_candidates:
            # Bound NMS's O(N^2) work when a model fires everywhere (e.g. untrained).
            cut = np.partition(score[keep], -max_candidates)[-max_candidates]
            keep &= score >= cut
        for image in np.unique(bi[keep]):
            sel = keep & (bi == image)
            per_image[int(image)].append((xyxy[sel], score[sel], best[sel].astype(np.int64)))
    results = []
    for parts in per_image:
        if not parts:
            results.append(RawBoxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)))
            continue
        results.append(
            RawBoxes(
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
            )
        )
    return results


def postprocess(
    heads: Sequence[np.ndarray],
    specs: Sequence[HeadSpec],
    input_size_px: tuple[int, int],
    boxes: Sequence[Letterbox],
    *,
    confidence: float = 0.25,
    nms_iou: float = 0.45,
    max_detections: int = 300,
) -> list[Detections]:
    """Raw heads of a batch -> one `Detections` per image, in source-image px, after
    class-aware NMS, highest confidence first."""
    out = []
    for raw, box in zip(decode_heads(heads, specs, input_size_px, confidence), boxes, strict=True):
        if len(raw.confidence) == 0:
            out.append(Detections.empty())
            continue
        keep = nms(raw.xyxy, raw.confidence, nms_iou, class_id=raw.class_id)[:max_detections]
        out.append(
            Detections(
                xyxy=box.to_source(raw.xyxy[keep]),
                confidence=raw.confidence[keep],
                class_id=raw.class_id[keep],
            )
        )
    return out
