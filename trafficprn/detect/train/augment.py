"""Training augmentation for fixed cameras, in numpy/OpenCV on BGR uint8 images.

Labels travel as (N, 5) float32 rows ``[class, x1, y1, x2, y2]`` in image px.

- `letterbox`: keep aspect, pad to a square (what inference does, also used for val);
- `mosaic4`: four images around a random centre on a 2S x 2S canvas;
- `random_affine`: scale, translate, optional rotation/shear, cropped back to S x S;
- `hsv_jitter`: hue, saturation, value gains (lighting, camera white balance);
- `flip_lr` / `flip_ud`: only where the scene allows it (left-right swaps the driving
  side, which a detector does not care about; up-down suits top-down fisheye views).

Every function takes an explicit `np.random.Generator`, so a sample's augmentation is a
pure function of (seed, epoch, index) and resuming reproduces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

UInt8Image = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
PAD_VALUE = 128  # the runtime letterbox fills with 0.5 grey


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; probabilities in [0, 1], gains as +- fractions."""

    mosaic: float = 1.0
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    fliplr: float = 0.5
    flipud: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mosaic", "fliplr", "flipud"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        if not 0.0 <= self.scale < 1.0:
            raise ValueError(f"scale is a +- gain in [0, 1), got {self.scale}")


def resize_long_side(image: UInt8Image, size: int) -> tuple[UInt8Image, float]:
    """Resize so the longer side is `size` px; returns (image, scale factor)."""
    h, w = image.shape[:2]
    ratio = size / max(h, w)
    if ratio == 1.0:
        return image, 1.0
    # Linear like the runtime's letterbox, so training sees the same resampling.
    out = cv2.resize(image, (max(1, round(w * ratio)), max(1, round(h * ratio))), interpolation=cv2.INTER_LINEAR)
    return np.asarray(out, dtype=np.uint8), ratio


def letterbox(image: UInt8Image, size: int) -> tuple[UInt8Image, float, tuple[float, float]]:
    """Fit into a `size` x `size` square, centred, padded with grey.

    Returns (square image, scale, (pad_x, pad_y)): image px map to square px as
    ``p * scale + pad``.
    """
    resized, ratio = resize_long_side(image, size)
    h, w = resized.shape[:2]
    pad_x, pad_y = (size - w) / 2, (size - h) / 2
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    out = cv2.copyMakeBorder(
        resized, top, size - h - top, left, size - w - left, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return np.asarray(out, dtype=np.uint8), ratio, (float(left), float(top))


def hsv_jitter(image: UInt8Image, rng: np.random.Generator, h: float, s: float, v: float) -> UInt8Image:
    """Random gains on hue, saturation and value (OpenCV 8-bit HSV, hue in 0..179)."""
    if h == 0 and s == 0 and v == 0:
        return image
    gains = rng.uniform(-1.0, 1.0, 3) * np.array([h, s, v]) + 1.0
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    merged = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return np.asarray(cv2.cvtColor(merged, cv2.COLOR_HSV2BGR), dtype=np.uint8)


def flip_lr(image: UInt8Image, labels: FloatArray) -> tuple[UInt8Image, FloatArray]:
    w = image.shape[1]
    out = labels.copy()
    out[:, 1], out[:, 3] = w - labels[:, 3], w - labels[:, 1]
    return np.ascontiguousarray(image[:, ::-1]), out


def flip_ud(image: UInt8Image, labels: FloatArray) -> tuple[UInt8Image, FloatArray]:
    h = image.shape[0]
    out = labels.copy()
    out[:, 2], out[:, 4] = h - labels[:, 4], h - labels[:, 2]
    return np.ascontiguousarray(image[::-1]), out


def mosaic4(
    images: list[UInt8Image], labels: list[FloatArray], size: int, rng: np.random.Generator
) -> tuple[UInt8Image, FloatArray]:
    """Four images (long side <= `size`) tiled around a random centre of a 2S x 2S canvas.

    Returns the canvas and the union of labels shifted into it (not yet clipped).
    """
    if len(images) != 4 or len(labels) != 4:
        raise ValueError(f"mosaic4 needs 4 images and 4 label arrays, got {len(images)} and {len(labels)}")
    s = size
    cx, cy = (int(rng.uniform(s * 0.5, s * 1.5)) for _ in range(2))
    canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, dtype=np.uint8)
    out: list[FloatArray] = []
    for k, (img, lab) in enumerate(zip(images, labels, strict=True)):
        h, w = img.shape[:2]
        if k == 0:  # top left
            x1a, y1a, x2a, y2a = max(cx - w, 0), max(cy - h, 0), cx, cy
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif k == 1:  # top right
            x1a, y1a, x2a, y2a = cx, max(cy - h, 0), min(cx + w, 2 * s), cy
            x1b, y1b = 0, h - (y2a - y1a)
        elif k == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(cx - w, 0), cy, cx, min(2 * s, cy + h)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom right
            x1a, y1a, x2a, y2a = cx, cy, min(cx + w, 2 * s), min(2 * s, cy + h)
            x1b, y1b = 0, 0
        canvas[y1a:y2a, x1a:x2a] = img[y1b : y1b + (y2a - y1a), x1b : x1b + (x2a - x1a)]
        shifted = lab.copy()
        shifted[:, [1, 3]] += x1a - x1b
        shifted[:, [2, 4]] += y1a - y1b
        out.append(shifted)
    return canvas, np.concatenate(out).astype(np.float32) if out else np.zeros((0, 5), np.float32)


