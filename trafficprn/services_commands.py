"""`trafficprn serve`, `run` and `process`: the API server, a camera worker and offline
processing of recorded footage. argparse only at import; heavy imports in the handlers."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trafficprn.errors import InputError, TrafficPRNError

log = logging.getLogger("trafficprn.services")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the REST API and dashboard (uvicorn)")
    p.add_argument("--db", help="database URL (default: TRAFFICPRN_DATABASE_URL)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--site", help="site.yaml: camera list, live URLs, setup page (default: TRAFFICPRN_SITE_PATH)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port (default 1; one per core serves most)")
    p.add_argument("--no-access-log", action="store_true", help="no line per request in the log")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="run one camera's worker: source -> pipeline -> database")
    p.add_argument("--site", required=True, help="site.yaml")
    p.add_argument("--camera", required=True, help="camera name in the site config")
    p.add_argument("--db", help="database URL (default: TRAFFICPRN_DATABASE_URL)")
    p.add_argument("--http-host", help="address of /metrics and /live.mjpg "
                                        "(default: TRAFFICPRN_WORKER_BIND, else 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="port (default: the port of the camera's live_url, else 9100)")
    p.add_argument("--spool-dir", help="spool folder (default: TRAFFICPRN_SPOOL_DIR/<camera>)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("process", help="process recorded footage into the database (offline survey)")
    p.add_argument("video", help="video file")
    p.add_argument("--site", required=True, help="site.yaml")
    p.add_argument("--camera", required=True, help="camera name in the site config")
    p.add_argument("--db", help="database URL (default: TRAFFICPRN_DATABASE_URL)")
    p.add_argument("--start", help="wall-clock time of the first frame, ISO 8601 (naive = site time zone); "
                                   "default: the file's modification time minus its duration")
    p.add_argument("--spool-dir", help="spool folder (default: TRAFFICPRN_SPOOL_DIR/<camera>-process)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_process)


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=os.environ.get("TRAFFICPRN_LOG_LEVEL", "INFO"),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _settings(db: str | None, **extra: Any) -> Any:
    from trafficprn.settings import Settings

    values = {k: v for k, v in {"database_url": db, **extra}.items() if v is not None}
    return Settings(**values)


# ---------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from trafficprn.api import create_app
    from trafficprn.config import load_site
    from trafficprn.store.db import check_database, describe_url

    _logging()
    settings = _settings(args.db, site_path=args.site)
    if settings.site_path:
        load_site(settings.site_path)  # a bad site config stops here, with the field named
    try:
        check_database(settings.database_url)
    except TrafficPRNError as exc:  # the API still starts; it answers 503 until the DB is back
        log.warning("%s; serving anyway, data routes answer 503 until it is fixed", exc)
    if not settings.api_key:
        log.warning("TRAFFICPRN_API_KEY is not set: plate search and saving the setup are disabled")
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    log.info("serving %s on http://%s:%d (dashboard at /ui/, %d process%s)", describe_url(settings.database_url),
             args.host, args.port, args.workers, "es" if args.workers > 1 else "")
    common: dict[str, Any] = {"host": args.host, "port": args.port, "log_level": "info", "proxy_headers": True,
                              "access_log": not args.no_access_log, "timeout_keep_alive": 10}
    if args.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    # Several processes: each builds its app from the environment (uvicorn imports the factory).
    os.environ["TRAFFICPRN_DATABASE_URL"] = settings.database_url
    if settings.site_path:
        os.environ["TRAFFICPRN_SITE_PATH"] = str(settings.site_path)
    uvicorn.run("trafficprn.api.app:app_from_env", factory=True, workers=args.workers, **common)
    return 0


# ---------------------------------------------------------------- shared worker parts
def _site_camera(site_path: str, camera: str) -> tuple[Any, Any]:
    from trafficprn.config import load_site

    site = load_site(site_path)
    return site, site.camera(camera)


def _model_path(model: str, site_path: str) -> str:
    if model == "bundled" or Path(model).is_absolute():
        return model
    beside = Path(site_path).resolve().parent / model
    return str(beside) if beside.exists() else model


def build_pipeline(site: Any, camera: Any, sinks: list[Any], settings: Any, site_path: str, *,
                   detector: Any = None, source: str | None = None) -> Any:
    """Pipeline with the camera's detector (or `detector`), colour and, per privacy mode,
    plate reading. `source`: the footage, when not the camera's own source (its identity
    goes into the event ids)."""
    from trafficprn.analytics.colour import ColourClassifier
    from trafficprn.analytics.privacy import PlatePrivacy
    from trafficprn.pipeline import Pipeline

    det_cfg = camera.detector
    if detector is None:
        from trafficprn.detect.runtime import load_detector
        from trafficprn.view_detector import ViewDetector

        detector = load_detector(_model_path(det_cfg.model, site_path), confidence=det_cfg.confidence,
                                 nms_iou=det_cfg.nms_iou, threads=det_cfg.threads)
        detector = ViewDetector.for_camera(detector, camera)
    privacy = PlatePrivacy.from_config(site.privacy, settings.plate_secret)
    plates = None
    if privacy.reads_plates:
        try:
            from trafficprn.analytics.plates import PlateReader, TrackPlateFuser

            plates = TrackPlateFuser(PlateReader(site.privacy.plate_format))
        except TrafficPRNError as exc:
            log.warning("plate reading disabled: %s", exc)
    return Pipeline(site, camera, detector, sinks=sinks, colour=ColourClassifier(), plates=plates, privacy=privacy,
                    source=source)


def _spool(settings: Any, given: str | None, name: str) -> Path:
    return Path(given) if given else Path(settings.spool_dir) / name


def _database_sink(url: str, spool_dir: Path, site: Any, memory_events: int = 20_000) -> Any:
    """The database sink of a site's worker (it logs a database it cannot reach and
    spools); it records the site's time zone."""
    from trafficprn.store.sink import DatabaseSink

    return DatabaseSink(url, spool_dir, max_memory_events=memory_events, site_zone=(site.site.name, site.site.timezone))


