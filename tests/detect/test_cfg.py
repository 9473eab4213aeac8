"""Darknet cfg parsing: the shipped cfgs' sizes (the paper's and darknet's numbers),
layer semantics, and errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafficprn.detect.cfg import (
    ConvSpec,
    MaxPoolSpec,
    RouteSpec,
    ShortcutSpec,
    YoloSpec,
    infer_shapes,
    model_info,
    parse_cfg,
    parse_cfg_text,
)
from trafficprn.errors import ConfigError
from trafficprn.resources import data_dir

CFG_DIR = data_dir() / "cfg"


@pytest.mark.parametrize(
    ("name", "size", "values", "params", "bflops"),
    [
        ("yolov3-tiny-prn", 416, 4_939_758, 4_935_182, 3.46),
        ("yolov3-tiny", 416, 8_858_734, 8_852_366, 5.56),
        ("yolov3-tiny-prn", 320, 4_939_758, 4_935_182, 2.05),
        ("yolov3-tiny", 320, 8_858_734, 8_852_366, 3.29),
    ],
)
def test_model_info_matches_darknet(name: str, size: int, values: int, params: int, bflops: float) -> None:
    info = model_info(parse_cfg(CFG_DIR / f"{name}.cfg"), size, size)
    assert info.weights_values == values
    assert info.trainable_params == params
    assert round(info.bflops, 2) == bflops


def test_tiny_prn_structure() -> None:
    cfg = parse_cfg(CFG_DIR / "yolov3-tiny-prn.cfg")
    assert cfg.net.width == cfg.net.height == 416
    shortcuts = [layer for layer in cfg.layers if isinstance(layer, ShortcutSpec)]
    assert [s.from_layer for s in shortcuts] == [10, 14, 8, 21, 8]
    assert all(s.activation == "leaky" for s in shortcuts)
    pools = [layer for layer in cfg.layers if isinstance(layer, MaxPoolSpec)]
    assert [p.stride for p in pools] == [2, 2, 2, 2, 2, 1]
    heads = [cfg.layers[i] for i in cfg.yolo_indices]
    assert all(isinstance(h, YoloSpec) for h in heads)
    assert [h.mask for h in heads] == [(3, 4, 5), (1, 2, 3)]  # type: ignore[union-attr]
    assert cfg.classes == 80
    route = cfg.layers[19]
    assert isinstance(route, RouteSpec) and route.layers == (15,)


def test_shapes_partial_shortcut_keeps_current_channels() -> None:
    cfg = parse_cfg(CFG_DIR / "yolov3-tiny-prn.cfg")
    shapes = infer_shapes(cfg, 416, 416)
    assert (shapes[8].channels, shapes[8].height) == (256, 26)
    # layer 22: shortcut from layer 8 (256 ch) onto the upsampled 128 ch -> 128 ch
    assert (shapes[21].channels, shapes[22].channels) == (128, 128)
    # size-2 stride-1 max-pool keeps 13 x 13
    assert (shapes[10].height, shapes[11].height) == (13, 13)
    assert (shapes[17].channels, shapes[17].height, shapes[26].height) == (255, 13, 26)


GOOD = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=16
size=1
groups=2
activation=linear

[route]
layers=-1,-2
groups=2
group_id=1

[shortcut]
from=-3
activation=linear

[upsample]
stride=2

[convolutional]
filters=18
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=1
scale_x_y=1.05
"""


def test_parse_all_sections() -> None:
    cfg = parse_cfg_text(GOOD, "good.cfg")
    conv, pool, grouped, route, shortcut, _, _, yolo = cfg.layers
    assert isinstance(conv, ConvSpec) and conv.batch_normalize and conv.padding == 1
    assert isinstance(grouped, ConvSpec) and grouped.groups == 2 and grouped.padding == 0
    assert isinstance(route, RouteSpec) and route.layers == (2, 1) and route.group_id == 1
    assert isinstance(shortcut, ShortcutSpec) and shortcut.from_layer == 1
    assert isinstance(yolo, YoloSpec) and yolo.scale_x_y == 1.05 and yolo.classes == 1
    shapes = infer_shapes(cfg, 64, 64)
    # route: the second half of 16 and of 8 channels, at 32 x 32
    assert (shapes[3].channels, shapes[3].height) == (12, 32)
    # partial shortcut of layer 1 (8 channels) onto 12 channels keeps 12
    assert shapes[4].channels == 12
    assert (shapes[5].height, shapes[7].channels) == (64, 18)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[maxpool]", "[maxpoool]", "unknown section [maxpoool]"),
        ("filters=8", "filtres=8", "unknown key 'filtres'"),
        ("filters=8", "filters=eight", "expected an integer, got 'eight'"),
        ("activation=leaky", "activation=leakyy", "expected one of"),
        ("layers=-1,-2", "layers=-1,-9", "resolves to -6"),
        ("from=-3", "from=7", "previous layers"),
        ("anchors=10,14, 23,27, 37,58", "anchors=10,14, 23,27, 37", "odd count"),
        ("mask=0,1,2", "mask=0,1,5", "outside the 3 anchors"),
        ("width=64", "width64", "expected 'key=value'"),
        ("stride=1", "stride=0", "expected >= 1"),
        ("group_id=1", "group_id=2", "expected < groups=2"),
    ],
)
def test_errors_name_file_and_line(old: str, new: str, message: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    line = GOOD[: GOOD.index(old)].count("\n") + 1
    with pytest.raises(ConfigError) as err:
        parse_cfg_text(text, "typo.cfg")
    assert f"typo.cfg:{line}" in str(err.value)
    assert message in str(err.value)


def test_shape_mismatch_is_config_error() -> None:
    text = GOOD.replace("layers=-1,-2", "layers=-1,-3")  # layer 0 is 64x64, layer 2 32x32
    with pytest.raises(ConfigError, match="different sizes"):
        parse_cfg_text(text, "bad.cfg")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read cfg"):
        parse_cfg(tmp_path / "nope.cfg")
