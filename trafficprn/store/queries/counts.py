"""Turning-movement counts, count intervals with their completeness, and the OD matrix."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from trafficprn.errors import InputError
from trafficprn.store import liveness, rollup
from trafficprn.store.cover_cache import CoverCache
from trafficprn.store.models import Passage
from trafficprn.store.queries._common import Conn, _check_range, _dialect, _values, camera_scope
from trafficprn.store.repository import utc
from trafficprn.store.rollup import MovementCount
from trafficprn.store.sqlexpr import (
    check_minutes,
    check_tz,
    interval_key,
    interval_start_s,
    key_epoch_s,
)
from trafficprn.timebins import interval_start


# ---------------------------------------------------------------- intervals and counts
def movement_counts(
    conn: Conn,
    camera: str,
    from_ts: float,
    to_ts: float,
    *,
    tz: str,
    minutes: int = 15,
    vehicle_class: str | Sequence[str] | None = None,
    source: Literal["auto", "passages"] = "auto",
    site: str | None = None,
) -> list[MovementCount]:
    """Counts per (interval, entry leg, exit leg, movement, class), binned by passage
    time on the site's local clock (`timebins.interval_start`), ordered by interval.
    Only non-empty groups appear; pair with `count_intervals` for the full list of intervals. Pass `from_ts`
    and `to_ts` on interval boundaries (see `interval_starts`) to avoid partial ones.

    The range is split at the zone's offset changes, so each row is binned by a
    fixed-width `date_bin` (Postgres) or integer arithmetic (SQLite) instead of a
    time-zone lookup per row (`sqlexpr.interval_key`). With `source="auto"` 15-, 30- and
    60-minute counts over whole 15-minute UTC buckets come from the `passage_counts`
    rollup (`trafficprn.store.rollup`), the same numbers; "passages" always counts rows. A camera is a
    site and a name: `site` None counts the name at every site (`sqlexpr.camera_scope`)."""
    _check_range(from_ts, to_ts)
    check_minutes(minutes)
    check_tz(tz)
    if source not in ("auto", "passages"):
        raise InputError(f"source must be 'auto' or 'passages', got {source!r}")
    classes = _values(vehicle_class)
    if source == "auto":
        raw = conn.connection() if isinstance(conn, Session) else conn
        fast = rollup.read_counts(raw, camera, from_ts, to_ts, tz=tz, minutes=minutes, classes=classes, site=site)
        if fast is not None:
            return fast
    dialect = _dialect(conn)
    key = interval_key(Passage.passage_ts, dialect, tz, minutes, from_ts, to_ts)
    conds = [*camera_scope(Passage.site, Passage.camera, site, camera), Passage.passage_ts >= utc(from_ts),
             Passage.passage_ts < utc(to_ts)]
    if classes is not None:
        conds.append(Passage.vehicle_class.in_(classes))
    legs = (Passage.entry_leg, Passage.exit_leg, Passage.movement, Passage.vehicle_class)
    if key is None:  # a range over many offset changes: one time-zone lookup per row
        inner = select(interval_start_s(Passage.passage_ts, dialect, tz, minutes).label("bin"), *legs)
        inner_q = inner.where(*conds).subquery()
        start_col: Any = inner_q.c.bin
    else:
        inner_q = select(key.label("bin"), *legs).where(*conds).subquery()
        start_col = key_epoch_s(inner_q.c.bin, dialect)
    group = (inner_q.c.bin, inner_q.c.entry_leg, inner_q.c.exit_leg, inner_q.c.movement, inner_q.c.vehicle_class)
    stmt = select(start_col, *group[1:], func.count()).group_by(*group).order_by(inner_q.c.bin)
    if dialect == "postgresql":
        # Long ranges hash ~100k groups: keep the aggregate in memory (this transaction only).
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
    result = conn.execute(stmt)
    with rollup.gc_paused():
        return list(map(MovementCount._make, result))


def interval_starts(from_ts: float, to_ts: float, tz: str, minutes: int = 15) -> list[float]:
    """Starts (UTC epoch s) of every count interval overlapping [from_ts, to_ts), by the
    one rule of `timebins.interval_start`; DST days have 92 or 100 quarter hours."""
    _check_range(from_ts, to_ts)
    check_minutes(minutes)
    step = minutes * 60
    if (to_ts - from_ts) / step > 200_000:
        raise InputError(f"range too long for {minutes}-minute intervals: {(to_ts - from_ts) / 86400:.0f} days")
    starts = [interval_start(from_ts, tz, minutes)]
    while True:
        probe = starts[-1] + step
        nxt = interval_start(probe, tz, minutes)
        while nxt <= starts[-1]:  # an odd offset change; move on to the next boundary
            probe += 60
            nxt = interval_start(probe, tz, minutes)
        if nxt >= to_ts:
            return starts
        starts.append(nxt)


@dataclass(frozen=True)
class IntervalInfo:
    """One count interval [start_ts, end_ts). `down_s`: seconds of it not covered by up
    heartbeats (camera down, worker dead, events lost); `incomplete` when that is
    more than 0 or the interval has not ended yet (at `now`)."""

    start_ts: float
    end_ts: float
    down_s: float
    incomplete: bool


def downtime(
    conn: Conn, camera: str, from_ts: float, to_ts: float, *, now_ts: float | None = None,
    stale_s: float = liveness.STALE_S, site: str | None = None, cache: CoverCache | None = None,
) -> list[tuple[float, float]]:
    """Stretches of [from_ts, min(to_ts, now)) the camera's counts do not cover: down,
    stale (no heartbeats: worker dead), or events lost (`store.liveness.missing`; with
    `cache`, whole past days of heartbeat cover come from it)."""
    _check_range(from_ts, to_ts)
    return liveness.missing(conn, camera, from_ts, to_ts, now_ts=now_ts, stale_s=stale_s, site=site, cache=cache)


def count_intervals(
    conn: Conn,
    camera: str,
    from_ts: float,
    to_ts: float,
    *,
    tz: str,
    minutes: int = 15,
    now_ts: float | None = None,
    stale_s: float = liveness.STALE_S,
    site: str | None = None,
    cache: CoverCache | None = None,
) -> list[IntervalInfo]:
    """Every interval of [from_ts, to_ts) with the time its heartbeats do not cover
    (`down_s`); such an interval, or one not over yet, is incomplete."""
    now = time.time() if now_ts is None else now_ts
    starts = interval_starts(from_ts, to_ts, tz, minutes)
    ends = [*starts[1:], interval_start(starts[-1] + minutes * 60, tz, minutes)]
    down = downtime(conn, camera, starts[0], ends[-1], now_ts=now, stale_s=stale_s, site=site, cache=cache)
    out = []
    for start, end in zip(starts, ends, strict=True):
        down_s = sum(max(0.0, min(end, b) - max(start, a)) for a, b in down)
        out.append(IntervalInfo(start, end, down_s, down_s > 0 or end > now))
    return out


@dataclass(frozen=True)
class ODCell:
    entry_leg: str
    exit_leg: str
    count: int


def od_matrix(
    conn: Conn, camera: str, from_ts: float, to_ts: float, *, vehicle_class: str | Sequence[str] | None = None,
    site: str | None = None,
) -> list[ODCell]:
    """Origin -> destination counts (entry leg -> exit leg), passages with both legs."""
    _check_range(from_ts, to_ts)
    conds = [
        *camera_scope(Passage.site, Passage.camera, site, camera),
        Passage.passage_ts >= utc(from_ts),
        Passage.passage_ts < utc(to_ts),
        Passage.entry_leg.is_not(None),
        Passage.exit_leg.is_not(None),
    ]
    classes = _values(vehicle_class)
    if classes is not None:
        conds.append(Passage.vehicle_class.in_(classes))
    stmt = (
        select(Passage.entry_leg, Passage.exit_leg, func.count())
        .where(*conds)
        .group_by(Passage.entry_leg, Passage.exit_leg)
        .order_by(Passage.entry_leg, Passage.exit_leg)
    )
    return [ODCell(str(a), str(b), int(n)) for a, b, n in conn.execute(stmt).all()]
