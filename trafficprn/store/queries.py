"""Read side for the API and dashboard: every query is here, none in the routes.

All functions take an open `Connection` or ORM `Session` as first argument (`conn`)
and times as UTC epoch seconds (`*_ts`); ranges are half-open [from_ts, to_ts).
Results are frozen dataclasses with epoch-second times, ready for JSON.

- `passages(conn, PassageFilter(...), limit=, cursor=)` -> `PassagePage` (keyset cursor)
- `movement_counts(conn, camera, from_ts, to_ts, tz=, minutes=)` -> `[MovementCount]`
- `count_intervals(conn, camera, from_ts, to_ts, tz=, minutes=)` -> `[IntervalInfo]`
  (every interval of the range, with camera downtime; `incomplete` when it overlaps)
- `interval_starts(from_ts, to_ts, tz, minutes)` (pure Python) and `downtime(...)`
- `od_matrix(...)`, `queues(...)`, `speed_stats(...)`, `plate_passages(...)`,
  `plate_reads(...)`, `cameras(...)`
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, Select, and_, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from trafficprn.errors import InputError
from trafficprn.store import liveness, queue_rollup, rollup
from trafficprn.store.models import CameraRow, CameraStatusRow, HeartbeatRow, Passage, PlateReadRow, QueueSampleRow
from trafficprn.store.repository import utc
from trafficprn.store.rollup import MovementCount
from trafficprn.store.sqlexpr import (
    bucket_start_s,
    check_minutes,
    check_tz,
    interval_key,
    interval_start_s,
    key_epoch_s,
)
from trafficprn.timebins import interval_start

Conn = Connection | Session
MAX_PAGE = 1000


def _dialect(conn: Conn) -> str:
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name


def _check_range(from_ts: float, to_ts: float) -> None:
    if not (math.isfinite(from_ts) and math.isfinite(to_ts)):
        raise InputError(f"time range must be finite, got {from_ts}..{to_ts}")
    if to_ts <= from_ts:
        raise InputError(f"time range is empty: 'to' ({to_ts}) must be after 'from' ({from_ts})")


def _ts(value: Any) -> float:
    return float(value.timestamp())


def _values(v: str | Sequence[str] | None) -> list[str] | None:
    if v is None:
        return None
    return [v] if isinstance(v, str) else list(v)


# ---------------------------------------------------------------- passages
@dataclass(frozen=True)
class PassageRecord:
    """One stored passage (`trafficprn.events.VehiclePassage` plus its row id)."""

    id: int
    uuid: str
    camera: str
    track_id: int
    passage_ts: float
    first_seen_ts: float
    last_seen_ts: float
    vehicle_class: str
    class_confidence: float
    colour: str | None
    colour_confidence: float | None
    entry_leg: str | None
    exit_leg: str | None
    movement: str | None
    speed_median_kmh: float | None
    speed_max_kmh: float | None
    speed_flagged: bool
    approach_speed_kmh: float | None
    through_speed_kmh: float | None
    stopped_s: float | None
    stops: int | None
    plate_text: str | None
    plate_hash: str | None
    plate_confidence: float | None
    extras: dict[str, Any] = field(default_factory=dict)
    site: str = ""


def _record(p: Passage) -> PassageRecord:
    return PassageRecord(
        id=p.id,
        uuid=str(p.uuid),
        camera=p.camera,
        track_id=p.track_id,
        passage_ts=_ts(p.passage_ts),
        first_seen_ts=_ts(p.first_seen_ts),
        last_seen_ts=_ts(p.last_seen_ts),
        vehicle_class=p.vehicle_class,
        class_confidence=p.class_confidence,
        colour=p.colour,
        colour_confidence=p.colour_confidence,
        entry_leg=p.entry_leg,
        exit_leg=p.exit_leg,
        movement=p.movement,
        speed_median_kmh=p.speed_median_kmh,
        speed_max_kmh=p.speed_max_kmh,
        speed_flagged=p.speed_flagged,
        approach_speed_kmh=p.approach_speed_kmh,
        through_speed_kmh=p.through_speed_kmh,
        stopped_s=p.stopped_s,
        stops=p.stops,
        plate_text=p.plate_text,
        plate_hash=p.plate_hash,
        plate_confidence=p.plate_confidence,
        extras=dict(p.extras or {}),
        site=p.site,
    )


@dataclass(frozen=True)
class PassageFilter:
    """Filters of the passages query; None means "any". Class, movement and colour take
    one value or a list. Speeds filter on `speed_median_kmh`, bounds inclusive."""

    camera: str | None = None
    from_ts: float | None = None
    to_ts: float | None = None
    vehicle_class: str | Sequence[str] | None = None
    movement: str | Sequence[str] | None = None
    colour: str | Sequence[str] | None = None
    entry_leg: str | None = None
    exit_leg: str | None = None
    speed_min_kmh: float | None = None
    speed_max_kmh: float | None = None

    def where(self) -> list[Any]:
        """SQLAlchemy conditions on `Passage`. Raises InputError for a bad combination."""
        if self.from_ts is not None and self.to_ts is not None:
            _check_range(self.from_ts, self.to_ts)
        if self.speed_min_kmh is not None and self.speed_max_kmh is not None and self.speed_min_kmh > self.speed_max_kmh:
            raise InputError(f"speed_min_kmh ({self.speed_min_kmh}) must not exceed speed_max_kmh ({self.speed_max_kmh})")
        conds: list[Any] = []
        if self.camera is not None:
            conds.append(Passage.camera == self.camera)
        if self.from_ts is not None:
            conds.append(Passage.passage_ts >= utc(self.from_ts))
        if self.to_ts is not None:
            conds.append(Passage.passage_ts < utc(self.to_ts))
        for column, value in (
            (Passage.vehicle_class, self.vehicle_class),
            (Passage.movement, self.movement),
            (Passage.colour, self.colour),
        ):
            values = _values(value)
            if values is not None:
                conds.append(column.in_(values))
        if self.entry_leg is not None:
            conds.append(Passage.entry_leg == self.entry_leg)
        if self.exit_leg is not None:
            conds.append(Passage.exit_leg == self.exit_leg)
        if self.speed_min_kmh is not None:
            conds.append(Passage.speed_median_kmh >= self.speed_min_kmh)
        if self.speed_max_kmh is not None:
            conds.append(Passage.speed_median_kmh <= self.speed_max_kmh)
        return conds


@dataclass(frozen=True)
class PassagePage:
    items: list[PassageRecord]
    next_cursor: str | None


MAX_CURSOR_TS = 1e11  # epoch seconds, about the year 5138


def encode_cursor(passage_ts: float, row_id: int) -> str:
    raw = json.dumps([round(passage_ts, 6), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    """Inverse of `encode_cursor`. Raises InputError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, row_id = json.loads(raw)
        if isinstance(row_id, bool) or not isinstance(row_id, int) or not isinstance(ts, int | float):
            raise ValueError
        # Bounded to what a real page can hold, so no database driver overflows on it.
        if not math.isfinite(ts) or abs(ts) > MAX_CURSOR_TS or not 0 <= row_id < 2**63:
            raise ValueError
        return float(ts), row_id
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InputError(f"invalid cursor {cursor[:40]!r}: pass the next_cursor of a previous page") from None


