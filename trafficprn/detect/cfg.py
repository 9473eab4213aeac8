"""Darknet `.cfg` files parsed into typed layer specs, and the shapes they produce.

`parse_cfg(path)` reads a cfg into a `DarknetCfg`: the `[net]` section and one spec per
layer, with every relative layer reference (`from=-3`, `layers=-1,8`) resolved to an
absolute layer index. An unknown section or key, or a value that does not parse, raises
`ConfigError` naming ``file:line``.

`infer_shapes(cfg, width, height)` gives each layer's output (channels, height, width),
checking that routes and shortcuts join compatible tensors. `model_info` counts the
values a darknet `.weights` file holds, the trainable parameters and BFLOPs
(2 x multiply-adds over conv layers, darknet's convention).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafficprn.errors import ConfigError

ACTIVATIONS = frozenset({"leaky", "linear", "mish", "swish", "logistic", "relu"})

# [net] keys are training hyper-parameters for darknet; we keep them verbatim so a cfg
# can be written back, and only interpret width/height/channels.
_NET_KEY_NAMES = (
    "batch subdivisions width height channels momentum decay angle saturation exposure hue "
    "learning_rate burn_in max_batches policy steps scales mosaic letter_box flip blur gaussian_noise "
    "mixup cutmix aspect jitter max_chart_loss adam B1 B2 eps power min_crop max_crop track "
    "time_steps augment_speed sequential_subdivisions try_fix_nan resize_step ema_alpha "
    "label_smooth_eps loss_scale dynamic_minibatch optimized_memory workspace_size_limit_MB "
    "max_batches_ inputs gamma step seed"
)
NET_KEYS = frozenset(_NET_KEY_NAMES.split())
_YOLO_IGNORED_NAMES = (
    "num jitter ignore_thresh truth_thresh random iou_thresh cls_normalizer iou_normalizer "
    "obj_normalizer iou_loss iou_thresh_kind nms_kind beta_nms max_delta resize counters_per_class "
    "label_smooth_eps focal_loss objectness_smooth max new_coords track_history_size sim_thresh "
    "dets_for_track dets_for_show track_ciou_norm embedding_layer map"
)
YOLO_IGNORED_KEYS = frozenset(_YOLO_IGNORED_NAMES.split())


@dataclass(frozen=True)
class NetSpec:
    """The `[net]` section: input size and the raw training options (strings)."""

    width: int
    height: int
    channels: int
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConvSpec:
    filters: int
    size: int
    stride: int
    pad: int  # darknet's flag: 1 means padding = size // 2
    groups: int
    batch_normalize: bool
    activation: str
    line: int = 0

    @property
    def padding(self) -> int:
        return self.size // 2 if self.pad else 0


@dataclass(frozen=True)
class MaxPoolSpec:
    """Darknet max-pool: `padding` defaults to size-1, placed right/bottom (offset 0)."""

    size: int
    stride: int
    line: int = 0


@dataclass(frozen=True)
class RouteSpec:
    """Concatenation of absolute `layers`, each cut to channel group `group_id` of `groups`."""

    layers: tuple[int, ...]
    groups: int = 1
    group_id: int = 0
    line: int = 0


@dataclass(frozen=True)
class ShortcutSpec:
    """Adds layer `from_layer` (absolute) to the previous layer over their common channels."""

    from_layer: int
    activation: str = "linear"
    line: int = 0


@dataclass(frozen=True)
class UpsampleSpec:
    stride: int
    line: int = 0


@dataclass(frozen=True)
class YoloSpec:
    """A detection head. `anchors_px` holds all anchors (w, h) in network-input px;
    `mask` picks this head's ones."""

    mask: tuple[int, ...]
    anchors_px: tuple[tuple[float, float], ...]
    classes: int
    scale_x_y: float = 1.0
    line: int = 0

    @property
    def head_anchors_px(self) -> tuple[tuple[float, float], ...]:
        return tuple(self.anchors_px[i] for i in self.mask)


LayerSpec = ConvSpec | MaxPoolSpec | RouteSpec | ShortcutSpec | UpsampleSpec | YoloSpec


@dataclass(frozen=True)
class DarknetCfg:
    """A parsed cfg: `layers[i]` is darknet layer i (the first section after `[net]` is 0)."""

    net: NetSpec
    layers: tuple[LayerSpec, ...]
    source: str = "<cfg>"

    @property
    def yolo_indices(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if isinstance(layer, YoloSpec)]

    @property
    def classes(self) -> int:
        heads = [self.layers[i] for i in self.yolo_indices]
        if not heads:
            return 0
        return heads[0].classes  # type: ignore[union-attr]


