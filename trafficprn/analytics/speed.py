"""Speed from a ground-m trajectory and capture timestamps: a robust (Theil-Sen) fit of
position against time over a short window. Never frame counts, fps or a single
metres-per-pixel value."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trafficprn.types import FloatArray, IntArray

MPS_TO_KMH = 3.6


@lru_cache(maxsize=256)
def _pairs(k: int) -> tuple[IntArray, IntArray]:
    i, j = np.triu_indices(k, 1)
    return i, j


def fit_velocity_mps(ts: FloatArray, xy_m: FloatArray) -> FloatArray | None:
    """Velocity (2,) in m/s from positions xy_m (K, 2) in ground m at times ts (K,) in s:
    the median of all pairwise slopes per axis (Theil-Sen), robust to a few bad anchors.
    None with fewer than 2 samples or no time spread."""
    k = len(ts)
    if k < 2:
        return None
    i, j = _pairs(k)
    dt = ts[j] - ts[i]
    ok = dt > 1e-6
    if not ok.any():
        return None
    slopes = (xy_m[j[ok]] - xy_m[i[ok]]) / dt[ok, None]
    return np.asarray(np.median(slopes, axis=0), dtype=np.float64)


@dataclass(frozen=True)
class SpeedSummary:
    """One vehicle's speed: median and max of its windowed estimates (km/h), and whether it
    is implausible (kept as measured, flagged)."""

    median_kmh: float | None
    max_kmh: float | None
    flagged: bool


def summarise_speeds(
    samples_kmh: FloatArray, *, max_plausible_kmh: float = 160.0, min_samples: int = 2
) -> SpeedSummary:
    """Summary of windowed speed estimates (km/h) taken inside the calibrated area."""
    if len(samples_kmh) < min_samples:
        return SpeedSummary(None, None, False)
    median = float(np.median(samples_kmh))
    top = float(np.max(samples_kmh))
    return SpeedSummary(median, top, bool(median > max_plausible_kmh or top > 1.5 * max_plausible_kmh))


STOPPED_KMH = 5.0  # below this a vehicle stands (and a speed sample is not an approach speed)
GO_KMH = 10.0  # a stop ends when the speed rises above this (hysteresis against creeping)
APPROACH_M = 30.0  # ground path before the entry zone over which the approach speed is taken


@dataclass
class SpeedTrace:
    """A track's windowed speed estimates, each at its window's middle time: the time
    (s), the robust ground position there (m) and the speed (km/h). Bounded: past
    `max_samples` every other sample is dropped (the path keeps its shape at 1 s spacing
    for half an hour of a stopped vehicle)."""

    t: list[float]
    x_m: list[float]
    y_m: list[float]
    kmh: list[float]

    @classmethod
    def empty(cls) -> SpeedTrace:
        return cls([], [], [], [])

    def add(self, t: float, xy_m: FloatArray, kmh: float, max_samples: int) -> None:
        self.t.append(t)
        self.x_m.append(float(xy_m[0]))
        self.y_m.append(float(xy_m[1]))
        self.kmh.append(kmh)
        if len(self.t) > max_samples:
            self.t, self.x_m, self.y_m, self.kmh = self.t[::2], self.x_m[::2], self.y_m[::2], self.kmh[::2]

    def joined(self, later: SpeedTrace) -> SpeedTrace:
        """This trace followed by a later fragment's (the gap between them is a straight segment)."""
        return SpeedTrace(self.t + later.t, self.x_m + later.x_m, self.y_m + later.y_m, self.kmh + later.kmh)


def window_position_m(ts: FloatArray, xy_m: FloatArray, v_mps: FloatArray, t_mid: float) -> FloatArray:
    """Robust position (2,) at t_mid of a window fitted with velocity v_mps: the median
    of the positions moved along the fit to t_mid (the Theil-Sen intercept)."""
    return np.asarray(np.median(xy_m - v_mps[None, :] * (ts - t_mid)[:, None], axis=0), dtype=np.float64)


