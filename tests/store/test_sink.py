"""DatabaseSink: acknowledged events reach the database once, through the spool."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from trafficprn.errors import StoreError
from trafficprn.events import CameraStatus, QueueSample
from trafficprn.store import db as store_db
from trafficprn.store import queries
from trafficprn.store.models import Passage
from trafficprn.store.sink import DatabaseSink
from trafficprn.store.testing import free_port, make_passage


def _uuids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(u) for u in conn.execute(select(Passage.uuid)).scalars()]


def test_sink_writes_everything(db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    events = [make_passage(track_id=i, passage_ts=1.78e9 + i) for i in range(300)]
    events += [QueueSample("cam-1", "N-1", 1.78e9 + i, 1.0, 1) for i in range(40)]
    sink = DatabaseSink(db_url, tmp_path / "spool", batch_size=64, flush_s=0.05)
    for e in events[:100]:
        sink.emit(e)
    sink.emit_many(events[100:])
    assert sink.flush(20)
    st = sink.stats
    assert (st.spooled, st.written, st.pending, st.lag_s, st.db_ok, st.last_error) == (340, 340, 0, 0.0, True, "")
    sink.close()
    assert sorted(_uuids(db_engine)) == sorted(e.uuid for e in events[:300])
    with db_engine.connect() as conn:
        assert queries.totals(conn)["queue_samples"] == 40


def test_replay_of_a_written_spool_never_duplicates(db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    events = [make_passage(track_id=i) for i in range(120)]
    sink = DatabaseSink(db_url, spool, batch_size=50, flush_s=0.05)
    sink.emit_many(events)
    sink.close()
    (spool / "committed.json").unlink()  # as if the process died before saving its offset
    again = DatabaseSink(db_url, spool, batch_size=50, flush_s=0.05)
    assert again.stats.pending == 120
    assert again.flush(20)
    again.close()
    got = _uuids(db_engine)
    assert len(got) == len(set(got)) == 120


def test_unreachable_database_spools_then_replays(db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nope"
    sink = DatabaseSink(dead, spool, batch_size=10, flush_s=0.05, max_backoff_s=0.1)
    events = [make_passage(track_id=i) for i in range(25)]
    for e in events:
        sink.emit(e)
    time.sleep(0.4)
    st = sink.stats
    assert not st.db_ok and "unreachable" in st.last_error and st.retries >= 1
    assert st.pending == 25 and st.spool_bytes > 0 and st.lag_s > 0.2
    assert not sink.flush(0.2)
    sink.close(timeout_s=0.2)
    good = DatabaseSink(db_url, spool, batch_size=10, flush_s=0.05)
    assert good.flush(20)
    good.close()
    assert sorted(_uuids(db_engine)) == sorted(e.uuid for e in events)


def test_schema_missing_then_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.sqlite'}"
    sink = DatabaseSink(url, tmp_path / "spool", batch_size=5, flush_s=0.05, max_backoff_s=0.1)
    sink.emit_many([make_passage(track_id=i) for i in range(7)])
    time.sleep(0.3)
    assert "trafficprn db upgrade" in sink.stats.last_error
    store_db.upgrade(url)
    assert sink.flush(20)
    sink.close()


def test_refused_events_are_set_aside(db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    good = [make_passage(track_id=i) for i in range(150)]  # > COPY_MIN_ROWS: the COPY path on Postgres
    bad = [make_passage(track_id=99, uuid="not-a-uuid")]
    if db_engine.dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        bad.append(make_passage(track_id=98, camera="c" * 100))
    sink = DatabaseSink(db_url, spool, batch_size=500, flush_s=0.05)
    sink.emit_many([*good[:5], *bad, *good[5:]])
    assert sink.flush(30)
    assert sink.stats.rejected == len(bad)
    sink.close()
    assert sorted(_uuids(db_engine)) == sorted(e.uuid for e in good)
    rejected = [json.loads(line) for line in (spool / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == len(bad) and "UUID" in rejected[0]["reason"]


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("nonsense://", {}, "invalid database URL|unsupported"),
        ("oracle://u@h/db", {}, "unsupported database"),
        ("postgresql://postgres@127.0.0.1:1/x", {"require_db": True}, "unreachable"),
        ("sqlite:///:memory:", {"batch_size": 0}, "batch_size"),
    ],
)
def test_startup_errors_say_what_failed(tmp_path: Path, url: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(StoreError, match=message):
        DatabaseSink(url, tmp_path / "spool", **kwargs)  # type: ignore[arg-type]


def test_camera_status_events(db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    sink = DatabaseSink(db_url, tmp_path / "spool", flush_s=0.05)
    sink.emit(CameraStatus("cam-9", 1.78e9, up=True))
    sink.emit(CameraStatus("cam-9", 1.78e9 + 60, up=False, reason="eof"))
    assert sink.flush(20)
    sink.close()
    with db_engine.connect() as conn:
        cams = queries.cameras(conn, now_ts=1.78e9 + 120)
        n = conn.execute(select(func.count()).select_from(Passage)).scalar_one()
    assert [(c.name, c.status, c.reason) for c in cams] == [("cam-9", "down", "eof")]
    assert n == 0


def test_closed_sink_refuses(tmp_path: Path) -> None:
    sink = DatabaseSink(f"sqlite:///{tmp_path / 'x.sqlite'}", tmp_path / "spool", flush_s=0.05)
    sink.close()
    with pytest.raises(StoreError, match="closed"):
        sink.emit(make_passage())
