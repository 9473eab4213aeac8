"""Scoring the speeds engineers report (approach, through, stopped time, stops) against a
sim scene's truth (`vehicles.json` fields from `trafficprn.sim.truth_speeds`), split into
vehicles that stopped (the truth has a stop) and vehicles that did not."""

from __future__ import annotations

from typing import Any

import numpy as np

GROUPS = ("stopped", "moving")


def _mae(errors: list[float]) -> float | None:
    return float(np.mean(errors)) if errors else None


def score_passage_speeds(vehicles: list[dict[str, Any]], passages: list[Any], mapping: dict[int, int]) -> dict[str, Any]:
    """MAE (km/h) of approach and through speed per group, MAE of stopped time (s) and the
    share of passages with the right number of stops, over passages matched to a true
    vehicle (`mapping`: our track id -> true track id) where both sides have the value."""
    truth = {int(v["track_id"]): v for v in vehicles}
    err: dict[str, list[float]] = {f"{q}_{g}": [] for q in ("approach", "through") for g in GROUPS}
    stopped_err: list[float] = []
    stops_ok: list[bool] = []
    for p in passages:
        t = truth.get(mapping.get(p.track_id, -1))
        if t is None or t.get("stops") is None:
            continue
        group = "stopped" if t["stops"] > 0 else "moving"
        for name, ours in (("approach", p.approach_speed_kmh), ("through", p.through_speed_kmh)):
            if ours is not None and t.get(f"{name}_kmh") is not None:
                err[f"{name}_{group}"].append(abs(ours - float(t[f"{name}_kmh"])))
        if p.stopped_s is not None:
            stopped_err.append(abs(p.stopped_s - float(t["stopped_s"])))
        if p.stops is not None:
            stops_ok.append(p.stops == t["stops"])
    out: dict[str, Any] = {}
    for key, values in err.items():
        out[f"{key}_mae_kmh"] = _mae(values)
        out[f"{key}_n"] = len(values)
    out["stopped_s_mae"] = _mae(stopped_err)
    out["stops_accuracy"] = float(np.mean(stops_ok)) if stops_ok else None
    out["stops_n"] = len(stops_ok)
    return out


def format_passage_speeds(s: dict[str, Any] | None) -> list[str]:
    """Summary lines for `trafficprn eval` (none when the scene's truth has no such fields)."""
    if not s or not any(s[f"{q}_{g}_n"] for q in ("approach", "through") for g in GROUPS):
        return []

    def cell(key: str) -> str:
        v = s[f"{key}_mae_kmh"]
        return f"{'n/a' if v is None else format(v, '.2f')} km/h over {s[f'{key}_n']}"

    stopped = s["stopped_s_mae"]
    stops = s["stops_accuracy"]
    return [
        f"approach speed MAE         stopped {cell('approach_stopped')}   not stopped {cell('approach_moving')}",
        f"through speed MAE          stopped {cell('through_stopped')}   not stopped {cell('through_moving')}",
        f"stopped time MAE / stops   {'n/a' if stopped is None else format(stopped, '.1f')} s / "
        f"{'n/a' if stops is None else format(stops, '.3f')} right over {s['stops_n']}",
    ]
