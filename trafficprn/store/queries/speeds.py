"""The speed distribution: percentiles, mean and histogram from one grouped scan."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from trafficprn.errors import InputError
from trafficprn.store.models import Passage
from trafficprn.store.queries._common import Conn, _check_range
from trafficprn.store.queries.passages import PassageFilter


# ---------------------------------------------------------------- speeds
@dataclass(frozen=True)
class SpeedBin:
    lo_kmh: float
    hi_kmh: float
    count: int


@dataclass(frozen=True)
class SpeedStats:
    """Percentiles (linear interpolation, as numpy and Postgres percentile_cont) and a
    histogram of each passage's approach speed, or its median speed where the approach was
    not measured (stored before revision 0005, or first seen in its entry zone);
    percentiles are None when there is no speed."""

    count: int
    mean_kmh: float | None
    p15_kmh: float | None
    p50_kmh: float | None
    p85_kmh: float | None
    p95_kmh: float | None
    histogram: list[SpeedBin]


PERCENTILES = (0.15, 0.50, 0.85, 0.95)


def speed_stats(
    conn: Conn,
    camera: str,
    from_ts: float,
    to_ts: float,
    *,
    vehicle_class: str | Sequence[str] | None = None,
    movement: str | Sequence[str] | None = None,
    bin_kmh: float = 5.0,
    include_flagged: bool = False,
    site: str | None = None,
) -> SpeedStats:
    """Speed distribution of passages with a measured speed (approach speed first). Flagged (implausible)
    speeds are left out unless `include_flagged`."""
    if not (math.isfinite(bin_kmh) and bin_kmh > 0):
        raise InputError(f"bin_kmh must be a positive number, got {bin_kmh}")
    flt = PassageFilter(camera=camera, from_ts=from_ts, to_ts=to_ts, vehicle_class=vehicle_class, movement=movement,
                        site=site)
    _check_range(from_ts, to_ts)
    speed = func.coalesce(Passage.approach_speed_kmh, Passage.speed_median_kmh)
    conds = [*flt.where(), speed.is_not(None)]
    if not include_flagged:
        conds.append(Passage.speed_flagged.is_(False))
    # One scan: the count of each distinct speed value (speeds are stored to 0.01 km/h, so
    # a month holds a few thousand values), from which the percentiles (exact, linear
    # interpolation as numpy and Postgres percentile_cont), the mean and the histogram follow.
    rows = [(float(v), int(n)) for v, n in
            conn.execute(select(speed, func.count()).where(*conds).group_by(speed).order_by(speed)).all()
            if v is not None]
    if not rows:
        return SpeedStats(0, None, None, None, None, None, [])
    values = np.array([v for v, _ in rows])
    counts = np.array([n for _, n in rows], dtype=np.int64)
    total = int(counts.sum())
    cum = np.cumsum(counts)
    pct: list[float | None] = []
    for q in PERCENTILES:
        pos = q * (total - 1)  # rank in the sorted speeds
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        v_lo = values[np.searchsorted(cum, lo + 1)]
        v_hi = values[np.searchsorted(cum, hi + 1)]
        pct.append(float(v_lo + (v_hi - v_lo) * (pos - lo)))
    mean = float((values * counts).sum() / total)
    bins = np.floor(values / bin_kmh)
    edges = np.unique(bins)
    per_bin = np.bincount(np.searchsorted(edges, bins), weights=counts).astype(np.int64)
    histogram = [SpeedBin(float(b) * bin_kmh, (float(b) + 1) * bin_kmh, int(n)) for b, n in zip(edges, per_bin, strict=True)]
    p15, p50, p85, p95 = pct
    return SpeedStats(total, mean, p15, p50, p85, p95, histogram)
