from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trafficprn.timebins import interval_label, interval_start


def utc(*a: int) -> float:
    return datetime(*a, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("ts", "tz", "minutes", "expected"),
    [
        (utc(2026, 6, 1, 10, 7, 30), "UTC", 15, utc(2026, 6, 1, 10, 0)),
        (utc(2026, 6, 1, 10, 15, 0), "UTC", 15, utc(2026, 6, 1, 10, 15)),
        (utc(2026, 6, 1, 10, 59, 59), "Europe/Berlin", 15, utc(2026, 6, 1, 10, 45)),
        (utc(2026, 6, 1, 10, 7), "Asia/Kathmandu", 15, utc(2026, 6, 1, 10, 0)),  # +05:45: 15:52 -> 15:45 local
        (utc(2026, 6, 1, 10, 7), "Asia/Kolkata", 15, utc(2026, 6, 1, 10, 0)),  # +05:30: 15:37 -> 15:30 local
        (utc(2026, 6, 1, 10, 7), "Asia/Kolkata", 60, utc(2026, 6, 1, 9, 30)),  # hours align to local :00
        # Berlin spring-forward 2026-03-29 01:00 UTC: 03:05 CEST -> 03:00 CEST = 01:00 UTC
        (utc(2026, 3, 29, 1, 5), "Europe/Berlin", 15, utc(2026, 3, 29, 1, 0)),
        # Berlin fall-back 2026-10-25: 02:10 local happens twice (00:10 UTC and 01:10 UTC)
        (utc(2026, 10, 25, 0, 10), "Europe/Berlin", 15, utc(2026, 10, 25, 0, 0)),
        (utc(2026, 10, 25, 1, 10), "Europe/Berlin", 15, utc(2026, 10, 25, 1, 0)),
    ],
)
def test_interval_start(ts, tz, minutes, expected):
    assert interval_start(ts, tz, minutes) == expected


def test_bad_minutes():
    with pytest.raises(ValueError, match="must divide 60"):
        interval_start(0.0, "UTC", 7)


def test_label_is_local():
    assert interval_label(utc(2026, 6, 1, 10, 0), "Europe/Berlin") == "2026-06-01T12:00:00+02:00"
