"""Fixtures for the training tests: a tiny YOLO-format dataset drawn on the fly
(coloured boxes on a noisy road grey, class by colour, so a few training steps have
something learnable) and a half-width tiny-PRN cfg that trains fast."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

NAMES = ["car", "bus", "truck"]
COLOURS = [(40, 40, 220), (220, 160, 40), (40, 200, 60)]  # BGR per class


def write_dataset(root: Path, n_train: int = 16, n_val: int = 4, size: int = 96, seed: int = 0) -> Path:
    """Write images/{train,val}, labels/{train,val} and data.yaml under `root`; returns the yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = rng.normal(110, 12, (size, size + 16, 3)).clip(0, 255).astype(np.uint8)
            h, w = image.shape[:2]
            rows = []
            for _ in range(int(rng.integers(1, 4))):
                cls = int(rng.integers(0, len(NAMES)))
                bw, bh = rng.uniform(0.15, 0.4) * w, rng.uniform(0.15, 0.4) * h
                x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                cv2.rectangle(image, (int(x1), int(y1)), (int(x1 + bw), int(y1 + bh)), COLOURS[cls], -1)
                rows.append(f"{cls} {(x1 + bw / 2) / w:.6f} {(y1 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{i:04d}.png"), image)
            (root / "labels" / split / f"{i:04d}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [car, bus, truck]\n")
    return data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def half_prn_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """yolov3-tiny-prn with every non-head conv at half width (4x fewer FLOPs)."""
    import re

    from trafficprn.resources import data_dir

    text = (data_dir() / "cfg" / "yolov3-tiny-prn.cfg").read_text()
    text = re.sub(r"filters=(\d+)", lambda m: f"filters={m.group(1) if m.group(1) == '255' else int(m.group(1)) // 2}", text)
    path = tmp_path_factory.mktemp("cfg") / "half-prn.cfg"
    path.write_text(text)
    return path
