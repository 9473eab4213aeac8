"""MQTT outputs against a real Mosquitto: `trafficprn process` on the bundled demo video
publishing while the broker restarts, a publishing process killed with SIGKILL (and one
frozen with SIGSTOP) read offline through the last will, the on-disk queue's bound while
the broker is down, and `run`'s worker publishing beside its database."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from mqtt_helpers import Broker, Subscriber, demo_site, process_cmd, process_env, wait_for  # noqa: E402
from test_worker import BlobDetector, site_config, write_video  # noqa: E402

from trafficprn.api.schemas import PassageOut  # noqa: E402
from trafficprn.config import MqttOutput, load_site  # noqa: E402
from trafficprn.outputs.mqtt import MqttPublisher  # noqa: E402
from trafficprn.outputs.payloads import PASSAGE_KEYS  # noqa: E402
from trafficprn.services_commands import run_worker  # noqa: E402
from trafficprn.settings import Settings  # noqa: E402
from trafficprn.store.db import make_engine, upgrade  # noqa: E402
from trafficprn.store.models import Passage  # noqa: E402

PREFIX = "t15"
TOPIC = f"{PREFIX}/sim-default/fisheye-1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def _stored_uuids(db: Path) -> set[str]:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return {str(u) for u in conn.execute(select(Passage.uuid)).scalars()}
    finally:
        engine.dispose()


def _outputs(broker: Broker, keepalive_s: int = 30, counts_delay_s: float = 60.0) -> dict[str, object]:
    return {"mqtt": {"url": broker.url, "topic_prefix": PREFIX, "keepalive_s": keepalive_s,
                     "counts_delay_s": counts_delay_s}}


def test_process_publishes_every_passage_once_across_a_broker_restart(tmp_path: Path, broker: Broker) -> None:
    site = demo_site(tmp_path, _outputs(broker, keepalive_s=5, counts_delay_s=3.0))
    db = tmp_path / "run.sqlite"
    upgrade(f"sqlite:///{db}")
    sub = Subscriber(broker.port, f"{PREFIX}/#", "t15-restart-sub")
    proc = subprocess.Popen(process_cmd(site, db, tmp_path / "spool"), env=process_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(sub.of("passage")) >= 3, 90, "the first passages on MQTT")
        broker.stop()
        before = len({p["uuid"] for p in sub.of("passage")})
        time.sleep(2.5)  # passages made now wait in the worker's disk queue
        assert proc.poll() is None, "the run ended before the broker came back: the restart was not mid-run"
        broker.start()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    stored = _stored_uuids(db)
    assert len(stored) > 20
    assert f"passages: {len(stored)} " in out
    assert re.search(r"mqtt    : \d+ published, 0 waiting on disk, 0 dropped", out), out
    wait_for(lambda: {p["uuid"] for p in sub.of("passage")} >= stored, 30, "every stored passage on MQTT")
    sub.close()
    received = {p["uuid"] for p in sub.of("passage")}
    assert received == stored  # none missing, none made up; duplicates (at least once) collapse by uuid
    assert before < len(received)  # some went out after the restart
    passages = sub.of("passage")
    assert all(set(p) == {*PASSAGE_KEYS, "site"} and p["site"] == "sim-default" for p in passages)
    assert {*PASSAGE_KEYS, "site"} == set(PassageOut.model_fields)  # the REST API's passage keys
    counts = sub.of("counts")
    starts = sorted({c["interval_start_ts"] for c in counts})
    assert len(starts) == 2  # 08:00 (closed mid-run, 3 s after 08:15) and 08:15 (open when the run ended)
    assert all(c["complete"] is False for c in counts)  # the run watched 30 s of each
    latest = {c["interval_start_ts"]: c for c in counts}  # a late passage republishes: the latest counts
    assert sum(c["total"] + c["unassigned"] for c in latest.values()) == len(stored)
    assert sub.of("queue") and all(q["lanes"] and q["uuid"] for q in sub.of("queue"))
    assert sub.of("availability")[-1]["state"] == "offline"


def _run_until_online(tmp_path: Path, broker: Broker, keepalive_s: int, name: str) -> tuple[subprocess.Popen[bytes],
                                                                                             Subscriber]:
    site = demo_site(tmp_path, _outputs(broker, keepalive_s))
    db = tmp_path / f"{name}.sqlite"
    upgrade(f"sqlite:///{db}")
    sub = Subscriber(broker.port, f"{TOPIC}/availability", f"t15-{name}-sub")
    proc = subprocess.Popen(process_cmd(site, db, tmp_path / f"spool-{name}"), env=process_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: sub.of("availability") and sub.of("availability")[-1]["state"] == "online", 60, "online")
    return proc, sub


# Mosquitto 2.0.11 looks at keepalives every 5 s, on whole-second clocks (measured: keepalive 2 s -> offline
# after 5.0 s, 5 s -> 11.1 s): a frozen client is announced on the first tick after 1.5 x keepalive, so up
# to 5 s + 1 s later; a killed one at once (its socket closes).
BROKER_KEEPALIVE_TICK_S = 6.5


@pytest.mark.parametrize(("how", "extra_s"), [(signal.SIGKILL, 0.0), (signal.SIGSTOP, BROKER_KEEPALIVE_TICK_S)],
                         ids=["kill-9", "frozen"])
def test_a_publisher_that_dies_reads_offline_within_one_and_a_half_keepalives(tmp_path: Path, broker: Broker,
                                                                              how: signal.Signals,
                                                                              extra_s: float) -> None:
    keepalive_s = 2
    proc, sub = _run_until_online(tmp_path, broker, keepalive_s, how.name.lower())
    try:
        proc.send_signal(how)  # SIGKILL: its socket closes; SIGSTOP: it goes silent and the broker times it out
        took = wait_for(lambda: sub.of("availability")[-1]["state"] == "offline", keepalive_s * 1.5 + extra_s + 1.0,
                        "availability offline (the last will)")
    finally:
        proc.kill()
        proc.wait(10)
    assert took <= keepalive_s * 1.5 + extra_s
    if how == signal.SIGSTOP:
        assert took >= keepalive_s  # the broker waited for the keepalive, the socket stayed open
    assert sub.of("availability")[-1]["reason"] == "connection lost"  # the will, not a clean close
    late = Subscriber(broker.port, f"{TOPIC}/availability", f"t15-{how.name}-late")
    wait_for(lambda: late.messages, 5, "the retained availability")
    assert late.messages[-1][2] is True and late.messages[-1][1]["state"] == "offline"
    late.close()
    sub.close()


def test_broker_down_messages_wait_on_disk_up_to_the_bound_and_overflow_is_counted(tmp_path: Path,
                                                                                  broker: Broker) -> None:
    cfg = MqttOutput(url=broker.url, queue_max_events=40, keepalive_s=5)
    broker.stop()
    pub = MqttPublisher(cfg, client_id="t15-bound", queue_dir=tmp_path / "q", availability_topic="t15/bound/avail",
                        availability=lambda state, reason: {"uuid": "x", "state": state}).start()
    try:
        accepted = [pub.publish("t15/bound/msg", f'{{"uuid": "{i}"}}'.encode()) for i in range(50)]
        assert accepted == [True] * 40 + [False] * 10
        assert pub.stats.pending == 40 and pub.stats.dropped == 10 and not pub.stats.connected
        broker.start()
        sub = Subscriber(broker.port, "t15/bound/msg", "t15-bound-sub")
        wait_for(lambda: sub.client.is_connected(), 10, "the subscriber")
        time.sleep(0.3)  # subscribed before the publisher reconnects (1-5 s back-off)
        wait_for(lambda: pub.stats.pending == 0, 20, "the queue to drain")
        wait_for(lambda: len(sub.messages) >= 40, 10, "40 messages")
        assert sorted(int(p["uuid"]) for _, p, _ in sub.messages) == list(range(40))
        assert pub.stats.published == 40
        sub.close()
    finally:
        pub.close(timeout_s=2)


def test_queue_on_disk_survives_a_restart_of_the_publisher(tmp_path: Path, broker: Broker) -> None:
    cfg = MqttOutput(url=broker.url, keepalive_s=5)
    broker.stop()

    def publisher() -> MqttPublisher:
        return MqttPublisher(cfg, client_id="t15-restart", queue_dir=tmp_path / "q", availability_topic="t15/r/a",
                             availability=lambda state, reason: {"uuid": "x", "state": state})

    first = publisher().start()
    for i in range(5):
        first.publish("t15/r/msg", f'{{"uuid": "{i}"}}'.encode())
    first.close(timeout_s=0.5)  # broker down: they stay on disk
    broker.start()
    sub = Subscriber(broker.port, "t15/r/msg", "t15-r-sub")
    wait_for(lambda: sub.client.is_connected(), 10, "the subscriber")
    time.sleep(0.3)
    second = publisher()
    assert second.stats.pending == 5
    second.start()
    try:
        wait_for(lambda: len(sub.messages) >= 5, 15, "the 5 queued messages")
        assert sorted(int(p["uuid"]) for _, p, _ in sub.messages) == list(range(5))
    finally:
        second.close(timeout_s=2)
        sub.close()


def test_run_worker_publishes_beside_the_database_and_says_offline_on_a_clean_stop(tmp_path: Path,
                                                                                   broker: Broker) -> None:
    data = site_config()
    data["outputs"] = _outputs(broker, keepalive_s=5)
    data["outputs"]["mqtt"]["homeassistant"] = {"discovery_prefix": "t15ha"}  # type: ignore[index]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    write_video(tmp_path / "video.mp4")
    site = load_site(tmp_path / "site.yaml")
    db = tmp_path / "run.sqlite"
    upgrade(f"sqlite:///{db}")
    sub = Subscriber(broker.port, f"{PREFIX}/#", "t15-run-sub")
    wait_for(sub.client.is_connected, 10, "the subscriber")
    ha = Subscriber(broker.port, "t15ha/#", "t15-run-ha")
    wait_for(ha.client.is_connected, 10, "the discovery subscriber")
    time.sleep(0.3)
    frames = run_worker(site, site.cameras[0], Settings(database_url=f"sqlite:///{db}"),
                        site_path=str(tmp_path / "site.yaml"), http_host="127.0.0.1", http_port=0,
                        spool_dir=tmp_path / "spool", detector=BlobDetector())
    assert frames > 0
    stored = _stored_uuids(db)
    assert len(stored) == 1
    wait_for(lambda: sub.of("availability") and sub.of("availability")[-1]["state"] == "offline", 10, "offline")
    sub.close()
    passage = sub.of("passage")
    assert [p["uuid"] for p in passage] == sorted(stored)
    assert (passage[0]["entry_leg"], passage[0]["exit_leg"], passage[0]["movement"]) == ("N", "S", "T")
    assert passage[0]["site"] == "test-junction"
    assert [a["state"] for a in sub.of("availability")] == ["online", "offline"]
    assert sub.of("availability")[-1]["reason"] == "worker stopped"
    assert (tmp_path / "spool-mqtt").is_dir()  # the queue lies beside the spool
    _check_discovery(ha, sub)
    ha.close()


def _check_discovery(ha: Subscriber, sub: Subscriber) -> None:
    """Home Assistant's discovery configs point at the topics published, and their
    templates (rendered with jinja2, as Home Assistant does) read the real payloads."""
    jinja2 = pytest.importorskip("jinja2")  # Home Assistant's template engine, not a dependency of ours

    configs = {t.split("/")[-2]: p for t, p, _ in ha.messages}
    assert set(configs) == {"vehicles_interval", "last_vehicle", "last_speed", "queue_N-1"}
    assert len({c["unique_id"] for c in configs.values()}) == 4
    latest = {kind: sub.of(kind)[-1] for kind in ("passage", "counts", "queue")}
    env = jinja2.Environment()
    for cfg in configs.values():
        kind = cfg["state_topic"].rsplit("/", 1)[1]
        assert cfg["state_topic"] == f"{TOPIC.replace('sim-default/fisheye-1', 'test-junction/pole-1')}/{kind}"
        assert cfg["availability_topic"].endswith("/availability") and cfg["payload_available"] == "online"
        value = env.from_string(cfg["value_template"]).render(value_json=latest[kind])
        assert value not in ("", "None")
    render = env.from_string(configs["vehicles_interval"]["value_template"]).render
    assert render(value_json=latest["counts"]) == str(latest["counts"]["total"])
    assert env.from_string(configs["last_vehicle"]["value_template"]).render(value_json=latest["passage"]) == "car"
