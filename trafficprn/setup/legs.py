"""Legs of a junction from where its tracks enter, stop and leave, on the ground plane.

1. Tracks go to the ground (`ground.py`: the calibrated anchor of each box, smoothed), with speeds.
2. The junction centre is the least-squares meeting point of the lines vehicles drive
   along (each moving sample's position and heading).
3. Each track that starts heading in votes for the leg it came from: the bearing opposite
   its first heading; each that ends heading out votes for the bearing of its last heading.
   Peaks of those bearings (greedy, at least `MIN_LEG_SEPARATION_DEG` apart) are the legs.
   Headings, not positions, so that lane offsets near a pole camera do not split a leg.
4. A leg's stop line is where its queued tracks (the camera's queue rule: below
   `stopped_kmh` for `dwell_s`) stop at the front of the queue; a leg that never queued
   gets the line where its inbound tracks start to turn (where paths converge).
5. Entry zone: over the inbound side from the stop line upstream; exit zone: over the
   outbound side from the same distance outwards.
6. Names N/E/S/W by the leg's bearing from the centre (+y north, +x east), one name per
   leg, chosen to minimise the total angle between legs and names (`NAMING_RULE`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from trafficprn.config import QueueConfig
from trafficprn.errors import SetupError
from trafficprn.geometry.polygons import polygons_overlap
from trafficprn.setup.ground import GroundTrack, Stop, queued_stops
from trafficprn.types import FloatArray

COMPASS = {"N": 0.0, "NE": 45.0, "E": 90.0, "SE": 135.0, "S": 180.0, "SW": 225.0, "W": 270.0, "NW": 315.0}
NAMING_RULE = ("Legs are named N, E, S, W by the compass bearing of the leg's axis from the junction centre in "
               "the calibration's ground frame (+y is north, +x east; N 0, E 90, S 180, W 270 degrees); each name "
               "is used once, chosen to minimise the total angle between the legs and their names (NE, SE, SW, NW "
               "join in for more than four legs). Lanes are numbered per leg from the kerb: N-1 is the inbound "
               "lane nearest the kerb.")
MIN_LEG_SEPARATION_DEG = 40.0
HEADING_RUN_M = 5.0  # a track's first/last heading: over its first/last metres of travel
ENTRY_LENGTH_M = 12.0
EXIT_LENGTH_M = 12.0
ZONE_MARGIN_M = 1.2  # zones reach this far beyond the outermost anchors (half a vehicle and some)
HEAD_GAP_M = 0.7  # the front vehicle of a queue stops this far behind the stop line
CAR_LENGTH_M = 4.5
STOP_SIDE_M = 3.5  # a leg's queued stops lie within a lane of where its inbound traffic drives

Visible = Callable[[FloatArray], npt.NDArray[np.bool_]]  # (N, 2) ground m -> (N,) seen by the camera


def junction_centre(tracks: Sequence[GroundTrack]) -> FloatArray:
    """(2,) m: the point closest (least squares, robustly reweighted) to the lines along which
    vehicles drive."""
    pts, dirs = [], []
    for t in tracks:
        ok = np.isfinite(t.heading).all(axis=1)
        pts.append(t.xy_m[ok][::3])
        dirs.append(t.heading[ok][::3])
    if not pts or sum(len(p) for p in pts) < 20:
        raise SetupError("too few moving vehicles on the ground to find the junction centre")
    p, d = np.concatenate(pts), np.concatenate(dirs)
    n = np.column_stack([-d[:, 1], d[:, 0]])
    w = np.ones(len(p))
    centre = np.median(p, axis=0)
    for _ in range(6):
        a = np.einsum("k,ki,kj->ij", w, n, n)
        b = np.einsum("k,ki,kj,kj->i", w, n, n, p)
        if abs(np.linalg.det(a)) < 1e-9 * max(1.0, float(w.sum())) ** 2:
            raise SetupError("vehicles drive along one direction only; cannot find where roads meet")
        centre = np.linalg.solve(a, b)
        dist = np.abs(((centre - p) * n).sum(axis=1))
        w = 1.0 / np.maximum(dist, 3.0)  # lines far off the meeting point (a parallel road) count less
    return np.asarray(centre, dtype=np.float64)


def _run_heading(xy: FloatArray) -> FloatArray | None:
    """Unit direction over the first HEADING_RUN_M of travel along xy (n, 2), or None."""
    step = np.hypot(*np.diff(xy, axis=0).T)
    travel = np.concatenate([[0.0], np.cumsum(step)])
    k = int(np.searchsorted(travel, HEADING_RUN_M))
    if k >= len(xy):
        return None
    d = xy[k] - xy[0]
    return np.asarray(d / np.linalg.norm(d), dtype=np.float64)


@dataclass(frozen=True)
class LegVote:
    track_index: int
    inbound: bool  # True: the track came from this bearing; False: it left by it
    direction: FloatArray  # (2,) unit, pointing away from the centre along the leg
    point_m: FloatArray  # the track's first (inbound) or last (outbound) ground point


def leg_votes(tracks: Sequence[GroundTrack], centre_m: FloatArray, min_radius_m: float = 6.0) -> list[LegVote]:
    votes = []
    for i, t in enumerate(tracks):
        if t.travel_m < 2 * HEADING_RUN_M:
            continue
        # from where the track first (last) moves: a track that begins (ends) standing in a
        # queue gathers travel from its box's jitter there, in no direction
        moving = np.flatnonzero(np.isfinite(t.heading).all(axis=1))
        i0, i1 = (int(moving[0]), int(moving[-1]) + 1) if len(moving) else (0, len(t.xy_m))
        first, back = _run_heading(t.xy_m[i0:]), _run_heading(t.xy_m[:i1][::-1])
        last = None if back is None else -back
        for inbound, h, p in ((True, first, t.xy_m[0]), (False, last, t.xy_m[-1])):
            if h is None:
                continue
            radial = p - centre_m
            r = float(np.linalg.norm(radial))
            if r < min_radius_m:
                continue
            outward = -h if inbound else h
            if outward @ radial / r < 0.5:  # not heading in (or out) at that end: began or ended mid-junction
                continue
            votes.append(LegVote(i, inbound, outward, p))
    return votes


def bearing_deg(v: FloatArray) -> float:
    """Compass bearing of a ground direction: 0 north (+y), 90 east (+x)."""
    return float(np.degrees(np.arctan2(v[0], v[1])) % 360.0)


def _angle_between(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def cluster_bearings(bearings: FloatArray, min_support: int, min_share: float = 0.15) -> list[float]:
    """Peaks (deg) of a circular histogram of bearings, greedily, >= MIN_LEG_SEPARATION_DEG apart,
    each with at least min_support bearings near it and min_share of the strongest peak's."""
    bins = np.zeros(360)
    np.add.at(bins, np.round(bearings).astype(int) % 360, 1.0)
    x = np.arange(-30, 31)
    kernel = np.exp(-0.5 * (x / 6.0) ** 2)
    smooth = np.real(np.fft.ifft(np.fft.fft(bins) * np.fft.fft(np.roll(np.pad(kernel, (0, 360 - len(kernel))), -30))))
    peaks: list[float] = []
    order = np.argsort(-smooth)
    for b in order:
        if any(_angle_between(float(b), p) < MIN_LEG_SEPARATION_DEG for p in peaks):
            continue
        near = sum(_angle_between(float(x), float(b)) < MIN_LEG_SEPARATION_DEG / 2 for x in bearings)
        if near < min_support:
            break
        if not peaks:
            min_support = max(min_support, int(np.ceil(min_share * near)))
        peaks.append(float(b))
    return peaks


