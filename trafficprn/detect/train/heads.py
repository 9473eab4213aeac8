"""Resizing detection heads to a dataset's classes, and starting from pretrained weights.

- `resize_cfg_text(text, classes)`: a cfg with every `[yolo]` set to `classes` and the
  `[convolutional]` feeding it to A*(5+classes) filters, so e.g. the COCO cfg becomes a
  5-class one; the text stays a valid darknet cfg (written next to the run).
- `load_pretrained(model, path, class_names)`: copies weights from a darknet `.weights`
  file (class count found from its size) or one of our checkpoints. Every tensor whose
  shape matches is copied; head convs are copied per anchor for the box and objectness
  rows and for each class whose name the source also has (COCO's 'motorbike' is our
  'motorcycle'). Other class rows keep their fresh initialisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from trafficprn.detect.cfg import YoloSpec, model_info, parse_cfg_text
from trafficprn.detect.classes import COCO_CLASSES
from trafficprn.detect.darknet import DarknetModel, build_model, load_weights
from trafficprn.errors import ModelError, WeightsError

ALIASES = {"motorbike": "motorcycle", "bike": "bicycle", "pedestrian": "person", "lorry": "truck"}

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def _canonical(name: str) -> str:
    key = name.strip().lower().replace(" ", "_")
    return ALIASES.get(key, key)


def resize_cfg_text(text: str, classes: int) -> str:
    """Cfg text with every `[yolo]` head (and the conv before it) sized for `classes`."""
    if classes < 1:
        raise ModelError(f"classes must be >= 1, got {classes}")
    lines = text.splitlines()
    sections: list[tuple[str, int]] = [
        (m.group(1).strip().lower(), i) for i, line in enumerate(lines) if (m := _SECTION.match(line))
    ]
    bounds = {start: (sections[k + 1][1] if k + 1 < len(sections) else len(lines)) for k, (_, start) in enumerate(sections)}
    for k, (name, start) in enumerate(sections):
        if name != "yolo":
            continue
        end = bounds[start]
        body = "\n".join(lines[start:end])
        mask = _option(body, "mask")
        anchors = _option(body, "anchors")
        if mask is not None:
            n_anchors = len([m for m in mask.split(",") if m.strip()])
        elif anchors is not None:
            n_anchors = len([a for a in anchors.split(",") if a.strip()]) // 2
        else:
            raise ModelError(f"[yolo] at line {start + 1} has neither mask= nor anchors=")
        _set_option(lines, start, end, "classes", str(classes))
        prev_name, prev_start = sections[k - 1] if k > 0 else ("", 0)
        if prev_name not in ("convolutional", "conv"):
            raise ModelError(f"[yolo] at line {start + 1} must follow a [convolutional] layer, got [{prev_name}]")
        _set_option(lines, prev_start, bounds[prev_start], "filters", str(n_anchors * (5 + classes)))
    return "\n".join(lines) + "\n"


def _option(body: str, key: str) -> str | None:
    m = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", body, flags=re.MULTILINE)
    return m.group(1).split("#", 1)[0].strip() if m else None


def _set_option(lines: list[str], start: int, end: int, key: str, value: str) -> None:
    pattern = re.compile(rf"^\s*{key}\s*=")
    for i in range(start + 1, end):
        if pattern.match(lines[i]):
            lines[i] = f"{key}={value}"
            return
    lines.insert(start + 1, f"{key}={value}")


@dataclass(frozen=True)
class TransferReport:
    """What `load_pretrained` copied: whole tensors, head class rows, and what it left."""

    source: str
    source_classes: int
    copied_tensors: int
    resized_heads: int
    mapped_classes: dict[str, str]
    skipped: list[str]


def weights_class_count(cfg_text: str, path: Path) -> int:
    """Class count of a darknet `.weights` file for this cfg's layout, from its size."""
    size = path.stat().st_size
    counts = [model_info(parse_cfg_text(resize_cfg_text(cfg_text, k))).weights_values for k in (1, 2)]
    per_class = counts[1] - counts[0]
    for header in (20, 16):
        values, rest = divmod(size - header, 4)
        k, rem = divmod(values - counts[0], per_class)
        if rest == 0 and rem == 0 and k >= 0:
            return int(k + 1)
    raise WeightsError(
        f"{path}: {size} bytes does not fit this cfg's layout for any class count "
        f"({counts[0]} values at 1 class, +{per_class} per class)"
    )


def load_pretrained(
    model: DarknetModel, path: str | Path, class_names: list[str], cfg_text: str
) -> TransferReport:
    """Copy pretrained weights into `model` (already sized for `class_names`)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such weights file")
    if p.suffix == ".pt":
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc:  # torch raises many kinds for a bad file
            raise WeightsError(f"{p}: not a trafficprn checkpoint: {exc}") from None
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise WeightsError(f"{p}: not a trafficprn checkpoint (no 'model' entry)")
        state = ckpt.get("ema") or ckpt["model"]
        source_names = list(ckpt.get("class_names", []))
    else:
        k = weights_class_count(cfg_text, p)
        source = build_model(parse_cfg_text(resize_cfg_text(cfg_text, k), source=str(p)))
        load_weights(source, p)
        state = source.state_dict()
        source_names = list(COCO_CLASSES) if k == len(COCO_CLASSES) else [str(i) for i in range(k)]
    return transfer_state(model, state, source_names, class_names, str(p))


def transfer_state(
    model: DarknetModel,
    state: dict[str, torch.Tensor],
    source_names: list[str],
    class_names: list[str],
    source: str,
) -> TransferReport:
    """Copy `state` into `model` as described in the module docstring."""
    target = model.state_dict()
    anchors_of = {f"layers.{h.layer - 1}.conv.{kind}": len(h.anchors_px) for h in model.heads for kind in ("weight", "bias")}
    by_name = {_canonical(n): i for i, n in enumerate(source_names)}
    mapping = {name: source_names[by_name[_canonical(name)]] for name in class_names if _canonical(name) in by_name}
    copied, resized, skipped = 0, 0, []
    with torch.no_grad():
        for key, dst in target.items():
            src = state.get(key)
            n_anchors = anchors_of.get(key, 0)
            if src is None:
                skipped.append(key)
            elif n_anchors and src.shape[1:] == dst.shape[1:] and src.shape[0] % n_anchors == 0:
                n_src = src.shape[0] // n_anchors - 5
                s = src.view(n_anchors, 5 + n_src, *src.shape[1:])
                d = dst.view(n_anchors, 5 + len(class_names), *dst.shape[1:])
                d[:, :5] = s[:, :5]
                for c, name in enumerate(class_names):
                    j = by_name.get(_canonical(name))
                    if name in mapping and j is not None and j < n_src:
                        d[:, 5 + c] = s[:, 5 + j]
                resized += 1
            elif src.shape == dst.shape:
                dst.copy_(src)
                copied += 1
            else:
                skipped.append(key)
    model.load_state_dict(target)
    return TransferReport(source, len(source_names), copied, resized, mapping, skipped)


def head_specs(model: DarknetModel) -> list[YoloSpec]:
    return [layer for layer in model.cfg.layers if isinstance(layer, YoloSpec)]
