"""YOLO-format datasets: a `data.yaml` plus image and label folders.

The layout common annotation tools export, and `trafficprn sim dataset` writes::

    data.yaml            path: .            # root, relative to this file (optional)
                         train: images/train   # folder, .txt list of images, or a list of those
                         val: images/val
                         names: [car, bus, truck, motorcycle, bicycle]   # or {0: car, ...}
    images/train/0001.jpg
    labels/train/0001.txt   one line per box: class cx cy w h, normalised to [0, 1]

An image's label file is found by replacing the last ``images`` folder of its path with
``labels`` and its suffix with ``.txt``. A missing label file is a background image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import yaml

from trafficprn.detect.train.augment import (
    AugmentConfig,
    flip_lr,
    flip_ud,
    hsv_jitter,
    letterbox,
    mosaic4,
    random_affine,
    resize_long_side,
)
from trafficprn.errors import ConfigError, InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DataSpec:
    """A dataset description: image files per split and the class names."""

    source: Path
    names: list[str]
    train: list[Path]
    val: list[Path]


def load_data_yaml(path: str | Path) -> DataSpec:
    """Read `data.yaml` and list the images of its train and val splits."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read dataset description: {exc}", source=str(p)) from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping with train, val and names", source=str(p))
    root = p.parent / str(raw.get("path", "."))
    names = _names(raw.get("names"), str(p))
    if "nc" in raw and int(raw["nc"]) != len(names):
        raise ConfigError(f"nc={raw['nc']} but {len(names)} names are given", field="nc", source=str(p))
    splits: dict[str, list[Path]] = {}
    for split in ("train", "val"):
        if split not in raw:
            raise ConfigError(f"missing {split}: (a folder, a .txt list or a list of those)", source=str(p))
        splits[split] = list_images(raw[split], root, f"{p}: {split}")
        if not splits[split]:
            raise ConfigError(f"no images found for {split}: {raw[split]!r}", field=split, source=str(p))
    return DataSpec(source=p, names=names, train=splits["train"], val=splits["val"])


def _names(value: Any, source: str) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(n, str) for n in value):
        return list(value)
    if isinstance(value, dict) and value:
        keys = sorted(int(k) for k in value)
        if keys != list(range(len(keys))):
            raise ConfigError(f"names keys must be 0..{len(keys) - 1}, got {keys}", field="names", source=source)
        return [str(value[k]) for k in keys]
    raise ConfigError(f"names must be a list or a {{index: name}} mapping, got {value!r}", field="names", source=source)


def list_images(entry: Any, root: Path, where: str) -> list[Path]:
    """Images named by a split entry: a folder (recursive), a .txt list, or a list of those."""
    if isinstance(entry, list):
        return [img for item in entry for img in list_images(item, root, where)]
    p = Path(str(entry))
    p = p if p.is_absolute() else root / p
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if p.suffix == ".txt" and p.is_file():
        lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Path(line) if Path(line).is_absolute() else p.parent / line for line in lines]
    raise ConfigError(f"{p} is neither a folder of images nor a .txt list", source=where)


