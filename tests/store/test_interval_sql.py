"""The interval rule in SQL (Postgres and SQLite) equals `timebins.interval_start`, on
random timestamps, on both sides of every DST transition and in odd-offset zones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from trafficprn.errors import InputError
from trafficprn.store import db as store_db
from trafficprn.store import queries, repository
from trafficprn.store.models import Passage
from trafficprn.store.sqlexpr import interval_key, interval_start_s, key_epoch_s, offset_segments
from trafficprn.store.testing import make_passage
from trafficprn.timebins import interval_start

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kathmandu",  # +05:45
    "Asia/Kolkata",  # +05:30
    "Australia/Lord_Howe",  # 30-minute DST
    "America/St_Johns",  # -03:30 / -02:30
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
]


def transitions(tz: str, year: int) -> list[float]:
    """UTC epoch seconds where the zone's offset changes during `year` (to the second)."""
    zone = ZoneInfo(tz)

    def offset(t: float) -> float:
        return datetime.fromtimestamp(t, tz=UTC).astimezone(zone).utcoffset().total_seconds()  # type: ignore[union-attr]

    start = datetime(year, 1, 1, tzinfo=UTC).timestamp()
    hours = np.arange(start, start + 366 * 86400, 3600.0)
    out = []
    for a, b in zip(hours[:-1], hours[1:], strict=True):
        if offset(a) != offset(b):
            lo, hi = float(a), float(b)
            while hi - lo > 1:
                mid = float(np.floor((lo + hi) / 2))
                lo, hi = (mid, hi) if offset(mid) == offset(a) else (lo, mid)
            out.append(hi)
    return out


def sample_timestamps(tz: str, rng: np.random.Generator) -> list[float]:
    ts = list(rng.uniform(1.6e9, 1.9e9, 300))
    ts += [float(np.round(t)) for t in rng.uniform(1.6e9, 1.9e9, 100)]  # whole seconds
    for t0 in transitions(tz, 2026):
        ts += [t0 + d for d in (-3600.5, -1800, -901, -900, -1, -0.25, 0, 0.5, 1, 899, 900, 1800, 3599.75, 3600, 5400)]
    for t in rng.uniform(1.7e9, 1.8e9, 50):  # exactly on 5-minute boundaries of UTC
        ts.append(float(np.floor(t / 300) * 300))
    return ts


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, make_db_url: Callable[[str], str]) -> Iterator[tuple[Engine, dict[str, list[float]]]]:
    """Passages at sample timestamps per zone (camera = zone name), one DB per dialect."""
    engine = store_db.make_engine(make_db_url(request.param))
    rng = np.random.default_rng(99)
    out: dict[str, list[float]] = {}
    with engine.begin() as conn:
        for tz in ZONES:
            ts = sample_timestamps(tz, rng)
            repository.insert_passages(conn, [make_passage(camera=tz, track_id=i, passage_ts=t) for i, t in enumerate(ts)])
            out[tz] = ts
    try:
        yield engine, out
    finally:
        engine.dispose()


@pytest.fixture
def db_engine(loaded: tuple[Engine, dict[str, list[float]]]) -> Engine:
    return loaded[0]


@pytest.fixture
def stored(loaded: tuple[Engine, dict[str, list[float]]]) -> dict[str, list[float]]:
    return loaded[1]


def test_transitions_found() -> None:
    assert len(transitions("Europe/Berlin", 2026)) == 2
    assert transitions("Asia/Kathmandu", 2026) == []


@pytest.mark.parametrize("minutes", [5, 10, 15, 30, 60])
def test_sql_bins_equal_python(db_engine: Engine, stored: dict[str, list[float]], minutes: int) -> None:
    dialect = db_engine.dialect.name
    mismatches = []
    with db_engine.connect() as conn:
        for tz in ZONES:
            stmt = select(Passage.track_id, Passage.passage_ts, interval_start_s(Passage.passage_ts, dialect, tz, minutes))
            rows = conn.execute(stmt.where(Passage.camera == tz)).all()
            assert len(rows) == len(stored[tz])
            for track_id, ts, start in rows:
                assert ts.timestamp() == pytest.approx(stored[tz][track_id], abs=1e-6)
                want = interval_start(stored[tz][track_id], tz, minutes)
                if float(start) != want:
                    mismatches.append((tz, stored[tz][track_id], float(start), want))
    assert mismatches == []


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_segment_keys_equal_python(db_engine: Engine, stored: dict[str, list[float]], minutes: int) -> None:
    """`interval_key` (date_bin / integer bins per fixed-offset segment) over a range
    holding many offset changes equals the rule."""
    dialect = db_engine.dialect.name
    mismatches = []
    with db_engine.connect() as conn:
        for tz in ZONES:
            lo, hi = min(stored[tz]), max(stored[tz]) + 1
            key = interval_key(Passage.passage_ts, dialect, tz, minutes, lo, hi)
            assert key is not None
            inner = select(Passage.track_id, key.label("k")).where(Passage.camera == tz).subquery()
            rows = conn.execute(select(inner.c.track_id, key_epoch_s(inner.c.k, dialect))).all()
            assert len(rows) == len(stored[tz])
            for track_id, start in rows:
                want = interval_start(stored[tz][track_id], tz, minutes)
                if float(start) != want:
                    mismatches.append((tz, stored[tz][track_id], float(start), want))
    assert mismatches == []


@pytest.mark.parametrize(
    ("tz", "lo", "hi", "n"),
    [("Europe/Berlin", 1.77e9, 1.77e9 + 30 * 86400, 1), ("Europe/Berlin", 1.7e9, 1.7e9 + 366 * 86400, 3), ("UTC", 0, 2e9, 1)],
)
def test_offset_segments(tz: str, lo: float, hi: float, n: int) -> None:
    segs = offset_segments(lo, hi, tz)
    assert len(segs) == n and segs[0][0] == lo
    for start, off in segs:
        assert lo <= start < hi
        assert datetime.fromtimestamp(start, tz=UTC).astimezone(ZoneInfo(tz)).utcoffset().total_seconds() == off  # type: ignore[union-attr]


def test_movement_counts_follow_the_rule(db_engine: Engine, stored: dict[str, list[float]]) -> None:
    with db_engine.connect() as conn:
        for tz in ("Europe/Berlin", "Asia/Kathmandu", "Australia/Lord_Howe"):
            rows = queries.movement_counts(conn, tz, 1.5e9, 2.0e9, tz=tz, minutes=15, source="passages")
            got = {r.interval_start_ts: r.count for r in rows}
            starts, counts = np.unique([interval_start(t, tz, 15) for t in stored[tz]], return_counts=True)
            assert got == {float(s): int(c) for s, c in zip(starts, counts, strict=True)}


@pytest.mark.parametrize(
    ("tz", "minutes", "error"),
    [("Europe/Berlin", 7, InputError), ("Mars/Olympus", 15, InputError), ("Europe/Berlin", 0, InputError)],
)
def test_bad_interval_arguments(db_engine: Engine, tz: str, minutes: int, error: type[Exception]) -> None:
    with db_engine.connect() as conn, pytest.raises(error):
        queries.movement_counts(conn, "cam-1", 0.0, 1.0, tz=tz, minutes=minutes)