def random_affine(
    image: UInt8Image,
    labels: FloatArray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    out_size: int,
) -> tuple[UInt8Image, FloatArray]:
    """Scale/translate (and optionally rotate/shear) about the image centre, then crop to
    an `out_size` square centred on the input's centre. Boxes become the bounds of their
    warped corners, clipped; boxes that lose most of their area or shrink below 2 px go.
    """
    h, w = image.shape[:2]
    centre = np.eye(3)
    centre[0, 2], centre[1, 2] = -w / 2, -h / 2
    rot = np.eye(3)
    angle = rng.uniform(-cfg.degrees, cfg.degrees)
    scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    rot[:2] = cv2.getRotationMatrix2D((0.0, 0.0), angle, scale)
    shear = np.eye(3)
    shear[0, 1] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    shear[1, 0] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    move = np.eye(3)
    move[0, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * out_size
    move[1, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * out_size
    m = move @ shear @ rot @ centre
    warped = cv2.warpAffine(image, m[:2], (out_size, out_size), borderValue=(PAD_VALUE,) * 3)
    if len(labels) == 0:
        return np.asarray(warped, dtype=np.uint8), labels
    corners = labels[:, [1, 2, 3, 2, 3, 4, 1, 4]].reshape(-1, 2).astype(np.float64)
    warped_corners = np.concatenate([corners, np.ones((len(corners), 1))], axis=1) @ m.T
    xy = warped_corners[:, :2].reshape(-1, 8)
    boxes = np.stack([xy[:, 0::2].min(1), xy[:, 1::2].min(1), xy[:, 0::2].max(1), xy[:, 1::2].max(1)], axis=1)
    boxes = np.clip(boxes, 0, out_size)
    before = (labels[:, 3] - labels[:, 1]) * (labels[:, 4] - labels[:, 2]) * scale**2
    keep = box_candidates(boxes, before)
    out = np.concatenate([labels[keep, :1], boxes[keep]], axis=1).astype(np.float32)
    return np.asarray(warped, dtype=np.uint8), out


def box_candidates(
    boxes_xyxy: npt.NDArray[np.float64],
    area_before: npt.NDArray[np.float64],
    min_px: float = 2.0,
    min_area_ratio: float = 0.2,
    max_aspect: float = 20.0,
) -> npt.NDArray[np.bool_]:
    """(N,) mask of boxes still worth training on after warping and clipping."""
    w = boxes_xyxy[:, 2] - boxes_xyxy[:, 0]
    h = boxes_xyxy[:, 3] - boxes_xyxy[:, 1]
    aspect = np.maximum(w / (h + 1e-9), h / (w + 1e-9))
    return (w > min_px) & (h > min_px) & (w * h / (area_before + 1e-9) > min_area_ratio) & (aspect < max_aspect)
