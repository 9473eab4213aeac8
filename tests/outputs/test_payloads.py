"""The outputs' bookkeeping without a broker: interval completeness from heartbeats, late
passages, queue summaries, the on-disk queue, the fan-out and the /metrics rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafficprn.events import CameraStatus, FanOutSink, Heartbeat, ListSink, QueueSample, VehiclePassage
from trafficprn.outputs.disk_queue import DiskQueue
from trafficprn.outputs.mqtt import MqttStats
from trafficprn.outputs.payloads import CountsBook, Coverage, QueueBook, passage_payload
from trafficprn.outputs.sink import OutputStats
from trafficprn.outputs.webhook import WebhookStats
from trafficprn.worker import WorkerMetrics, prometheus_text

T0 = 1_773_129_600.0  # 2026-03-10T08:00:00Z, an interval start
MIN = 60.0


def _passage(ts: float, movement: str | None = "T", cls: str = "car") -> VehiclePassage:
    return VehiclePassage(camera="c", track_id=1, passage_ts=ts, first_seen_ts=ts - 3, last_seen_ts=ts + 3,
                          vehicle_class=cls, class_confidence=0.9, entry_leg="N" if movement else None,
                          exit_leg="S" if movement else None, movement=movement)  # type: ignore[arg-type]


def _beats(book: CountsBook, start: float, stop: float, step: float = 10.0, up: bool = True) -> list[dict[str, object]]:
    out = []
    ts = start
    while ts <= stop:
        out += book.heartbeat(Heartbeat(camera="c", ts=ts, up=up))
        ts += step
    return out


def test_an_interval_is_complete_only_where_up_heartbeats_cover_it() -> None:
    book = CountsBook("s", "c", "UTC", 15, delay_s=30.0)
    before = _beats(book, T0 - 20, T0 + 15 * MIN - 10)  # 07:45-08:00 closes 30 s after its end, watched 20 s
    assert [(m["interval_start_ts"], m["complete"], m["covered_s"]) for m in before] == [(T0 - 900, False, 20.0)]
    book.passage(_passage(T0 + 100))
    book.passage(_passage(T0 + 200, cls="bus"))
    book.passage(_passage(T0 + 300, movement=None))
    out = _beats(book, T0 + 15 * MIN, T0 + 15 * MIN + 30)
    assert len(out) == 1
    msg = out[0]
    assert msg["complete"] is True and msg["covered_s"] == 900.0
    assert msg["counts"] == {"N_T_bus": 1, "N_T_car": 1} and msg["total"] == 2 and msg["unassigned"] == 1
    assert msg["start"] == "2026-03-10T08:00:00+00:00" and msg["interval_end_ts"] == T0 + 900


@pytest.mark.parametrize("gap", ["stale", "down"])
def test_a_gap_in_heartbeats_or_a_down_camera_makes_it_incomplete(gap: str) -> None:
    book = CountsBook("s", "c", "UTC", 15, delay_s=0.0)
    _beats(book, T0, T0 + 300)
    if gap == "stale":  # the worker died for 2 minutes: the beat after is too late to cover it
        out = _beats(book, T0 + 420, T0 + 900)
    else:
        book.status(CameraStatus(camera="c", ts=T0 + 350, up=False))
        book.status(CameraStatus(camera="c", ts=T0 + 400, up=True))
        out = _beats(book, T0 + 310, T0 + 900)
    assert [m["complete"] for m in out] == [False]
    assert out[0]["covered_s"] == pytest.approx(900 - (120 if gap == "stale" else 50))


def test_a_late_passage_republishes_its_interval_with_a_new_uuid() -> None:
    book = CountsBook("s", "c", "UTC", 15, delay_s=0.0)
    first = _beats(book, T0, T0 + 900)[0]
    again = book.passage(_passage(T0 + 890))
    assert len(again) == 1 and again[0]["total"] == first["total"] + 1 and again[0]["uuid"] != first["uuid"]
    replay = CountsBook("s", "c", "UTC", 15, delay_s=0.0)
    assert _beats(replay, T0, T0 + 900)[0]["uuid"] == first["uuid"]  # same footage, same id


def test_coverage_state_stays_bounded() -> None:
    book = CountsBook("s", "c", "UTC", 5, delay_s=0.0)
    _beats(book, T0, T0 + 24 * 3600, step=10.0)
    assert len(book._intervals) <= 6
    assert len(book.coverage._spans) <= 2


def test_coverage_merges_spans() -> None:
    cov = Coverage(stale_s=30)
    for ts in (0, 10, 20, 25):
        cov.heartbeat(ts, True)
    cov.heartbeat(100, True)  # 75 s later: does not cover 25..100
    cov.heartbeat(110, False)
    cov.heartbeat(120, True)
    assert cov.covered_s(0, 200) == 35.0


def test_queue_summaries_per_period() -> None:
    book = QueueBook("s", "c", period_s=5.0)
    out = []
    for i in range(12):
        out += book.sample(QueueSample(camera="c", lane="N-1", ts=T0 + i, length_m=float(i), vehicles=i // 3))
        out += book.sample(QueueSample(camera="c", lane="S-1", ts=T0 + i, length_m=0.0, vehicles=0))
    out += book.flush()
    assert [m["from_ts"] for m in out] == [T0, T0 + 5, T0 + 10]
    n1 = out[1]["lanes"][0]
    assert n1 == {"lane": "N-1", "length_m": 9.0, "length_m_max": 9.0, "vehicles": 3, "vehicles_max": 3,
                  "samples": 5}
    assert len({m["uuid"] for m in out}) == 3


def test_passage_payload_has_the_rest_keys_and_site() -> None:
    p = passage_payload(_passage(T0), "main-and-5th")
    assert p["site"] == "main-and-5th" and p["uuid"] and "plate_hash" not in p and "extras" not in p


def test_disk_queue_bound_torn_line_and_commit(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path, max_messages=3, segment_bytes=60)
    assert [q.put(f"t/{i}", b'{"n": %d}' % i) for i in range(4)] == [True, True, True, False]
    assert q.dropped == 1 and q.pending == 3
    msgs = q.read(q.committed, 2)
    q.commit(msgs[-1].next_pos, 2)
    q.close()
    with open(sorted(tmp_path.glob("segment-*.jsonl"))[-1], "ab") as f:
        f.write(b'{"t": "torn')  # a crash mid-append
    q = DiskQueue(tmp_path, max_messages=3)
    assert q.pending == 1 and [m.topic for m in q.read(q.committed, 10)] == ["t/2"]
    assert q.put("t/4", b"{}")
    assert [m.topic for m in q.read(q.committed, 10)] == ["t/2", "t/4"]
    q.close()


def test_fan_out_gives_each_sink_every_event() -> None:
    a, b = ListSink(), ListSink()
    sink = FanOutSink([a, b])
    sink.emit(_passage(T0))
    assert len(a.events) == len(b.events) == 1


def test_metrics_show_the_output_counters() -> None:
    stats = OutputStats(MqttStats(connected=True, published=7, pending=2, dropped=1),
                        WebhookStats(delivered=5, failed=3, dropped=1, pending=4))
    text = prometheus_text(WorkerMetrics("c"), output_stats=stats)
    for line in ('trafficprn_mqtt_connected{camera="c"} 1', 'trafficprn_mqtt_published_total{camera="c"} 7',
                 'trafficprn_mqtt_dropped_total{camera="c"} 1', 'trafficprn_webhook_delivered_total{camera="c"} 5',
                 'trafficprn_webhook_failed_total{camera="c"} 3', 'trafficprn_webhook_dropped_total{camera="c"} 1',
                 'trafficprn_webhook_queued{camera="c"} 4'):
        assert line in text
    assert "mqtt" not in prometheus_text(WorkerMetrics("c"))
