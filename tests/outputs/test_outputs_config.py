"""The `outputs:` section: defaults, and errors that name the field."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1]))

from test_worker import site_config  # noqa: E402

from trafficprn.config import dump_site, load_site, parse_site  # noqa: E402
from trafficprn.errors import ConfigError  # noqa: E402
from trafficprn.outputs import build_outputs  # noqa: E402
from trafficprn.outputs.homeassistant import discovery_messages  # noqa: E402


def _with(outputs: Any) -> dict[str, Any]:
    data = copy.deepcopy(site_config())
    data["outputs"] = outputs
    return data


def test_absent_outputs_mean_none_and_are_not_written_back(tmp_path: Path) -> None:
    site = parse_site(site_config())
    assert site.outputs.mqtt is None and site.outputs.webhooks == [] and site.outputs.empty
    assert build_outputs(site, "pole-1", queue_name="q", default_queue_dir=tmp_path / "q") is None
    dump_site(site, tmp_path / "site.yaml")
    assert "outputs" not in (tmp_path / "site.yaml").read_text()


def test_defaults_and_round_trip(tmp_path: Path) -> None:
    site = parse_site(_with({"mqtt": {"url": "mqtts://broker.example:8884"},
                             "webhooks": [{"url": "https://example.org/hook", "secret_env": "HOOK_SECRET"}]}))
    mqtt = site.outputs.mqtt
    assert mqtt is not None
    assert (mqtt.host, mqtt.port, mqtt.use_tls) == ("broker.example", 8884, True)
    assert (mqtt.topic_prefix, mqtt.qos, mqtt.keepalive_s, mqtt.queue_max_events) == ("trafficprn", 1, 30, 100_000)
    assert parse_site(_with({"mqtt": {"url": "mqtt://b"}})).outputs.mqtt.port == 1883  # type: ignore[union-attr]
    assert site.outputs.webhooks[0].events == ["passage", "counts", "availability"]
    dump_site(site, tmp_path / "site.yaml")
    (tmp_path / "video.mp4").touch()
    assert load_site(tmp_path / "site.yaml").outputs == site.outputs


@pytest.mark.parametrize(("outputs", "field", "says"), [
    ({"mqtt": {"url": "http://broker:1883"}}, "outputs.mqtt.url", "mqtt://host:port"),
    ({"mqtt": {"url": "mqtt://broker:99999"}}, "outputs.mqtt.url", "port"),
    ({"mqtt": {"url": "mqtt://user:pw@broker"}}, "outputs.mqtt.url", "TRAFFICPRN_MQTT_USERNAME"),
    ({"mqtt": {"url": "mqtt://broker", "qos": 2}}, "outputs.mqtt.qos", "0 or 1"),
    ({"mqtt": {"url": "mqtt://broker", "keepalive_s": 60}}, "outputs.mqtt.keepalive_s", "30"),
    ({"mqtt": {"url": "mqtt://broker", "topic_prefix": "a/#"}}, "outputs.mqtt.topic_prefix", "+ #"),
    ({"mqtt": {"url": "mqtt://broker", "queue_max_events": 0}}, "outputs.mqtt.queue_max_events", "1"),
    ({"mqtt": {"url": "mqtt://broker", "tls": {}}}, "outputs.mqtt", "mqtts://"),
    ({"mqtt": {"url": "mqtt://broker", "qso": 1}}, "outputs.mqtt.qso", "unknown field"),
    ({"mqtt": {"url": "mqtt://broker", "password": "x"}}, "outputs.mqtt.password", "unknown field"),
    ({"mqtt": {}}, "outputs.mqtt.url", "field required"),
    ({"webhooks": [{"url": "ftp://x", "secret_env": "S"}]}, "outputs.webhooks[0].url", "http"),
    ({"webhooks": [{"url": "http://x", "secret_env": "not a name"}]}, "outputs.webhooks[0].secret_env", "environment"),
    ({"webhooks": [{"url": "http://x", "secret_env": "S", "events": ["queue"]}]}, "outputs.webhooks[0].events[0]",
     "passage"),
    ({"webhooks": [{"url": "http://x", "secret_env": "S", "events": ["passage", "passage"]}]},
     "outputs.webhooks[0].events", "twice"),
    ({"webhooks": [{"url": "http://x", "secret": "abc", "secret_env": "S"}]}, "outputs.webhooks[0].secret",
     "unknown field"),
    ({"kafka": {}}, "outputs.kafka", "unknown field"),
])
def test_errors_name_the_field(outputs: Any, field: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_site(_with(outputs))
    assert info.value.field == field
    assert says in str(info.value)


def test_a_webhook_secret_missing_from_the_environment_names_the_field(tmp_path: Path) -> None:
    site = parse_site(_with({"webhooks": [{"url": "http://127.0.0.1:9/x", "secret_env": "T15_UNSET_SECRET"}]}))
    with pytest.raises(ConfigError) as info:
        build_outputs(site, "pole-1", queue_name="q", default_queue_dir=tmp_path / "q", env={})
    assert info.value.field == "outputs.webhooks[0].secret_env" and "T15_UNSET_SECRET" in str(info.value)


def test_the_commented_example_in_examples_site_yaml_is_valid() -> None:
    text = (Path(__file__).parents[2] / "examples" / "site.yaml").read_text()
    head, block = text.split("\n# outputs:\n")
    lines = ["outputs:"] + [line[2:] for line in block.splitlines() if line.startswith("#  ")]
    data = yaml.safe_load(head + "\n" + "\n".join(lines))
    outputs = parse_site(data).outputs
    assert outputs.mqtt is not None and outputs.mqtt.port == 1883 and outputs.mqtt.qos == 1
    assert outputs.webhooks[0].secret_env == "TRAFFICPRN_WEBHOOK_SECRET"


def test_home_assistant_discovery_is_off_unless_asked_for() -> None:
    site = parse_site(_with({"mqtt": {"url": "mqtt://b"}}))
    assert site.outputs.mqtt is not None
    assert discovery_messages("s", site.cameras[0], site.outputs.mqtt) == []
    site = parse_site(_with({"mqtt": {"url": "mqtt://b", "homeassistant": {}}}))
    assert site.outputs.mqtt is not None and site.outputs.mqtt.homeassistant is not None
    topics = [t for t, _ in discovery_messages("s", site.cameras[0], site.outputs.mqtt)]
    assert topics[0] == "homeassistant/sensor/trafficprn_s_pole-1/vehicles_interval/config"
    with pytest.raises(ConfigError) as info:
        parse_site(_with({"mqtt": {"url": "mqtt://b", "homeassistant": {"discovery_prefix": "ha/#"}}}))
    assert info.value.field == "outputs.mqtt.homeassistant.discovery_prefix"