@dataclass(frozen=True)
class Shape:
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class ModelInfo:
    """Size of a model at one input size.

    weights_values: float32 values a darknet `.weights` file holds (after the header).
    trainable_params: learnable parameters (conv weights, biases, BN scale and shift).
    bflops: 2 x multiply-adds of the conv layers, in 1e9.
    """

    weights_values: int
    trainable_params: int
    bflops: float
    width: int
    height: int
    layers: int
    conv_layers: int


# ---------------------------------------------------------------- parsing


@dataclass
class _Section:
    name: str
    line: int
    options: dict[str, tuple[str, int]] = field(default_factory=dict)


def _read_sections(text: str, source: str) -> list[_Section]:
    sections: list[_Section] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"malformed section header {raw.strip()!r}", source=f"{source}:{lineno}")
            sections.append(_Section(line[1:-1].strip().lower(), lineno))
            continue
        if "=" not in line:
            raise ConfigError(f"expected 'key=value', got {raw.strip()!r}", source=f"{source}:{lineno}")
        if not sections:
            raise ConfigError("option before the first [section]", source=f"{source}:{lineno}")
        key, value = (s.strip() for s in line.split("=", 1))
        if key in sections[-1].options:
            raise ConfigError(f"duplicate key {key!r}", source=f"{source}:{lineno}")
        sections[-1].options[key] = (value, lineno)
    return sections


class _Options:
    """Typed access to one section's options; every key must be consumed or allowed."""

    def __init__(self, section: _Section, source: str):
        self.section = section
        self.source = source
        self.used: set[str] = set()

    def where(self, key: str | None = None) -> str:
        if key is not None and key in self.section.options:
            return f"{self.source}:{self.section.options[key][1]}"
        return f"{self.source}:{self.section.line}"

    def _get(self, key: str, default: Any, convert: Callable[[str], Any], expected: str) -> Any:
        self.used.add(key)
        if key not in self.section.options:
            if default is _REQUIRED:
                raise ConfigError(f"[{self.section.name}] needs {key}=", source=self.where())
            return default
        value = self.section.options[key][0]
        try:
            return convert(value)
        except ValueError:
            raise ConfigError(
                f"[{self.section.name}] {key}: expected {expected}, got {value!r}", source=self.where(key)
            ) from None

    def int(self, key: str, default: Any = None, *, minimum: int | None = None) -> Any:
        value = self._get(key, default, int, "an integer")
        if minimum is not None and value is not None and value < minimum:
            raise ConfigError(
                f"[{self.section.name}] {key}: expected >= {minimum}, got {value}", source=self.where(key)
            )
        return value

    def float(self, key: str, default: Any = None) -> Any:
        return self._get(key, default, float, "a number")

    def ints(self, key: str, default: Any = None) -> Any:
        return self._get(key, default, _int_list, "comma-separated integers")

    def floats(self, key: str, default: Any = None) -> Any:
        return self._get(key, default, _float_list, "comma-separated numbers")

    def choice(self, key: str, default: str, choices: frozenset[str]) -> str:
        value: str = self._get(key, default, str, "a string")
        if value not in choices:
            raise ConfigError(
                f"[{self.section.name}] {key}: expected one of {', '.join(sorted(choices))}, got {value!r}",
                source=self.where(key),
            )
        return value

    def check_unknown(self, allowed: frozenset[str] = frozenset()) -> None:
        for key in self.section.options:
            if key not in self.used and key not in allowed:
                raise ConfigError(f"unknown key {key!r} in [{self.section.name}]", source=self.where(key))


_REQUIRED = object()


def _int_list(value: str) -> tuple[int, ...]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError(value)
    return tuple(int(p) for p in parts)


def _float_list(value: str) -> tuple[float, ...]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError(value)
    return tuple(float(p) for p in parts)


def _absolute(ref: int, index: int, opts: _Options, key: str) -> int:
    """Darknet layer references: negative is relative to this layer, else absolute."""
    target = index + ref if ref < 0 else ref
    if not 0 <= target < index:
        raise ConfigError(
            f"[{opts.section.name}] {key}: layer {ref} resolves to {target}, expected one of the "
            f"previous layers 0..{index - 1}",
            source=opts.where(key),
        )
    return target


