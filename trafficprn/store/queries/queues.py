"""Queue lengths per lane, resampled (from the `queue_minutes` rollup where it is exact)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select

from trafficprn.errors import InputError
from trafficprn.store import queue_rollup
from trafficprn.store.models import QueueSampleRow
from trafficprn.store.queries._common import Conn, _check_range, _dialect, camera_scope
from trafficprn.store.repository import utc
from trafficprn.store.sqlexpr import (
    bucket_start_s,
)


# ---------------------------------------------------------------- queues
@dataclass(frozen=True)
class QueueBin:
    """Queue on one lane over [start_ts, start_ts + step_s): mean and max length."""

    lane: str
    start_ts: float
    length_m_mean: float
    length_m_max: float
    vehicles_max: int
    samples: int


def queues(
    conn: Conn, camera: str, from_ts: float, to_ts: float, *, step_s: int = 60, lane: str | None = None,
    site: str | None = None,
) -> list[QueueBin]:
    """Queue samples of a camera resampled to `step_s` buckets (aligned to the epoch),
    ordered by lane, then time. Steps of whole minutes read the `queue_minutes` rollup
    for the whole minutes of the range and the samples only for its partial ends."""
    _check_range(from_ts, to_ts)
    if not 1 <= step_s <= 86400:
        raise InputError(f"step_s must be in 1..86400 seconds, got {step_s}")
    if (to_ts - from_ts) / step_s > 100_000:
        raise InputError(f"too many buckets: {(to_ts - from_ts) / step_s:.0f}; use a larger step_s")
    minute = queue_rollup.MINUTE_S
    first_whole = int(math.ceil(from_ts / minute)) * minute
    last_whole = int(math.floor(to_ts / minute)) * minute
    if step_s % minute or last_whole - first_whole < step_s:
        cells = _queue_cells(conn, camera, from_ts, to_ts, step_s, lane, site)
    else:
        cells = queue_rollup.read_minutes(conn, camera, first_whole, last_whole, step_s=step_s, lane=lane, site=site)
        for a, b in ((from_ts, float(first_whole)), (float(last_whole), to_ts)):
            if b > a:
                for key, cell in _queue_cells(conn, camera, a, b, step_s, lane, site).items():
                    cells.setdefault(key, queue_rollup.MinuteCell()).add(
                        cell.samples, cell.length_sum_m, cell.length_max_m, cell.vehicles_max)
    return [
        QueueBin(ln, float(b), c.length_sum_m / c.samples, c.length_max_m, c.vehicles_max, c.samples)
        for (ln, b), c in sorted(cells.items())
    ]


def _queue_cells(conn: Conn, camera: str, from_ts: float, to_ts: float, step_s: int,
                 lane: str | None, site: str | None) -> dict[tuple[str, int], queue_rollup.MinuteCell]:
    """Cells per (lane, bucket) from the samples of [from_ts, to_ts) themselves."""
    conds = [*camera_scope(QueueSampleRow.site, QueueSampleRow.camera, site, camera),
             QueueSampleRow.ts >= utc(from_ts), QueueSampleRow.ts < utc(to_ts)]
    if lane is not None:
        conds.append(QueueSampleRow.lane == lane)
    bucket = bucket_start_s(QueueSampleRow.ts, _dialect(conn), step_s).label("bucket")
    inner = select(bucket, QueueSampleRow.lane, QueueSampleRow.length_m, QueueSampleRow.vehicles).where(*conds).subquery()
    stmt = (
        select(inner.c.lane, inner.c.bucket, func.count(), func.sum(inner.c.length_m), func.max(inner.c.length_m),
               func.max(inner.c.vehicles))
        .group_by(inner.c.lane, inner.c.bucket)
    )
    return {(str(ln), int(round(float(b)))): queue_rollup.MinuteCell(int(n), float(total), float(mx), int(v))
            for ln, b, n, total, mx, v in conn.execute(stmt).all()}
