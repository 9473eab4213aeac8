"""`trafficprn demo` live: the bundled scene played like a camera through a real worker.

The scene's video is replayed in real time (`--speed` times faster) and looped by
`camera.replay.ReplaySource`; each loop is a new time window (timestamps moved on by the
scene's length), so its vehicles are new passages. A real worker (`run_worker`: the
pipeline, the database sink with its spool, the HTTP endpoint with /live.mjpg) runs it on
a thread; the API and dashboard serve on the main thread and update as vehicles pass
(server-sent events). Everything written goes into the demo's work folder: the SQLite
file, the spool and a copy of the scene's site.yaml whose camera points its live_url at
the worker.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from trafficprn.api import create_app
from trafficprn.camera.replay import ReplaySource
from trafficprn.config import SiteConfig, load_site
from trafficprn.demo import plate_secret
from trafficprn.services_commands import run_worker
from trafficprn.settings import Settings
from trafficprn.store.db import upgrade

log = logging.getLogger("trafficprn.demo")
BANNER = "SIMULATED SCENE - trafficprn demo"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def banner_text(speed: float) -> str:
    return BANNER if speed == 1 else f"{BANNER} - {speed:g}x speed"


def _settings(url: str, work: Path, site_path: Path, site: SiteConfig, banner: str) -> Settings:
    """The demo's settings, with `demo.plate_secret` (a random one for this run in hash
    mode without TRAFFICPRN_PLATE_SECRET)."""
    return Settings(database_url=url, site_path=str(site_path), spool_dir=str(work / "spool"),
                    plate_secret=plate_secret(site),
                    banner=banner, worker_token=None)


def _start_worker(site: SiteConfig, settings: Settings, site_path: Path, work: Path, args: argparse.Namespace,
                  start_ts: float, worker_port: int, stop: threading.Event) -> threading.Thread:
    """The camera's worker on a thread, replaying the scene from `start_ts`; returns once
    its endpoint listens (or the worker failed)."""
    camera = site.cameras[0]
    source = ReplaySource(camera.source, camera.name, start_ts=start_ts, length_s=args.scene_seconds,
                          speed=args.speed, process_fps=camera.process_fps)
    listening = threading.Event()

    def work_loop() -> None:
        try:
            frames = run_worker(site, camera, settings, site_path=str(site_path), http_host="127.0.0.1",
                                http_port=worker_port, spool_dir=work / "spool", stop=stop, source=source,
                                clock="footage", banner=banner_text(args.speed), max_frames=args.max_frames,
                                ready=lambda _port: listening.set())
            log.info("demo worker: %d frames, %d loop(s) played", frames, source.loop)
        except Exception:
            log.exception("the demo's worker failed")
        finally:
            listening.set()

    thread = threading.Thread(target=work_loop, name="demo-worker", daemon=True)
    thread.start()
    listening.wait(120)
    return thread


def run_live(args: argparse.Namespace, scene_dir: Path, info: dict[str, Any], work: Path,
             work_site: Callable[[Path, Path, str], Path], iso: Callable[[float], str]) -> int:
    """Play the scene live until Ctrl-C; `work_site(scene_dir, work, live_url)` writes the
    work folder's site.yaml, `iso(ts)` formats the dashboard's start time."""
    db_file = work / "demo.sqlite"
    db_file.unlink(missing_ok=True)  # a fresh database each run, and no spool of an earlier one to replay
    shutil.rmtree(work / "spool", ignore_errors=True)
    url = f"sqlite:///{db_file}"
    upgrade(url)
    worker_port = free_port()
    site_path = work_site(scene_dir, work, f"http://127.0.0.1:{worker_port}")
    site = load_site(site_path)
    banner = banner_text(args.speed)
    settings = _settings(url, work, site_path, site, banner)
    args.scene_seconds = float(info["seconds"])
    start_ts = float(math.floor(time.time()))  # the scene's first loop starts now
    stop = threading.Event()
    worker = _start_worker(site, settings, site_path, work, args, start_ts, worker_port, stop)
    query = f"?from={iso(math.floor(start_ts / 300) * 300)}&interval=5m&live=1"
    print(f"\ntrafficprn demo: {banner}, looping every {args.scene_seconds:g} s of scene time")
    print(f"trafficprn demo: dashboard at http://{args.host}:{args.port}/ui/{query}  "
          f"(API at http://{args.host}:{args.port}/docs)")
    print("press Ctrl-C to stop", flush=True)
    try:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    finally:
        stop.set()
        worker.join(30)
    print("trafficprn demo: stopped")
    return 0
