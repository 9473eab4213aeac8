"""MQTT publish-to-receive latency: from `OutputSink.emit(passage)` (disk-queue append with
fdatasync, sender thread, paho, broker) to a subscriber's `on_message`, in one process so
both ends read the same clock. For comparison, the same messages published straight with
paho (no disk queue). Messages are paced (`--rate` per second) so the figure is latency,
not a backlog; a burst of `--burst` passages at once shows the drain rate.

    .venv/bin/python benchmarks/bench_mqtt.py [--url mqtt://127.0.0.1:1883] [--n 300] [--rate 50]

Needs a running broker (Mosquitto on 127.0.0.1:1883 by default).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from trafficprn.config import parse_site
from trafficprn.events import VehiclePassage
from trafficprn.outputs import build_outputs


class Receiver:
    def __init__(self, host: str, port: int, pattern: str) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4()}")
        self.client.on_connect = lambda c, *_: c.subscribe(pattern, qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise SystemExit(f"no broker at {host}:{port}")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        key = msg.payload.split(b'"uuid":"', 1)[1][:36].decode()
        with self.lock:
            self.arrived.setdefault(key, now)

    def wait(self, keys: list[str], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if all(k in self.arrived for k in keys):
                    return
            time.sleep(0.01)
        raise SystemExit(f"only {sum(k in self.arrived for k in keys)} of {len(keys)} messages arrived")


def _site(url: str, prefix: str) -> Any:
    w = h = 100
    return parse_site({
        "site": {"name": "bench"}, "privacy": {"plates": "off"},
        "cameras": [{"name": "cam", "source": "x.mp4",
                     "lens": {"model": "pinhole", "image_size": [w, h], "fx": 50, "fy": 50, "cx": 50, "cy": 50},
                     "calibration": {"points": [{"image_px": [0, 0], "ground_m": [0, 0]},
                                                {"image_px": [w, 0], "ground_m": [10, 0]},
                                                {"image_px": [w, h], "ground_m": [10, 10]},
                                                {"image_px": [0, h], "ground_m": [0, 10]}]}}],
        "outputs": {"mqtt": {"url": url, "topic_prefix": prefix}},
    })


def _passage(i: int) -> VehiclePassage:
    ts = 1_773_129_600.0 + i
    return VehiclePassage(camera="cam", track_id=i, passage_ts=ts, first_seen_ts=ts - 2, last_seen_ts=ts + 2,
                          vehicle_class="car", class_confidence=0.9, entry_leg="N", exit_leg="S", movement="T",
                          speed_median_kmh=31.5, speed_max_kmh=40.0, colour="red")


def _report(name: str, sent: dict[str, float], rx: Receiver) -> None:
    lat_ms = np.array([(rx.arrived[k] - t) * 1000 for k, t in sent.items()])
    p50, p95, p99 = np.percentile(lat_ms, [50, 95, 99])
    print(f"{name:<44} n={len(lat_ms):4d}  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms  "
          f"max {lat_ms.max():6.2f} ms")


def run(url: str, n: int, rate: float, burst: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    site = _site(url, prefix)
    cfg = site.outputs.mqtt
    assert cfg is not None
    rx = Receiver(cfg.host, cfg.port, f"{prefix}/#")
    with tempfile.TemporaryDirectory() as tmp:
        sink = build_outputs(site, "cam", queue_name="cam", default_queue_dir=Path(tmp) / "q")
        assert sink is not None and sink.mqtt is not None
        deadline = time.monotonic() + 10
        while not sink.mqtt.stats.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        sent: dict[str, float] = {}
        for i in range(n):
            p = _passage(i)
            sent[p.uuid] = time.perf_counter()
            sink.emit(p)
            time.sleep(1.0 / rate)
        rx.wait(list(sent))
        _report(f"outputs sink, disk queue + fdatasync, QoS 1, {rate:g}/s", sent, rx)

        burst_sent: dict[str, float] = {}
        t0 = time.perf_counter()
        for i in range(burst):
            p = _passage(n + i)
            burst_sent[p.uuid] = time.perf_counter()
            sink.emit(p)
        rx.wait(list(burst_sent))
        took = max(rx.arrived[k] for k in burst_sent) - t0
        _report(f"outputs sink, burst of {burst}", burst_sent, rx)
        print(f"{'':<44} burst drained in {took:.2f} s ({burst / took:.0f} msg/s)")
        sink.close(timeout_s=5)

    direct = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-direct-{uuid.uuid4()}")
    direct.connect(cfg.host, cfg.port)
    direct.loop_start()
    sent = {}
    for _ in range(n):
        key = str(uuid.uuid4())
        sent[key] = time.perf_counter()
        direct.publish(f"{prefix}/direct", b'{"uuid":"' + key.encode() + b'"}', qos=1)
        time.sleep(1.0 / rate)
    rx.wait(list(sent))
    _report(f"paho publish straight (no disk queue), QoS 1, {rate:g}/s", sent, rx)
    direct.disconnect()
    direct.loop_stop()
    rx.client.disconnect()
    rx.client.loop_stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--burst", type=int, default=1000)
    args = ap.parse_args()
    print(f"bench_mqtt: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}, broker {args.url}")
    run(args.url, args.n, args.rate, args.burst)
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
