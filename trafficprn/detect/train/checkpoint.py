"""Training checkpoints: one `torch.save` dict per file, written atomically (a crash or a
session end mid-write leaves the previous checkpoint intact)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from trafficprn.errors import ModelError

REQUIRED_KEYS = ("model", "ema", "optimizer", "epoch", "iteration", "class_names", "cfg_text")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, p)
    return p


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; raises ModelError if it is not one."""
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise ModelError(f"{p}: checkpoint not found") from None
    except Exception as exc:  # torch raises many kinds for a corrupt file
        raise ModelError(f"{p}: cannot read checkpoint: {exc}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ModelError(f"{p}: not a trafficprn training checkpoint (missing {', '.join(missing)})")
    result: dict[str, Any] = state
    return result
