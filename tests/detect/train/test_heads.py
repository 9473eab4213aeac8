"""Fine-tuning starts: class count from a .weights size, heads resized by class name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trafficprn.detect.cfg import parse_cfg_text
from trafficprn.detect.darknet import build_model, randomize_weights, save_weights
from trafficprn.detect.train.heads import load_pretrained, resize_cfg_text, weights_class_count
from trafficprn.errors import ModelError, WeightsError


@pytest.fixture(scope="module")
def coco_weights(half_prn_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    model = build_model(parse_cfg_text(half_prn_cfg.read_text()))  # classes=80 as shipped
    randomize_weights(model, seed=3)
    path = tmp_path_factory.mktemp("w") / "coco.weights"
    save_weights(model, path)
    return path, model.state_dict()


def test_class_count_from_file_size(half_prn_cfg: Path, coco_weights):
    assert weights_class_count(half_prn_cfg.read_text(), coco_weights[0]) == 80


def test_wrong_layout_is_rejected(half_prn_cfg: Path, tmp_path: Path):
    bad = tmp_path / "bad.weights"
    bad.write_bytes(b"\0" * 1003)
    with pytest.raises(WeightsError, match="does not fit"):
        weights_class_count(half_prn_cfg.read_text(), bad)


def test_coco_head_rows_follow_class_names(half_prn_cfg: Path, coco_weights):
    text = resize_cfg_text(half_prn_cfg.read_text(), 4)
    model = build_model(parse_cfg_text(text))
    names = ["car", "bus", "truck", "scooter"]
    report = load_pretrained(model, coco_weights[0], names, half_prn_cfg.read_text())
    assert report.source_classes == 80
    assert report.mapped_classes == {"car": "car", "bus": "bus", "truck": "truck"}
    assert report.resized_heads == 4 and not report.skipped
    src = coco_weights[1]
    dst = model.state_dict()
    torch.testing.assert_close(dst["layers.0.conv.weight"], src["layers.0.conv.weight"])
    layer = model.heads[0].layer - 1
    s = src[f"layers.{layer}.conv.weight"].view(3, 85, -1)
    d = dst[f"layers.{layer}.conv.weight"].view(3, 9, -1)
    torch.testing.assert_close(d[:, :5], s[:, :5])
    for ours, coco in ((0, 2), (1, 5), (2, 7)):  # car, bus, truck in COCO order
        torch.testing.assert_close(d[:, 5 + ours], s[:, 5 + coco])
    assert not torch.equal(d[:, 8], s[:, 5])  # scooter keeps its fresh row


def test_missing_weights_file(half_prn_cfg: Path, tmp_path: Path):
    model = build_model(parse_cfg_text(resize_cfg_text(half_prn_cfg.read_text(), 2)))
    with pytest.raises(WeightsError):
        load_pretrained(model, tmp_path / "none.weights", ["a", "b"], half_prn_cfg.read_text())


@pytest.mark.parametrize(
    ("text", "raises"),
    [
        ("[net]\nwidth=32\nheight=32\n[yolo]\nanchors=1,1\n", ModelError),
        ("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\n[yolo]\n", ModelError),
    ],
)
def test_resize_rejects_malformed(text, raises):
    with pytest.raises(raises):
        resize_cfg_text(text, 3)