def label_path(image_path: Path) -> Path:
    """``.../images/x/0001.jpg`` -> ``.../labels/x/0001.txt`` (last ``images`` folder)."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def read_labels(path: Path, num_classes: int) -> FloatArray:
    """(N, 5) float32 rows [class, cx, cy, w, h] normalised; a missing file gives (0, 5)."""
    if not path.is_file():
        return np.zeros((0, 5), np.float32)
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise InputError(f"{path}:{lineno}: expected 'class cx cy w h' numbers, got {line!r}") from None
        if len(values) != 5:
            raise InputError(f"{path}:{lineno}: expected 5 values 'class cx cy w h', got {len(values)}")
        cls = values[0]
        if cls != int(cls) or not 0 <= cls < num_classes:
            raise InputError(f"{path}:{lineno}: class must be an integer in [0, {num_classes}), got {cls}")
        if min(values[1:]) < -0.01 or max(values[1:3]) > 1.01 or values[3] <= 0 or values[4] <= 0:
            raise InputError(f"{path}:{lineno}: box must be normalised cx cy w h in [0, 1], got {values[1:]}")
        rows.append(values)
    return np.array(rows, np.float32).reshape(-1, 5)


def _to_px(labels: FloatArray, width: int, height: int) -> FloatArray:
    """Normalised [class, cx, cy, w, h] -> [class, x1, y1, x2, y2] px."""
    out = np.empty_like(labels)
    out[:, 0] = labels[:, 0]
    out[:, 1] = (labels[:, 1] - labels[:, 3] / 2) * width
    out[:, 2] = (labels[:, 2] - labels[:, 4] / 2) * height
    out[:, 3] = (labels[:, 1] + labels[:, 3] / 2) * width
    out[:, 4] = (labels[:, 2] + labels[:, 4] / 2) * height
    return out


class YoloDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Square `size` samples: mosaic + affine + HSV + flips when `augment` is given,
    else a plain letterbox (validation).

    Item i is (image (3, S, S) uint8 RGB tensor, labels (N, 5) float32 [class, cx, cy, w, h]
    normalised to the square). Augmentation draws from a generator seeded by
    (seed, epoch, i): call `set_epoch` each epoch.
    """

    def __init__(
        self,
        images: list[Path],
        num_classes: int,
        size: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ):
        if not images:
            raise InputError("the dataset has no images")
        self.images = list(images)
        self.num_classes = num_classes
        self.size = size
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load(self, index: int) -> tuple[npt.NDArray[np.uint8], FloatArray]:
        """Image resized to long side `size` (BGR) and its labels in px of that image."""
        path = self.images[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"cannot read image {path}")
        image, _ = resize_long_side(np.asarray(image, dtype=np.uint8), self.size)
        h, w = image.shape[:2]
        return image, _to_px(read_labels(label_path(path), self.num_classes), w, h)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment is None:
            image, labels = self.load(index)
            image, _, (px, py) = letterbox(image, self.size)
            labels = labels.copy()
            labels[:, [1, 3]] += px
            labels[:, [2, 4]] += py
        else:
            image, labels = self._augmented(index)
        return _to_tensor(image), torch.from_numpy(_to_normalised(labels, self.size))

    def _augmented(self, index: int) -> tuple[npt.NDArray[np.uint8], FloatArray]:
        cfg = self.augment
        if cfg is None:  # pragma: no cover - guarded by the caller
            raise ValueError("no augmentation configured")
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if rng.random() < cfg.mosaic:
            others = rng.integers(0, len(self), 3)
            parts = [self.load(i) for i in (index, *others)]
            canvas, labels = mosaic4([p[0] for p in parts], [p[1] for p in parts], self.size, rng)
            image, labels = random_affine(canvas, labels, rng, cfg, self.size)
        else:
            image, labels = self.load(index)
            image, _, (px, py) = letterbox(image, self.size)
            labels = labels.copy()
            labels[:, [1, 3]] += px
            labels[:, [2, 4]] += py
            image, labels = random_affine(image, labels, rng, cfg, self.size)
        image = hsv_jitter(image, rng, cfg.hsv_h, cfg.hsv_s, cfg.hsv_v)
        if rng.random() < cfg.fliplr:
            image, labels = flip_lr(image, labels)
        if rng.random() < cfg.flipud:
            image, labels = flip_ud(image, labels)
        return image, labels


def _to_tensor(image_bgr: npt.NDArray[np.uint8]) -> torch.Tensor:
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(rgb)


def _to_normalised(labels_px: FloatArray, size: int) -> FloatArray:
    """[class, x1, y1, x2, y2] px -> [class, cx, cy, w, h] / size."""
    out = np.empty((len(labels_px), 5), np.float32)
    out[:, 0] = labels_px[:, 0]
    out[:, 1] = (labels_px[:, 1] + labels_px[:, 3]) / 2 / size
    out[:, 2] = (labels_px[:, 2] + labels_px[:, 4]) / 2 / size
    out[:, 3] = (labels_px[:, 3] - labels_px[:, 1]) / size
    out[:, 4] = (labels_px[:, 4] - labels_px[:, 2]) / size
    return out


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images to (B, 3, S, S) uint8; targets to (M, 6) [image index, class, cx, cy, w, h]."""
    images = torch.stack([b[0] for b in batch])
    targets = [torch.cat([torch.full((len(b[1]), 1), float(i)), b[1]], dim=1) for i, b in enumerate(batch)]
    return images, torch.cat(targets) if targets else torch.zeros((0, 6))
