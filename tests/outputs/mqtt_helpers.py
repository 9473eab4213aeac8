"""A real Mosquitto broker of our own (so it can be stopped and started again) and a real
subscriber that keeps its session across broker restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from trafficprn.resources import data_dir

MOSQUITTO = "/usr/sbin/mosquitto"
DEMO = data_dir() / "demo"
START = "2026-03-10T08:14:30+00:00"  # the 08:00 interval closes 30 s into the minute of footage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, step_s: float = 0.05) -> float:
    """Seconds it took until `predicate()` held; AssertionError after `timeout_s`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if predicate():
            return time.monotonic() - t0
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


class Broker:
    """`mosquitto -c <tmp config>` on a free port, with persistence, so that a restart
    (SIGTERM, then start) keeps the subscriber's session and its queued messages."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nlog_dest file {folder}/mosquitto.log\nuser root\n"
            "max_queued_messages 100000\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._listening, 10, f"mosquitto on port {self.port}")
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop writes the persistence file
            self.proc.wait(10)
        self.proc = None


class Subscriber:
    """Collects every message under `pattern` (QoS 1, persistent session)."""

    def __init__(self, port: int, pattern: str, client_id: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []  # topic, payload, retained
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.on_connect = lambda c, *_: c.subscribe(pattern, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith("/" + kind)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def demo_site(folder: Path, outputs: dict[str, Any]) -> Path:
    """The demo scene's site.yaml with `outputs`, its source pointing at the bundled video."""
    data = yaml.safe_load((DEMO / "site.yaml").read_text())
    data["cameras"][0]["source"] = str(DEMO / "video.mp4")
    data["outputs"] = outputs
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def process_cmd(site: Path, db: Path, spool: Path) -> list[str]:
    return [sys.executable, "-m", "trafficprn", "process", str(DEMO / "video.mp4"), "--site", str(site),
            "--camera", "fisheye-1", "--db", f"sqlite:///{db}", "--start", START, "--spool-dir", str(spool),
            "--no-progress"]


def process_env(**extra: str) -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "TRAFFICPRN_PLATE_SECRET": "a-test-secret", "PYTHONPATH": f"{repo}:{path}" if path else repo,
            **extra}
