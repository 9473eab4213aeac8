"""Signed webhooks: one HTTP POST per event, from a background thread.

The body is the event's JSON (the same document as on MQTT). Headers:
- `X-Trafficprn-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the
  secret from the environment variable the config names (`secret_env`);
- `X-Trafficprn-Event`: passage | counts | availability;
- `X-Trafficprn-Delivery`: the payload's uuid (the same on every retry).

A 2xx answer delivers. A failure (no connection, timeout, 5xx, 408, 425, 429) is retried,
in order, after 0.5 s, 1 s, 2 s, ... up to `max_backoff_s`; any other 4xx means the
receiver refuses this event, which is dropped (retrying cannot fix it). The queue is in
memory and bounded (`queue_max_events`): beyond it new events are dropped, and what is
still queued when the worker stops is dropped too. Every outcome is counted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import httpx

from trafficprn.config import WebhookOutput

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Trafficprn-Signature"
RETRY_STATUSES = frozenset({408, 425, 429})


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0  # attempts that failed (each is retried)
    dropped: int = 0  # events given up: queue full, refused by the receiver, left at stop
    pending: int = 0
    last_error: str = ""


class WebhookSender:
    def __init__(self, cfg: WebhookOutput, secret: bytes, *, initial_backoff_s: float = 0.5,
                 user_agent: str = "trafficprn") -> None:
        self.cfg, self.secret, self.initial_backoff_s = cfg, secret, initial_backoff_s
        self._queue: deque[tuple[str, str, bytes]] = deque()  # event kind, uuid, body
        self._lock = threading.Lock()
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._drain_deadline = 0.0
        self._stats = WebhookStats()
        self._http = httpx.Client(timeout=cfg.timeout_s, headers={"User-Agent": user_agent})
        self._thread = threading.Thread(target=self._loop, name="webhook-sender", daemon=True)

    def start(self) -> WebhookSender:
        self._thread.start()
        return self

    def wants(self, kind: str) -> bool:
        return kind in self.cfg.events

    def send(self, kind: str, uuid: str, body: bytes) -> bool:
        """Queue one event; False when it is not wanted or the queue is full (counted)."""
        if kind not in self.cfg.events:
            return False
        with self._lock:
            if len(self._queue) >= self.cfg.queue_max_events:
                self._stats.dropped += 1
                return False
            self._queue.append((kind, uuid, body))
        self._kick.set()
        return True

    @property
    def stats(self) -> WebhookStats:
        with self._lock:
            st = self._stats
            return WebhookStats(st.delivered, st.failed, st.dropped, len(self._queue), st.last_error)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what waits for up to `timeout_s`; drop (and count) the rest."""
        self._drain_deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout_s + self.cfg.timeout_s + 1.0)
        with self._lock:
            left = len(self._queue)
            self._stats.dropped += left
            self._queue.clear()
        if left:
            log.warning("webhook %s: %d events not delivered before stopping; dropped", self.cfg.url, left)
        self._http.close()

    # ------------------------------------------------------------ the thread
    def _loop(self) -> None:
        backoff = self.initial_backoff_s
        while True:
            with self._lock:
                head = self._queue[0] if self._queue else None
            if head is None:
                if self._stop.is_set():
                    return
                self._kick.wait(1.0)
                self._kick.clear()
                continue
            if self._stop.is_set() and time.monotonic() >= self._drain_deadline:
                return
            outcome = self._post(*head)
            if outcome == "retry":
                delay = backoff
                if self._stop.is_set():
                    delay = min(delay, max(0.0, self._drain_deadline - time.monotonic()))
                backoff = min(backoff * 2, self.cfg.max_backoff_s)
                self._sleep(delay)
                continue
            backoff = self.initial_backoff_s
            with self._lock:
                if self._queue and self._queue[0] is head:
                    self._queue.popleft()
                if outcome == "delivered":
                    self._stats.delivered += 1
                else:
                    self._stats.dropped += 1

    def _sleep(self, delay_s: float) -> None:
        """Wait `delay_s`, or less once a stop was asked for and its deadline passes."""
        end = time.monotonic() + delay_s
        while (left := end - time.monotonic()) > 0:
            if self._stop.wait(min(left, 0.5)) and time.monotonic() >= self._drain_deadline:
                return

    def _post(self, kind: str, uuid: str, body: bytes) -> str:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                   "X-Trafficprn-Event": kind, "X-Trafficprn-Delivery": uuid}
        try:
            response = self._http.post(self.cfg.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            if self._stats.last_error:
                log.info("webhook %s: delivering again", self.cfg.url)
            self._stats.last_error = ""
            return "delivered"
        if code >= 500 or code in RETRY_STATUSES:
            return self._failed(f"HTTP {code}")
        self._stats.last_error = f"HTTP {code}: the receiver refused {kind} {uuid}"
        log.error("webhook %s: %s; dropped", self.cfg.url, self._stats.last_error)
        return "refused"

    def _failed(self, error: str) -> str:
        with self._lock:
            self._stats.failed += 1
            first = not self._stats.last_error
            self._stats.last_error = error
        if first:
            log.warning("webhook %s: %s; retrying with backoff", self.cfg.url, error)
        return "retry"