def passages(
    conn: Conn,
    flt: PassageFilter | None = None,
    *,
    limit: int = 100,
    cursor: str | None = None,
    order: Literal["desc", "asc"] = "desc",
) -> PassagePage:
    """A page of passages, newest first ("desc") or oldest first, with a keyset cursor
    on (passage_ts, id). `next_cursor` is None on the last page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    if order not in ("desc", "asc"):
        raise InputError(f"order must be 'desc' or 'asc', got {order!r}")
    conds = (flt or PassageFilter()).where()
    key = tuple_(Passage.passage_ts, Passage.id)
    if cursor is not None:
        ts, row_id = decode_cursor(cursor)
        after = tuple_(utc(ts), row_id)
        conds.append(key < after if order == "desc" else key > after)
    stmt = select(Passage).where(*conds)
    if order == "desc":
        stmt = stmt.order_by(Passage.passage_ts.desc(), Passage.id.desc())
    else:
        stmt = stmt.order_by(Passage.passage_ts.asc(), Passage.id.asc())
    rows = list(_scalars(conn, stmt.limit(limit + 1)))
    items = [_record(r) for r in rows[:limit]]
    nxt = encode_cursor(items[-1].passage_ts, items[-1].id) if len(rows) > limit else None
    return PassagePage(items=items, next_cursor=nxt)


def _scalars(conn: Conn, stmt: Select[Any]) -> list[Any]:
    if isinstance(conn, Session):
        return list(conn.scalars(stmt))
    with Session(bind=conn) as session:
        out = list(session.scalars(stmt))
        session.expunge_all()
        return out


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
) -> list[MovementCount]:
    """Counts per (interval, entry leg, exit leg, movement, class), binned by passage
    time on the site's local clock (`timebins.interval_start`), ordered by interval.
    Only non-empty groups appear; pair with `count_intervals` for the full list of intervals. Pass `from_ts`
    and `to_ts` on interval boundaries (see `interval_starts`) to avoid partial ones.

    The range is split at the zone's offset changes, so each row is binned by a
    fixed-width `date_bin` (Postgres) or integer arithmetic (SQLite) instead of a
    time-zone lookup per row (`sqlexpr.interval_key`). With `source="auto"` 15-, 30- and
    60-minute counts over whole 15-minute UTC buckets come from the `passage_counts`
    rollup (`trafficprn.store.rollup`), the same numbers; "passages" always counts rows."""
    _check_range(from_ts, to_ts)
    check_minutes(minutes)
    check_tz(tz)
    if source not in ("auto", "passages"):
        raise InputError(f"source must be 'auto' or 'passages', got {source!r}")
    classes = _values(vehicle_class)
    if source == "auto":
        raw = conn.connection() if isinstance(conn, Session) else conn
        fast = rollup.read_counts(raw, camera, from_ts, to_ts, tz=tz, minutes=minutes, classes=classes)
        if fast is not None:
            return fast
    dialect = _dialect(conn)
    key = interval_key(Passage.passage_ts, dialect, tz, minutes, from_ts, to_ts)
    conds = [Passage.camera == camera, Passage.passage_ts >= utc(from_ts), Passage.passage_ts < utc(to_ts)]
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
    stale_s: float = liveness.STALE_S,
) -> list[tuple[float, float]]:
    """Stretches of [from_ts, min(to_ts, now)) the camera's counts do not cover: down,
    stale (no heartbeats: worker dead), or events lost (`store.liveness.missing`)."""
    _check_range(from_ts, to_ts)
    return liveness.missing(conn, camera, from_ts, to_ts, now_ts=now_ts, stale_s=stale_s)


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
) -> list[IntervalInfo]:
    """Every interval of [from_ts, to_ts) with the time its heartbeats do not cover
    (`down_s`); such an interval, or one not over yet, is incomplete."""
    now = time.time() if now_ts is None else now_ts
    starts = interval_starts(from_ts, to_ts, tz, minutes)
    ends = [*starts[1:], interval_start(starts[-1] + minutes * 60, tz, minutes)]
    down = downtime(conn, camera, starts[0], ends[-1], now_ts=now, stale_s=stale_s)
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
    conn: Conn, camera: str, from_ts: float, to_ts: float, *, vehicle_class: str | Sequence[str] | None = None
) -> list[ODCell]:
    """Origin -> destination counts (entry leg -> exit leg), passages with both legs."""
    _check_range(from_ts, to_ts)
    conds = [
        Passage.camera == camera,
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
    conn: Conn, camera: str, from_ts: float, to_ts: float, *, step_s: int = 60, lane: str | None = None
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
        cells = _queue_cells(conn, camera, from_ts, to_ts, step_s, lane)
    else:
        cells = queue_rollup.read_minutes(conn, camera, first_whole, last_whole, step_s=step_s, lane=lane)
        for a, b in ((from_ts, float(first_whole)), (float(last_whole), to_ts)):
            if b > a:
                for key, cell in _queue_cells(conn, camera, a, b, step_s, lane).items():
                    cells.setdefault(key, queue_rollup.MinuteCell()).add(
                        cell.samples, cell.length_sum_m, cell.length_max_m, cell.vehicles_max)
    return [
        QueueBin(ln, float(b), c.length_sum_m / c.samples, c.length_max_m, c.vehicles_max, c.samples)
        for (ln, b), c in sorted(cells.items())
    ]


def _queue_cells(conn: Conn, camera: str, from_ts: float, to_ts: float, step_s: int,
                 lane: str | None) -> dict[tuple[str, int], queue_rollup.MinuteCell]:
    """Cells per (lane, bucket) from the samples of [from_ts, to_ts) themselves."""
    conds = [QueueSampleRow.camera == camera, QueueSampleRow.ts >= utc(from_ts), QueueSampleRow.ts < utc(to_ts)]
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
) -> SpeedStats:
    """Speed distribution of passages with a measured speed (approach speed first). Flagged (implausible)
    speeds are left out unless `include_flagged`."""
    if not (math.isfinite(bin_kmh) and bin_kmh > 0):
        raise InputError(f"bin_kmh must be a positive number, got {bin_kmh}")
    flt = PassageFilter(camera=camera, from_ts=from_ts, to_ts=to_ts, vehicle_class=vehicle_class, movement=movement)
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


# ---------------------------------------------------------------- plates
def plate_passages(
    conn: Conn,
    *,
    text: str | None = None,
    plate_hash: str | None = None,
    contains: bool = False,
    camera: str | None = None,
    from_ts: float | None = None,
    to_ts: float | None = None,
    limit: int = 100,
) -> list[PassageRecord]:
    """Passages with a plate, newest first, found by clear text (case-insensitive;
    exact, or substring with `contains`) or by keyed hash. One of text/plate_hash."""
    if (text is None) == (plate_hash is None):
        raise InputError("give exactly one of plate text or plate hash")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    conds = PassageFilter(camera=camera, from_ts=from_ts, to_ts=to_ts).where()
    if text is not None:
        needle = text.strip().upper()
        if not needle:
            raise InputError("plate text is empty")
        if contains:
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(func.upper(Passage.plate_text).like(f"%{escaped}%", escape="\\"))
        else:
            conds.append(or_(Passage.plate_text == needle, func.upper(Passage.plate_text) == needle))
    else:
        conds.append(Passage.plate_hash == str(plate_hash).strip().lower())
    stmt = select(Passage).where(*conds).order_by(Passage.passage_ts.desc(), Passage.id.desc()).limit(limit)
    return [_record(r) for r in _scalars(conn, stmt)]


@dataclass(frozen=True)
class PlateReadRecord:
    uuid: str
    camera: str
    track_id: int
    ts: float
    confidence: float
    plate_text: str | None
    plate_hash: str | None


def plate_reads(
    conn: Conn, *, camera: str | None = None, from_ts: float | None = None, to_ts: float | None = None, limit: int = 100
) -> list[PlateReadRecord]:
    """The plate-read audit trail, newest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    conds: list[Any] = []
    if camera is not None:
        conds.append(PlateReadRow.camera == camera)
    if from_ts is not None:
        conds.append(PlateReadRow.ts >= utc(from_ts))
    if to_ts is not None:
        conds.append(PlateReadRow.ts < utc(to_ts))
    stmt = select(PlateReadRow).where(*conds).order_by(PlateReadRow.ts.desc(), PlateReadRow.id.desc()).limit(limit)
    return [
        PlateReadRecord(str(r.uuid), r.camera, r.track_id, _ts(r.ts), r.confidence, r.plate_text, r.plate_hash)
        for r in _scalars(conn, stmt)
    ]