def assign_names(bearings: Sequence[float]) -> list[str]:
    """One compass name per leg bearing, minimising the total angle (N/E/S/W for <= 4 legs)."""
    names = ["N", "E", "S", "W"] if len(bearings) <= 4 else list(COMPASS)
    if len(bearings) > len(names):
        raise SetupError(f"found {len(bearings)} legs; at most {len(names)} can be named by compass side")
    best: tuple[float, tuple[str, ...]] | None = None
    for perm in itertools.permutations(names, len(bearings)):
        cost = sum(_angle_between(b, COMPASS[n]) for b, n in zip(bearings, perm, strict=True))
        if best is None or cost < best[0]:
            best = (cost, perm)
    assert best is not None  # at least one permutation exists
    return list(best[1])


@dataclass(frozen=True)
class LegFrame:
    """A leg's ground frame: t along the leg outwards from the centre, s across it
    (positive to the left looking outwards)."""

    centre_m: FloatArray
    outward: FloatArray

    @property
    def lateral(self) -> FloatArray:
        return np.array([-self.outward[1], self.outward[0]])

    def along(self, xy_m: FloatArray) -> FloatArray:
        return np.asarray((np.asarray(xy_m) - self.centre_m) @ self.outward, dtype=np.float64)

    def across(self, xy_m: FloatArray) -> FloatArray:
        return np.asarray((np.asarray(xy_m) - self.centre_m) @ self.lateral, dtype=np.float64)

    def point(self, t_m: FloatArray | float, s_m: FloatArray | float) -> FloatArray:
        t, s = np.broadcast_arrays(np.asarray(t_m, dtype=np.float64), np.asarray(s_m, dtype=np.float64))
        return np.asarray(self.centre_m + t[..., None] * self.outward + s[..., None] * self.lateral, dtype=np.float64)

    def rectangle(self, t0: float, t1: float, s0: float, s1: float) -> FloatArray:
        return self.point(np.array([t0, t1, t1, t0]), np.array([s0, s0, s1, s1]))


