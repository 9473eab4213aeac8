"""Webhooks against a real HTTP receiver (http.server in a thread) that checks every
signature: `trafficprn process` on the demo video while the receiver is down for a
while, and a receiver that refuses an event."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from mqtt_helpers import demo_site, free_port, process_cmd, process_env, wait_for  # noqa: E402

from trafficprn.config import WebhookOutput  # noqa: E402
from trafficprn.outputs.webhook import SIGNATURE_HEADER, WebhookSender, sign  # noqa: E402
from trafficprn.store.db import make_engine, upgrade  # noqa: E402
from trafficprn.store.models import Passage  # noqa: E402

SECRET = "webhook-test-secret"


class Receiver:
    """Accepts POSTs whose signature verifies (401 otherwise); can be taken down and
    brought back on the same port."""

    def __init__(self, secret: str, status: int = 200) -> None:
        self.secret, self.status = secret.encode(), status
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self.deliveries_match = True
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(outer.secret, body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected)
                doc = json.loads(body)
                with outer.lock:
                    if not ok:
                        outer.bad_signatures += 1
                    else:
                        outer.events.append((self.headers["X-Trafficprn-Event"], doc))
                        outer.deliveries_match &= self.headers["X-Trafficprn-Delivery"] == doc["uuid"]
                self.send_response(outer.status if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [doc for k, doc in self.events if k == kind]


def test_every_passage_arrives_signed_after_the_receiver_was_down(tmp_path: Path) -> None:
    receiver = Receiver(SECRET).start()
    site = demo_site(tmp_path, {"webhooks": [{"url": receiver.url, "secret_env": "T15_HOOK_SECRET",
                                              "max_backoff_s": 2.0}]})
    db = tmp_path / "hook.sqlite"
    upgrade(f"sqlite:///{db}")
    proc = subprocess.Popen(process_cmd(site, db, tmp_path / "spool"), env=process_env(T15_HOOK_SECRET=SECRET),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(receiver.of("passage")) >= 2, 90, "the first passages")
        receiver.stop()
        down_from = len(receiver.of("passage"))
        time.sleep(8.0)  # the receiver is down: connection refused, retried with backoff
        assert proc.poll() is None, "the run ended while the receiver was down: not a mid-run outage"
        receiver.start()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        receiver.stop()
    assert proc.returncode == 0, err[-3000:]
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = {str(u) for u in conn.execute(Passage.__table__.select().with_only_columns(Passage.uuid)).scalars()}
    engine.dispose()
    assert len(stored) > 20 and f"passages: {len(stored)} " in out
    passages = receiver.of("passage")
    assert receiver.bad_signatures == 0 and receiver.deliveries_match
    assert {p["uuid"] for p in passages} == stored  # every passage arrived
    assert len(passages) == len(stored)  # each once: a refused connection is not a delivery
    assert down_from < len(passages)
    assert [a["state"] for a in receiver.of("availability")] == ["online", "offline"]
    summary = re.search(r"webhooks: (\d+) delivered, (\d+) failed attempts, (\d+) dropped", out)
    assert summary is not None, out
    delivered, failed, dropped = map(int, summary.groups())
    assert delivered == len(receiver.events) and failed >= 1 and dropped == 0  # the outage was retried through
    assert receiver.of("counts") and all(c["complete"] is False for c in receiver.of("counts"))


def test_refused_event_is_dropped_and_counted_and_failures_back_off(tmp_path: Path) -> None:
    receiver = Receiver(SECRET, status=400).start()
    hook = WebhookSender(WebhookOutput(url=receiver.url, secret_env="X", events=["passage"]), SECRET.encode()).start()
    try:
        assert hook.send("passage", "u1", b'{"uuid": "u1"}')
        assert not hook.send("counts", "u2", b'{"uuid": "u2"}')  # not subscribed
        wait_for(lambda: hook.stats.dropped == 1, 10, "the refused event dropped")
        assert hook.stats.delivered == 0 and hook.stats.failed == 0 and "HTTP 400" in hook.stats.last_error
        receiver.stop()  # now nobody listens: attempts fail and back off 0.5, 1, 2 s
        hook.send("passage", "u3", b'{"uuid": "u3"}')
        time.sleep(2.0)
        assert 2 <= hook.stats.failed <= 3 and hook.stats.pending == 1
    finally:
        hook.close(timeout_s=0.5)
    assert hook.stats.dropped == 2  # left at stop: counted


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"uuid":"abc","camera":"c"}'
    assert sign(b"key", body) == "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign(b"key", body) != sign(b"other", body)