# ---------------------------------------------------------------- cameras
@dataclass(frozen=True)
class CameraInfo:
    """A camera with its current status and its uptime over the last `window_s`.
    status: "up", "down", "stale" (no heartbeat for 30 s: the worker is gone) or
    "unknown" (never reported); uptime: share of the window since its first record
    covered by up heartbeats, None when nothing is known."""

    name: str
    live_url: str | None
    status: liveness.State
    since_ts: float | None
    reason: str
    uptime: float | None
    last_passage_ts: float | None
    last_heartbeat_ts: float | None = None


def cameras(
    conn: Conn, *, window_s: float = 86400.0, now_ts: float | None = None, stale_s: float = liveness.STALE_S,
    with_uptime: bool = True,
) -> list[CameraInfo]:
    """All cameras (registered, or with status or heartbeats), sorted by name. Without
    `with_uptime`, uptime is None (the cheap form, for frequent polls)."""
    now = time.time() if now_ts is None else now_ts
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window_s must be positive, got {window_s}")
    urls = _camera_urls(conn)
    out = []
    for name in sorted(urls):
        live = liveness.liveness(conn, name, now_ts=now, stale_s=stale_s)
        last = conn.execute(select(func.max(Passage.passage_ts)).where(Passage.camera == name)).scalar()
        uptime = _uptime(conn, name, now - window_s, now, stale_s) if with_uptime else None
        out.append(
            CameraInfo(name, urls[name], live.state, live.since_ts, live.reason, uptime,
                       None if last is None else _ts(last), live.last_heartbeat_ts)
        )
    return out


