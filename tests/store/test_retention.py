"""Retention: passages/queues after `passages` days; plates after their shorter `plates` days."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from trafficprn.config import RetentionDays
from trafficprn.events import CameraStatus, PlateRead, QueueSample
from trafficprn.store import repository
from trafficprn.store.models import CameraStatusRow, Passage, PlateReadRow, QueueSampleRow
from trafficprn.store.retention import DAY_S, purge
from trafficprn.store.testing import make_passage

NOW = 1_790_000_000.0


@pytest.mark.parametrize(
    ("retention", "passages_left", "plates_left", "reads_left"),
    [
        (RetentionDays(passages=400, plates=30), [1, 10, 100, 399], [1, 10], [1, 10]),
        (RetentionDays(passages=50, plates=5), [1, 10], [1], [1]),
        (RetentionDays(passages=1000, plates=0), [1, 10, 100, 399, 401], [], []),
    ],
)
def test_purge(
    db_engine: Engine, retention: RetentionDays, passages_left: list[int], plates_left: list[int], reads_left: list[int]
) -> None:
    ages = [1, 10, 100, 399, 401]
    events = []
    for age in ages:
        ts = NOW - age * DAY_S
        events += [
            make_passage(track_id=age, passage_ts=ts, plate_text=f"AAA-{age:04d}", plate_hash="f" * 64, plate_confidence=0.9),
            QueueSample("cam-1", "N-1", ts, 3.0, 1),
            PlateRead("cam-1", age, ts, 0.9, plate_text=f"AAA-{age:04d}"),
            CameraStatus("cam-1", ts, up=age % 2 == 0),
        ]
    with db_engine.begin() as conn:
        repository.write_events(conn, events)
        result = purge(conn, retention, now_ts=NOW)
    with db_engine.connect() as conn:
        passages = conn.execute(select(Passage.track_id, Passage.plate_text, Passage.plate_hash, Passage.plate_confidence)).all()
        queue_n = len(conn.execute(select(QueueSampleRow.id)).all())
        reads = sorted(conn.execute(select(PlateReadRow.track_id)).scalars())
        status_n = len(conn.execute(select(CameraStatusRow.id)).all())
    assert sorted(p.track_id for p in passages) == passages_left
    assert sorted(p.track_id for p in passages if p.plate_text is not None) == plates_left
    assert all((p.plate_hash is None) == (p.plate_text is None) == (p.plate_confidence is None) for p in passages)
    assert queue_n == len(passages_left)
    assert reads == reads_left
    kept_status = len(passages_left) + (1 if len(passages_left) < len(ages) else 0)  # plus the last change before the cut
    assert status_n == kept_status
    assert result.passages == len(ages) - len(passages_left)
    assert result.plate_reads == len(ages) - len(reads_left)
    assert result.plates_cleared == len(passages_left) - len(plates_left)


def test_purge_twice_is_a_no_op(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        repository.write_events(conn, [make_passage(passage_ts=NOW - 500 * DAY_S)])
        first = purge(conn, RetentionDays(), now_ts=NOW)
        second = purge(conn, RetentionDays(), now_ts=NOW)
    assert first.passages == 1
    assert second == type(second)(0, 0, 0, 0, 0)
