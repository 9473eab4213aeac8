"""PyTorch models built from darknet cfgs, and darknet `.weights` read and write.

`build_model(cfg)` returns a `DarknetModel` whose forward returns the raw head tensors
(the conv outputs feeding each `[yolo]` layer), each (B, A*(5+C), H, W), in cfg order.
Decoding them into boxes is `trafficprn.detect.postprocess`'s job, so the same numbers
come out of PyTorch and of the exported ONNX graph.

Darknet semantics kept here (they decide weight compatibility):
- `[maxpool]` pads size-1 px on the right and bottom, so size=2 stride=1 keeps the size;
- `[shortcut]` between tensors of different channel counts adds only the first
  min(c_current, c_from) channels and keeps the current layer's channel count (PRN);
- `.weights`: int32 major, minor, revision, then `seen` (int64 when major*10+minor >= 2,
  else int32), then per conv layer: biases, [BN scales, rolling mean, rolling var],
  conv weights, all float32 little-endian.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trafficprn.detect.cfg import (
    ConvSpec,
    DarknetCfg,
    MaxPoolSpec,
    RouteSpec,
    ShortcutSpec,
    UpsampleSpec,
    YoloSpec,
    infer_shapes,
    parse_cfg,
)
from trafficprn.errors import WeightsError

DARKNET_BN_EPS = 1e-5
LEAKY_SLOPE = 0.1


def activation_module(name: str) -> nn.Module:
    if name == "leaky":
        return nn.LeakyReLU(LEAKY_SLOPE)
    if name == "linear":
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    if name == "mish":
        return nn.Mish()
    if name == "swish":
        return nn.SiLU()
    if name == "logistic":
        return nn.Sigmoid()
    raise ValueError(f"unknown activation {name!r}")


class ConvBlock(nn.Module):
    """Darknet `[convolutional]`: conv (bias only without BN), optional BN, activation."""

    def __init__(self, c_in: int, spec: ConvSpec, bn_eps: float = DARKNET_BN_EPS):
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv2d(
            c_in,
            spec.filters,
            spec.size,
            stride=spec.stride,
            padding=spec.padding,
            groups=spec.groups,
            bias=not spec.batch_normalize,
        )
        self.bn = nn.BatchNorm2d(spec.filters, eps=bn_eps, momentum=0.01) if spec.batch_normalize else None
        self.act = activation_module(spec.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        out: torch.Tensor = self.act(x)
        return out


class DarknetMaxPool(nn.Module):
    """Darknet max-pool: out = (in - 1) // stride + 1, padding size-1 on the right and
    bottom only (padded values never win).

    Written with ops that export to plain ONNX MaxPool (+ a constant Slice): size 2
    stride 1 is a pool padded on all sides with its first row/column dropped, stride ==
    size is a ceil-mode pool; other combinations pad by edge replication, which gives
    the same maxima (every padded window also holds the edge value it copies).
    """

    def __init__(self, spec: MaxPoolSpec):
        super().__init__()
        self.size = spec.size
        self.stride = spec.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 1:
            return x[:, :, :: self.stride, :: self.stride]
        if self.size == 2 and self.stride == 1:
            return F.max_pool2d(x, 2, 1, padding=1)[:, :, 1:, 1:]
        if self.size == self.stride:
            return F.max_pool2d(x, self.size, self.stride, ceil_mode=True)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        pad_h = ((h - 1) // self.stride) * self.stride + self.size - h
        pad_w = ((w - 1) // self.stride) * self.stride + self.size - w
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, (0, max(pad_w, 0), 0, max(pad_h, 0)), mode="replicate")
        return F.max_pool2d(x, self.size, self.stride)


class Upsample(nn.Module):
    def __init__(self, spec: UpsampleSpec):
        super().__init__()
        self.stride = spec.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=float(self.stride), mode="nearest")


def partial_add(current: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Add `other` to `current` over their first min(c_current, c_other) channels;
    the result has `current`'s channels (darknet's shortcut, PRN's partial residual)."""
    c_cur, c_other = int(current.shape[1]), int(other.shape[1])
    if c_cur == c_other:
        return current + other
    if c_cur < c_other:
        return current + other[:, :c_cur]
    return torch.cat([current[:, :c_other] + other, current[:, c_other:]], dim=1)


