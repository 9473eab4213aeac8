"""Home Assistant MQTT discovery (optional, `outputs.mqtt.homeassistant`): retained config
documents that make each camera a device with sensors read from the topics the worker
already publishes, available while its `availability` says online. Pure: returns the
(topic, payload) pairs; `MqttPublisher` sends them on every connect."""

from __future__ import annotations

import json
import re
from typing import Any

from trafficprn.config import CameraConfig, MqttOutput

_SLUG = re.compile(r"[^a-zA-Z0-9_-]+")


def _slug(text: str) -> str:
    return _SLUG.sub("_", text).strip("_") or "x"


def discovery_messages(site: str, camera: CameraConfig, cfg: MqttOutput) -> list[tuple[str, bytes]]:
    """Discovery configs: vehicles in the last interval, the last passage's class and
    speed, and each lane's queue length; empty when discovery is off."""
    ha = cfg.homeassistant
    if ha is None:
        return []
    base = f"{cfg.topic_prefix}/{site}/{camera.name}"
    node = f"trafficprn_{_slug(site)}_{_slug(camera.name)}"
    device = {"identifiers": [node], "name": f"{site} {camera.name}", "manufacturer": "trafficprn",
              "model": "intersection camera"}
    common = {"availability_topic": f"{base}/availability", "availability_template": "{{ value_json.state }}",
              "payload_available": "online", "payload_not_available": "offline", "device": device}
    sensors: list[tuple[str, dict[str, Any]]] = [
        ("vehicles_interval", {"name": "Vehicles last interval", "state_topic": f"{base}/counts",
                               "value_template": "{{ value_json.total }}", "unit_of_measurement": "vehicles",
                               "json_attributes_topic": f"{base}/counts", "state_class": "measurement"}),
        ("last_vehicle", {"name": "Last vehicle", "state_topic": f"{base}/passage",
                          "value_template": "{{ value_json.vehicle_class }}",
                          "json_attributes_topic": f"{base}/passage"}),
        ("last_speed", {"name": "Last vehicle speed", "state_topic": f"{base}/passage",
                        "value_template": "{{ value_json.speed_median_kmh }}", "unit_of_measurement": "km/h",
                        "device_class": "speed"}),
    ]
    for lane in camera.lanes:
        pick = f"(value_json.lanes | selectattr('lane', 'eq', {json.dumps(lane.name)}) | list)"
        sensors.append((f"queue_{_slug(lane.name)}", {
            "name": f"Queue {lane.name}", "state_topic": f"{base}/queue", "unit_of_measurement": "m",
            "device_class": "distance", "state_class": "measurement",
            "value_template": f"{{{{ {pick}[0].length_m if {pick} else 0 }}}}",
        }))
    out = []
    for key, doc in sensors:
        uid = f"{node}_{key}"
        body = {**doc, **common, "unique_id": uid, "object_id": uid}
        out.append((f"{ha.discovery_prefix}/sensor/{node}/{key}/config", json.dumps(body).encode()))
    return out