@dataclass(frozen=True)
class SuggestedLeg:
    name: str
    bearing_deg: float
    frame: LegFrame
    stop_t_m: float  # stop line, m from the centre along the leg
    stop_from_queues: bool  # False: from where paths converge (the leg never queued)
    inbound_s_m: tuple[float, float] | None  # lateral range of inbound traffic (None: outbound only)
    outbound_s_m: tuple[float, float] | None
    entry_m: FloatArray | None  # (4, 2) ground polygons
    exit_m: FloatArray | None
    inbound: list[int] = field(default_factory=list)  # indices of tracks entering by this leg
    outbound: list[int] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)  # queued stops of its inbound tracks

    @property
    def support(self) -> int:
        return len(set(self.inbound) | set(self.outbound))


def suggest_legs(tracks: Sequence[GroundTrack], queue: QueueConfig, visible: Visible | None = None,
                 driving_side: str = "right") -> list[SuggestedLeg]:
    """The legs of the junction the tracks drive through (see the module doc)."""
    centre = junction_centre(tracks)
    votes = leg_votes(tracks, centre)
    if not votes:
        raise SetupError("no vehicle was seen entering or leaving the junction")
    vb = np.array([bearing_deg(v.direction) for v in votes])
    peaks = cluster_bearings(vb, min_support=max(4, int(0.03 * len(tracks))))
    if len(peaks) < 2:
        raise SetupError(f"traffic enters and leaves by {len(peaks)} direction(s); a junction needs at least 2 legs")
    member = np.array([int(np.argmin([_angle_between(b, p) for p in peaks])) for b in vb])
    dist = np.array([_angle_between(b, peaks[m]) for b, m in zip(vb, member, strict=True)])
    raw = []
    for k in range(len(peaks)):
        mine = [v for v, m, d in zip(votes, member, dist, strict=True) if m == k and d < MIN_LEG_SEPARATION_DEG / 2]
        mean = np.mean([v.direction for v in mine], axis=0)
        frame = _refine_axis(LegFrame(centre, mean / np.linalg.norm(mean)), tracks, [v.track_index for v in mine])
        raw.append((frame, [v.track_index for v in mine if v.inbound], [v.track_index for v in mine if not v.inbound]))
    names = assign_names([bearing_deg(f.outward) for f, _, _ in raw])
    legs = [_leg(name, frame, tracks, inbound, outbound, queue, driving_side)
            for name, (frame, inbound, outbound) in zip(names, raw, strict=True)]
    # a stop line inside the junction (stops there were vehicles waiting to turn) is found
    # again from the stops beyond the crossing roads
    boxes = [junction_reach_m(leg, legs) for leg in legs]
    legs = [_leg(leg.name, leg.frame, tracks, leg.inbound, leg.outbound, queue, driving_side, box)
            if not leg.stop_t_m >= box else leg for leg, box in zip(legs, boxes, strict=True)]
    legs = _fallback_stop_lines(legs, tracks)
    return [_with_zones(leg, visible) for leg in _separate(legs)]