class Shortcut(nn.Module):
    def __init__(self, spec: ShortcutSpec):
        super().__init__()
        self.from_layer = spec.from_layer
        self.act = activation_module(spec.activation)

    def forward(self, current: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(partial_add(current, other))
        return out


class Route(nn.Module):
    def __init__(self, spec: RouteSpec):
        super().__init__()
        self.layers = spec.layers
        self.groups = spec.groups
        self.group_id = spec.group_id

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.groups > 1:
            parts = []
            for x in inputs:
                step = x.shape[1] // self.groups
                parts.append(x[:, self.group_id * step : (self.group_id + 1) * step])
            inputs = parts
        return inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)


class YoloHead(nn.Module):
    """Marks where a head's raw tensor leaves the network; decoding is done outside."""

    def __init__(self, spec: YoloSpec):
        super().__init__()
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@dataclass(frozen=True)
class HeadInfo:
    """One detection head: its layer, stride (input px per cell), anchors and classes."""

    layer: int
    stride: int
    anchors_px: tuple[tuple[float, float], ...]
    classes: int
    scale_x_y: float

    def to_json(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "stride": self.stride,
            "anchors_px": [list(a) for a in self.anchors_px],
            "classes": self.classes,
            "scale_x_y": self.scale_x_y,
        }


class DarknetModel(nn.Module):
    """A network from a darknet cfg. forward(x (B, C, H, W) float in [0, 1], RGB) returns
    the list of raw head tensors (B, A*(5+C), H/stride, W/stride), one per `[yolo]`."""

    def __init__(self, cfg: DarknetCfg, *, bn_eps: float = DARKNET_BN_EPS):
        super().__init__()
        self.cfg = cfg
        shapes = infer_shapes(cfg, cfg.net.width, cfg.net.height)
        modules: list[nn.Module] = []
        c_in = cfg.net.channels
        for i, layer in enumerate(cfg.layers):
            if isinstance(layer, ConvSpec):
                modules.append(ConvBlock(c_in, layer, bn_eps))
            elif isinstance(layer, MaxPoolSpec):
                modules.append(DarknetMaxPool(layer))
            elif isinstance(layer, UpsampleSpec):
                modules.append(Upsample(layer))
            elif isinstance(layer, RouteSpec):
                modules.append(Route(layer))
            elif isinstance(layer, ShortcutSpec):
                modules.append(Shortcut(layer))
            else:
                modules.append(YoloHead(layer))
            c_in = shapes[i].channels
        self.layers = nn.ModuleList(modules)
        needed: set[int] = set()
        for layer in cfg.layers:
            if isinstance(layer, RouteSpec):
                needed.update(layer.layers)
            elif isinstance(layer, ShortcutSpec):
                needed.add(layer.from_layer)
        self._keep = frozenset(needed)
        self.heads = [
            HeadInfo(
                layer=i,
                stride=cfg.net.width // shapes[i].width,
                anchors_px=layer.head_anchors_px,
                classes=layer.classes,
                scale_x_y=layer.scale_x_y,
            )
            for i, layer in enumerate(cfg.layers)
            if isinstance(layer, YoloSpec)
        ]

    @property
    def class_count(self) -> int:
        return self.heads[0].classes if self.heads else 0

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        saved: dict[int, torch.Tensor] = {}
        heads: list[torch.Tensor] = []
        for i, module in enumerate(self.layers):
            if isinstance(module, Route):
                x = module([saved[j] for j in module.layers])
            elif isinstance(module, Shortcut):
                x = module(x, saved[module.from_layer])
            elif isinstance(module, YoloHead):
                heads.append(x)
            else:
                x = module(x)
            if i in self._keep:
                saved[i] = x
        return heads


