"""The spool: fsynced appends, batched reads, committed offset, crash recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafficprn.errors import StoreError
from trafficprn.events import CameraStatus, PlateRead, QueueSample
from trafficprn.store.spool import Position, Spool
from trafficprn.store.testing import make_passage


def _drain(spool: Spool, batch: int) -> list[object]:
    out: list[object] = []
    pos = spool.committed
    while True:
        items, pos2 = spool.read(pos, batch)
        if not items:
            return out
        out += [i.event for i in items]
        spool.commit(pos2, len(items))
        pos = pos2


def test_events_round_trip_in_order(tmp_path: Path) -> None:
    events = [
        make_passage(track_id=1, extras={"a": [1, 2]}),
        QueueSample("cam-1", "N-1", 1.5e9, 12.5, 3),
        PlateRead("cam-1", 1, 1.5e9, 0.9, plate_hash="ff"),
        CameraStatus("cam-1", 1.5e9, up=False, reason="timeout"),
    ]
    spool = Spool(tmp_path)
    spool.append(events[:2])
    spool.append(events[2:])
    assert spool.pending == 4
    assert _drain(spool, 3) == events
    assert spool.pending == 0
    spool.close()


@pytest.mark.parametrize("segment_bytes", [200, 10_000, 10_000_000])
def test_segments_rotate_and_are_deleted(tmp_path: Path, segment_bytes: int) -> None:
    spool = Spool(tmp_path, segment_bytes=segment_bytes)
    events = [make_passage(track_id=i) for i in range(60)]
    for e in events:
        spool.append([e])
    assert _drain(spool, 7) == events
    spool.append([make_passage(track_id=99)])  # rotation after a full drain still works
    assert [e.track_id for e in _drain(spool, 7)] == [99]  # type: ignore[attr-defined]
    assert len(list(tmp_path.glob("segment-*.jsonl"))) <= 2
    spool.close()


def test_reopen_resumes_after_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=500)
    events = [make_passage(track_id=i) for i in range(20)]
    spool.append(events)
    items, pos = spool.read(spool.committed, 8)
    spool.commit(pos, len(items))
    spool.close()
    again = Spool(tmp_path, segment_bytes=500)
    assert again.pending == 12
    assert _drain(again, 5) == events[8:]
    again.close()


def test_torn_last_line_is_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([make_passage(track_id=1), make_passage(track_id=2)])
    spool.close()
    seg = sorted(tmp_path.glob("segment-*.jsonl"))[-1]
    with open(seg, "ab") as f:
        f.write(b'{"k":"passage","t":1,"e":{"camera"')  # crash in the middle of an append
    again = Spool(tmp_path)
    assert again.pending == 2
    again.append([make_passage(track_id=3)])
    assert [e.track_id for e in _drain(again, 10)] == [1, 2, 3]  # type: ignore[attr-defined]
    again.close()


def test_undecodable_line_is_reported_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([make_passage(track_id=1)])
    spool.close()
    seg = sorted(tmp_path.glob("segment-*.jsonl"))[-1]
    with open(seg, "ab") as f:
        f.write(b'{"k":"alien","t":1,"e":{}}\n')
    again = Spool(tmp_path)
    items, _ = again.read(again.committed, 10)
    assert items[0].event is not None and items[1].event is None and "alien" in items[1].error
    again.close()


def test_one_process_per_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()


def test_damaged_offset_file(tmp_path: Path) -> None:
    (tmp_path / "committed.json").write_text("{nope")
    with pytest.raises(StoreError, match="damaged"):
        Spool(tmp_path)


def test_full_spool_refuses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=2000)
    with pytest.raises(StoreError, match="full"):
        for i in range(100):
            spool.append([make_passage(track_id=i)])
    spool.close()


def test_positions_order() -> None:
    assert Position(0, 100) < Position(1, 0) < Position(1, 5)