def _parse_net(opts: _Options) -> NetSpec:
    width = opts.int("width", _REQUIRED, minimum=1)
    height = opts.int("height", _REQUIRED, minimum=1)
    channels = opts.int("channels", 3, minimum=1)
    opts.check_unknown(NET_KEYS)
    extras = {k: v for k, (v, _) in opts.section.options.items() if k not in {"width", "height", "channels"}}
    return NetSpec(width=width, height=height, channels=channels, options=extras)


def _parse_layer(opts: _Options, index: int) -> LayerSpec:
    name = opts.section.name
    line = opts.section.line
    spec: LayerSpec
    if name in ("convolutional", "conv"):
        spec = ConvSpec(
            filters=opts.int("filters", 1, minimum=1),
            size=opts.int("size", 1, minimum=1),
            stride=opts.int("stride", 1, minimum=1),
            pad=opts.int("pad", 0, minimum=0),
            groups=opts.int("groups", 1, minimum=1),
            batch_normalize=bool(opts.int("batch_normalize", 0, minimum=0)),
            activation=opts.choice("activation", "logistic", ACTIVATIONS),
            line=line,
        )
        if "padding" in opts.section.options:
            raise ConfigError("[convolutional] padding= is not supported, use pad=1", source=opts.where("padding"))
    elif name in ("maxpool", "max"):
        spec = MaxPoolSpec(size=opts.int("size", 1, minimum=1), stride=opts.int("stride", 1, minimum=1), line=line)
    elif name == "route":
        refs = opts.ints("layers", _REQUIRED)
        spec = RouteSpec(
            layers=tuple(_absolute(r, index, opts, "layers") for r in refs),
            groups=opts.int("groups", 1, minimum=1),
            group_id=opts.int("group_id", 0, minimum=0),
            line=line,
        )
        if spec.group_id >= spec.groups:
            raise ConfigError(
                f"[route] group_id: expected < groups={spec.groups}, got {spec.group_id}", source=opts.where("group_id")
            )
    elif name == "shortcut":
        spec = ShortcutSpec(
            from_layer=_absolute(opts.int("from", _REQUIRED), index, opts, "from"),
            activation=opts.choice("activation", "linear", ACTIVATIONS),
            line=line,
        )
    elif name == "upsample":
        spec = UpsampleSpec(stride=opts.int("stride", 2, minimum=1), line=line)
    elif name == "yolo":
        classes = opts.int("classes", 20, minimum=1)
        anchors = opts.floats("anchors", _REQUIRED)
        if len(anchors) % 2:
            raise ConfigError("[yolo] anchors: expected pairs w,h, got an odd count", source=opts.where("anchors"))
        pairs = tuple((anchors[i], anchors[i + 1]) for i in range(0, len(anchors), 2))
        mask = opts.ints("mask", tuple(range(len(pairs))))
        bad = [m for m in mask if not 0 <= m < len(pairs)]
        if bad:
            raise ConfigError(f"[yolo] mask: {bad} outside the {len(pairs)} anchors", source=opts.where("mask"))
        num = opts.int("num", len(pairs))
        if num != len(pairs):
            raise ConfigError(f"[yolo] num={num} but {len(pairs)} anchors are given", source=opts.where("num"))
        spec = YoloSpec(mask=mask, anchors_px=pairs, classes=classes, scale_x_y=opts.float("scale_x_y", 1.0), line=line)
    else:
        raise ConfigError(f"unknown section [{name}]", source=f"{opts.source}:{line}")
    opts.check_unknown(YOLO_IGNORED_KEYS if name == "yolo" else frozenset())
    return spec


def parse_cfg_text(text: str, source: str = "<cfg>") -> DarknetCfg:
    """Parse cfg text; `source` names it in errors."""
    sections = _read_sections(text, source)
    if not sections or sections[0].name not in ("net", "network"):
        raise ConfigError("a darknet cfg starts with a [net] section", source=f"{source}:1")
    net = _parse_net(_Options(sections[0], source))
    layers = tuple(_parse_layer(_Options(s, source), i) for i, s in enumerate(sections[1:]))
    if not layers:
        raise ConfigError("no layers after [net]", source=source)
    cfg = DarknetCfg(net=net, layers=layers, source=source)
    infer_shapes(cfg, net.width, net.height)
    return cfg


