"""Count intervals: the one rule, in Python. The store implements the same rule in SQL
for Postgres and SQLite, and the tests hold them against each other.

Rule: an interval of `minutes` (a divisor of 60) starts where the site's *local wall
clock* shows a multiple of `minutes` past the hour. A timestamp belongs to the interval
whose local start is the floor of its local time. The start is converted back to UTC
with the UTC offset in force at the timestamp itself, so that in the repeated hour of a
DST fall-back both passes are kept apart, and in the skipped hour of spring-forward
nothing lands in a non-existent local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=32)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def interval_start(ts: float, tz: str, minutes: int = 15) -> float:
    """UTC epoch seconds of the start of the interval holding `ts` (UTC epoch seconds)."""
    if minutes <= 0 or 60 % minutes:
        raise ValueError(f"interval minutes must divide 60, got {minutes}")
    local = datetime.fromtimestamp(ts, tz=UTC).astimezone(_zone(tz))
    offset = local.utcoffset() or timedelta(0)
    wall = local.replace(tzinfo=None)
    floored = wall.replace(minute=wall.minute - wall.minute % minutes, second=0, microsecond=0)
    return (floored - offset).replace(tzinfo=UTC).timestamp()


def interval_label(start_ts: float, tz: str) -> str:
    """Local ISO time of an interval start, with its UTC offset (e.g. 2026-03-29T03:00:00+02:00)."""
    return datetime.fromtimestamp(start_ts, tz=UTC).astimezone(_zone(tz)).isoformat()
