"""The `passage_counts` rollup: the same counts as the passages, kept exact through
replays (COPY and executemany paths), retention and the 0002 backfill, and used only
where it can answer exactly."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

import numpy as np
import pytest
from sqlalchemy import Connection, column, insert, select, table
from sqlalchemy.engine import Engine

from trafficprn.config import RetentionDays
from trafficprn.events import VehiclePassage
from trafficprn.store import queries, repository, rollup
from trafficprn.store.models import PassageCountRow
from trafficprn.store.retention import DAY_S, purge
from trafficprn.store.testing import make_passage

T0 = 1_774_738_800.0  # 2026-03-29 00:00 Europe/Berlin, a spring-forward day
LEGS = ["N", "E", "S", "W", None]
CLASSES = ["car", "car", "truck", "bus"]


def _passages(n: int, seed: int, *, days: float = 2.0, camera: str = "cam-1") -> list[VehiclePassage]:
    rng = np.random.default_rng(seed)
    return [
        make_passage(
            camera=camera,
            track_id=seed * 100_000 + i,
            passage_ts=float(T0 + rng.uniform(0, days * 86400)),
            entry_leg=LEGS[int(rng.integers(0, 5))],
            exit_leg=LEGS[int(rng.integers(0, 5))],
            movement=[None, "L", "T", "R", "U"][int(rng.integers(0, 5))],
            vehicle_class=CLASSES[int(rng.integers(0, 4))],
        )
        for i in range(n)
    ]


def _rollup(conn: Connection) -> dict[tuple[str, str, int], Counter[tuple[object, ...]]]:
    rows = conn.execute(select(PassageCountRow.site, PassageCountRow.camera, PassageCountRow.bucket_s,
                               PassageCountRow.counts)).all()
    out = {}
    for site, camera, b, counts in rows:
        cells = Counter({tuple(item[:4]): int(item[4]) for item in json.loads(counts)})
        if +cells:
            out[(site, camera, int(b))] = +cells
    return out


def _from_scratch(conn: Connection) -> dict[tuple[str, str, int], Counter[tuple[object, ...]]]:
    """The rollup recounted from the passages (inside a savepoint, rolled back)."""
    with conn.begin_nested() as sp:
        rollup.rebuild_counts(conn, 0, 4_000_000_000 - 4_000_000_000 % rollup.BUCKET_S)
        out = _rollup(conn)
        sp.rollback()
    return out


def _both(conn: Connection, camera: str, lo: float, hi: float, tz: str, minutes: int, **kw: object) -> tuple[Counter, Counter]:
    def key(rows: list[queries.MovementCount]) -> Counter:
        return Counter({(r.interval_start_ts, r.entry_leg, r.exit_leg, r.movement, r.vehicle_class): r.count for r in rows})

    auto = queries.movement_counts(conn, camera, lo, hi, tz=tz, minutes=minutes, **kw)  # type: ignore[arg-type]
    raw = queries.movement_counts(conn, camera, lo, hi, tz=tz, minutes=minutes, source="passages", **kw)  # type: ignore[arg-type]
    assert [r.interval_start_ts for r in auto] == sorted(r.interval_start_ts for r in auto)
    return key(auto), key(raw)


@pytest.mark.parametrize("batch", [7, 150])  # executemany path, COPY path (Postgres)
def test_replays_never_count_twice(db_engine: Engine, batch: int) -> None:
    passages = _passages(400, seed=batch)
    with db_engine.begin() as conn:
        for i in range(0, len(passages), batch):
            repository.insert_passages(conn, passages[i : i + batch])
    with db_engine.begin() as conn:  # a replay overlapping new events
        repository.insert_passages(conn, passages[100:300] + _passages(50, seed=batch + 1))
        repository.write_events(conn, passages[:batch])
    with db_engine.connect() as conn:
        got = _rollup(conn)
        assert got == _from_scratch(conn)
        assert sum(sum(c.values()) for c in got.values()) == 450


@pytest.mark.parametrize(
    ("tz", "minutes", "lo", "hi", "uses_rollup"),
    [
        ("Europe/Berlin", 15, T0, T0 + 2 * 86400, True),  # across spring-forward
        ("Europe/Berlin", 30, T0 + 3600, T0 + 86400, True),
        ("Europe/Berlin", 60, T0, T0 + 2 * 86400, True),
        ("Asia/Kathmandu", 15, T0 + 900, T0 + 86400, True),  # +05:45
        ("Asia/Kathmandu", 60, T0 + 900, T0 + 2 * 86400, True),  # hours start at :15 UTC
        ("Australia/Lord_Howe", 30, T0, T0 + 2 * 86400, True),  # +10:30 / +11
        ("America/St_Johns", 60, T0, T0 + 2 * 86400, True),  # -02:30
        ("Europe/Berlin", 5, T0, T0 + 86400, False),  # finer than a bucket
        ("Europe/Berlin", 10, T0, T0 + 86400, False),
        ("Europe/Berlin", 15, T0 + 60, T0 + 86400, False),  # not on a bucket boundary
        ("Europe/Berlin", 15, T0 + 0.5, T0 + 86400, False),
    ],
)
def test_rollup_equals_passages(db_engine: Engine, tz: str, minutes: int, lo: float, hi: float, uses_rollup: bool) -> None:
    with db_engine.begin() as conn:
        repository.insert_passages(conn, _passages(500, seed=3) + _passages(80, seed=4, camera="cam-2"))
    with db_engine.connect() as conn:
        used = rollup.read_counts(conn, "cam-1", lo, hi, tz=tz, minutes=minutes, classes=None) is not None
        assert used == uses_rollup
        auto, raw = _both(conn, "cam-1", lo, hi, tz, minutes)
        assert auto == raw and sum(raw.values()) > 0
        auto, raw = _both(conn, "cam-1", lo, hi, tz, minutes, vehicle_class=["truck", "bus"])
        assert auto == raw and {k[4] for k in raw} == {"truck", "bus"}


def test_purge_keeps_rollup_exact(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        repository.insert_passages(conn, _passages(300, seed=5, days=3))
    now = T0 + 1.5 * 86400 + 7 * 86400 + 123.4  # the cut falls inside a bucket
    with db_engine.begin() as conn:
        purge(conn, RetentionDays(passages=7, plates=1), now_ts=now)
    with db_engine.connect() as conn:
        got = _rollup(conn)
        assert got == _from_scratch(conn)
        assert min(b for _, _, b in got) >= (now - 7 * DAY_S) // 900 * 900
        auto, raw = _both(conn, "cam-1", T0, T0 + 3 * 86400, "Europe/Berlin", 15)
        assert auto == raw


def test_rollup_fills_on_upgrade(db_url: str) -> None:
    """0002 counts the passages stored before it (inserted here without the rollup)."""
    from trafficprn.store import db as store_db
    from trafficprn.store.models import Passage

    store_db.downgrade(db_url, "0001")
    engine = store_db.make_engine(db_url)
    try:
        with engine.begin() as conn:
            rows = [repository.passage_row(p) for p in _passages(200, seed=6)]
            new = {"site", "approach_speed_kmh", "through_speed_kmh", "stopped_s", "stops"}  # not in 0001
            old_rows = [{k: v for k, v in r.items() if k not in new} for r in rows]
            cols = [column(c.name, c.type) for c in Passage.__table__.c if c.name in old_rows[0]]
            conn.execute(insert(table("vehicle_passages", *cols)), old_rows)
        store_db.upgrade(db_url)
        with engine.connect() as conn:
            got = _rollup(conn)
            assert got == _from_scratch(conn) and sum(sum(c.values()) for c in got.values()) == 200
            auto, raw = _both(conn, "cam-1", T0, T0 + 2 * 86400, "Europe/Berlin", 15)
            assert auto == raw
    finally:
        engine.dispose()


def test_zone_offsets_are_whole_quarter_hours() -> None:
    """Why the rollup serves every zone in use: all UTC offsets of 2020-2030 are
    multiples of 15 minutes (read_counts still checks each range)."""
    odd = set()
    instants = [datetime(y, m, 1, tzinfo=UTC) for y in range(2020, 2031) for m in (1, 4, 7, 10)]
    for tz in available_timezones():
        zone = ZoneInfo(tz)
        for t in instants:
            off = t.astimezone(zone).utcoffset()
            if off is not None and off.total_seconds() % rollup.BUCKET_S:
                odd.add(tz)
    assert odd == set()
