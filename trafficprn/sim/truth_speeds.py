"""The speeds engineers report, from a simulated vehicle's exact trajectory (the truth that
`trafficprn.analytics.speed.passage_speeds` is scored against; docs/speeds.md).

Same definitions, computed independently from SUMO's per-frame speeds and positions:
- approach: median speed over the APPROACH_M of path before the first frame in the entry
  zone, frames faster than STOPPED_KMH only;
- through: path length from the first frame past the stop line to the first frame in the
  exit zone, over the time between them;
- stopped time: frames below STOPPED_KMH while the vehicle is in view, times the frame
  period; stops: falls below STOPPED_KMH after being above GO_KMH (or from the start).
"""

from __future__ import annotations

import numpy as np

from trafficprn.types import FloatArray

STOPPED_KMH = 5.0
GO_KMH = 10.0
APPROACH_M = 30.0


def _stops(kmh: FloatArray) -> int:
    stops, moving = 0, True
    for v in kmh.tolist():
        if moving and v < STOPPED_KMH:
            stops, moving = stops + 1, False
        elif not moving and v > GO_KMH:
            moving = True
    return stops


def trajectory_speeds(ts: FloatArray, xy_m: FloatArray, speed_mps: FloatArray, k_entry: int, k_pass: int | None,
                      k_exit: int | None, seen: np.ndarray, fps: float) -> dict[str, float | int | None]:
    """vehicles.json speed fields of one vehicle. ts (K,) s, xy_m (K, 2) ground m and
    speed_mps (K,) per frame it exists; k_entry: first frame in its entry zone; k_pass:
    first frame past the stop line; k_exit: first frame in its exit zone after that;
    seen (K,) bool: frames in which it is in view."""
    kmh = np.asarray(speed_mps, dtype=np.float64) * 3.6
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy_m, axis=0).T))]) if len(ts) > 1 else np.zeros(len(ts))
    k = np.arange(len(ts))
    window = (cum >= cum[k_entry] - APPROACH_M) & (k <= k_entry) & (kmh > STOPPED_KMH)
    approach = float(np.median(kmh[window])) if window.any() else None
    through = None
    if k_pass is not None and k_exit is not None and ts[k_exit] > ts[k_pass]:
        through = float((cum[k_exit] - cum[k_pass]) / (ts[k_exit] - ts[k_pass]) * 3.6)
    in_view = kmh[seen]
    return {
        "approach_kmh": None if approach is None else round(approach, 2),
        "through_kmh": None if through is None else round(through, 2),
        "stopped_s": round(float((in_view < STOPPED_KMH).sum()) / fps, 2),
        "stops": _stops(in_view),
    }
