"""SQL expressions that differ between Postgres and SQLite: epoch seconds and the
count-interval rule of `trafficprn.timebins.interval_start`; the dialect of a
connection, timestamps as drivers return them, and the scope of one camera of one site.

The interval rule in one line: start = ts - (wall - floor(wall, minutes)), where `wall`
is the site's local wall-clock time at ts (the UTC offset in force at ts itself).
- Postgres: wall = ts AT TIME ZONE tz, floor = date_bin(minutes, wall, 2000-01-01).
- SQLite: with s = whole epoch seconds and off = tp_utc_offset(s, tz) (a Python function
  registered on each connection by `trafficprn.store.db`), start = s - ((s + off) mod step).
Both return UTC epoch seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, Connection, DateTime, Float, Integer, Interval, String, case, cast, func, literal
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from trafficprn.errors import InputError

INTERVAL_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


def dialect_of(conn: Connection | Session) -> str:
    """"postgresql" or "sqlite": the dialect of a connection or ORM session."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name


def as_epoch(value: object) -> float:
    """Epoch seconds of a timestamp as the driver returns it: an aware datetime, or the
    stored UTC text (SQLite aggregates such as MIN(ts) return the text), or a number."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)  # type: ignore[arg-type]


def camera_scope(site_col: Any, camera_col: Any, site: str | None, camera: str) -> list[ColumnElement[bool]]:
    """Conditions selecting one camera: a camera is a site and a name (two boxes may both
    have a `fisheye-1`). `site` None matches the name at any site (one-site stores)."""
    conds: list[ColumnElement[bool]] = [camera_col == camera]
    if site is not None:
        conds.insert(0, site_col == site)
    return conds


def check_minutes(minutes: int) -> int:
    if minutes not in INTERVAL_MINUTES:
        raise InputError(f"interval minutes must divide 60 (e.g. 5, 10, 15, 30, 60), got {minutes}")
    return minutes


def check_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InputError(f"expected an IANA time zone such as Europe/Berlin, got {tz!r}") from None
    return tz


def epoch_s(col: Any, dialect: str) -> ColumnElement[float]:
    """Epoch seconds (float) of a UTC timestamp column."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", col), Float)
    return cast((func.julianday(col) - 2440587.5) * 86400.0, Float)


def whole_epoch_s(col: Any, dialect: str) -> ColumnElement[int]:
    """Epoch seconds rounded down to whole seconds (integer)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", col)), BigInteger)
    return cast(func.strftime("%s", col), Integer)


def interval_start_s(col: Any, dialect: str, tz: str, minutes: int) -> ColumnElement[float]:
    """UTC epoch seconds of the start of the count interval holding `col`
    (equals `trafficprn.timebins.interval_start(ts, tz, minutes)`)."""
    check_minutes(minutes)
    check_tz(tz)
    if dialect == "postgresql":
        zone = literal(tz, String)
        wall = func.timezone(zone, col)
        floored = func.date_bin(
            literal(timedelta(minutes=minutes), Interval), wall, literal(datetime(2000, 1, 1), DateTime())
        )
        return cast(func.extract("epoch", col - (wall - floored)), Float)
    step = minutes * 60
    s = whole_epoch_s(col, dialect)
    off = func.tp_utc_offset(s, literal(tz, String))
    return cast(s - (((s + off) % step + step) % step), Float)


def bucket_start_s(col: Any, dialect: str, step_s: int) -> ColumnElement[float]:
    """UTC epoch seconds of fixed `step_s` buckets aligned to the epoch (for resampling)."""
    s = whole_epoch_s(col, dialect)
    return cast(s - ((s % step_s) + step_s) % step_s, Float)


# ---------------------------------------------------------------- fixed-offset segments
MAX_SEGMENTS = 64
_PROBE_S = 6 * 3600  # no zone changes its offset twice within six hours


def _offset_s(ts: float, zone: ZoneInfo) -> int:
    off = datetime.fromtimestamp(ts, tz=UTC).astimezone(zone).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def offset_segments(from_ts: float, to_ts: float, tz: str) -> list[tuple[float, int]]:
    """The zone's UTC offset over [from_ts, to_ts) as [(segment_start_ts, offset_s)]:
    the first segment starts at `from_ts`, the others at the zone's transitions (whole
    UTC seconds, as zoneinfo applies them); each lasts until the next one starts."""
    zone = ZoneInfo(check_tz(tz))
    out = [(from_ts, _offset_s(from_ts, zone))]
    a = from_ts
    while a < to_ts:
        b = min(a + _PROBE_S, to_ts)
        off_b = _offset_s(b, zone)
        if off_b != out[-1][1]:
            lo, hi = math.floor(a), math.ceil(b)  # offset(lo) is the old one, offset(hi) the new one
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset_s(mid, zone) == out[-1][1] else (lo, mid)
            if hi < to_ts:
                out.append((float(hi), off_b))
        a = b
    return out


def interval_key(
    col: Any, dialect: str, tz: str, minutes: int, from_ts: float, to_ts: float
) -> ColumnElement[Any] | None:
    """A cheap per-row key of the count interval of `col` for rows in [from_ts, to_ts):
    within each fixed-offset segment of the range the local interval is a fixed-width
    bin of UTC time aligned to that offset, so no row needs a time-zone lookup.
    Postgres: the interval start as timestamptz (`date_bin`); SQLite: UTC epoch seconds.
    `key_epoch_s` turns a key into epoch seconds. None when the range has more than
    MAX_SEGMENTS offsets (use `interval_start_s` then). Equals `interval_start_s`."""
    check_minutes(minutes)
    segments = offset_segments(from_ts, to_ts, tz)
    if len(segments) > MAX_SEGMENTS:
        return None
    step = minutes * 60
    if dialect == "postgresql":
        stride = literal(timedelta(seconds=step), Interval)

        def bin_of(off: int) -> ColumnElement[Any]:
            origin = literal(datetime.fromtimestamp(-off, tz=UTC), DateTime(timezone=True))
            return func.date_bin(stride, col, origin)

        bins = [(start, bin_of(off)) for start, off in segments]
        bounds = [literal(datetime.fromtimestamp(start, tz=UTC), DateTime(timezone=True)) for start, _ in segments]
        if len(bins) == 1:
            return bins[0][1]
        return case(*[(col < bound, b) for bound, (_, b) in zip(bounds[1:], bins[:-1], strict=True)], else_=bins[-1][1])
    s = whole_epoch_s(col, dialect)
    keys = [s - (((s + off) % step + step) % step) for _, off in segments]
    if len(keys) == 1:
        return keys[0]
    # s < T <=> ts < T for whole-second T
    return case(*[(s < int(start), k) for (start, _), k in zip(segments[1:], keys[:-1], strict=True)], else_=keys[-1])


def key_epoch_s(key: Any, dialect: str) -> ColumnElement[float]:
    """UTC epoch seconds (float) of an `interval_key`."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", key), Float)
    return cast(key, Float)
