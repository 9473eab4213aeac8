"""Read side, against a Python reference computed from the same random events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from trafficprn.errors import InputError
from trafficprn.events import CameraStatus, PlateRead, QueueSample, VehiclePassage
from trafficprn.store import db as store_db
from trafficprn.store import queries, repository
from trafficprn.store.testing import heartbeats, make_passage
from trafficprn.timebins import interval_start

T0 = 1_774_746_000.0  # 2026-03-29 01:00 UTC: spring-forward day in Europe/Berlin
TZ = "Europe/Berlin"
CLASSES = ["car", "car", "car", "truck", "bus", "motorcycle"]
LEGS = ["N", "E", "S", "W"]
MOVES = ["L", "T", "R", "U"]
COLOURS = ["white", "black", "red", None]


@dataclass
class Data:
    passages: list[VehiclePassage]
    queues: list[QueueSample]


def _random_passages(rng: np.random.Generator, n: int) -> list[VehiclePassage]:
    out = []
    for i in range(n):
        speed = None if rng.random() < 0.1 else float(np.round(rng.uniform(5, 90), 3))
        approach = None if rng.random() < 0.4 else float(np.round(rng.uniform(10, 70), 2))
        out.append(
            make_passage(
                camera=str(rng.choice(["cam-1", "cam-2"])),
                track_id=i,
                passage_ts=float(T0 + rng.uniform(0, 2 * 86400)),
                vehicle_class=str(rng.choice(CLASSES)),
                entry_leg=str(rng.choice(LEGS)),
                exit_leg=str(rng.choice(LEGS)),
                movement=str(rng.choice(MOVES)),
                colour=rng.choice(COLOURS),
                speed_median_kmh=speed,
                approach_speed_kmh=approach,
                stops=None if approach is None else int(rng.integers(0, 3)),
                speed_flagged=bool(rng.random() < 0.05),
                plate_text=f"ABC-{i:04d}" if i % 3 == 0 else None,
            )
        )
    # two passages at the very same instant: the cursor must order them by id
    out.append(make_passage(camera="cam-1", track_id=9001, passage_ts=T0 + 1000.0))
    out.append(make_passage(camera="cam-1", track_id=9002, passage_ts=T0 + 1000.0))
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, make_db_url: Callable[[str], str]) -> Iterator[tuple[Engine, Data]]:
    """One database per dialect with the random data set, shared by this module (read-only)."""
    engine = store_db.make_engine(make_db_url(request.param))
    rng = np.random.default_rng(7)
    passages = _random_passages(rng, 600)
    queues = [
        QueueSample("cam-1", lane, T0 + s, float(rng.uniform(0, 60)), int(rng.integers(0, 9)))
        for lane in ("N-1", "S-1")
        for s in range(0, 1800)
    ]
    statuses = [
        CameraStatus("cam-1", T0 - 100, up=True),
        CameraStatus("cam-1", T0 + 3600 + 300, up=False, reason="rtsp timeout"),
        CameraStatus("cam-1", T0 + 3600 + 1200, up=True),
    ]
    # cam-1's worker watched from before the first interval on, down 01:05-01:20 after T0;
    # cam-2 has passages but no heartbeats: nothing says it was watched.
    lo = interval_start(T0, TZ, 15)
    beats = heartbeats("cam-1", lo - 100, T0 + 3 * 3600 + 1000, down=[(T0 + 3900, T0 + 4800)])
    with engine.begin() as conn:
        repository.write_events(conn, [*passages, *queues, *statuses, *beats])
        repository.write_events(conn, [PlateRead("cam-1", 1, T0 + 5, 0.8, plate_text="ABC-0000")])
    try:
        yield engine, Data(passages, queues)
    finally:
        engine.dispose()


@pytest.fixture
def db_engine(loaded: tuple[Engine, Data]) -> Engine:
    return loaded[0]


@pytest.fixture
def data(loaded: tuple[Engine, Data]) -> Data:
    return loaded[1]


def _matches(p: VehiclePassage, flt: queries.PassageFilter) -> bool:
    def ok(value: object, want: object) -> bool:
        return want is None or (value in want if isinstance(want, list) else value == want)

    return (
        ok(p.camera, flt.camera)
        and (flt.from_ts is None or p.passage_ts >= flt.from_ts)
        and (flt.to_ts is None or p.passage_ts < flt.to_ts)
        and ok(p.vehicle_class, flt.vehicle_class)
        and ok(p.movement, flt.movement)
        and ok(p.colour, flt.colour)
        and (flt.speed_min_kmh is None or (p.speed_median_kmh is not None and p.speed_median_kmh >= flt.speed_min_kmh))
        and (flt.speed_max_kmh is None or (p.speed_median_kmh is not None and p.speed_median_kmh <= flt.speed_max_kmh))
    )


FILTERS = [
    queries.PassageFilter(),
    queries.PassageFilter(camera="cam-1"),
    queries.PassageFilter(camera="cam-2", from_ts=T0 + 3600, to_ts=T0 + 86400),
    queries.PassageFilter(vehicle_class="truck"),
    queries.PassageFilter(vehicle_class=["bus", "truck"], movement="L"),
    queries.PassageFilter(colour="red", speed_min_kmh=30, speed_max_kmh=60),
    queries.PassageFilter(camera="cam-1", movement=["T", "R"], speed_max_kmh=20),
    queries.PassageFilter(camera="nope"),
]


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_passages_filters_and_cursor(db_engine: Engine, data: Data, flt: queries.PassageFilter, order: str) -> None:
    want = sorted((p for p in data.passages if _matches(p, flt)), key=lambda p: p.passage_ts, reverse=order == "desc")
    got: list[queries.PassageRecord] = []
    cursor = None
    with db_engine.connect() as conn:
        for _ in range(100):
            page = queries.passages(conn, flt, limit=37, cursor=cursor, order=order)  # type: ignore[arg-type]
            got += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    assert sorted(r.uuid for r in got) == sorted(p.uuid for p in want)
    keys = [(r.passage_ts, r.id) for r in got]
    assert keys == sorted(keys, reverse=order == "desc")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"limit": 0}, InputError),
        ({"limit": 5000}, InputError),
        ({"cursor": "garbage!"}, InputError),
        ({"cursor": "WzEsIDJd"}, None),  # [1, 2]: valid
        ({"cursor": "WyJhIiwgMl0"}, InputError),  # ["a", 2]
        ({"order": "sideways"}, InputError),
    ],
)
def test_passages_bad_arguments(db_engine: Engine, kwargs: dict[str, object], error: type[Exception] | None) -> None:
    with db_engine.connect() as conn:
        if error is None:
            queries.passages(conn, **kwargs)  # type: ignore[arg-type]
        else:
            with pytest.raises(error):
                queries.passages(conn, **kwargs)  # type: ignore[arg-type]


def test_filter_range_checks() -> None:
    with pytest.raises(InputError, match="after"):
        queries.PassageFilter(from_ts=10, to_ts=5).where()
    with pytest.raises(InputError, match="speed_min_kmh"):
        queries.PassageFilter(speed_min_kmh=50, speed_max_kmh=10).where()


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_movement_counts_equal_python(db_engine: Engine, data: Data, minutes: int) -> None:
    lo, hi = interval_start(T0 + 1800, TZ, minutes), interval_start(T0 + 80000, TZ, minutes)
    want = Counter(
        (interval_start(p.passage_ts, TZ, minutes), p.entry_leg, p.exit_leg, p.movement, p.vehicle_class)
        for p in data.passages
        if p.camera == "cam-1" and lo <= p.passage_ts < hi
    )
    with db_engine.connect() as conn:
        rows = queries.movement_counts(conn, "cam-1", lo, hi, tz=TZ, minutes=minutes)
    got = Counter({(r.interval_start_ts, r.entry_leg, r.exit_leg, r.movement, r.vehicle_class): r.count for r in rows})
    assert got == want
    starts = set(queries.interval_starts(lo, hi, TZ, minutes))
    assert {r.interval_start_ts for r in rows} <= starts


@pytest.mark.parametrize(
    ("day", "tz", "expected"),
    [
        ("2026-03-29", "Europe/Berlin", 92),  # spring forward: 23 h
        ("2026-10-25", "Europe/Berlin", 100),  # fall back: 25 h
        ("2026-06-01", "Europe/Berlin", 96),
        ("2026-06-01", "Asia/Kathmandu", 96),
    ],
)
def test_interval_starts_on_dst_days(day: str, tz: str, expected: int) -> None:
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    d = date.fromisoformat(day)
    lo = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).timestamp()
    nxt = d + timedelta(days=1)
    hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo(tz)).timestamp()
    starts = queries.interval_starts(lo, hi, tz, 15)
    assert len(starts) == expected
    assert starts == sorted(set(starts))
    assert all(interval_start(s, tz, 15) == s for s in starts)


def test_count_intervals_flag_downtime(db_engine: Engine, data: Data) -> None:
    lo = interval_start(T0, TZ, 15)
    with db_engine.connect() as conn:
        infos = queries.count_intervals(conn, "cam-1", lo, lo + 3 * 3600, tz=TZ, minutes=15, now_ts=T0 + 86400)
        other = queries.count_intervals(conn, "cam-2", lo, lo + 3 * 3600, tz=TZ, minutes=15, now_ts=T0 + 86400)
        live = queries.count_intervals(conn, "cam-1", lo, lo + 3600, tz=TZ, minutes=15, now_ts=lo + 1000)
    down_a, down_b = T0 + 3900, T0 + 4800
    for info in infos:
        overlap = max(0.0, min(info.end_ts, down_b) - max(info.start_ts, down_a))
        assert info.down_s == pytest.approx(overlap)
        assert info.incomplete == (overlap > 0)
    assert sum(i.incomplete for i in infos) == 2  # 02:05-02:20 UTC touches two quarter hours
    assert all(i.incomplete for i in other)  # no heartbeats: missing, never counted as zero
    assert all(i.down_s == pytest.approx(i.end_ts - i.start_ts) for i in other)
    assert [i.incomplete for i in live] == [False, True, True, True]  # not over yet at now_ts


def test_od_matrix(db_engine: Engine, data: Data) -> None:
    want = Counter((p.entry_leg, p.exit_leg) for p in data.passages if p.camera == "cam-2")
    with db_engine.connect() as conn:
        got = {(c.entry_leg, c.exit_leg): c.count for c in queries.od_matrix(conn, "cam-2", T0 - 1, T0 + 3 * 86400)}
    assert got == dict(want)


@pytest.mark.parametrize("step_s", [1, 10, 60, 900])
def test_queues_resampled(db_engine: Engine, data: Data, step_s: int) -> None:
    lo, hi = T0 + 100, T0 + 1500
    with db_engine.connect() as conn:
        bins = queries.queues(conn, "cam-1", lo, hi, step_s=step_s)
    for lane in ("N-1", "S-1"):
        samples = [q for q in data.queues if q.lane == lane and lo <= q.ts < hi]
        buckets: dict[float, list[QueueSample]] = {}
        for q in samples:
            buckets.setdefault(float(np.floor(q.ts / step_s) * step_s), []).append(q)
        got = [b for b in bins if b.lane == lane]
        assert [b.start_ts for b in got] == sorted(buckets)
        for b in got:
            qs = buckets[b.start_ts]
            assert b.samples == len(qs)
            assert b.length_m_mean == pytest.approx(np.mean([q.length_m for q in qs]))
            assert b.length_m_max == pytest.approx(max(q.length_m for q in qs))
            assert b.vehicles_max == max(q.vehicles for q in qs)


@pytest.mark.parametrize(("vehicle_class", "include_flagged"), [(None, False), ("car", False), (None, True)])
def test_speed_stats_equal_numpy(db_engine: Engine, data: Data, vehicle_class: str | None, include_flagged: bool) -> None:
    """The distribution is of approach speeds, the median speed standing in where the
    approach was not measured."""

    def speed(p: VehiclePassage) -> float | None:
        return p.approach_speed_kmh if p.approach_speed_kmh is not None else p.speed_median_kmh

    assert any(p.approach_speed_kmh is not None for p in data.passages)
    assert any(p.approach_speed_kmh is None and p.speed_median_kmh is not None for p in data.passages)
    speeds = np.array(
        [
            speed(p)
            for p in data.passages
            if p.camera == "cam-1"
            and speed(p) is not None
            and (include_flagged or not p.speed_flagged)
            and (vehicle_class is None or p.vehicle_class == vehicle_class)
        ]
    )
    with db_engine.connect() as conn:
        st = queries.speed_stats(
            conn, "cam-1", T0 - 1, T0 + 3 * 86400, vehicle_class=vehicle_class, include_flagged=include_flagged
        )
    assert st.count == len(speeds)
    assert st.mean_kmh == pytest.approx(speeds.mean())
    for q, got in zip((15, 50, 85, 95), (st.p15_kmh, st.p50_kmh, st.p85_kmh, st.p95_kmh), strict=True):
        assert got == pytest.approx(np.percentile(speeds, q))
    hist = Counter(np.floor(speeds / 5.0).astype(int))
    assert {int(b.lo_kmh // 5): b.count for b in st.histogram} == dict(hist)


def test_speed_stats_empty(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        st = queries.speed_stats(conn, "cam-1", T0 - 86400, T0 - 86000)
    assert (st.count, st.p50_kmh, st.histogram) == (0, None, [])


def test_plates(db_engine: Engine, data: Data) -> None:
    with db_engine.connect() as conn:
        exact = queries.plate_passages(conn, text="abc-0003")
        some = queries.plate_passages(conn, text="C-00", contains=True, limit=1000)
        reads = queries.plate_reads(conn)
        with pytest.raises(InputError):
            queries.plate_passages(conn)
        with pytest.raises(InputError):
            queries.plate_passages(conn, text="%", plate_hash="x")
        none = queries.plate_passages(conn, text="%", contains=True)
    assert [r.plate_text for r in exact] == ["ABC-0003"]
    assert len(some) == sum(1 for p in data.passages if p.plate_text and "C-00" in p.plate_text)
    assert [r.plate_text for r in reads] == ["ABC-0000"]
    assert none == []


def test_cameras_status_and_uptime(db_engine: Engine, data: Data) -> None:
    with db_engine.connect() as conn:
        cams = {c.name: c for c in queries.cameras(conn, window_s=2 * 3600, now_ts=T0 + 7100)}
    assert set(cams) == {"cam-1", "cam-2"}
    assert cams["cam-1"].status == "up"
    assert cams["cam-1"].uptime == pytest.approx(1 - 900 / 7200)
    assert cams["cam-2"].status == "unknown" and cams["cam-2"].uptime is None
    assert cams["cam-1"].last_passage_ts == pytest.approx(max(p.passage_ts for p in data.passages if p.camera == "cam-1"))
    with db_engine.connect() as conn:
        down = {c.name: c for c in queries.cameras(conn, now_ts=T0 + 4000)}
    assert down["cam-1"].status == "down" and down["cam-1"].reason == "rtsp timeout"