@dataclass(frozen=True)
class PassageSpeeds:
    """The speeds engineers report for one passage (km/h, s); None where not measurable.

    approach_kmh: median of the samples over the APPROACH_M of path before the vehicle
    reached its entry zone, moving samples (> STOPPED_KMH) only.
    through_kmh: path length on the ground from leaving the entry zone to reaching the
    exit zone, over the time it took.
    stopped_s: time spent below STOPPED_KMH; stops: times the speed fell below
    STOPPED_KMH after being above GO_KMH (or from the start of the trace)."""

    approach_kmh: float | None
    through_kmh: float | None
    stopped_s: float | None
    stops: int | None


def _cumulative_m(t: FloatArray, xy: FloatArray) -> FloatArray:
    steps = np.hypot(*np.diff(xy, axis=0).T) if len(t) > 1 else np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(steps)])


def sample_durations_s(t: FloatArray, max_gap_s: float, end_s: float | None = None) -> FloatArray:
    """How long each sample at times t (sorted) stands for: half the way to each
    neighbour, a gap over max_gap_s counting as max_gap_s (the trace was not there); the
    first and last samples stand for end_s beyond themselves (default max_gap_s / 2)."""
    if len(t) == 0:
        return np.zeros(0)
    gaps = np.minimum(np.diff(t), max_gap_s)
    end = max_gap_s / 2 if end_s is None else end_s
    half = np.concatenate([[end], gaps / 2, [end]])
    return np.asarray(half[:-1] + half[1:], dtype=np.float64)


def count_stops(kmh: FloatArray, stopped_kmh: float = STOPPED_KMH, go_kmh: float = GO_KMH) -> int:
    """Stops in a speed series: falls below stopped_kmh, each after the speed rose above
    go_kmh (a series that starts stopped counts that stop)."""
    stops, moving = 0, True
    for v in kmh.tolist():
        if moving and v < stopped_kmh:
            stops += 1
            moving = False
        elif not moving and v > go_kmh:
            moving = True
    return stops


def _sorted(trace: SpeedTrace) -> tuple[FloatArray, FloatArray, FloatArray]:
    order = np.argsort(np.asarray(trace.t), kind="stable")
    t = np.asarray(trace.t, dtype=np.float64)[order]
    xy = np.column_stack([trace.x_m, trace.y_m])[order]
    return t, xy, np.asarray(trace.kmh, dtype=np.float64)[order]


def passage_speeds(trace: SpeedTrace, entry_ts: float | None, passage_ts: float | None, exit_ts: float | None,
                   *, spacing_s: float = 0.5, approach_m: float = APPROACH_M, min_through_s: float = 0.5,
                   motion: SpeedTrace | None = None) -> PassageSpeeds:
    """PassageSpeeds of a trace. entry_ts: when the vehicle reached its entry zone;
    passage_ts: when it left it; exit_ts: when it reached its exit zone (s, any None
    when not seen). spacing_s: the trace's sampling period. motion: when given (the
    smoothed trajectory, `analytics.smooth`), the through speed, stopped time and stops
    are taken from it instead of the trace (a gap in it up to 2 spacing_s counts as
    seen, as in the trace; its ends as half its step); the approach speed stays the trace's (smoothing did not make it better, docs/speeds.md)."""
    if not trace.t:
        return PassageSpeeds(None, None, None, None)
    t, xy, kmh = _sorted(trace)
    cum = _cumulative_m(t, xy)
    approach = None
    if entry_ts is not None and t[0] < entry_ts:
        s_in = float(np.interp(entry_ts, t, cum))
        window = (cum >= s_in - approach_m) & (t <= entry_ts) & (kmh > STOPPED_KMH)
        approach = float(np.median(kmh[window])) if window.any() else None
    through = None
    end_s = None
    if motion is not None and len(motion.t) > 1:  # the rest from the smoothed trajectory
        t, xy, kmh = _sorted(motion)
        end_s = float(np.median(np.diff(t))) / 2
    cum = _cumulative_m(t, xy)
    if passage_ts is not None and exit_ts is not None:
        t0, t1 = max(passage_ts, float(t[0])), min(exit_ts, float(t[-1]))
        if t1 - t0 >= min_through_s:
            through = float(np.interp(t1, t, cum) - np.interp(t0, t, cum)) / (t1 - t0) * MPS_TO_KMH
    slow = kmh < STOPPED_KMH
    stopped_s = float(sample_durations_s(t, 2 * spacing_s, end_s)[slow].sum())
    return PassageSpeeds(approach, through, stopped_s, count_stops(kmh))