def _refine_axis(frame: LegFrame, tracks: Sequence[GroundTrack], idx: list[int]) -> LegFrame:
    """The leg's axis along the mean heading of its tracks' samples on the leg (either way,
    within 20 deg of the first guess, beyond 3 m out): end headings alone tilt with the turns."""
    rows = []
    for i in set(idx):
        t = tracks[i]
        ok = np.isfinite(t.heading).all(axis=1) & (frame.along(t.xy_m) > 3.0)
        h = t.heading[ok]
        dot = h @ frame.outward
        rows.append(h[np.abs(dot) > np.cos(np.radians(20))] * np.sign(dot[np.abs(dot) > np.cos(np.radians(20))])[:, None])
    h = np.concatenate(rows) if rows else np.zeros((0, 2))
    if len(h) < 10:
        return frame
    mean = h.mean(axis=0)
    return LegFrame(frame.centre_m, mean / np.linalg.norm(mean))


def junction_reach_m(leg: SuggestedLeg, legs: Sequence[SuggestedLeg]) -> float:
    """How far from the centre along `leg` the roads that cross it reach (m): where the leg's
    axis leaves the lateral extent (inbound and outbound) of every leg at more than 30 deg to it."""
    reach = 0.0
    for other in legs:
        sides = [r for r in (other.inbound_s_m, other.outbound_s_m) if r is not None]
        if other is leg or not sides:
            continue
        cross = float(leg.frame.outward @ other.frame.lateral)
        if abs(cross) < 0.5:  # (nearly) in line with this leg: the opposite leg, not a crossing road
            continue
        edges = np.array([sides[0][0], sides[0][1], *(x for r in sides[1:] for x in r)])
        offset = float((other.frame.centre_m - leg.frame.centre_m) @ other.frame.lateral)
        reach = max(reach, float(np.max((edges + offset) / cross)))
    return reach


def _leg_samples(leg_frame: LegFrame, tracks: Sequence[GroundTrack], idx: list[int], sign: float) -> FloatArray:
    """(K, 2) (t, s) of moving samples of tracks idx heading along sign * outward (+1 out, -1 in)."""
    rows = []
    for i in idx:
        t = tracks[i]
        ok = np.isfinite(t.heading).all(axis=1)
        ok &= (t.heading @ leg_frame.outward) * sign > np.cos(np.radians(20))
        ok &= leg_frame.along(t.xy_m) > 0
        if ok.any():
            rows.append(np.column_stack([leg_frame.along(t.xy_m[ok]), leg_frame.across(t.xy_m[ok])]))
    return np.concatenate(rows) if rows else np.zeros((0, 2))


