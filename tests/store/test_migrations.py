"""The Alembic revisions are the only schema path: up -> down -> up on both databases,
and the migrated schema equals the models (no autogenerate diff)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from trafficprn.errors import StoreError
from trafficprn.store import db
from trafficprn.store.models import TABLES, Base
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database, postgres_reachable


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite'}"
        return
    if not postgres_reachable():
        pytest.skip("Postgres on 127.0.0.1:5432 is not reachable")
    url = create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_test_mig_")
    try:
        yield url
    finally:
        drop_database(url)


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _diff(url: str) -> list[object]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    head = db.head_revision()
    assert head is not None
    db.upgrade(empty_url)
    assert db.current_revision(empty_url) == head
    assert set(TABLES) <= _tables(empty_url)
    assert _diff(empty_url) == []
    db.check_database(empty_url)

    db.downgrade(empty_url, "base")
    assert db.current_revision(empty_url) is None
    assert not set(TABLES) & _tables(empty_url)
    with pytest.raises(StoreError, match="trafficprn db upgrade"):
        db.check_database(empty_url)

    db.upgrade(empty_url)
    assert db.current_revision(empty_url) == head
    assert _diff(empty_url) == []


def test_downgrade_one_step_from_head(empty_url: str) -> None:
    db.upgrade(empty_url)
    db.downgrade(empty_url)  # default: one step
    assert db.current_revision(empty_url) != db.head_revision()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid database URL"),
        ("mysql://u@h/db", "unsupported database"),
        ("postgresql://postgres@127.0.0.1:1/x", "unreachable"),
        ("postgresql://no_such_role_xyz@127.0.0.1:5432/postgres", "wrong user or password"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_xyz", "does not exist"),
    ],
)
def test_bad_urls_say_what_failed(url: str, message: str) -> None:
    if "5432" in url and not postgres_reachable():
        pytest.skip("Postgres on 127.0.0.1:5432 is not reachable")
    with pytest.raises(StoreError, match=message):
        db.check_database(url)


def test_password_is_hidden_in_messages() -> None:
    with pytest.raises(StoreError) as err:
        db.check_database("postgresql://user:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(err.value)


def test_alembic_ini_has_no_url() -> None:
    text = (Path(__file__).resolve().parents[2] / "alembic.ini").read_text()
    assert "sqlalchemy.url" not in text


def test_wait_for_database_retries_then_says_what_failed(caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    with pytest.raises(StoreError, match="unreachable"):
        db.wait_for_database("postgresql://postgres@127.0.0.1:1/x", timeout_s=3.0, sleep=sleeps.append)
    assert len(sleeps) >= 2 and sleeps == sorted(sleeps)  # backoff grows
    assert "retrying" in caplog.text


def test_wait_for_database_passes_when_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    db.upgrade(url)
    db.wait_for_database(url, timeout_s=1.0)


def test_sites_revision_fills_the_box_site_and_keys_cameras_and_counts_by_it(empty_url: str) -> None:
    """Rows a one-site box stored before revision 0006 take the site name given to the
    upgrade; cameras and the count rollup are then keyed by (site, name)."""
    from datetime import UTC, datetime

    from sqlalchemy import bindparam, text

    from trafficprn.store import queries
    from trafficprn.store.models import UTCDateTime

    def sql(statement: str) -> object:  # times bound as the models store them
        return text(statement).bindparams(bindparam("t", type_=UTCDateTime()))

    db.upgrade(empty_url, "0005")
    t0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    engine = db.make_engine(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(sql("INSERT INTO cameras (name, live_url, created_ts) VALUES ('fisheye-1', 'http://w:9100', :t)"),
                         {"t": t0})
            for i in range(6):
                conn.execute(sql(
                    "INSERT INTO vehicle_passages (uuid, site, camera, track_id, passage_ts, first_seen_ts, last_seen_ts,"
                    " vehicle_class, class_confidence, entry_leg, exit_leg, movement, speed_flagged, extras)"
                    " VALUES (:u, '', 'fisheye-1', :i, :t, :t, :t, 'car', 0.9, 'N', 'S', 'T', false, '{}')"),
                    {"u": f"00000000-0000-0000-0000-00000000000{i}", "i": i,
                     "t": t0.replace(minute=5 * i)})
            conn.execute(sql("INSERT INTO camera_heartbeats (site, camera, ts, up, frames_seen, frames_processed,"
                              " events_pending, events_dropped) VALUES ('', 'fisheye-1', :t, true, 1, 1, 0, 0)"),
                         {"t": t0})
    finally:
        engine.dispose()

    db.upgrade(empty_url, site_name="main-and-5th")
    assert _diff(empty_url) == []
    engine = db.make_engine(empty_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT DISTINCT site FROM vehicle_passages")).scalars().all() == ["main-and-5th"]
            assert conn.execute(text("SELECT site, name, live_url FROM cameras")).all() == [
                ("main-and-5th", "fisheye-1", "http://w:9100")]
            assert conn.execute(text("SELECT name FROM sites")).scalars().all() == ["main-and-5th"]
            a, b = t0.timestamp(), t0.timestamp() + 3600
            args = {"tz": "UTC", "minutes": 15, "site": "main-and-5th"}
            fast = queries.movement_counts(conn, "fisheye-1", a, b, **args)  # type: ignore[arg-type]
            slow = queries.movement_counts(conn, "fisheye-1", a, b, source="passages", **args)  # type: ignore[arg-type]
            assert fast == slow and sum(c.count for c in fast) == 6
            assert queries.movement_counts(conn, "fisheye-1", a, b, tz="UTC", site="elsewhere") == []
    finally:
        engine.dispose()


def test_sites_downgrade_merges_each_cameras_counts_of_all_sites(empty_url: str) -> None:
    import json as json_lib
    from dataclasses import replace

    from sqlalchemy import text

    from trafficprn.store.repository import write_events
    from trafficprn.store.testing import make_passage

    db.upgrade(empty_url)
    engine = db.make_engine(empty_url)
    try:
        with engine.begin() as conn:
            base = make_passage(camera="fisheye-1", passage_ts=1_780_000_000.0)
            write_events(conn, [replace(base, site=s, track_id=i, uuid=f"00000000-0000-0000-0000-0000000000{k}{i}")
                                for k, s in enumerate(("a", "b")) for i in range(3)])
    finally:
        engine.dispose()
    db.downgrade(empty_url, "0005")
    engine = db.make_engine(empty_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT camera, counts FROM passage_counts")).all()
    finally:
        engine.dispose()
    assert [(cam, [c[-1] for c in json_lib.loads(counts)]) for cam, counts in rows] == [("fisheye-1", [6])]


def _index_def(url: str, name: str) -> str:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)).scalar())
    finally:
        engine.dispose()


def test_speed_revision_puts_the_speed_columns_in_the_passage_index_on_postgres() -> None:
    """Revision 0007: the (site, camera, passage_ts) index carries the columns of the speed
    distribution, so that query is an index-only scan; its downgrade takes them out."""
    if not postgres_reachable(DEFAULT_ADMIN_URL):
        pytest.skip("Postgres is not reachable")
    url = create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_mig_")
    try:
        db.upgrade(url)
        speeds = ("approach_speed_kmh", "speed_median_kmh", "speed_flagged")
        assert all(c in _index_def(url, "ix_passages_site_camera_ts") for c in speeds)
        db.downgrade(url, "0006")
        include = _index_def(url, "ix_passages_site_camera_ts")
        assert "vehicle_class" in include and not any(c in include for c in speeds)
    finally:
        drop_database(url)
