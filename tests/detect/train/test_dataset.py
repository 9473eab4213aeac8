"""YOLO-format datasets: data.yaml variants, label files, letterboxed samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trafficprn.detect.train.dataset import YoloDataset, collate, label_path, load_data_yaml, read_labels
from trafficprn.errors import ConfigError, InputError


def test_loads_tiny_dataset(tiny_data: Path):
    spec = load_data_yaml(tiny_data)
    assert spec.names == ["car", "bus", "truck"]
    assert len(spec.train) == 16 and len(spec.val) == 4
    assert all(label_path(p).is_file() for p in spec.train)


@pytest.mark.parametrize(
    ("yaml_text", "expected_names", "raises"),
    [
        ("train: images/train\nval: images/val\nnames: {0: car, 1: bus, 2: truck}\n", ["car", "bus", "truck"], None),
        ("train: [images/train]\nval: list.txt\nnames: [car, bus, truck]\nnc: 3\n", ["car", "bus", "truck"], None),
        ("train: images/train\nval: images/val\nnames: [car, bus]\nnc: 3\n", None, ConfigError),
        ("train: images/train\nnames: [car]\n", None, ConfigError),
        ("train: images/train\nval: images/val\nnames: {0: car, 2: bus}\n", None, ConfigError),
        ("train: images/nowhere\nval: images/val\nnames: [car]\n", None, ConfigError),
        ("- just a list\n", None, ConfigError),
    ],
)
def test_data_yaml_variants(tiny_data: Path, yaml_text, expected_names, raises):
    root = tiny_data.parent
    (root / "list.txt").write_text("images/val/0000.png\nimages/val/0001.png\n")
    path = root / "other.yaml"
    path.write_text(yaml_text)
    if raises:
        with pytest.raises(raises):
            load_data_yaml(path)
        return
    spec = load_data_yaml(path)
    assert spec.names == expected_names
    assert all(p.is_file() for p in spec.val)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("/d/images/train/a.jpg", "/d/labels/train/a.txt"),
        ("/images/d/images/x/b.png", "/images/d/labels/x/b.txt"),
        ("/d/imgs/c.jpg", "/d/imgs/c.txt"),
    ],
)
def test_label_path(image, expected):
    assert label_path(Path(image)) == Path(expected)


@pytest.mark.parametrize(
    ("text", "rows", "raises"),
    [
        ("0 0.5 0.5 0.2 0.1\n\n2 0.1 0.9 0.05 0.05\n", 2, None),
        ("", 0, None),
        ("0 0.5 0.5 0.2\n", None, InputError),
        ("3 0.5 0.5 0.2 0.1\n", None, InputError),
        ("0.5 0.5 0.5 0.2 0.1\n", None, InputError),
        ("0 1.5 0.5 0.2 0.1\n", None, InputError),
        ("0 0.5 0.5 0 0.1\n", None, InputError),
        ("car 0.5 0.5 0.2 0.1\n", None, InputError),
    ],
)
def test_read_labels(tmp_path: Path, text, rows, raises):
    path = tmp_path / "a.txt"
    path.write_text(text)
    if raises:
        with pytest.raises(raises, match="a.txt:1"):
            read_labels(path, num_classes=3)
        return
    assert read_labels(path, num_classes=3).shape == (rows, 5)


def test_missing_label_file_is_background(tmp_path: Path):
    assert read_labels(tmp_path / "none.txt", 3).shape == (0, 5)


def test_val_sample_boxes_cover_their_colour(tiny_data: Path):
    spec = load_data_yaml(tiny_data)
    ds = YoloDataset(spec.val, 3, size=128)
    image, labels = ds[0]
    assert image.shape == (3, 128, 128) and image.dtype.is_floating_point is False
    rgb = image.numpy().transpose(1, 2, 0)
    colours = {0: (220, 40, 40), 1: (40, 160, 220), 2: (60, 200, 40)}  # RGB of the factory's BGR colours
    for cls, cx, cy, w, h in labels.numpy():
        x, y = int(cx * 128), int(cy * 128)
        np.testing.assert_allclose(rgb[y, x], colours[int(cls)], atol=25)
        assert 0 < w <= 1 and 0 < h <= 1


def test_collate_numbers_images():
    import torch

    batch = [(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.ones(2, 5)), (torch.zeros(3, 8, 8, dtype=torch.uint8), torch.ones(1, 5))]
    images, targets = collate(batch)
    assert images.shape == (2, 3, 8, 8)
    assert targets[:, 0].tolist() == [0, 0, 1]