def _leg(name: str, frame: LegFrame, tracks: Sequence[GroundTrack], inbound: list[int], outbound: list[int],
         queue: QueueConfig, driving_side: str, box_m: float = 0.0) -> SuggestedLeg:
    """One leg; `box_m`: how far along it the crossing roads reach (its stop line lies beyond)."""
    in_ts = _leg_samples(frame, tracks, inbound, -1.0)
    out_ts = _leg_samples(frame, tracks, outbound, +1.0)
    stops = []
    for i in inbound:
        for st in queued_stops(tracks[i], queue):
            if frame.along(st.xy_m) > box_m + (CAR_LENGTH_M / 2 if box_m > 0 else 0.0):
                stops.append(st)
    if len(in_ts) >= 10:
        # stops off the road the leg's inbound traffic drives along are another leg's queue
        # (a track that took over another vehicle's box, on a far leg seen at a shallow angle)
        lo, hi = _range(in_ts[:, 1])
        stops = [s for s in stops if lo - STOP_SIDE_M <= frame.across(s.xy_m) <= hi + STOP_SIDE_M]
    stop_t = float("nan")
    from_queues = len(stops) >= 3
    if from_queues:
        t_stop = np.array([frame.along(s.xy_m) for s in stops])
        waited = np.array([s.end_ts - s.start_ts for s in stops])
        stop_t = queue_head_m(t_stop, waited) - CAR_LENGTH_M / 2 - HEAD_GAP_M
    if not from_queues and len(in_ts):
        stop_t = _convergence_t(frame, tracks, inbound)
    in_s = _range(in_ts[:, 1]) if len(in_ts) >= 10 else None
    out_s = _range(out_ts[:, 1]) if len(out_ts) >= 10 else None
    if stops and in_s is not None:
        s_stop = np.array([frame.across(s.xy_m) for s in stops])
        in_s = (min(in_s[0], float(np.quantile(s_stop, 0.05))), max(in_s[1], float(np.quantile(s_stop, 0.95))))
    in_s, out_s = _split_sides(in_s, out_s)
    if np.isfinite(stop_t):
        stop_t = max(stop_t, box_m)
    # queued behind the stop line, on the inbound side (not waiting inside the junction to turn)
    stops = [s for s in stops if in_s is not None and in_s[0] <= frame.across(s.xy_m) <= in_s[1]
             and frame.along(s.xy_m) >= stop_t + CAR_LENGTH_M / 2 - 1.0]
    return SuggestedLeg(name, bearing_deg(frame.outward), frame, stop_t, from_queues, in_s, out_s, None, None,
                        inbound, outbound, stops)


def queue_head_m(t_stop_m: FloatArray, waited_s: FloatArray | None = None, bandwidth_m: float = 0.6,
                 share: float = 0.6) -> float:
    """Where the front vehicle of a leg's queues stands (m along the leg, its middle): the
    front-most peak of the stop positions' density, each stop weighted by how long it
    waited (`waited_s`, 1-60 s), at least `share` of the highest peak. Every queue has a head
    at the same line, and heads wait longest (they arrive first at red), so their peak is
    the highest; vehicles waiting inside the junction for a gap to turn wait briefly and
    form smaller peaks in front of it; later queue positions spread out behind it."""
    w = np.ones(len(t_stop_m)) if waited_s is None else np.clip(waited_s, 1.0, 60.0)
    grid = np.arange(t_stop_m.min() - 2.0, t_stop_m.max() + 2.0, 0.1)
    density = (w[None, :] * np.exp(-0.5 * ((grid[:, None] - t_stop_m[None, :]) / bandwidth_m) ** 2)).sum(axis=1)
    is_peak = np.r_[False, (density[1:-1] >= density[:-2]) & (density[1:-1] > density[2:]), False]
    peaks = np.flatnonzero(is_peak & (density >= share * density.max()))
    return float(grid[peaks[0]]) if len(peaks) else float(grid[int(np.argmax(density))])


def _range(s: FloatArray) -> tuple[float, float]:
    lo, hi = np.quantile(s, [0.05, 0.95])  # a far, oblique leg has long tails of lateral error
    return float(lo) - ZONE_MARGIN_M, float(hi) + ZONE_MARGIN_M


