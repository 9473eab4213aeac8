"""Turning a training checkpoint into a shipped model: ONNX + JSON (+ darknet .weights).

    export_checkpoint("runs/a/best.pt", "models/mine.onnx", input_size=416)

The EMA weights are exported. The JSON's provenance records the run: data, classes,
epochs and steps done, validation mAP, training time, hardware and the command.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from trafficprn.detect.cfg import parse_cfg_text
from trafficprn.detect.darknet import DarknetModel, build_model, save_weights
from trafficprn.detect.train.checkpoint import load_checkpoint
from trafficprn.errors import ModelError


def model_from_checkpoint(ckpt: dict[str, Any], cfg_source: Path, *, ema: bool = True) -> DarknetModel:
    """The checkpoint's network (EMA weights by default) with `cfg_source` as its cfg path."""
    model = build_model(parse_cfg_text(ckpt["cfg_text"], source=str(cfg_source)))
    model.load_state_dict(ckpt["ema"] if ema else ckpt["model"])
    return model.eval()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_provenance(ckpt: dict[str, Any], checkpoint_path: Path) -> dict[str, Any]:
    config = ckpt.get("config", {})
    history = ckpt.get("history", [])
    last_val = history[-1] if history else None
    best = max(history, key=lambda r: 0.1 * (r.get("map50") or 0) + 0.9 * (r.get("map50_95") or 0)) if history else None
    return {
        "checkpoint": checkpoint_path.name,
        "checkpoint_sha256": hashlib.sha256(checkpoint_path.read_bytes()).hexdigest(),
        "data": config.get("data"),
        "base_cfg": config.get("cfg"),
        "pretrained": config.get("weights"),
        "train_size": ckpt.get("size"),
        "epochs_done": ckpt.get("epoch"),
        "iterations": ckpt.get("iteration"),
        "batch": config.get("batch"),
        "optimizer": config.get("optimizer"),
        "augment": config.get("augment"),
        "training_time_s": round(float(ckpt.get("elapsed_s", 0.0)), 1),
        "validation": {k: best[k] for k in ("epoch", "iteration", "map50", "map50_95", "per_class")} if best else None,
        "last_validation": {k: last_val[k] for k in ("epoch", "map50", "map50_95")} if last_val else None,
        "trained_on": ckpt.get("provenance"),
        "code_commit": _git_commit(),
    }


def export_checkpoint(
    checkpoint: str | Path,
    onnx_path: str | Path,
    *,
    input_size: int | None = None,
    cfg_path: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    weights: bool = True,
) -> Path:
    """Export a checkpoint's EMA model to `onnx_path` + JSON (and `.weights` beside it when
    `weights`). `cfg_path`: the cfg file to record as the model's source; it must hold the
    checkpoint's cfg text, and by default that text is written beside the model as `.cfg`.
    Returns the JSON path."""
    from trafficprn.detect.export import export_onnx

    ckpt_path = Path(checkpoint)
    ckpt = load_checkpoint(ckpt_path)
    out = Path(onnx_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if cfg_path is None:
        cfg = out.with_suffix(".cfg")
        cfg.write_text(ckpt["cfg_text"], encoding="utf-8")
    else:
        cfg = Path(cfg_path)
        ours, theirs = parse_cfg_text(cfg.read_text(encoding="utf-8")), parse_cfg_text(ckpt["cfg_text"])
        if (ours.net, ours.layers) != (theirs.net, theirs.layers):
            raise ModelError(f"{cfg}: differs from the cfg the checkpoint {ckpt_path} was trained with")
    model = model_from_checkpoint(ckpt, cfg)
    size = input_size or int(ckpt.get("size", model.cfg.net.width))
    provenance = {**run_provenance(ckpt, ckpt_path), **(extra or {})}
    json_path = export_onnx(
        model, out, class_names=list(ckpt["class_names"]), input_size=(size, size), provenance=provenance
    )
    if weights:
        save_weights(model, out.with_suffix(".weights"))
    return json_path