# The cameras with heartbeats, by a skip scan of ix_camera_heartbeats_camera_ts: one index
# probe per camera instead of reading every heartbeat (a month of a box holds millions).
_HEARTBEAT_CAMERAS = text("""
WITH RECURSIVE cams(camera) AS (
    SELECT MIN(camera) FROM camera_heartbeats
    UNION ALL
    SELECT (SELECT MIN(h.camera) FROM camera_heartbeats h WHERE h.camera > cams.camera)
    FROM cams WHERE cams.camera IS NOT NULL
)
SELECT camera FROM cams WHERE camera IS NOT NULL
""")


def _heartbeat_cameras(conn: Conn) -> list[str]:
    return [str(name) for (name,) in conn.execute(_HEARTBEAT_CAMERAS)]


def _camera_urls(conn: Conn) -> dict[str, str | None]:
    urls: dict[str, str | None] = {n: u for n, u in conn.execute(select(CameraRow.name, CameraRow.live_url))}
    for (name,) in conn.execute(select(CameraStatusRow.camera).distinct()):
        urls.setdefault(name, None)
    for name in _heartbeat_cameras(conn):
        urls.setdefault(name, None)
    return urls


def camera_names(conn: Conn) -> list[str]:
    """The names `cameras()` lists, without their state: a cheap check that a camera exists."""
    return sorted(_camera_urls(conn))


