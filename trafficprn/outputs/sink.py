"""`OutputSink`: an `EventSink` that turns a worker's events into the outputs' messages and
hands them to MQTT and the webhooks. It sits beside the database sink (`FanOutSink`), so
the pipeline does not change; `emit` only queues (a disk append for MQTT, memory for the
webhooks) and never raises: an output that fails must not stop the camera.

Topics (`<prefix>/<site>/<camera>/...`): `passage`, `counts`, `queue`, `availability`.
Webhooks get passage, counts and availability (the queue summaries are MQTT only).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trafficprn.config import SiteConfig
from trafficprn.errors import ConfigError
from trafficprn.events import CameraStatus, Event, Heartbeat, QueueSample, VehiclePassage
from trafficprn.outputs.homeassistant import discovery_messages
from trafficprn.outputs.mqtt import MqttPublisher, MqttStats
from trafficprn.outputs.payloads import CountsBook, Payload, QueueBook, availability_payload, passage_payload
from trafficprn.outputs.webhook import WebhookSender, WebhookStats

log = logging.getLogger(__name__)

STALE_S = 30.0  # as store.liveness: a heartbeat more than this after the last one does not cover the gap


@dataclass
class OutputStats:
    """Counts for /metrics; webhooks summed over all of them."""

    mqtt: MqttStats | None
    webhooks: WebhookStats | None
    errors: int = 0  # events an output could not turn into messages (a bug; logged)


def topic(prefix: str, site: str, camera: str, kind: str) -> str:
    return f"{prefix}/{site}/{camera}/{kind}"


class OutputSink:
    def __init__(self, site: SiteConfig, camera: str, *, mqtt: MqttPublisher | None = None,
                 webhooks: list[WebhookSender] | None = None) -> None:
        self.site_name, self.camera = site.site.name, camera
        self.mqtt, self.webhooks = mqtt, list(webhooks or [])
        cfg = site.outputs.mqtt
        self.counts = CountsBook(self.site_name, camera, site.site.timezone, site.site.interval_minutes,
                                 delay_s=cfg.counts_delay_s if cfg else 60.0, stale_s=STALE_S)
        self.queues = QueueBook(self.site_name, camera, cfg.queue_period_s if cfg else 5.0)
        self.prefix = cfg.topic_prefix if cfg else "trafficprn"
        self.errors = 0
        self._closed = False
        self._lock = threading.Lock()  # the frame loop and the worker's watchdog both emit

    def start(self) -> OutputSink:
        if self.mqtt is not None:
            self.mqtt.start()
        for hook in self.webhooks:
            hook.start()
        self._send("availability", availability_payload(self.site_name, self.camera, "online", time.time()),
                   mqtt=False)  # MQTT announces online itself, on every connect
        return self

    # ------------------------------------------------------------ EventSink
    def emit(self, event: Event) -> None:
        try:
            with self._lock:
                for kind, payload in self._messages(event):
                    self._send(kind, payload)
        except Exception:  # an output must never stop the camera
            self.errors += 1
            log.exception("outputs: could not publish %s", type(event).__name__)

    def _messages(self, event: Event) -> list[tuple[str, Payload]]:
        if isinstance(event, VehiclePassage):
            out = [("passage", passage_payload(event, self.site_name))]
            return out + [("counts", p) for p in self.counts.passage(event)]
        if isinstance(event, QueueSample):
            return [("queue", p) for p in self.queues.sample(event)] + [("counts", p) for p in self.counts.tick(event.ts)]
        if isinstance(event, Heartbeat):
            return [("counts", p) for p in self.counts.heartbeat(event)]
        if isinstance(event, CameraStatus):
            return [("counts", p) for p in self.counts.status(event)]
        return []  # plate reads stay in the database (privacy)

    def _send(self, kind: str, payload: Payload, *, mqtt: bool = True) -> None:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        if mqtt and self.mqtt is not None:
            self.mqtt.publish(topic(self.prefix, self.site_name, self.camera, kind), body)
        for hook in self.webhooks:
            hook.send(kind, str(payload["uuid"]), body)

    def close(self, timeout_s: float = 10.0) -> None:
        """Publish the open queue period and intervals, `offline`, and send what waits (up
        to `timeout_s` for all outputs together)."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                for payload in self.queues.flush():
                    self._send("queue", payload)
                for payload in self.counts.flush():
                    self._send("counts", payload)
        except Exception:
            self.errors += 1
            log.exception("outputs: could not publish the last counts")
        self._send("availability", availability_payload(self.site_name, self.camera, "offline", time.time(),
                                                        "worker stopped"), mqtt=False)
        deadline = time.monotonic() + timeout_s
        if self.mqtt is not None:
            self.mqtt.close(timeout_s)
        for hook in self.webhooks:
            hook.close(max(0.5, deadline - time.monotonic()))

    @property
    def stats(self) -> OutputStats:
        hooks = None
        if self.webhooks:
            all_stats = [h.stats for h in self.webhooks]
            hooks = WebhookStats(sum(s.delivered for s in all_stats), sum(s.failed for s in all_stats),
                                 sum(s.dropped for s in all_stats), sum(s.pending for s in all_stats),
                                 next((s.last_error for s in all_stats if s.last_error), ""))
        return OutputStats(self.mqtt.stats if self.mqtt is not None else None, hooks, self.errors)


def build_outputs(site: SiteConfig, camera: str, *, queue_name: str, default_queue_dir: Path,
                  username: str | None = None, password: str | None = None,
                  env: Mapping[str, str] | None = None) -> OutputSink | None:
    """The camera's output sink, started, or None when the site has no outputs.

    `queue_name`: the MQTT queue's folder name and the client id's tail (one per worker
    process: `<camera>` for run, `<camera>-process` for process); the folder lies in
    `outputs.mqtt.queue_dir`, else in `default_queue_dir`. Raises ConfigError naming the
    field when a webhook's secret variable is not set."""
    outputs = site.outputs
    if outputs.empty:
        return None
    env = env if env is not None else {}
    hooks = []
    for i, hook in enumerate(outputs.webhooks):
        secret = env.get(hook.secret_env, "")
        if not secret:
            raise ConfigError(f"environment variable {hook.secret_env} (the webhook's HMAC secret) is not set",
                              field=f"outputs.webhooks[{i}].secret_env")
        hooks.append(WebhookSender(hook, secret.encode()))
    publisher = None
    name = site.site.name
    if outputs.mqtt is not None:
        cfg = outputs.mqtt
        folder = Path(cfg.queue_dir) / queue_name if cfg.queue_dir else default_queue_dir
        prefix = cfg.topic_prefix
        publisher = MqttPublisher(
            cfg, client_id=f"trafficprn-{name}-{queue_name}", queue_dir=folder,
            availability_topic=topic(prefix, name, camera, "availability"),
            availability=lambda state, reason: availability_payload(name, camera, state, time.time(), reason),
            username=username, password=password, retained=discovery_messages(name, site.camera(camera), cfg),
        )
    return OutputSink(site, camera, mqtt=publisher, webhooks=hooks).start()