def fused_for_inference(model: DarknetModel) -> DarknetModel:
    """An eval-mode copy of `model` with every BN folded into its conv (same outputs up
    to float rounding, fewer ops). The original is left as it is."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    for module in fused.layers:
        if isinstance(module, ConvBlock) and module.bn is not None:
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = None
    return fused


def build_model(cfg: str | Path | DarknetCfg, *, bn_eps: float = DARKNET_BN_EPS) -> DarknetModel:
    """Build the torch model of a darknet cfg (a path or a parsed `DarknetCfg`), in eval mode."""
    parsed = cfg if isinstance(cfg, DarknetCfg) else parse_cfg(cfg)
    return DarknetModel(parsed, bn_eps=bn_eps).eval()


# ---------------------------------------------------------------- .weights


@dataclass(frozen=True)
class WeightsHeader:
    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def seen_is_int64(self) -> bool:
        return self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def nbytes(self) -> int:
        return 12 + (8 if self.seen_is_int64 else 4)


def _conv_blocks(model: DarknetModel) -> list[ConvBlock]:
    return [m for m in model.layers if isinstance(m, ConvBlock)]


def _tensors_in_file_order(block: ConvBlock) -> list[torch.Tensor]:
    if block.bn is not None:
        assert block.bn.running_mean is not None and block.bn.running_var is not None
        return [block.bn.bias, block.bn.weight, block.bn.running_mean, block.bn.running_var, block.conv.weight]
    assert block.conv.bias is not None
    return [block.conv.bias, block.conv.weight]


def expected_weights_values(model: DarknetModel) -> int:
    return sum(t.numel() for b in _conv_blocks(model) for t in _tensors_in_file_order(b))


def read_header(data: bytes, source: str) -> WeightsHeader:
    if len(data) < 16:
        raise WeightsError(f"{source}: expected a darknet weights header of at least 16 bytes, got {len(data)} bytes")
    major, minor, revision = (int(v) for v in np.frombuffer(data[:12], dtype="<i4"))
    header = WeightsHeader(major, minor, revision, 0)
    if header.seen_is_int64:
        seen = int(np.frombuffer(data[12:20], dtype="<i8")[0]) if len(data) >= 20 else 0
    else:
        seen = int(np.frombuffer(data[12:16], dtype="<i4")[0])
    return WeightsHeader(major, minor, revision, seen)


def load_weights(model: DarknetModel, path: str | Path) -> WeightsHeader:
    """Fill `model` from a darknet `.weights` file; the file must have exactly the size
    the cfg implies. Returns the header."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{p}: cannot read weights: {exc.strerror or exc}") from None
    header = read_header(data, str(p))
    n_values = expected_weights_values(model)
    expected = header.nbytes + 4 * n_values
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "too long"
        raise WeightsError(
            f"{p}: weights file is {kind}: expected {expected} bytes ({n_values} float32 values for "
            f"{Path(model.cfg.source).name} after a {header.nbytes}-byte header), got {len(data)} bytes"
        )
    values = np.frombuffer(data, dtype="<f4", offset=header.nbytes)
    offset = 0
    with torch.no_grad():
        for block in _conv_blocks(model):
            for tensor in _tensors_in_file_order(block):
                n = tensor.numel()
                tensor.copy_(torch.from_numpy(values[offset : offset + n].copy()).view_as(tensor))
                offset += n
    return header


def save_weights(model: DarknetModel, path: str | Path, header: WeightsHeader | None = None) -> None:
    """Write `model` as a darknet `.weights` file (major 0, minor 2 by default)."""
    head = header or WeightsHeader()
    parts = [np.array([head.major, head.minor, head.revision], dtype="<i4").tobytes()]
    parts.append(np.array([head.seen], dtype="<i8" if head.seen_is_int64 else "<i4").tobytes())
    with torch.no_grad():
        for block in _conv_blocks(model):
            for tensor in _tensors_in_file_order(block):
                parts.append(tensor.detach().cpu().numpy().astype("<f4").reshape(-1).tobytes())
    Path(path).write_bytes(b"".join(parts))


def randomize_weights(model: DarknetModel, seed: int = 0) -> None:
    """Random but well-scaled weights (He-like conv init, BN stats near identity), so
    activations stay O(1) through the whole network. For tests and benchmarks."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in _conv_blocks(model):
            w = block.conv.weight
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            w.copy_(torch.randn(w.shape, generator=gen) * (1.0 / fan_in) ** 0.5)
            if block.bn is not None:
                n = w.shape[0]
                assert block.bn.running_mean is not None and block.bn.running_var is not None
                block.bn.weight.copy_(0.5 + torch.rand(n, generator=gen))
                block.bn.bias.copy_(0.1 * torch.randn(n, generator=gen))
                block.bn.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                block.bn.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            else:
                assert block.conv.bias is not None
                block.conv.bias.copy_(0.1 * torch.randn(w.shape[0], generator=gen))
