"""Lanes of a leg from the lateral spread of its queued tracks, on the ground plane.

Queued stops (the camera's queue rule) of a leg's inbound tracks lie in rows, one per
lane. Their lateral offsets across the leg are clustered in 1-D (peaks of a kernel
density, at least `MIN_LANE_SPACING_M` apart); lane borders sit half-way between
neighbouring centres, the outer borders half a lane width out. A lane's polygon runs from
the leg's stop line upstream over the range where its vehicles queued (cut where the
camera stops seeing it); its stop line crosses the lane at the leg's stop line. Lanes are
numbered from the kerb: N-1 is the inbound lane of leg N nearest the kerb.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trafficprn.setup.legs import CAR_LENGTH_M, LegFrame, SuggestedLeg, Visible
from trafficprn.types import FloatArray

MIN_LANE_SPACING_M = 2.4
DEFAULT_LANE_WIDTH_M = 3.3
KERNEL_M = 0.35
MIN_QUEUE_RANGE_M = 30.0
MAX_QUEUE_RANGE_M = 60.0
QUEUE_MARGIN_M = 3.0


@dataclass(frozen=True)
class SuggestedLane:
    name: str
    leg: str
    polygon_m: FloatArray  # (K, 2) ground polygon
    stop_line_m: FloatArray  # (2, 2) ground points
    centre_s_m: float  # lateral offset of the lane centre in the leg frame
    support: int  # queued stops in the lane


def lane_centres(offsets_m: FloatArray, min_support: int) -> list[float]:
    """Lateral lane centres (m, ascending) from queued stops' offsets: greedy peaks of a
    Gaussian kernel density at least MIN_LANE_SPACING_M apart, each with min_support stops
    within half that spacing."""
    if len(offsets_m) < min_support:
        return []
    grid = np.arange(offsets_m.min() - 2.0, offsets_m.max() + 2.0, 0.05)
    density = np.exp(-0.5 * ((grid[:, None] - offsets_m[None, :]) / KERNEL_M) ** 2).sum(axis=1)
    is_peak = np.r_[False, (density[1:-1] >= density[:-2]) & (density[1:-1] > density[2:]), False]
    centres: list[float] = []
    for k in np.flatnonzero(is_peak)[np.argsort(-density[is_peak])]:
        c = float(grid[k])
        if any(abs(c - o) < MIN_LANE_SPACING_M for o in centres):
            continue
        near = offsets_m[np.abs(offsets_m - c) < MIN_LANE_SPACING_M / 2]
        if len(near) < min_support:
            continue
        centres.append(float(np.median(near)))
    return sorted(centres)


def suggest_lanes(leg: SuggestedLeg, visible: Visible | None = None, *, lane_width_m: float | None = None,
                  driving_side: str = "right") -> list[SuggestedLane]:
    """The inbound lanes of a leg that queued (none when it never did)."""
    if not leg.stop_from_queues or leg.inbound_s_m is None or not leg.stops:
        return []
    frame = leg.frame
    s = np.array([frame.across(st.xy_m) for st in leg.stops])
    t = np.array([frame.along(st.xy_m) for st in leg.stops])
    centres = lane_centres(s, max(3, int(0.08 * len(s))))
    if not centres:
        return []
    spacing = float(np.median(np.diff(centres))) if len(centres) > 1 else (lane_width_m or DEFAULT_LANE_WIDTH_M)
    half = (lane_width_m or spacing) / 2
    bounds = [centres[0] - half, *((a + b) / 2 for a, b in zip(centres, centres[1:], strict=False)), centres[-1] + half]
    kerb_high = _kerb_is_high(leg, driving_side)
    order = list(range(len(centres)))[::-1] if kerb_high else list(range(len(centres)))
    lanes = []
    for number, k in enumerate(order, start=1):
        s0, s1 = bounds[k], bounds[k + 1]
        mine = (s >= s0) & (s < s1)
        if not mine.any():
            continue
        reach = float(np.quantile(t[mine] - leg.stop_t_m, 0.95)) + CAR_LENGTH_M / 2 + QUEUE_MARGIN_M
        reach = float(np.clip(reach, MIN_QUEUE_RANGE_M, MAX_QUEUE_RANGE_M))
        t1 = _visible_reach(frame, leg.stop_t_m, reach, (s0, s1), visible)
        if t1 is None:
            continue
        polygon = _strip(frame, leg.stop_t_m, t1, s0, s1)
        stop_line = frame.point(np.array([leg.stop_t_m, leg.stop_t_m]), np.array([s0, s1]))
        lanes.append(SuggestedLane(f"{leg.name}-{number}", leg.name, polygon, stop_line, centres[k], int(mine.sum())))
    return _renumber(lanes, leg.name)


def _kerb_is_high(leg: SuggestedLeg, driving_side: str) -> bool:
    """Whether the kerb side of the inbound lanes is at higher lateral offsets: the side away
    from the outbound traffic, else the driving side (right-hand: +s, the driver's right)."""
    if leg.inbound_s_m is not None and leg.outbound_s_m is not None:
        return sum(leg.inbound_s_m) > sum(leg.outbound_s_m)
    return driving_side == "right"


def _renumber(lanes: list[SuggestedLane], leg: str) -> list[SuggestedLane]:
    return [replace(lane, name=f"{leg}-{i}") for i, lane in enumerate(lanes, start=1)]


def _strip(frame: LegFrame, t0: float, t1: float, s0: float, s1: float, steps: int = 12) -> FloatArray:
    """A lane polygon with its long sides sampled (so that they bend as a fisheye sees them)."""
    ts = np.linspace(t0, t1, steps)
    return np.concatenate([frame.point(ts, s0), frame.point(ts[::-1], s1)])


def _visible_reach(frame: LegFrame, t0: float, length: float, s: tuple[float, float],
                   visible: Visible | None) -> float | None:
    if visible is None:
        return t0 + length
    ts = np.linspace(t0, t0 + length, 41)
    edge = np.concatenate([frame.point(ts, s[0]), frame.point(ts, s[1])])
    seen = np.asarray(visible(edge).reshape(2, -1).all(axis=0), dtype=bool)
    if not seen[0]:
        return None
    last = len(ts) - 1 if seen.all() else int(np.argmin(seen)) - 1
    return float(ts[last]) if ts[last] - t0 >= 5.0 else None
