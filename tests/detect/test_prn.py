"""PRN blocks: eq. (1) and its two limits (c = 0: a plain layer; c = c1 = c2: ResNet),
stage widths with ratio gamma, and agreement with darknet's partial shortcut."""

from __future__ import annotations

import pytest
import torch

from trafficprn.detect.darknet import partial_add
from trafficprn.detect.prn import (
    PartialResidual,
    PRNStage,
    conv_bn_leaky,
    partial_residual,
    prn_bottleneck,
    prn_expand,
    prn_shrink,
    stage_widths,
)
from trafficprn.errors import ConfigError


def make_layer(c1: int, c2: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return conv_bn_leaky(c1, c2).eval()


@pytest.mark.parametrize(("c1", "c2"), [(8, 8), (8, 12), (12, 8)])
def test_c_zero_is_a_plain_layer(c1: int, c2: int) -> None:
    x = torch.randn(2, c1, 6, 6)
    body = make_layer(c1, c2)
    block = PartialResidual(body, c1, c2, c=0).eval()
    assert torch.equal(block(x), body(x))


def test_full_c_is_a_resnet_block() -> None:
    x = torch.randn(2, 8, 6, 6)
    body = make_layer(8, 8)
    block = PartialResidual(body, 8, 8, c=8).eval()
    assert torch.equal(block(x), body(x) + x)


@pytest.mark.parametrize(("c1", "c2", "c"), [(8, 12, 4), (12, 8, 8), (8, 8, 3)])
def test_equation_one(c1: int, c2: int, c: int) -> None:
    h, skip = torch.randn(1, c2, 4, 4), torch.randn(1, c1, 4, 4)
    out = partial_residual(h, skip, c)
    assert out.shape == h.shape
    assert torch.equal(out[:, :c], h[:, :c] + skip[:, :c])
    assert torch.equal(out[:, c:], h[:, c:])


@pytest.mark.parametrize(("c1", "c2"), [(8, 12), (12, 8), (8, 8)])
def test_darknet_shortcut_is_c_min(c1: int, c2: int) -> None:
    h, skip = torch.randn(1, c2, 4, 4), torch.randn(1, c1, 4, 4)
    assert torch.equal(partial_residual(h, skip, min(c1, c2)), partial_add(h, skip))


@pytest.mark.parametrize(
    ("kind", "gamma", "expected", "error"),
    [
        ("shrink", 0.5, [64, 56, 48, 40, 32], None),
        ("shrink", 0.75, [64, 60, 56, 52, 48], None),
        ("expand", 0.5, [32, 40, 48, 56, 64], None),
        ("bottleneck", 0.5, [64, 48, 32, 48, 64], None),
        ("shrink", 0.0, None, ConfigError),
        ("sideways", 0.5, None, ConfigError),
    ],
)
def test_stage_widths(kind: str, gamma: float, expected: list[int] | None, error: type[Exception] | None) -> None:
    if error is not None:
        with pytest.raises(error):
            stage_widths(64, 4, gamma, kind)  # type: ignore[arg-type]
        return
    assert stage_widths(64, 4, gamma, kind) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("make", "c_in", "c_out"), [(prn_shrink, 64, 32), (prn_expand, 32, 64), (prn_bottleneck, 64, 64)])
def test_stages_run(make: object, c_in: int, c_out: int) -> None:
    stage = make(64, 4, 0.5)  # type: ignore[operator]
    assert isinstance(stage, PRNStage)
    out = stage.eval()(torch.randn(1, c_in, 8, 8))
    assert out.shape == (1, c_out, 8, 8)


def test_bad_c_is_rejected() -> None:
    with pytest.raises(ConfigError, match="0 <= c <= min"):
        PartialResidual(make_layer(8, 4), 8, 4, c=6)
