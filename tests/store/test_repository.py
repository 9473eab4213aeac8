"""Write side: batched, idempotent inserts; values round-trip exactly."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from trafficprn.errors import InputError
from trafficprn.events import CameraStatus, PlateRead, QueueSample
from trafficprn.store import queries, repository
from trafficprn.store.models import CameraRow, CameraStatusRow, Passage, PlateReadRow, QueueSampleRow, SiteRow
from trafficprn.store.testing import make_passage


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_replayed_batches_do_not_duplicate(db_engine: Engine) -> None:
    events = [
        *[make_passage(track_id=i, passage_ts=1.78e9 + i) for i in range(50)],
        *[QueueSample("cam-1", "N-1", 1.78e9 + i, 4.5 * i, i) for i in range(20)],
        PlateRead("cam-1", 3, 1.78e9, 0.9, plate_hash="ab" * 32),
        CameraStatus("cam-1", 1.78e9, up=True),
    ]
    for _ in range(3):
        with db_engine.begin() as conn:
            counts = repository.write_events(conn, events)
    assert counts.total == len(events)
    assert _count(db_engine, Passage) == 50
    assert _count(db_engine, QueueSampleRow) == 20
    assert _count(db_engine, PlateReadRow) == 1
    assert _count(db_engine, CameraStatusRow) == 1
    assert _count(db_engine, CameraRow) == 1


def test_passage_round_trips(db_engine: Engine) -> None:
    p = make_passage(
        passage_ts=1_780_000_123.456789,
        movement="L",
        plate_text="ABC-1234",
        plate_confidence=0.77,
        speed_flagged=True,
        approach_speed_kmh=41.25,
        through_speed_kmh=23.5,
        stopped_s=17.5,
        stops=2,
        extras={"note": "x", "n": [1, 2]},
        colour=None,
        colour_confidence=None,
    )
    with db_engine.begin() as conn:
        repository.insert_passages(conn, [p])
    with db_engine.connect() as conn:
        rec = queries.passages(conn).items[0]
    for name, value in p.to_dict().items():
        got = getattr(rec, name)
        if name.endswith("_ts"):
            assert got == pytest.approx(value, abs=1e-6)
        else:
            assert got == value, name


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"movement": "X"}, InputError),
        ({"uuid": "not-a-uuid"}, InputError),
        ({"movement": None}, None),
        ({"entry_leg": None, "exit_leg": None, "movement": None, "speed_median_kmh": None}, None),
    ],
)
def test_passage_validation(db_engine: Engine, overrides: dict[str, object], error: type[Exception] | None) -> None:
    p = make_passage(**overrides)
    with db_engine.begin() as conn:
        if error is None:
            repository.insert_passages(conn, [p])
        else:
            with pytest.raises(error):
                repository.insert_passages(conn, [p])
    assert _count(db_engine, Passage) == (1 if error is None else 0)


def test_upsert_camera_sets_live_url_per_site(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        repository.ensure_cameras(conn, [("s1", "a"), ("s1", "b"), ("s1", "a"), ("s2", "a")])
        repository.upsert_camera(conn, "s1", "a", "http://worker-a:9100")
        repository.upsert_camera(conn, "s1", "c", None)
    with db_engine.connect() as conn:
        got = {(s, n): u for s, n, u in conn.execute(select(CameraRow.site, CameraRow.name, CameraRow.live_url))}
        zones = dict(conn.execute(select(SiteRow.name, SiteRow.timezone)).all())
    # the same name at two sites is two cameras; the URL of one leaves the other alone
    assert got == {("s1", "a"): "http://worker-a:9100", ("s1", "b"): None, ("s1", "c"): None, ("s2", "a"): None}
    assert zones == {"s1": None, "s2": None}


def test_upsert_site_records_and_updates_its_time_zone(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        repository.ensure_cameras(conn, [("north", "cam")])
        repository.upsert_site(conn, "north", "Europe/Berlin")
        repository.upsert_site(conn, "south", "America/New_York")
        repository.upsert_site(conn, "south", "America/Chicago")
        repository.ensure_cameras(conn, [("north", "cam2")])  # leaves the known zone alone
    with db_engine.connect() as conn:
        zones = dict(conn.execute(select(SiteRow.name, SiteRow.timezone)).all())
    assert zones == {"north": "Europe/Berlin", "south": "America/Chicago"}


def test_naive_datetimes_are_refused(db_engine: Engine) -> None:
    from datetime import datetime

    from sqlalchemy.exc import StatementError

    row = repository.passage_row(make_passage())
    row["passage_ts"] = datetime(2026, 1, 1)
    with db_engine.begin() as conn, pytest.raises(StatementError, match="naive"):
        conn.execute(Passage.__table__.insert(), [row])


@pytest.mark.parametrize("n", [10, 150, 1200])  # executemany and COPY-staged paths
def test_large_batches_with_duplicates(db_engine: Engine, n: int) -> None:
    ps = [make_passage(track_id=i, passage_ts=1.78e9 + i) for i in range(n)]
    with db_engine.begin() as conn:
        repository.insert_passages(conn, ps + ps[: n // 2])  # duplicates inside one batch
    with db_engine.begin() as conn:
        repository.insert_passages(conn, ps)  # and a replay
    with db_engine.connect() as conn:
        got = sorted(str(u) for u in conn.execute(select(Passage.uuid)).scalars())
    assert got == sorted(p.uuid for p in ps)


def test_data_errors_are_sqlalchemy_errors(db_engine: Engine) -> None:
    """A value Postgres refuses (camera name too long) surfaces as a DBAPIError on both paths."""
    from sqlalchemy.exc import DBAPIError

    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    for n in (1, 200):
        ps = [make_passage(track_id=i, camera="x" * 100) for i in range(n)]
        with pytest.raises(DBAPIError), db_engine.begin() as conn:
            repository.insert_passages(conn, ps)