def _outputs(site: Any, camera: Any, settings: Any, spool_dir: Path) -> Any:
    """The camera's outputs sink (MQTT, webhooks), started, or None: an extra sink beside
    the database's. Its MQTT queue lies beside the spool (`<spool>-mqtt`)."""
    from trafficprn.outputs import build_outputs

    return build_outputs(site, camera.name, queue_name=spool_dir.name,
                         default_queue_dir=spool_dir.with_name(f"{spool_dir.name}-mqtt"),
                         username=settings.mqtt_username, password=settings.mqtt_password, env=os.environ)


def _sinks(sink: Any, outputs: Any) -> Any:
    from trafficprn.events import FanOutSink

    return sink if outputs is None else FanOutSink([sink, outputs])


def _monitor(stop: threading.Event, camera: str, metrics: Any, source: Any, sink: Any, *, check_s: float = 1.0,
             report_s: float = 30.0) -> None:
    """Log what fails as soon as it fails (camera, database), and a status line every
    `report_s`; the source and the sink keep retrying on their own."""
    seen_source, seen_db = "", ""
    last_report = time.monotonic()
    while not stop.wait(check_s):
        src = getattr(source, "stats", None)
        st = sink.stats
        error = str(getattr(src, "last_error", "") or "")
        if error and error != seen_source and not getattr(src, "up", True):
            log.warning("camera %s: %s; reconnecting", camera, error)
        seen_source = error
        if st.last_error and st.last_error != seen_db:
            log.warning("database: %s; events are spooled (%d pending) and retried", st.last_error, st.pending)
        elif seen_db and not st.last_error:
            log.info("database is back; replaying %d spooled events", st.pending)
        seen_db = st.last_error
        if time.monotonic() - last_report >= report_s:
            last_report = time.monotonic()
            log.info("camera %s: frames %d (%.1f fps), dropped %s, reconnects %s, passages %d, spool %d pending, "
                     "DB lag %.1f s", camera, metrics.frames, metrics.fps, getattr(src, "dropped", "?"),
                     getattr(src, "reconnects", "?"), metrics.passages, st.pending, st.lag_s)


