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
