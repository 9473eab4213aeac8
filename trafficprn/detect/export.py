"""ONNX export of a `DarknetModel`, with the model JSON beside it.

A model is `NAME.onnx` plus `NAME.json`:

    {"format": "trafficprn-model", "version": 1,
     "classes": [...], "input_size": [w, h],
     "input": {"name": "images", "layout": "NCHW", "color": "RGB", "scale": 1/255, "dtype": "float32"},
     "letterbox": {"fill": 0.5, "centred": true, "interpolation": "area-halvings-then-linear"},
     "outputs": [{"name": "head0", "layout": "B,A*(5+C),H,W", "stride": 32,
                  "anchors_px": [[w, h], ...], "classes": C, "scale_x_y": 1.0, "layer": 17}, ...],
     "source_cfg": {"name": "...cfg", "sha256": "...", "text": "..."},
     "provenance": {...}}

The ONNX graph outputs the raw head tensors (batch dimension dynamic); decoding and NMS
happen in `trafficprn.detect.postprocess`, the same for every runtime. Needs torch.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trafficprn.detect.classes import default_class_names
from trafficprn.detect.postprocess import LETTERBOX_FILL
from trafficprn.errors import ModelError

if TYPE_CHECKING:  # torch is only needed to export, not to read a model's JSON
    from trafficprn.detect.darknet import DarknetModel

MODEL_FORMAT = "trafficprn-model"
MODEL_VERSION = 1
INPUT_NAME = "images"
OPSET = 17


def model_json_path(onnx_path: str | Path) -> Path:
    """The JSON that describes an ONNX model: same name, `.json`."""
    return Path(onnx_path).with_suffix(".json")


def describe_model(
    model: DarknetModel,
    *,
    class_names: list[str] | None = None,
    input_size: tuple[int, int] | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model JSON (see the module docstring) for `model`."""
    cfg = model.cfg
    width, height = input_size or (cfg.net.width, cfg.net.height)
    names = class_names if class_names is not None else default_class_names(model.class_count)
    if len(names) != model.class_count:
        raise ModelError(f"{cfg.source}: model has {model.class_count} classes, got {len(names)} class names")
    try:
        cfg_text = Path(cfg.source).read_text(encoding="utf-8")
    except OSError:
        cfg_text = ""
    outputs = [{"name": f"head{k}", "layout": "B,A*(5+C),H,W", **head.to_json()} for k, head in enumerate(model.heads)]
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "classes": list(names),
        "input_size": [width, height],
        "input": {"name": INPUT_NAME, "layout": "NCHW", "color": "RGB", "scale": 1 / 255, "dtype": "float32"},
        "letterbox": {"fill": LETTERBOX_FILL, "centred": True, "interpolation": "area-halvings-then-linear"},
        "outputs": outputs,
        "source_cfg": {
            "name": Path(cfg.source).name,
            "sha256": hashlib.sha256(cfg_text.encode()).hexdigest() if cfg_text else None,
            "text": cfg_text,
        },
        "provenance": {"exported_at": datetime.now(UTC).isoformat(timespec="seconds"), **(provenance or {})},
    }


def export_onnx(
    model: DarknetModel,
    onnx_path: str | Path,
    *,
    class_names: list[str] | None = None,
    input_size: tuple[int, int] | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write `model` to `onnx_path` (dynamic batch, fixed input size) and its JSON beside
    it. Returns the JSON path."""
    import torch

    description = describe_model(model, class_names=class_names, input_size=input_size, provenance=provenance)
    width, height = description["input_size"]
    out = Path(onnx_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [o["name"] for o in description["outputs"]]
    dummy = torch.zeros(1, model.cfg.net.channels, height, width)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            # The tracer warns about shape-dependent branches (max-pool padding, partial
            # shortcuts); shapes are fixed per export except the batch, which they ignore.
            warnings.simplefilter("ignore", torch.jit._trace.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is deliberate
            torch.onnx.export(
                model,
                (dummy,),
                str(out),
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    json_path = model_json_path(out)
    json_path.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return json_path


def read_model_json(onnx_path: str | Path) -> dict[str, Any]:
    """Load and check the JSON beside an ONNX model."""
    path = model_json_path(onnx_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: model JSON not found (every .onnx model needs its .json beside it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read model JSON: {exc}") from None
    found = data.get("format") if isinstance(data, dict) else type(data).__name__
    if found != MODEL_FORMAT:
        raise ModelError(f"{path}: expected a {MODEL_FORMAT!r} model JSON, got format {found!r}")
    for key in ("classes", "input_size", "outputs"):
        if key not in data:
            raise ModelError(f"{path}: missing key {key!r}")
    result: dict[str, Any] = data
    return result
