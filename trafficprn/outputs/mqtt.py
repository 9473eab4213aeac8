"""Publishing to an MQTT broker (paho-mqtt 2.x) through a bounded on-disk queue.

`publish` only appends to the `DiskQueue`; a sender thread publishes what waits there,
at most `window` messages in flight, and commits each acknowledged prefix (QoS 1: the
broker's PUBACK; QoS 0: written to the socket). While the broker is down the messages
wait on disk, and paho reconnects (1-5 s back-off) and resends what was in flight, so
delivery is at least once: consumers drop duplicates by the payload's uuid.

Availability: the last will (`offline`, retained) is registered with every connection,
so the broker announces a worker that dies or loses its network after 1.5 x keepalive
(at once when its socket closes); `online` (retained) is published on every connect
and `offline` on a clean close, before the DISCONNECT that cancels the will.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from trafficprn.config import MqttOutput
from trafficprn.outputs.disk_queue import DiskQueue, Position

log = logging.getLogger(__name__)


@dataclass
class MqttStats:
    connected: bool = False
    published: int = 0  # acknowledged by the broker
    pending: int = 0  # in the disk queue, not acknowledged yet
    dropped: int = 0  # refused: the queue was full (or its disk failed)
    connects: int = 0
    last_error: str = ""


class MqttPublisher:
    """One worker's connection. `availability_topic` gets the retained availability
    documents that `availability(state, reason)` makes (state: online | offline)."""

    def __init__(self, cfg: MqttOutput, *, client_id: str, queue_dir: Path, availability_topic: str,
                 availability: Callable[[str, str], dict[str, Any]], username: str | None = None,
                 password: str | None = None, retained: Sequence[tuple[str, bytes]] = (), window: int = 50) -> None:
        self.cfg, self.window = cfg, window
        self.availability_topic = availability_topic
        self._availability = availability
        self._retained = list(retained)  # (topic, payload) sent retained on every connect: HA discovery
        self.queue = DiskQueue(queue_dir, cfg.queue_max_events)
        self._stats = MqttStats()
        self._kick = threading.Event()  # something to do: a message, an ack, a connection, a stop
        self._acked: set[int] = set()
        self._ack_lock = threading.Lock()
        self._stopping = False
        self._drain_deadline = 0.0
        self._client = self._make_client(client_id, username, password)
        self._thread = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    def _make_client(self, client_id: str, username: str | None, password: str | None) -> mqtt.Client:
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True)
        if username:
            client.username_pw_set(username, password)
        if self.cfg.use_tls:
            tls = self.cfg.tls
            client.tls_set(ca_certs=tls.ca_file if tls else None, certfile=tls.cert_file if tls else None,
                           keyfile=tls.key_file if tls else None, cert_reqs=ssl.CERT_REQUIRED)
            client.tls_insecure_set(bool(tls and tls.insecure))
        will = self._json(self._availability("offline", "connection lost"))
        client.will_set(self.availability_topic, will, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    @staticmethod
    def _json(doc: dict[str, Any]) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    # ------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._stats.last_error = f"broker refused the connection: {reason}"
            log.warning("MQTT %s: %s", self.cfg.url, self._stats.last_error)
            return
        self._stats.connected, self._stats.last_error = True, ""
        self._stats.connects += 1
        log.info("MQTT connected to %s (%d messages waiting)", self.cfg.url, self.queue.pending)
        for topic, payload in self._retained:
            client.publish(topic, payload, qos=1, retain=True)
        client.publish(self.availability_topic, self._json(self._availability("online", "")), qos=1, retain=True)
        self._kick.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        was = self._stats.connected
        self._stats.connected = False
        if was and not self._stopping:
            self._stats.last_error = f"connection lost: {reason}"
            log.warning("MQTT %s: %s; messages wait on disk (%d) and go out on reconnect", self.cfg.url,
                        self._stats.last_error, self.queue.pending)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._ack_lock:
            self._acked.add(mid)
        self._kick.set()

    # ------------------------------------------------------------ use
    def start(self) -> MqttPublisher:
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self._client.loop_start()
        self._thread.start()
        return self

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue a message; False when the queue is full (the drop is counted)."""
        ok = self.queue.put(topic, payload)
        self._kick.set()
        return ok

    @property
    def stats(self) -> MqttStats:
        st = self._stats
        return MqttStats(st.connected, st.published, self.queue.pending, self.queue.dropped, st.connects,
                         st.last_error)

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what waits (up to `timeout_s`; the rest stays on disk for the next run),
        then `offline` and a clean disconnect."""
        self._drain_deadline = time.monotonic() + timeout_s
        self._stopping = True
        self._kick.set()
        self._thread.join(timeout_s + 5.0)
        if self._stats.connected:
            offline = self._json(self._availability("offline", "worker stopped"))
            info = self._client.publish(self.availability_topic, offline, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(5.0, max(1.0, timeout_s)))
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not publish offline: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        if self.queue.pending:
            log.warning("MQTT: %d messages not sent; they wait in %s for the next run", self.queue.pending,
                        self.queue.folder)
        self.queue.close()

    # ------------------------------------------------------------ sender thread
    def _send_loop(self) -> None:
        inflight: deque[tuple[int, Position]] = deque()
        cursor = self.queue.committed
        connects = self._stats.connects
        while True:
            self._kick.clear()
            if self._stopping and (not self.queue.pending or time.monotonic() >= self._drain_deadline):
                return
            if self.cfg.qos == 0 and connects != self._stats.connects:
                inflight.clear()  # QoS 0 is not resent by paho: send again what was not written out
                cursor = self.queue.committed
            connects = self._stats.connects
            if self._stats.connected and len(inflight) < self.window:
                cursor = self._send_more(inflight, cursor)
            self._retire(inflight)
            self._kick.wait(0.2)

    def _send_more(self, inflight: deque[tuple[int, Position]], cursor: Position) -> Position:
        for msg in self.queue.read(cursor, self.window - len(inflight)):
            info = self._client.publish(msg.topic, msg.payload, qos=self.cfg.qos, retain=msg.retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE or (self.cfg.qos == 0 and info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS):
                break  # not taken: sent again from here once connected
            inflight.append((info.mid, msg.next_pos))  # QoS 1 without connection: paho resends it on reconnect
            cursor = msg.next_pos
        if not inflight:
            with self._ack_lock:
                self._acked.clear()  # acks of availability messages, nothing of ours is in flight
        return cursor

    def _retire(self, inflight: deque[tuple[int, Position]]) -> None:
        n, last = 0, None
        with self._ack_lock:
            while inflight and inflight[0][0] in self._acked:
                mid, last = inflight.popleft()
                self._acked.discard(mid)
                n += 1
        if last is not None:
            self.queue.commit(last, n)
            self._stats.published += n
