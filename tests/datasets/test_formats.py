"""The three label readers agree: one scene written as YOLO, VOC and COCO reads back as
the same pixel boxes and class names."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.datasets.formats import (
    LabelledImage,
    image_size,
    read_coco_json,
    read_labelled,
    read_voc_folder,
    read_yolo_folder,
    yolo_names,
)
from trafficprn.errors import InputError

NAMES = ("car", "bus", "truck")
# pixel edges (x1, y1, x2, y2) in a 200 x 120 image, and their classes
BOXES = np.array([[10.0, 20.0, 50.0, 60.0], [100.0, 30.0, 190.0, 110.0]])
CLASSES = ("car", "truck")
W, H = 200, 120


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((H, W, 3), 90, dtype=np.uint8))


def _write_yolo(root: Path, yaml_names: str) -> None:
    _image(root / "train" / "images" / "a.jpg")
    _image(root / "train" / "images" / "empty.png")  # no label file: a negative
    lines = []
    for (x1, y1, x2, y2), name in zip(BOXES, CLASSES, strict=True):
        lines.append(f"{NAMES.index(name)} {(x1 + x2) / 2 / W} {(y1 + y2) / 2 / H} {(x2 - x1) / W} {(y2 - y1) / H}")
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "labels" / "a.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(f"train: train/images\nnames: {yaml_names}\n")


def _write_voc(root: Path) -> None:
    _image(root / "JPEGImages" / "a.jpg")
    objects = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{x1 + 1:g}</xmin><ymin>{y1 + 1:g}</ymin>"
        f"<xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox></object>"
        for (x1, y1, x2, y2), n in zip(BOXES, CLASSES, strict=True)
    )
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>a.jpg</filename><size><width>{W}</width><height>{H}</height>"
        f"<depth>3</depth></size>{objects}</annotation>"
    )


def _write_coco(root: Path) -> Path:
    _image(root / "a.jpg")
    _image(root / "empty.jpg")
    anns = [
        {"id": i, "image_id": 1, "category_id": NAMES.index(n) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0}
        for i, ((x1, y1, x2, y2), n) in enumerate(zip(BOXES.tolist(), CLASSES, strict=True))
    ]
    anns.append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 199, 119], "iscrowd": 1})
    doc = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "empty.jpg", "width": W, "height": H},
        ],
        "annotations": anns,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    path = root / "_annotations.coco.json"
    path.write_text(json.dumps(doc))
    return path


def _check(item: LabelledImage) -> None:
    assert (item.width, item.height) == (W, H)
    np.testing.assert_allclose(item.boxes_xyxy, BOXES, atol=1e-6)
    assert item.class_names == CLASSES
    np.testing.assert_array_equal(item.class_ids(NAMES), [0, 2])


@pytest.mark.parametrize("yaml_names", ["[car, bus, truck]", "{0: car, 1: bus, 2: truck}"])
def test_yolo_folder_reads_pixel_boxes_and_negatives(tmp_path: Path, yaml_names: str) -> None:
    _write_yolo(tmp_path, yaml_names)
    items = {p.path.name: p for p in read_yolo_folder(tmp_path)}
    _check(items["a.jpg"])
    assert items["empty.png"].boxes_xyxy.shape == (0, 4) and items["empty.png"].class_names == ()
    assert yolo_names(tmp_path / "data.yaml") == NAMES


def test_voc_folder_reads_one_based_corners_as_pixel_edges(tmp_path: Path) -> None:
    _write_voc(tmp_path)
    [item] = read_voc_folder(tmp_path)
    assert item.path == tmp_path / "JPEGImages" / "a.jpg"
    _check(item)


def test_coco_json_skips_crowd_regions_and_keeps_empty_images(tmp_path: Path) -> None:
    path = _write_coco(tmp_path)
    items = {p.path.name: p for p in read_coco_json(path)}
    _check(items["a.jpg"])
    assert len(items["empty.jpg"].boxes_xyxy) == 0


def test_read_labelled_detects_each_format(tmp_path: Path) -> None:
    _write_yolo(tmp_path / "y", "[car, bus, truck]")
    _write_voc(tmp_path / "v")
    coco = _write_coco(tmp_path / "c")
    assert len(read_labelled(tmp_path / "y")) == 2
    assert len(read_labelled(tmp_path / "v")) == 1
    assert len(read_labelled(coco)) == 2
    assert len(read_labelled(tmp_path / "c")) == 2
    (tmp_path / "unlabelled").mkdir()
    with pytest.raises(InputError, match="no data.yaml"):
        read_labelled(tmp_path / "unlabelled")


@pytest.mark.parametrize(
    ("label", "message"),
    [("0 0.5 0.5 0.1\n", "5 numbers"), ("7 0.5 0.5 0.1 0.1\n", "class id 7 outside")],
)
def test_bad_yolo_labels_are_input_errors(tmp_path: Path, label: str, message: str) -> None:
    _write_yolo(tmp_path, "[car, bus, truck]")
    (tmp_path / "train" / "labels" / "a.txt").write_text(label)
    with pytest.raises(InputError, match=message):
        read_yolo_folder(tmp_path)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp"])
def test_image_size_from_header_matches_decoded_size(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    cv2.imwrite(str(path), np.zeros((37, 53, 3), dtype=np.uint8))
    assert image_size(path) == (53, 37)