def _uptime(conn: Conn, camera: str, from_ts: float, to_ts: float, stale_s: float = liveness.STALE_S) -> float | None:
    """Share of [from_ts, to_ts) covered by up heartbeats, from the camera's first record."""
    firsts = [
        conn.execute(select(func.min(row.ts)).where(row.camera == camera, row.ts < utc(to_ts))).scalar()
        for row in (CameraStatusRow, HeartbeatRow)
    ]
    known = [_ts(f) for f in firsts if f is not None]
    if not known:
        return None
    known_from = max(from_ts, min(known))
    if known_from >= to_ts:
        return None
    down = sum(b - a for a, b in downtime(conn, camera, known_from, to_ts, now_ts=to_ts, stale_s=stale_s))
    return max(0.0, 1.0 - down / (to_ts - known_from))


def totals(conn: Conn, camera: str | None = None) -> dict[str, int]:
    """Row counts per table (optionally for one camera), for health and tests."""
    conds_p = [Passage.camera == camera] if camera else []
    conds_q = [QueueSampleRow.camera == camera] if camera else []
    passages_n = conn.execute(select(func.count()).select_from(Passage).where(*conds_p)).scalar_one()
    queues_n = conn.execute(select(func.count()).select_from(QueueSampleRow).where(*conds_q)).scalar_one()
    plates_n = conn.execute(select(func.count()).select_from(PlateReadRow)).scalar_one()
    with_plate = conn.execute(
        select(func.count())
        .select_from(Passage)
        .where(*conds_p, and_(or_(Passage.plate_text.is_not(None), Passage.plate_hash.is_not(None))))
    ).scalar_one()
    return {
        "passages": int(passages_n),
        "queue_samples": int(queues_n),
        "plate_reads": int(plates_n),
        "passages_with_plate": int(with_plate),
    }


__all__ = [
    "CameraInfo",
    "IntervalInfo",
    "MovementCount",
    "ODCell",
    "PassageFilter",
    "PassagePage",
    "PassageRecord",
    "PlateReadRecord",
    "QueueBin",
    "SpeedBin",
    "SpeedStats",
    "camera_names",
    "cameras",
    "count_intervals",
    "decode_cursor",
    "downtime",
    "encode_cursor",
    "interval_starts",
    "movement_counts",
    "od_matrix",
    "passages",
    "plate_passages",
    "plate_reads",
    "queues",
    "speed_stats",
    "totals",
]