def _split_sides(in_s: tuple[float, float] | None, out_s: tuple[float, float] | None) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Make the inbound and outbound lateral ranges meet half-way between their inner edges
    (cut apart where they overlap, closed where a gap is left), so that no vehicle passes
    between the two zones along the middle of the road."""
    if in_s is None or out_s is None:
        return in_s, out_s
    if sum(in_s) >= sum(out_s):  # inbound to the left looking outwards (right-hand traffic)
        cut = (in_s[0] + out_s[1]) / 2
        return (cut, in_s[1]), (out_s[0], cut)
    cut = (out_s[0] + in_s[1]) / 2
    return (in_s[0], cut), (cut, out_s[1])


def _convergence_t(frame: LegFrame, tracks: Sequence[GroundTrack], inbound: list[int]) -> float:
    """Where a leg's inbound tracks start to turn (heading off the leg by > 20 deg): the
    outermost such place that most of them share (80th percentile); nan if none turns."""
    turn_t = []
    for i in inbound:
        t = tracks[i]
        ok = np.isfinite(t.heading).all(axis=1)
        along = t.heading[ok] @ -frame.outward
        tt = frame.along(t.xy_m[ok])
        off = np.flatnonzero((along < np.cos(np.radians(20))) & (tt > 0))
        if len(off):
            turn_t.append(float(tt[off[0]]))
    return float(np.quantile(turn_t, 0.8)) if len(turn_t) >= 3 else float("nan")


def _fallback_stop_lines(legs: list[SuggestedLeg], tracks: Sequence[GroundTrack]) -> list[SuggestedLeg]:
    known = [leg.stop_t_m for leg in legs if leg.stop_from_queues and np.isfinite(leg.stop_t_m)]
    default = float(np.median(known)) if known else 10.0
    out = []
    for leg in legs:
        t = leg.stop_t_m
        if not np.isfinite(t):
            t = default
        if not leg.stop_from_queues and known:
            t = max(t, min(known))
        out.append(_replace(leg, stop_t_m=max(t, 2.0)))
    return out


def _replace(leg: SuggestedLeg, **kw: object) -> SuggestedLeg:
    return replace(leg, **kw)  # type: ignore[arg-type]


def _separate(legs: list[SuggestedLeg]) -> list[SuggestedLeg]:
    """Move stop lines outwards until no two legs' zones overlap on the ground."""
    legs = list(legs)
    for _ in range(40):
        rects = [_rects(leg) for leg in legs]
        clash = set()
        for a, b in itertools.combinations(range(len(legs)), 2):
            if any(polygons_overlap(p, q) for p in rects[a] for q in rects[b]):
                clash |= {a, b}
        if not clash:
            return legs
        legs = [_replace(leg, stop_t_m=leg.stop_t_m + 0.5) if i in clash else leg for i, leg in enumerate(legs)]
    raise SetupError("the legs' zones overlap however far out their stop lines are put; the legs are too close")


def _rects(leg: SuggestedLeg) -> list[FloatArray]:
    out = []
    if leg.inbound_s_m is not None:
        out.append(leg.frame.rectangle(leg.stop_t_m, leg.stop_t_m + ENTRY_LENGTH_M, *leg.inbound_s_m))
    if leg.outbound_s_m is not None:
        out.append(leg.frame.rectangle(leg.stop_t_m, leg.stop_t_m + EXIT_LENGTH_M, *leg.outbound_s_m))
    return out


def _with_zones(leg: SuggestedLeg, visible: Visible | None) -> SuggestedLeg:
    entry = exit_ = None
    if leg.inbound_s_m is not None:
        entry = _visible_rect(leg.frame, leg.stop_t_m, ENTRY_LENGTH_M, leg.inbound_s_m, visible)
    if leg.outbound_s_m is not None:
        exit_ = _visible_rect(leg.frame, leg.stop_t_m, EXIT_LENGTH_M, leg.outbound_s_m, visible)
    return _replace(leg, entry_m=entry, exit_m=exit_)


def _visible_rect(frame: LegFrame, t0: float, length: float, s: tuple[float, float],
                  visible: Visible | None) -> FloatArray | None:
    """The rectangle t in [t0, t0 + length] x s, cut short where the camera stops seeing it."""
    if visible is None:
        return frame.rectangle(t0, t0 + length, *s)
    ts = np.linspace(t0, t0 + length, 21)
    edge = np.concatenate([frame.point(ts, s[0]), frame.point(ts, s[1])])
    seen = np.asarray(visible(edge).reshape(2, -1).all(axis=0), dtype=bool)
    if not seen[0]:
        return None
    last = int(np.argmin(seen)) - 1 if not seen.all() else len(ts) - 1
    if ts[last] - t0 < 2.0:
        return None
    return frame.rectangle(t0, float(ts[last]), *s)