def parse_cfg(path: str | Path) -> DarknetCfg:
    """Read and parse a darknet cfg file (also checks its shapes at the [net] size)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read cfg: {exc.__class__.__name__}: {exc}", source=str(p)) from None
    return parse_cfg_text(text, source=str(p))


# ---------------------------------------------------------------- shapes and counts


def maxpool_out(size_in: int, spec: MaxPoolSpec) -> int:
    """Darknet: padding = size - 1, out = (in + padding - size) // stride + 1."""
    return (size_in - 1) // spec.stride + 1


def infer_shapes(cfg: DarknetCfg, width: int, height: int) -> list[Shape]:
    """Output shape of every layer for an input of `width` x `height` px."""
    shapes: list[Shape] = []
    current = Shape(cfg.net.channels, height, width)
    for i, layer in enumerate(cfg.layers):
        where = f"{cfg.source}:{layer.line}"
        if isinstance(layer, ConvSpec):
            if current.channels % layer.groups or layer.filters % layer.groups:
                raise ConfigError(
                    f"layer {i} [convolutional]: groups={layer.groups} must divide input channels "
                    f"{current.channels} and filters {layer.filters}",
                    source=where,
                )
            h = (current.height + 2 * layer.padding - layer.size) // layer.stride + 1
            w = (current.width + 2 * layer.padding - layer.size) // layer.stride + 1
            current = Shape(layer.filters, h, w)
        elif isinstance(layer, MaxPoolSpec):
            current = Shape(current.channels, maxpool_out(current.height, layer), maxpool_out(current.width, layer))
        elif isinstance(layer, UpsampleSpec):
            current = Shape(current.channels, current.height * layer.stride, current.width * layer.stride)
        elif isinstance(layer, RouteSpec):
            parts = [shapes[j] for j in layer.layers]
            if len({(s.height, s.width) for s in parts}) != 1:
                raise ConfigError(
                    f"layer {i} [route]: inputs {list(layer.layers)} have different sizes "
                    f"{[(s.height, s.width) for s in parts]}",
                    source=where,
                )
            if any(s.channels % layer.groups for s in parts):
                raise ConfigError(f"layer {i} [route]: groups={layer.groups} must divide input channels", source=where)
            channels = sum(s.channels // layer.groups for s in parts)
            current = Shape(channels, parts[0].height, parts[0].width)
        elif isinstance(layer, ShortcutSpec):
            other = shapes[layer.from_layer]
            if (other.height, other.width) != (current.height, current.width):
                raise ConfigError(
                    f"layer {i} [shortcut]: from={layer.from_layer} is {other.height}x{other.width}, "
                    f"the previous layer {current.height}x{current.width}",
                    source=where,
                )
        shapes.append(current)
    return shapes


def _conv_inputs(cfg: DarknetCfg, shapes: list[Shape]) -> list[tuple[int, ConvSpec, int, Shape]]:
    """(layer index, spec, input channels, output shape) of each conv layer."""
    out = []
    previous = cfg.net.channels
    for i, layer in enumerate(cfg.layers):
        if isinstance(layer, ConvSpec):
            out.append((i, layer, previous, shapes[i]))
        previous = shapes[i].channels
    return out


def model_info(cfg: DarknetCfg, width: int | None = None, height: int | None = None) -> ModelInfo:
    """Counts for `cfg` at `width` x `height` (default: the [net] size)."""
    w = width or cfg.net.width
    h = height or cfg.net.height
    shapes = infer_shapes(cfg, w, h)
    values = params = 0
    macs = 0
    convs = _conv_inputs(cfg, shapes)
    for _, spec, c_in, out in convs:
        kernel = spec.filters * (c_in // spec.groups) * spec.size * spec.size
        values += kernel + spec.filters * (4 if spec.batch_normalize else 1)
        params += kernel + spec.filters * (2 if spec.batch_normalize else 1)
        macs += kernel * out.height * out.width
    return ModelInfo(
        weights_values=values,
        trainable_params=params,
        bflops=2.0 * macs / 1e9,
        width=w,
        height=h,
        layers=len(cfg.layers),
        conv_layers=len(convs),
    )


def conv_weight_counts(cfg: DarknetCfg) -> list[tuple[int, int]]:
    """(layer index, float values in .weights) per conv layer, in file order."""
    shapes = infer_shapes(cfg, cfg.net.width, cfg.net.height)
    return [
        (i, spec.filters * (c_in // spec.groups) * spec.size**2 + spec.filters * (4 if spec.batch_normalize else 1))
        for i, spec, c_in, _ in _conv_inputs(cfg, shapes)
    ]