# ---------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    _logging()
    settings = _settings(args.db)
    site, camera = _site_camera(args.site, args.camera)
    port = args.http_port
    if port is None:
        port = (urlparse(camera.live_url).port if camera.live_url else None) or 9100
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping camera %s", signum, camera.name)
        stop.set()

    on_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)} if on_main else {}
    try:
        frames = run_worker(site, camera, settings, site_path=args.site, http_host=args.http_host or settings.worker_bind, http_port=port,
                            spool_dir=_spool(settings, args.spool_dir, camera.name), stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("camera %s: %s after %d frames; worker exits", camera.name,
             "stopped" if stop.is_set() else "source ended", frames)
    return 0


def run_worker(site: Any, camera: Any, settings: Any, *, site_path: str, http_host: str, http_port: int,
               spool_dir: Path, stop: threading.Event | None = None, detector: Any = None,
               ready: Any = None, source: Any = None, clock: str = "wall", banner: str | None = None,
               max_frames: int | None = None) -> int:
    """One camera's worker until its source ends or `stop` is set; returns the frames
    processed. `ready(http_port)` is called once the endpoint listens. `source`: frames
    other than the camera's own (the demo's `ReplaySource`), with `clock` "footage" when
    they carry footage time; `banner`: a line on every live frame; `max_frames`: stop after
    so many."""
    from trafficprn.camera.sources import open_source
    from trafficprn.live_view import LiveFrames
    from trafficprn.worker import CountingSink, Worker, WorkerHTTP, WorkerMetrics

    metrics = WorkerMetrics(camera.name)
    sink = _database_sink(settings.database_url, spool_dir, site, settings.memory_events)
    outputs = None
    try:
        outputs = _outputs(site, camera, settings, spool_dir)
        counted = CountingSink(_sinks(sink, outputs), metrics)
        pipeline = build_pipeline(site, camera, [counted], settings, site_path, detector=detector)
        if source is None:
            source = open_source(camera.source, camera.name, process_fps=camera.process_fps)
        live = LiveFrames(camera, list(pipeline.detector.class_names), banner=banner)
        http = WorkerHTTP(live, metrics, host=http_host, port=http_port, token=settings.worker_token,
                          source_stats=lambda: getattr(source, "stats", None), sink_stats=lambda: sink.stats,
                          output_stats=lambda: outputs.stats if outputs is not None else None).start()
    except BaseException:
        sink.close()
        if outputs is not None:
            outputs.close()
        raise
    worker = Worker(camera, source, pipeline, counted, metrics, live, site=site.site.name,
                    heartbeat_s=settings.heartbeat_s, clock=clock, sink_stats=lambda: sink.stats)
    if stop is not None:

        def relay() -> None:  # an outside stop request ends the worker loop
            while not stop.wait(0.5):
                if worker.stop.is_set():
                    return
            worker.stop.set()

        threading.Thread(target=relay, daemon=True).start()
    stop_monitor = threading.Event()
    threading.Thread(target=_monitor, args=(stop_monitor, camera.name, metrics, source, sink), daemon=True).start()
    log.info("worker for camera %s: source %s, endpoint http://%s:%d/metrics", camera.name, camera.source,
             http_host, http.port)
    if ready is not None:
        ready(http.port)

    def enough(_meta: Any) -> None:
        if max_frames is not None and metrics.frames >= max_frames:
            worker.stop.set()

    try:
        return worker.run(enough)
    finally:
        stop_monitor.set()
        http.close()
        sink.close()
        if outputs is not None:
            outputs.close()


# ---------------------------------------------------------------- process
def parse_start(text: str, tz: str) -> float:
    """ISO 8601 -> UTC epoch s; a naive time is in the site's zone."""
    from zoneinfo import ZoneInfo

    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--start: expected ISO 8601 such as 2026-03-10T07:00:00+01:00, got {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt.astimezone(UTC).timestamp()


def _video_info(path: Path) -> tuple[int, float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"{path}: cannot open the video")
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


class SummarySink:
    """Counts passages by movement and class for the end-of-run summary."""

    def __init__(self) -> None:
        self.movements: Counter[str] = Counter()
        self.classes: Counter[str] = Counter()
        self.speeds: list[float] = []

    def emit(self, event: Any) -> None:
        from trafficprn.events import VehiclePassage

        if isinstance(event, VehiclePassage):
            self.movements[f"{event.entry_leg or '?'}->{event.exit_leg or '?'} {event.movement or '?'}"] += 1
            self.classes[event.vehicle_class] += 1
            speed = event.approach_speed_kmh if event.approach_speed_kmh is not None else event.speed_median_kmh
            if speed is not None and not event.speed_flagged:
                self.speeds.append(speed)

    def close(self) -> None:
        pass


def cmd_process(args: argparse.Namespace) -> int:
    _logging()
    settings = _settings(args.db)
    site, camera = _site_camera(args.site, args.camera)
    video = Path(args.video)
    start = parse_start(args.start, site.site.timezone) if args.start else None
    process_video(site, camera, video, settings, site_path=args.site, start_ts=start,
                  spool_dir=_spool(settings, args.spool_dir, f"{camera.name}-process"), progress=not args.no_progress)
    return 0


def process_video(site: Any, camera: Any, video: Path, settings: Any, *, site_path: str, start_ts: float | None,
                  spool_dir: Path, progress: bool = True, detector: Any = None,
                  drain_timeout_s: float = 60.0) -> dict[str, Any]:
    """Run recorded footage through the pipeline into the database; print a summary and
    return its numbers. `detector` replaces the camera's model (tests, experiments).
    Events the database cannot take stay in the spool (replayed by the next sink on it);
    at the end the sink waits up to `drain_timeout_s` for them."""
    from tqdm import tqdm

    from trafficprn.camera.sources import open_source
    from trafficprn.worker import CountingSink, Worker, WorkerMetrics

    if not video.is_file():
        raise InputError(f"{video}: no such video file")
    n_frames, fps = _video_info(video)
    if start_ts is None:
        start_ts = video.stat().st_mtime - (n_frames / fps if fps else 0.0)
        log.warning("no --start given: assuming the video began at %s",
                    datetime.fromtimestamp(start_ts, UTC).isoformat())
    metrics = WorkerMetrics(camera.name)
    summary = SummarySink()
    sink = _database_sink(settings.database_url, spool_dir, site, settings.memory_events)
    outputs = None
    try:
        outputs = _outputs(site, camera, settings, spool_dir)
        counted = CountingSink(_sinks(sink, outputs), metrics)
        pipeline = build_pipeline(site, camera, [counted, summary], settings, site_path, detector=detector,
                                  source=str(video))
        source = open_source(str(video), camera.name, process_fps=camera.process_fps, start_ts=start_ts)
    except BaseException:
        sink.close()
        if outputs is not None:
            outputs.close()
        raise
    worker = Worker(camera, source, pipeline, counted, metrics, down_after_s=3600.0, site=site.site.name,
                    heartbeat_s=settings.heartbeat_s, clock="footage", sink_stats=lambda: sink.stats)
    bar = tqdm(total=n_frames or None, unit="frame", disable=not progress, file=sys.stderr, desc=camera.name,
               dynamic_ncols=True)
    seen = {"index": -1}

    def on_frame(meta: Any) -> None:
        bar.update(max(1, meta.index - seen["index"]))
        seen["index"] = meta.index
        if metrics.frames % 25 == 0:
            bar.set_postfix(passages=metrics.passages, spool=sink.stats.pending, refresh=False)

    t0 = time.monotonic()
    try:
        worker.run(on_frame)
    except KeyboardInterrupt:
        log.warning("interrupted: writing what was counted so far")
    finally:
        bar.close()
        sink.close(timeout_s=drain_timeout_s)
        if outputs is not None:
            outputs.close(timeout_s=drain_timeout_s)
    wall = time.monotonic() - t0
    st = sink.stats
    _print_summary(camera.name, video, start_ts, metrics, summary, st, wall)
    if outputs is not None:
        print(_outputs_summary(outputs.stats), file=sys.stdout)
    if metrics.frames == 0:
        raise InputError(f"{video}: no frame could be decoded")
    _check_complete(video, n_frames, fps, start_ts, metrics)
    return {"frames": metrics.frames, "passages": metrics.passages, "queue_samples": metrics.queue_samples,
            "movements": dict(summary.movements), "classes": dict(summary.classes), "written": st.written,
            "pending": st.pending, "wall_s": wall}


def _check_complete(video: Path, n_frames: int, fps: float, start_ts: float, metrics: Any) -> None:
    """InputError when decoding stopped well before the end the container announces (a
    truncated or damaged file): what was counted is stored, the rest is missing."""
    if not (n_frames > 0 and fps > 0) or metrics.last_frame_ts is None:
        return
    expected_s = n_frames / fps
    got_s = metrics.last_frame_ts - start_ts + 1.0 / fps
    if got_s < expected_s - max(1.0, 0.02 * expected_s):
        raise InputError(
            f"{video}: decoding stopped at {got_s:.1f} s of {expected_s:.1f} s ({metrics.frames} frames processed): "
            "the file is truncated or damaged. What was counted up to there is stored; the intervals after it "
            "are flagged incomplete"
        )


def _outputs_summary(st: Any) -> str:
    parts = []
    if st.mqtt is not None:
        m = st.mqtt
        parts.append(f"  mqtt    : {m.published} published, {m.pending} waiting on disk, {m.dropped} dropped"
                     + (f"; last error: {m.last_error}" if m.last_error else ""))
    if st.webhooks is not None:
        w = st.webhooks
        parts.append(f"  webhooks: {w.delivered} delivered, {w.failed} failed attempts, {w.dropped} dropped"
                     + (f"; last error: {w.last_error}" if w.last_error else ""))
    return "\n".join(parts)


def _print_summary(camera: str, video: Path, start: float, m: Any, s: SummarySink, st: Any, wall: float) -> None:
    import numpy as np

    span = (m.last_frame_ts - start) if m.last_frame_ts is not None else 0.0
    out = [
        f"processed {video.name} for camera {camera}",
        f"  footage : {datetime.fromtimestamp(start, UTC).isoformat()} + {span:.1f} s, {m.frames} frames processed "
        f"in {wall:.1f} s ({m.frames / wall if wall else 0:.1f} fps, {span / wall if wall else 0:.2f}x real time)",
        f"  passages: {m.passages} (queue samples {m.queue_samples}, plate reads {m.plate_reads})",
    ]
    if s.classes:
        out.append("  classes : " + ", ".join(f"{k} {v}" for k, v in s.classes.most_common()))
    if s.movements:
        out.append("  movements:")
        out += [f"    {k:<14} {v}" for k, v in sorted(s.movements.items())]
    if s.speeds:
        p50, p85 = np.percentile(np.asarray(s.speeds), [50, 85])
        out.append(f"  speeds  : median {p50:.1f} km/h, p85 {p85:.1f} km/h ({len(s.speeds)} measured)")
    state = "all written" if st.pending == 0 else f"{st.pending} events still in the spool (replayed on the next run)"
    out.append(f"  database: {st.written} events written, {state}" + (f"; last error: {st.last_error}"
                                                                        if st.last_error else ""))
    print("\n".join(out), file=sys.stdout)


__all__ = ["build_pipeline", "parse_start", "process_video", "register", "run_worker"]
