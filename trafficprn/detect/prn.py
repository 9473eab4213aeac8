"""Partial residual network (PRN) building blocks, as plain torch modules.

Wang et al., "Enriching Variety of Layer-wise Learning Information by Gradient
Combination" (ICCV-W 2019), eq. (1): a shortcut from layer l-k into layer l adds only the
first c channels,

    x_l = [ H_l(x_{l-1})[0:c] + x_{l-k}[0:c] ,  H_l(x_{l-1})[c:c2] ],   c <= c1, c <= c2

where c1 = channels of x_{l-k} and c2 = channels of H_l's output. c = 0 is a plain
layer; c = c1 = c2 is a ResNet block. Because the widths need not match, the width can
shrink or grow freely inside a stage (`PRNStage`: shrink / expand / bottleneck, ratio
gamma). Darknet's `[shortcut]` between different widths is the case c = min(c1, c2)
(`trafficprn.detect.darknet.partial_add`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trafficprn.errors import ConfigError

StageKind = Literal["shrink", "expand", "bottleneck"]


def partial_residual(h: torch.Tensor, skip: torch.Tensor, c: int) -> torch.Tensor:
    """Eq. (1): add the first `c` channels of `skip` (B, c1, H, W) to those of `h`
    (B, c2, H, W); the other channels of `h` pass unchanged. Output (B, c2, H, W)."""
    c1, c2 = int(skip.shape[1]), int(h.shape[1])
    if not 0 <= c <= min(c1, c2):
        raise ConfigError(f"partial residual needs 0 <= c <= min(c1={c1}, c2={c2}), got c={c}")
    if c == 0:
        return h
    if c == c2:
        return h + skip[:, :c]
    return torch.cat([h[:, :c] + skip[:, :c], h[:, c:]], dim=1)


def conv_bn_leaky(c_in: int, c_out: int, size: int = 3, stride: int = 1) -> nn.Sequential:
    """Darknet's usual layer: conv (no bias), BN, leaky ReLU 0.1."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, size, stride=stride, padding=size // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.1),
    )


class PartialResidual(nn.Module):
    """x -> partial_residual(body(x), x, c): a layer `body` (c1 -> c2 channels, same
    spatial size) with a shortcut over its first `c` channels (k = 1). `c=None` means
    min(c1, c2), darknet's partial shortcut."""

    def __init__(self, body: nn.Module, c1: int, c2: int, c: int | None = None):
        super().__init__()
        c = min(c1, c2) if c is None else c
        if not 0 <= c <= min(c1, c2):
            raise ConfigError(f"partial residual needs 0 <= c <= min(c1={c1}, c2={c2}), got c={c}")
        self.body = body
        self.c1, self.c2, self.c = c1, c2, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return partial_residual(self.body(x), x, self.c)


def stage_widths(c: int, depth: int, gamma: float, kind: StageKind) -> list[int]:
    """Channel widths w_0 (stage input) .. w_depth of a PRN stage, linear in the layer
    index, following the paper's three designs with ratio gamma = smallest / largest:

    shrink: c -> gamma*c; expand: gamma*c -> c; bottleneck: c -> gamma*c (middle) -> c.
    """
    if depth < 1:
        raise ConfigError(f"a PRN stage needs depth >= 1, got {depth}")
    if not 0.0 < gamma <= 1.0:
        raise ConfigError(f"gamma must be in (0, 1], got {gamma}")
    if kind == "shrink":
        fractions = [1.0 - (1.0 - gamma) * i / depth for i in range(depth + 1)]
    elif kind == "expand":
        fractions = [gamma + (1.0 - gamma) * i / depth for i in range(depth + 1)]
    elif kind == "bottleneck":
        fractions = [1.0 - (1.0 - gamma) * (1.0 - abs(2.0 * i / depth - 1.0)) for i in range(depth + 1)]
    else:
        raise ConfigError(f"stage kind must be shrink, expand or bottleneck, got {kind!r}")
    return [max(1, int(round(c * f))) for f in fractions]


class PRNStage(nn.Sequential):
    """`depth` 3x3 conv-BN-leaky layers whose widths follow `stage_widths`, each with a
    partial residual shortcut from its input over min(w_{i-1}, w_i) channels.

    Input (B, widths[0], H, W) -> output (B, widths[-1], H, W).
    """

    def __init__(self, c: int, depth: int, gamma: float = 0.5, kind: StageKind = "shrink"):
        self.widths = stage_widths(c, depth, gamma, kind)
        layers = [
            PartialResidual(conv_bn_leaky(w_in, w_out), w_in, w_out)
            for w_in, w_out in zip(self.widths[:-1], self.widths[1:], strict=True)
        ]
        super().__init__(*layers)


def prn_shrink(c: int, depth: int, gamma: float = 0.5) -> PRNStage:
    """Width falls linearly from c to gamma*c (the paper's best design)."""
    return PRNStage(c, depth, gamma, "shrink")


def prn_expand(c: int, depth: int, gamma: float = 0.5) -> PRNStage:
    """Width grows linearly from gamma*c to c."""
    return PRNStage(c, depth, gamma, "expand")


def prn_bottleneck(c: int, depth: int, gamma: float = 0.5) -> PRNStage:
    """Width falls to gamma*c in the middle of the stage and grows back to c."""
    return PRNStage(c, depth, gamma, "bottleneck")
