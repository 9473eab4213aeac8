"""Counts you can trust (issue 13), each case as a crashing box or a failing disk would
produce it: real worker processes killed with SIGKILL, a camera that never connects, a
re-run of `process` after a crash, a spool on a full file system with the database
down, two demos at once and a truncated video."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))

from test_worker import BlobDetector, H, W, site_config  # noqa: E402

from trafficprn.config import load_site  # noqa: E402
from trafficprn.resources import data_dir  # noqa: E402
from trafficprn.services_commands import run_worker  # noqa: E402
from trafficprn.settings import Settings  # noqa: E402
from trafficprn.store import queries  # noqa: E402
from trafficprn.store.db import make_engine, upgrade  # noqa: E402
from trafficprn.store.models import CameraStatusRow, Passage, QueueSampleRow  # noqa: E402
from trafficprn.store.testing import TempPostgres, free_port  # noqa: E402

REPO = Path(__file__).parents[1]
DEMO = data_dir() / "demo"


class MjpegCamera:
    """A live HTTP camera (multipart JPEG at 10 fps, as many IP cameras serve) until closed."""

    def __init__(self) -> None:
        frame = np.full((H, W, 3), (60, 100, 60), np.uint8)
        cv2.rectangle(frame, (250, 0), (390, H), (90, 90, 90), -1)
        self.jpeg = bytes(cv2.imencode(".jpg", frame)[1])
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not outer.stop.is_set():
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(outer.jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + outer.jpeg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def camera() -> Iterator[MjpegCamera]:
    cam = MjpegCamera()
    yield cam
    cam.close()


def _site(tmp_path: Path, source: str) -> Path:
    data = site_config()
    data["cameras"][0]["source"] = source  # type: ignore[index]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cameras(url: str, *, stale_s: float, now_ts: float | None = None) -> dict[str, queries.CameraInfo]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {c.name: c for c in queries.cameras(conn, now_ts=now_ts, stale_s=stale_s)}
    finally:
        engine.dispose()


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trafficprn", *args]


def test_killed_worker_reads_stale_and_every_later_interval_incomplete(tmp_path: Path, camera: MjpegCamera) -> None:
    url = f"sqlite:///{tmp_path / 'kill.sqlite'}"
    upgrade(url)
    site = _site(tmp_path, camera.url)
    env = {**os.environ, "TRAFFICPRN_HEARTBEAT_S": "1", "TRAFFICPRN_STALE_S": "3"}
    proc = subprocess.Popen(_cli("run", "--site", str(site), "--camera", "pole-1", "--db", url, "--http-host",
                                 "127.0.0.1", "--http-port", "0", "--spool-dir", str(tmp_path / "spool")),
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _cameras(url, stale_s=3).get("pole-1") is not None
              and _cameras(url, stale_s=3)["pole-1"].status == "up", 90, "the worker to report the camera up")
        time.sleep(2.5)
    finally:
        proc.send_signal(signal.SIGKILL)  # no goodbye: no down status, no last heartbeat
        proc.wait(10)
    killed = time.time()
    _wait(lambda: _cameras(url, stale_s=3)["pole-1"].status == "stale", 3 + 5, "the camera to read stale")
    cam = _cameras(url, stale_s=3)["pole-1"]
    assert "no heartbeat" in cam.reason and cam.last_heartbeat_ts is not None
    assert killed - cam.last_heartbeat_ts < 3
    # every interval after the kill is incomplete, however long nobody looks
    engine = make_engine(url)
    with engine.connect() as conn:
        later = queries.count_intervals(conn, "pole-1", killed, killed + 3600, tz="UTC", minutes=1,
                                        now_ts=killed + 7200, stale_s=3)
    engine.dispose()
    assert len(later) >= 60 and all(iv.incomplete for iv in later)
    assert all(iv.down_s == pytest.approx(iv.end_ts - iv.start_ts) for iv in later[1:])
    # and the API says so
    from fastapi.testclient import TestClient

    from trafficprn.api import create_app

    with TestClient(create_app(Settings(database_url=url, stale_s=3))) as client:
        cams = client.get("/api/cameras").json()
    assert [(c["name"], c["status"]) for c in cams] == [("pole-1", "stale")]


def test_camera_that_never_connects_reads_down_and_its_intervals_incomplete(tmp_path: Path) -> None:
    site_path = _site(tmp_path, f"rtsp://127.0.0.1:{free_port()}/stream1")
    site = load_site(site_path)
    url = f"sqlite:///{tmp_path / 'never.sqlite'}"
    upgrade(url)
    stop = threading.Event()
    started = time.time()
    thread = threading.Thread(target=run_worker, args=(site, site.cameras[0], Settings(database_url=url,
                              heartbeat_s=0.5)), kwargs={"site_path": str(site_path), "http_host": "127.0.0.1",
                              "http_port": 0, "spool_dir": tmp_path / "spool", "stop": stop,
                              "detector": BlobDetector()})
    thread.start()
    try:
        _wait(lambda: "pole-1" in _cameras(url, stale_s=30), 20, "the worker's first heartbeat")
        time.sleep(2)
        cam = _cameras(url, stale_s=30)["pole-1"]
        assert cam.status == "down" and cam.last_heartbeat_ts is not None  # not "unknown"
        engine = make_engine(url)
        with engine.connect() as conn:
            now = time.time()
            ivs = queries.count_intervals(conn, "pole-1", started - 120, now, tz="UTC", minutes=1, now_ts=now)
        engine.dispose()
        assert ivs and all(iv.incomplete for iv in ivs)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def _uuids(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        out = sorted(str(u) for (u,) in conn.execute(select(Passage.uuid)))
        queues = conn.execute(select(QueueSampleRow.id)).all()
    engine.dispose()
    return [*out, f"queue samples: {len(queues)}"]


def test_rerun_after_a_crash_stores_exactly_the_clean_runs_events(tmp_path: Path) -> None:
    start = "2026-03-10T08:00:00+00:00"

    env = {**os.environ, "TRAFFICPRN_PLATE_SECRET": "a-test-secret-for-plate-hashes"}

    def process(db: Path, spool: Path) -> list[str]:
        return _cli("process", str(DEMO / "video.mp4"), "--site", str(DEMO / "site.yaml"), "--camera", "fisheye-1",
                    "--db", f"sqlite:///{db}", "--start", start, "--spool-dir", str(spool), "--no-progress")

    clean_db, crash_db = tmp_path / "clean.sqlite", tmp_path / "crash.sqlite"
    for db in (clean_db, crash_db):
        upgrade(f"sqlite:///{db}")
    done = subprocess.run(process(clean_db, tmp_path / "spool-clean"), capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stderr
    clean = _uuids(f"sqlite:///{clean_db}")
    assert len(clean) > 20

    proc = subprocess.Popen(process(crash_db, tmp_path / "spool-crash"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        _wait(lambda: len(_uuids(f"sqlite:///{crash_db}")) > 8, 240, "the first run to store some passages")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    partial = _uuids(f"sqlite:///{crash_db}")
    assert 1 < len(partial) - 1 < len(clean) - 1  # it died in the middle
    again = subprocess.run(process(crash_db, tmp_path / "spool-crash"), capture_output=True, text=True, timeout=300,
                           env=env)
    assert again.returncode == 0, again.stderr
    assert _uuids(f"sqlite:///{crash_db}") == clean  # none missing, none extra, same queue samples


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KB tmpfs, filled until it refuses writes: the spool's folder."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 512)
            except OSError:
                pass  # ENOSPC: full
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_spool_disk_with_the_database_down_keeps_the_camera_running(tmp_path: Path, camera: MjpegCamera,
                                                                         full_disk: Path) -> None:
    site_path = _site(tmp_path, camera.url)
    site = load_site(site_path)
    with TempPostgres() as pg:
        upgrade(pg.url)
        pg.stop()  # the database is down from the start
        stop = threading.Event()
        ports: list[int] = []
        result: list[int] = []
        settings = Settings(database_url=pg.url, heartbeat_s=0.5, memory_events=40)
        started = time.time()
        thread = threading.Thread(target=lambda: result.append(run_worker(
            site, site.cameras[0], settings, site_path=str(site_path), http_host="127.0.0.1", http_port=0,
            spool_dir=full_disk / "spool", stop=stop, detector=BlobDetector(), ready=ports.append)))
        thread.start()
        try:
            _wait(lambda: bool(ports), 30, "the worker endpoint")
            time.sleep(60)  # a minute on a full disk with no database
            assert thread.is_alive()
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=5) as res:
                metrics = res.read().decode()
            dropped = next(float(line.split()[-1]) for line in metrics.splitlines()
                           if line.startswith("trafficprn_events_dropped_total"))
            frames = next(float(line.split()[-1]) for line in metrics.splitlines()
                          if line.startswith("trafficprn_frames_total"))
            assert dropped > 0 and frames > 100  # it kept detecting, and counted what it lost
            assert 'trafficprn_spool_up{camera="pole-1"} 0' in metrics
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/health", timeout=5) as res:
                assert b'"spool_ok": false' in res.read()
            pg.start()  # the database comes back: what memory held goes there, with the loss
            pg.wait_ready()
            engine = make_engine(pg.url)

            def loss_stored() -> bool:
                with engine.connect() as conn:
                    return bool(conn.execute(select(CameraStatusRow.id).where(
                        CameraStatusRow.reason == "events lost: spool full")).first())

            _wait(loss_stored, 60, "the loss to reach the database")
            with engine.connect() as conn:
                ivs = queries.count_intervals(conn, "pole-1", started, time.time(), tz="UTC", minutes=1)
            engine.dispose()
            assert ivs and all(iv.incomplete for iv in ivs)  # the minutes with losses are flagged
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive() and result and result[0] > 100


def test_second_demo_on_the_same_folder_refuses_naming_the_first(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    port = free_port()
    first = subprocess.Popen(_cli("demo", "--workdir", str(work), "--port", str(port), "--no-progress",
                                  "--max-frames", "30"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait(lambda: (work / "demo.lock").exists() and "pid" in (work / "demo.lock").read_text(), 60,
              "the first demo to start")
        second = subprocess.run(_cli("demo", "--workdir", str(work), "--port", str(free_port()), "--headless",
                                     "--no-progress"), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "another trafficprn demo is running" in second.stderr and f"pid {first.pid}" in second.stderr
        assert first.poll() is None  # the first one is untouched
        _wait(lambda: _port_open(port), 120, "the first demo's dashboard")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as res:
            assert res.status == 200
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(30)


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_truncated_video_exits_non_zero_saying_how_far_it_got(tmp_path: Path) -> None:
    # an MJPEG AVI announces its frame count up front and decodes up to where it was cut
    full = tmp_path / "full.avi"
    out = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(100):
        img = np.full((H, W, 3), (60, 100, 60), np.uint8)
        cv2.rectangle(img, (265, 2 * i), (305, 2 * i + 60), (30, 30, 220), -1)
        out.write(img)
    out.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    cap = cv2.VideoCapture(str(cut))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 100  # it still says 10 s
    cap.release()
    site = _site(tmp_path, "video.mp4")
    url = f"sqlite:///{tmp_path / 'cut.sqlite'}"
    upgrade(url)
    done = subprocess.run(_cli("process", str(cut), "--site", str(site), "--camera", "pole-1", "--db", url,
                               "--start", "2026-03-10T00:00:00Z", "--no-progress", "--spool-dir", str(tmp_path / "sp")),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cut.avi: decoding stopped at" in done.stderr and "of 10.0 s" in done.stderr
    assert "truncated or damaged" in done.stderr
