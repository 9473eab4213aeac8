"""The YOLO export: images, normalised labels with the five vehicle classes, data.yaml."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from trafficprn.sim.dataset import DatasetOptions, random_camera, write_dataset


def test_dataset_has_images_labels_and_data_yaml(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "ds", DatasetOptions(images=8, size_px=192, seed=3, val_fraction=0.5,
                                                        frames_per_view=3))
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == ["car", "bus", "truck", "motorcycle", "bicycle"] and data["nc"] == 5
    images = sorted((out / "images").rglob("*.jpg"))
    assert len(images) == 8
    n_boxes = 0
    for img_path in images:
        img = cv2.imread(str(img_path))
        assert img is not None and max(img.shape[:2]) == 192
        label = out / "labels" / img_path.parent.name / f"{img_path.stem}.txt"
        for line in label.read_text().splitlines():
            cls, *box = line.split()
            assert 0 <= int(cls) <= 4
            cx, cy, w, h = map(float, box)
            assert cx - w / 2 >= -1e-5 and cx + w / 2 <= 1 + 1e-5 and cy - h / 2 >= -1e-5 and cy + h / 2 <= 1 + 1e-5
            n_boxes += 1
    assert n_boxes > 10


@pytest.mark.parametrize(("share", "fisheye"), [(1.0, 40), (0.0, 0)])
def test_random_camera_fisheye_share(share: float, fisheye: int) -> None:
    rng = np.random.default_rng(3)
    cams = [random_camera(rng, share) for _ in range(40)]
    assert sum(c.name.startswith("fisheye") for c in cams) == fisheye


def test_random_camera_default_mixes_both() -> None:
    rng = np.random.default_rng(5)
    names = [random_camera(rng).name for _ in range(200)]
    assert 0.45 < sum(n.startswith("fisheye") for n in names) / 200 < 0.75
