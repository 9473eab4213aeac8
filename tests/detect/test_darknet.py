"""The torch builder and .weights I/O against OpenCV's darknet importer (an independent
implementation), plus the darknet semantics the weights depend on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from trafficprn.detect.cfg import MaxPoolSpec
from trafficprn.detect.darknet import (
    DarknetMaxPool,
    WeightsHeader,
    build_model,
    load_weights,
    partial_add,
    read_header,
    save_weights,
)
from trafficprn.detect.postprocess import HeadSpec, decode_dense
from trafficprn.errors import WeightsError
from trafficprn.resources import data_dir

CFG_NAMES = ("yolov3-tiny-prn", "yolov3-tiny")

OPENCV_BN_EPS = 1e-6


def shipped_cfg(name: str) -> Path:
    return data_dir() / "cfg" / f"{name}.cfg"


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a - b) / np.maximum(1.0, np.abs(b))).max())


def opencv_outputs(cfg: Path, weights: Path, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(x)
    return [np.asarray(o) for o in net.forward(names)]


@pytest.mark.parametrize("size", [416, 320])
@pytest.mark.parametrize("name", CFG_NAMES)
def test_heads_match_opencv(name: str, size: int, random_weights: Callable[[str], Path], rng: np.random.Generator) -> None:
    cfg, weights = shipped_cfg(name), random_weights(name)
    model = build_model(cfg, bn_eps=OPENCV_BN_EPS)
    load_weights(model, weights)
    x = rng.random((1, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        ours = [h.numpy() for h in model(torch.from_numpy(x))]
    # OpenCV names the conv feeding each [yolo] layer "conv_<darknet index>".
    conv_names = [f"conv_{h.layer - 1}" for h in model.heads]
    yolo_names = [f"yolo_{h.layer}" for h in model.heads]
    ref = opencv_outputs(cfg, weights, x, conv_names + yolo_names)
    raw_ref, decoded_ref = ref[: len(conv_names)], ref[len(conv_names) :]
    for ours_head, ref_head, head in zip(ours, raw_ref, model.heads, strict=True):
        assert ours_head.shape == ref_head.shape == (1, 255, size // head.stride, size // head.stride)
        assert np.abs(ref_head).max() > 0.3  # well-scaled: the comparison is not between ~zeros
        assert rel_err(ours_head, ref_head) <= 1e-4
    # OpenCV's yolo layer decodes: rows (y*W+x)*A+a of cx, cy, w, h (fractions of the
    # input), objectness, and objectness x class probability (zeroed below its 0.2 threshold).
    for ours_head, dec_ref, head in zip(ours, decoded_ref, model.heads, strict=True):
        spec = HeadSpec(head.stride, head.anchors_px, head.classes, head.scale_x_y)
        dense = decode_dense(ours_head, spec, (size, size))[0]
        dense[:, :4] /= size
        assert dec_ref.shape == dense.shape
        assert rel_err(dense[:, :5], dec_ref[:, :5]) <= 1e-4
        shown = dec_ref[:, 5:] > 0
        assert shown.mean() > 0.5
        assert rel_err(dense[:, 5:][shown], dec_ref[:, 5:][shown]) <= 1e-4
        assert dense[:, 5:][~shown].max(initial=0.0) <= 0.2 + 1e-4


@pytest.mark.parametrize("name", CFG_NAMES)
def test_weights_round_trip_is_exact(name: str, random_weights: Callable[[str], Path], tmp_path: Path) -> None:
    source = random_weights(name)
    model = build_model(shipped_cfg(name))
    header = load_weights(model, source)
    assert header == WeightsHeader(0, 2, 5, 0)
    out = tmp_path / "again.weights"
    save_weights(model, out, header)
    assert out.read_bytes() == source.read_bytes()
    again = build_model(shipped_cfg(name))
    load_weights(again, out)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("header", "header_bytes"),
    [
        (WeightsHeader(0, 2, 5, 32_013_312), 20),  # darknet's current files: int64 seen
        (WeightsHeader(0, 1, 0, 1000), 16),  # old files: int32 seen
        (WeightsHeader(1, 0, 0, 123), 20),
    ],
)
def test_header_variants(header: WeightsHeader, header_bytes: int, tmp_path: Path) -> None:
    model = build_model(shipped_cfg("yolov3-tiny-prn"))
    path = tmp_path / "h.weights"
    save_weights(model, path, header)
    data = path.read_bytes()
    assert len(data) == header_bytes + 4 * 4_939_758
    assert read_header(data, "h.weights") == header
    assert load_weights(build_model(shipped_cfg("yolov3-tiny-prn")), path) == header


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        (-4, "truncated: expected 19759052 bytes"),
        (8, "too long: expected 19759052 bytes"),
        (-19759040, "expected a darknet weights header of at least 16 bytes, got 12 bytes"),
    ],
)
def test_wrong_size_weights(cut: int, expected: str, random_weights: Callable[[str], Path], tmp_path: Path) -> None:
    data = random_weights("yolov3-tiny-prn").read_bytes()
    assert len(data) == 19_759_052
    bad = tmp_path / "bad.weights"
    bad.write_bytes(data[:cut] if cut < 0 else data + b"\0" * cut)
    with pytest.raises(WeightsError) as err:
        load_weights(build_model(shipped_cfg("yolov3-tiny-prn")), bad)
    assert expected in str(err.value)
    assert str(bad) in str(err.value)
    if cut == -4:
        assert "got 19759048 bytes" in str(err.value)


def test_weights_of_another_cfg(random_weights: Callable[[str], Path]) -> None:
    with pytest.raises(WeightsError, match="too long"):
        load_weights(build_model(shipped_cfg("yolov3-tiny-prn")), random_weights("yolov3-tiny"))


@pytest.mark.parametrize(
    ("c_current", "c_other"),
    [(4, 4), (4, 6), (6, 4)],
)
def test_partial_add(c_current: int, c_other: int) -> None:
    cur = torch.randn(2, c_current, 3, 3)
    other = torch.randn(2, c_other, 3, 3)
    out = partial_add(cur, other)
    c = min(c_current, c_other)
    assert out.shape == cur.shape
    assert torch.equal(out[:, :c], cur[:, :c] + other[:, :c])
    assert torch.equal(out[:, c:], cur[:, c:])


@pytest.mark.parametrize(("size", "stride", "h_in", "h_out"), [(2, 1, 13, 13), (2, 2, 26, 13), (2, 2, 13, 7), (3, 2, 9, 5), (3, 3, 10, 4), (3, 1, 5, 5)])
def test_darknet_maxpool_pads_right_bottom(size: int, stride: int, h_in: int, h_out: int) -> None:
    x = torch.randn(1, 2, h_in, h_in)
    out = DarknetMaxPool(MaxPoolSpec(size, stride))(x)
    assert out.shape[-2:] == (h_out, h_out)
    # reference: -inf padding on the right/bottom, windows starting at multiples of stride
    padded = torch.full((1, 2, h_in + size, h_in + size), float("-inf"))
    padded[:, :, :h_in, :h_in] = x
    for i in range(h_out):
        for j in range(h_out):
            window = padded[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            assert torch.equal(out[:, :, i, j], window.amax(dim=(-2, -1)))
