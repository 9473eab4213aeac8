"""One camera's worker: frame source -> pipeline -> sinks, plus a small HTTP endpoint.

The endpoint (stdlib `ThreadingHTTPServer` in a thread) serves:
- `/metrics`: Prometheus text (frames, fps, drops, detections, passages, DB lag, spool size);
- `/live.mjpg`: annotated frames (`live_view`: tracks, trails, legs, lanes, stop lines,
  queues, counters) with legible plates blurred;
- `/snapshot.jpg`: the latest frame, plates blurred, without annotations (setup page);
- `/health`: JSON.
JPEG encoding happens in the HTTP threads only while someone watches, never in the
frame loop. The loop keeps going when the camera drops (the source reconnects) and
when the database is down (the sink spools); it logs what failed.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import numpy as np

from trafficprn.config import CameraConfig
from trafficprn.errors import InputError
from trafficprn.events import CameraStatus, Event, EventSink, Heartbeat, PlateRead, QueueSample, VehiclePassage
from trafficprn.live_view import LiveFrames
from trafficprn.pipeline import stream_results
from trafficprn.types import FrameMeta

log = logging.getLogger(__name__)

MJPEG_BOUNDARY = "frame"


class FrameProcessor(Protocol):
    """What the worker needs of `trafficprn.pipeline.Pipeline`."""

    def process(self, frame_bgr: np.ndarray, meta: FrameMeta) -> Any: ...

    def finish(self, ts: float) -> Any: ...


@dataclass
class WorkerMetrics:
    """Counters of one worker; read by the HTTP thread, written by the frame loop."""

    camera: str
    frames: int = 0
    detections: int = 0
    passages: int = 0
    queue_samples: int = 0
    plate_reads: int = 0
    fps: float = 0.0
    last_frame_ts: float | None = None
    last_frame_wall: float | None = None
    camera_up: bool = False
    started_wall: float = field(default_factory=time.time)

    def on_frame(self, n_detections: int, ts: float) -> None:
        now = time.monotonic()
        if self.last_frame_wall is not None:
            dt = now - self.last_frame_wall
            if dt > 0:
                self.fps = 1.0 / dt if self.fps == 0 else 0.9 * self.fps + 0.1 / dt
        self.last_frame_wall = now
        self.frames += 1
        self.detections += n_detections
        self.last_frame_ts = ts


class CountingSink:
    """Passes events on to `inner` and counts them by type for /metrics."""

    def __init__(self, inner: EventSink, metrics: WorkerMetrics):
        self.inner = inner
        self.metrics = metrics

    def emit(self, event: Event) -> None:
        if isinstance(event, VehiclePassage):
            self.metrics.passages += 1
        elif isinstance(event, QueueSample):
            self.metrics.queue_samples += 1
        elif isinstance(event, PlateRead):
            self.metrics.plate_reads += 1
        self.inner.emit(event)

    def close(self) -> None:
        self.inner.close()


# ---------------------------------------------------------------- metrics text
def prometheus_text(m: WorkerMetrics, source_stats: Any = None, sink_stats: Any = None,
                    output_stats: Any = None) -> str:
    """Prometheus exposition format (text 0.0.4) for one worker; `output_stats`
    (`outputs.OutputStats`) adds the MQTT and webhook counters when outputs are set up."""
    label = '{camera="' + m.camera.replace("\\", "\\\\").replace('"', '\\"') + '"}'
    now = time.time()

    def stat(obj: Any, name: str) -> float:
        value = getattr(obj, name, None) if obj is not None else None
        if value is None and isinstance(obj, dict):
            value = obj.get(name)
        return float(value) if isinstance(value, int | float | bool) else 0.0

    rows = [
        ("frames_total", "counter", "Frames processed.", m.frames),
        ("frames_dropped_total", "counter", "Frames the source dropped (beyond process_fps or late).",
         stat(source_stats, "dropped")),
        ("source_reconnects_total", "counter", "Times the source reconnected.", stat(source_stats, "reconnects")),
        ("fps", "gauge", "Processed frames per second (smoothed).", round(m.fps, 3)),
        ("detections_total", "counter", "Tracked detections over all frames.", m.detections),
        ("passages_total", "counter", "Vehicle passages emitted.", m.passages),
        ("queue_samples_total", "counter", "Queue samples emitted.", m.queue_samples),
        ("plate_reads_total", "counter", "Plate reads emitted.", m.plate_reads),
        ("db_written_total", "counter", "Events written to the database.", stat(sink_stats, "written")),
        ("db_lag_seconds", "gauge", "Age of the oldest event not yet in the database.", stat(sink_stats, "lag_s")),
        ("spool_events", "gauge", "Events in the local spool not yet in the database.", stat(sink_stats, "pending")),
        ("spool_bytes", "gauge", "Bytes of spool holding those events.", stat(sink_stats, "spool_bytes")),
        ("db_up", "gauge", "1 when the last database write succeeded.", stat(sink_stats, "db_ok")),
        ("db_retries_total", "counter", "Failed database write attempts.", stat(sink_stats, "retries")),
        ("events_dropped_total", "counter",
         "Events lost: the spool could not be written and the memory buffer was full.", stat(sink_stats, "dropped")),
        ("events_held", "gauge", "Events waiting in memory because the spool cannot be written.",
         stat(sink_stats, "held")),
        ("spool_up", "gauge", "1 when the last spool write succeeded.", stat(sink_stats, "spool_ok")),
        ("db_writer_up", "gauge", "1 when the database writer's last round ended without error.",
         stat(sink_stats, "writer_ok")),
        ("camera_up", "gauge", "1 while frames arrive.", 1.0 if m.camera_up else 0.0),
        ("last_frame_age_seconds", "gauge", "Seconds since the last frame (wall clock).",
         round(time.monotonic() - m.last_frame_wall, 3) if m.last_frame_wall is not None else -1.0),
        ("uptime_seconds", "gauge", "Seconds since the worker started.", round(now - m.started_wall, 3)),
    ]
    rows += _output_rows(output_stats, stat)
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP trafficprn_{name} {help_text}", f"# TYPE trafficprn_{name} {kind}",
                  f"trafficprn_{name}{label} {value:g}"]
    return "\n".join(lines) + "\n"


def _output_rows(st: Any, stat: Callable[[Any, str], float]) -> list[tuple[str, str, str, float]]:
    rows: list[tuple[str, str, str, float]] = []
    mqtt = getattr(st, "mqtt", None)
    if mqtt is not None:
        rows += [
            ("mqtt_connected", "gauge", "1 while connected to the MQTT broker.", stat(mqtt, "connected")),
            ("mqtt_published_total", "counter", "MQTT messages the broker acknowledged.", stat(mqtt, "published")),
            ("mqtt_queued", "gauge", "MQTT messages waiting on disk for the broker.", stat(mqtt, "pending")),
            ("mqtt_dropped_total", "counter", "MQTT messages dropped: the on-disk queue was full.",
             stat(mqtt, "dropped")),
        ]
    hooks = getattr(st, "webhooks", None)
    if hooks is not None:
        rows += [
            ("webhook_delivered_total", "counter", "Webhook events delivered (2xx).", stat(hooks, "delivered")),
            ("webhook_failed_total", "counter", "Webhook attempts that failed (each is retried).",
             stat(hooks, "failed")),
            ("webhook_dropped_total", "counter", "Webhook events given up: queue full, refused (4xx) or left at stop.",
             stat(hooks, "dropped")),
            ("webhook_queued", "gauge", "Webhook events waiting for delivery.", stat(hooks, "pending")),
        ]
    return rows


# ---------------------------------------------------------------- HTTP endpoint
PROXY_HEADER = "X-Trafficprn-Proxy"


class WorkerHTTP:
    """The worker's endpoint on host:port (port 0 picks a free one; see `.port`).

    Listens on 127.0.0.1 unless told otherwise. With `token`, every path needs
    `Authorization: Bearer <token>` (the API's proxy sends it; Prometheus can too); anyone
    without it gets 401, so anonymous viewers can never take the dashboard's live view.
    The last of `max_viewers` live-view slots is kept for the API's proxy (it also sends
    `X-Trafficprn-Proxy: 1`), so direct viewers holding the token cannot fill them all."""

    def __init__(self, live: LiveFrames, metrics: WorkerMetrics, *, host: str = "127.0.0.1", port: int = 9100,
                 source_stats: Callable[[], Any] = lambda: None, sink_stats: Callable[[], Any] = lambda: None,
                 output_stats: Callable[[], Any] = lambda: None, max_fps: float = 10.0, max_viewers: int = 4,
                 token: str | None = None):
        if max_viewers < 1:
            raise InputError(f"max_viewers must be at least 1, got {max_viewers}")
        self.live, self.metrics = live, metrics
        self.source_stats, self.sink_stats, self.output_stats = source_stats, sink_stats, output_stats
        self.max_fps, self.max_viewers = max_fps, max_viewers
        self.token = token
        self.viewers = 0
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="worker-http", daemon=True)

    def start(self) -> WorkerHTTP:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        with self.live.changed:
            self.live.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "trafficprn-worker"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("http: " + format, *args)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _has_token(self) -> bool:
                if not outer.token:
                    return False
                given = self.headers.get("Authorization", "")
                return hmac.compare_digest(given.encode(), f"Bearer {outer.token}".encode())

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if outer.token and not self._has_token():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="trafficprn-worker"')
                    self.send_header("Content-Type", "text/plain")
                    refusal = b"this worker requires its token (Authorization: Bearer, TRAFFICPRN_WORKER_TOKEN)"
                    self.send_header("Content-Length", str(len(refusal)))
                    self.end_headers()
                    self.wfile.write(refusal)
                    return
                if path == "/metrics":
                    text = prometheus_text(outer.metrics, outer.source_stats(), outer.sink_stats(),
                                           outer.output_stats())
                    self._send(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
                elif path == "/health":
                    m = outer.metrics
                    sink = outer.sink_stats()
                    body = {"camera": m.camera, "up": m.camera_up, "frames": m.frames, "fps": round(m.fps, 2),
                            "passages": m.passages, "spool_pending": getattr(sink, "pending", None),
                            "db_ok": getattr(sink, "db_ok", None), "spool_ok": getattr(sink, "spool_ok", None),
                            "writer_ok": getattr(sink, "writer_ok", None),
                            "events_held": getattr(sink, "held", None),
                            "events_dropped": getattr(sink, "dropped", None),
                            "last_error": getattr(sink, "last_error", None) or None}
                    self._send(200, json.dumps(body).encode(), "application/json")
                elif path == "/snapshot.jpg":
                    jpg = outer.live.jpeg(annotated=False, quality=90)
                    if jpg is None:
                        self._send(503, b"no frame yet", "text/plain")
                    else:
                        self._send(200, jpg, "image/jpeg")
                elif path == "/live.mjpg":
                    proxy = self._has_token() and self.headers.get(PROXY_HEADER) == "1"
                    self._stream(privileged=proxy or not outer.token)
                else:
                    self._send(404, b"not found: try /metrics, /live.mjpg, /snapshot.jpg, /health", "text/plain")

            def _stream(self, privileged: bool) -> None:
                slots = outer.max_viewers if privileged else outer.max_viewers - 1
                with outer._lock:
                    if outer.viewers >= slots:
                        self._send(503, b"too many live viewers", "text/plain")
                        return
                    outer.viewers += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    seq = -1
                    while not outer.stopping.is_set():
                        seq = outer.live.wait(seq, timeout_s=5.0)
                        jpg = outer.live.jpeg(annotated=True)
                        if jpg is None or outer.stopping.is_set():
                            continue
                        head = (f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                f"Content-Length: {len(jpg)}\r\n\r\n").encode()
                        self.wfile.write(head + jpg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(1.0 / outer.max_fps)
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass
                finally:
                    with outer._lock:
                        outer.viewers -= 1

        return Handler


# ---------------------------------------------------------------- the loop
class Worker:
    """Runs frames from `source` through `pipeline`; `sink` gets camera status changes
    and heartbeats.

    `source` iterates (frame_bgr, FrameMeta) and may have `.stats` and `.close()`.
    `result.detections` of each processed frame feeds the live view. A watchdog marks
    the camera down after `down_after_s` without frames and up again when they return.

    Heartbeats (`events.Heartbeat`) go out every `heartbeat_s`, frames or not, so a
    camera that never connects reads down and a worker that dies reads stale. `clock`:
    "wall" (live cameras: the watchdog beats on the wall clock) or "footage" (recorded
    video: the frame loop beats every `heartbeat_s` of footage time, so the footage's
    intervals are covered). `sink_stats()` gives the sink's pending and dropped counts.
    """

    def __init__(self, camera: CameraConfig, source: Any, pipeline: FrameProcessor, sink: EventSink,
                 metrics: WorkerMetrics, live: LiveFrames | None = None, *, down_after_s: float = 5.0,
                 site: str = "", heartbeat_s: float = 10.0, clock: str = "wall",
                 sink_stats: Callable[[], Any] = lambda: None):
        if clock not in ("wall", "footage"):
            raise ValueError(f"clock must be 'wall' or 'footage', got {clock!r}")
        self.camera, self.source, self.pipeline, self.sink = camera, source, pipeline, sink
        self.metrics, self.live, self.down_after_s = metrics, live, down_after_s
        self.site, self.heartbeat_s, self.clock, self.sink_stats = site, heartbeat_s, clock, sink_stats
        self.stop = threading.Event()
        self._status_lock = threading.Lock()
        self._last_beat_ts: float | None = None

    def _set_up(self, up: bool, ts: float, reason: str) -> None:
        with self._status_lock:
            if self.metrics.camera_up == up:
                return
            self.metrics.camera_up = up
        (log.info if up else log.warning)("camera %s %s: %s", self.camera.name, "up" if up else "down", reason)
        self._emit(CameraStatus(camera=self.camera.name, ts=ts, up=up, reason=reason, site=self.site))
        self.heartbeat(ts, up)  # coverage starts (or stops) exactly here, not at the next beat

    def _emit(self, event: Event) -> None:
        try:
            self.sink.emit(event)
        except Exception:  # a status or heartbeat that cannot be kept must not stop the camera
            log.exception("camera %s: could not record %s", self.camera.name, type(event).__name__)

    def heartbeat(self, ts: float, up: bool | None = None) -> None:
        """Write one heartbeat at `ts` (the camera's state unless `up` is given)."""
        source = getattr(self.source, "stats", None)
        sink = self.sink_stats()
        processed = self.metrics.frames
        self._last_beat_ts = ts
        self._emit(Heartbeat(
            camera=self.camera.name, ts=ts, up=self.metrics.camera_up if up is None else up,
            frames_seen=processed + int(getattr(source, "dropped", 0) or 0), frames_processed=processed,
            events_pending=int(getattr(sink, "pending", 0) or 0), events_dropped=int(getattr(sink, "dropped", 0) or 0),
            site=self.site,
        ))

    def _watchdog(self) -> None:
        next_beat = time.monotonic()
        while not self.stop.wait(min(1.0, self.heartbeat_s)):
            last = self.metrics.last_frame_wall
            if self.metrics.camera_up and last is not None and time.monotonic() - last > self.down_after_s:
                self._set_up(False, time.time(), f"no frames for {self.down_after_s:g} s")
            if self.clock == "wall" and time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.heartbeat_s
                self.heartbeat(time.time())

    def _frames(self) -> Iterator[tuple[np.ndarray, FrameMeta]]:
        """Frames until the source ends or `stop` is set. A live source is polled with a
        timeout so that a stop request is seen while the camera is down."""
        read = getattr(self.source, "read", None)
        if read is None or getattr(self.source, "kind", "file") == "file":
            for item in self.source:
                yield item
                if self.stop.is_set():
                    return
            return
        while not self.stop.is_set():
            item = read(timeout_s=1.0)
            if item is not None:
                yield item

    def _arrivals(self) -> Iterator[tuple[np.ndarray, FrameMeta]]:
        """`_frames`, marking the camera up when frames arrive."""
        for frame, meta in self._frames():
            if not self.metrics.camera_up:
                self._set_up(True, meta.ts, "frames arriving")
            yield frame, meta

    def run(self, on_frame: Callable[[FrameMeta], None] | None = None) -> int:
        """Process until the source ends or `stop` is set; returns the frames processed."""
        if self.clock == "wall":
            self.heartbeat(time.time())  # at once: a camera that never connects reads down, not unknown
        dog = threading.Thread(target=self._watchdog, name="worker-watchdog", daemon=True)
        dog.start()
        last_ts: float | None = None
        try:
            for frame, meta, result in stream_results(self.pipeline, self._arrivals()):
                dets = getattr(result, "detections", None)
                self.metrics.on_frame(len(dets) if dets is not None else 0, meta.ts)
                if self.live is not None:
                    self.live.update(frame, dets, getattr(result, "events", ()), getattr(result, "raw", None))
                last_ts = meta.ts
                if self.clock == "footage" and (
                    self._last_beat_ts is None or meta.ts - self._last_beat_ts >= self.heartbeat_s
                ):
                    self.heartbeat(meta.ts)
                if on_frame is not None:
                    on_frame(meta)
        finally:
            self.stop.set()
            if last_ts is not None:
                self.pipeline.finish(last_ts)
                end_ts = last_ts if self.clock == "footage" else max(last_ts, time.time())
                if self.metrics.camera_up:
                    self.heartbeat(end_ts)  # the last stretch watched is covered
                self._set_up(False, end_ts, "source ended or worker stopped")
            close = getattr(self.source, "close", None)
            if close is not None:
                close()
        return self.metrics.frames
