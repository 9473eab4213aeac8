"""Helpers for tests and benchmarks that need real databases (no pytest import here).

- `create_database(admin_url, prefix)` / `drop_database(url)`: a fresh Postgres
  database on an existing server (e.g. postgresql://postgres@127.0.0.1:5432/postgres).
- `truncate_all(engine)`: empty every trafficprn table, keeping the schema.
- `TempPostgres`: a private Postgres server (initdb + pg_ctl on a free port in a temp
  folder) that a test can stop, start and throw away. As root it runs the server as
  the `postgres` OS user, since initdb refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from trafficprn.errors import StoreError
from trafficprn.events import HEARTBEAT_S, Heartbeat, VehiclePassage
from trafficprn.store.db import make_engine
from trafficprn.store.models import TABLES

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_reachable(admin_url: str = DEFAULT_ADMIN_URL) -> bool:
    engine = make_engine(admin_url, connect_timeout_s=2)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def create_database(admin_url: str = DEFAULT_ADMIN_URL, prefix: str = "trafficprn_test_") -> str:
    """Create an empty database named `<prefix><random hex>`; returns its URL."""
    name = f"{prefix}{secrets.token_hex(4)}"
    engine = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, admin_db: str = "postgres") -> None:
    """Drop the database of `url`, disconnecting its sessions first."""
    parsed = make_url(url)
    name = parsed.database
    engine = make_engine(parsed.set(database=admin_db)).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def truncate_all(engine: Engine) -> None:
    """Delete all rows of the trafficprn tables (schema and alembic_version stay)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise StoreError(f"{name} not found (install postgresql)")
    return candidates[-1]


class TempPostgres:
    """A throw-away Postgres server on 127.0.0.1:<free port>. Use as a context manager;
    `stop()` / `start()` simulate an outage; `url` is the trust-auth URL of db `postgres`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="trafficprn-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run([_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])

    def _run(self, cmd: list[str]) -> None:
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise StoreError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts, "-w", "start"])

    def stop(self, mode: str = "immediate") -> None:
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not postgres_reachable(self.url):
            if time.monotonic() > deadline:
                raise StoreError(f"temporary Postgres on port {self.port} did not come up")
            time.sleep(0.1)

    def destroy(self) -> None:
        with contextlib.suppress(StoreError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.destroy()


def make_passage(**overrides: object) -> VehiclePassage:
    """A plausible passage; any field can be overridden (factory for tests and benchmarks)."""
    ts = float(overrides.pop("passage_ts", 1_780_000_000.0))  # type: ignore[arg-type]
    values: dict[str, object] = {
        "camera": "cam-1",
        "track_id": 1,
        "passage_ts": ts,
        "first_seen_ts": ts - 5.0,
        "last_seen_ts": ts + 3.0,
        "vehicle_class": "car",
        "class_confidence": 0.9,
        "entry_leg": "N",
        "exit_leg": "S",
        "movement": "T",
        "speed_median_kmh": 40.0,
        "speed_max_kmh": 48.0,
        "colour": "white",
        "colour_confidence": 0.8,
    }
    values.update(overrides)
    return VehiclePassage(**values)  # type: ignore[arg-type]


def heartbeats(
    camera: str, from_ts: float, to_ts: float, *, every_s: float = HEARTBEAT_S, down: Sequence[tuple[float, float]] = ()
) -> list[Heartbeat]:
    """Heartbeats of a worker that watched `camera` over [from_ts, to_ts] every `every_s`
    (and at `to_ts`), `up` except inside the `down` windows: seeds liveness for tests."""
    n = int(math.floor((to_ts - from_ts) / every_s))
    grid = {from_ts + i * every_s for i in range(n + 1)} | {to_ts}
    # a worker beats at once when the camera goes down or comes back
    times = sorted(grid | {t for window in down for t in window if from_ts <= t <= to_ts})
    return [Heartbeat(camera, t, up=not any(a <= t < b for a, b in down), frames_seen=i, frames_processed=i)
            for i, t in enumerate(times)]
