"""SQL expressions that differ between Postgres and SQLite: epoch seconds and the
count-interval rule of `trafficprn.timebins.interval_start`.

The interval rule in one line: start = ts - (wall - floor(wall, minutes)), where `wall`
is the site's local wall-clock time at ts (the UTC offset in force at ts itself).
- Postgres: wall = ts AT TIME ZONE tz, floor = date_bin(minutes, wall, 2000-01-01).
- SQLite: with s = whole epoch seconds and off = tp_utc_offset(s, tz) (a Python function
  registered on each connection by `trafficprn.store.db`), start = s - ((s + off) mod step).
Both return UTC epoch seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, DateTime, Float, Integer, Interval, String, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

from trafficprn.errors import InputError

INTERVAL_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


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
