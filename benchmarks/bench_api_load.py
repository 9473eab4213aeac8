"""API load benchmark: 20 dashboard clients over 1,000,000 passages on Postgres.

Seeds a dedicated database (passages of bench_store.py: 4 cameras over 30 days, with
heartbeats every 10 s and queue samples of two lanes every 5 s, as 30 days of a box
leave them), starts `trafficprn serve --workers W` on it, and drives the dashboard's
request mix from `--clients` concurrent clients, first in a closed loop (each sends its
next request as soon as the last one is answered, no think time: the server's capacity),
then as dashboards that refresh every ~`--think-s` seconds (what 20 open dashboards ask):

    summary (/api/cameras), per-interval counts with the OD matrix
    (/api/counts/movements, row_counts=false as the dashboard asks), queues (/api/queues,
    60 s steps), speeds (/api/speeds) and
    the first passages page (/api/passages, 50 rows),

each over a day, a week and 30 days ending at a moving "now" inside the data (so that no
two requests ask the same thing, as the dashboard's ranges end at the current ms).
Prints requests/s, p50/p95/p99 overall, per route and per range; the target is p95 <=
300 ms for the whole mix. The baseline in the same run is one server process
(--workers 1), measured first with the same clients.

    .venv/bin/python benchmarks/bench_api_load.py [--passages 1000000] [--seconds 60]
        [--workers 2] [--db URL (reuse a seeded database)] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
from bench_store import CAMERAS, DAYS, T0, generate
from sqlalchemy import text

from trafficprn.events import CameraStatus, Heartbeat, QueueSample
from trafficprn.store import db, repository
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database, free_port

RANGES = {"day": 86400.0, "week": 7 * 86400.0, "30d": 30 * 86400.0}
LANES = ["N-1", "S-1"]


def _batched(events: list, size: int = 20000):  # type: ignore[no-untyped-def]
    for i in range(0, len(events), size):
        yield events[i:i + size]


def seed(url: str, passages: int) -> None:
    engine = db.make_engine(url)
    t = time.perf_counter()
    for chunk in generate(passages, 5000):
        with engine.begin() as conn:
            repository.insert_passages(conn, chunk)
    print(f"seeded {passages:,} passages in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    end = T0 + DAYS * 86400.0
    for cam in CAMERAS:
        beats = [Heartbeat(camera=cam, ts=float(ts), up=True)
                 for ts in np.arange(T0, end, 10.0)]
        with engine.begin() as conn:
            repository.write_events(conn, [CameraStatus(camera=cam, ts=T0, up=True, reason="started")])
            for chunk in _batched(beats):  # type: ignore[no-untyped-call]
                repository.write_events(conn, chunk)
    rng = np.random.default_rng(3)
    ts = np.arange(T0, end, 5.0)
    for lane in LANES:
        length = np.clip(rng.normal(12, 10, len(ts)), 0, 80)
        samples = [QueueSample(camera=CAMERAS[0], lane=lane, ts=float(a), length_m=round(float(b), 1),
                               vehicles=int(b // 7)) for a, b in zip(ts, length, strict=True)]
        with engine.begin() as conn:
            for chunk in _batched(samples):  # type: ignore[no-untyped-call]
                repository.insert_queue_samples(conn, chunk)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"seeded heartbeats (10 s, {len(CAMERAS)} cameras) and queue samples (5 s, {len(LANES)} lanes) "
          f"in {time.perf_counter() - t:.0f} s")
    engine.dispose()


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "TRAFFICPRN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "trafficprn", "serve", "--db", url, "--port", str(port),
                             "--workers", str(workers), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=2):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise SystemExit(f"serve did not start: {err}") from None
            time.sleep(0.3)


def _requests(now: float, span: float) -> list[tuple[str, str, dict[str, object]]]:
    base: dict[str, object] = {"camera": CAMERAS[0], "from": now - span, "to": now}
    return [
        ("summary", "/api/cameras", {}),
        ("counts", "/api/counts/movements", {**base, "interval": "15m" if span <= 86400 else "1h", "row_counts": "false"}),
        ("queues", "/api/queues", {**base, "step_s": 60}),
        ("speeds", "/api/speeds", base),
        ("passages", "/api/passages", {**base, "limit": 50}),
    ]


async def drive(base: str, clients: int, seconds: float, seed_: int = 11,
                think_s: float = 0.0) -> dict[tuple[str, str], list[float]]:
    rng = random.Random(seed_)
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    end = T0 + DAYS * 86400.0

    async def client(http: httpx.AsyncClient) -> None:
        if think_s:  # dashboards are opened at different times, not all in one instant
            await asyncio.sleep(rng.uniform(0, think_s))
        while time.monotonic() < stop_at:
            name = rng.choice(list(RANGES))
            span = RANGES[name]
            now = rng.uniform(T0 + span, end)
            for route, path, params in _requests(now, span):
                t = time.perf_counter()
                res = await http.get(path, params=params)
                latencies[(route, name)].append((time.perf_counter() - t) * 1000)
                if res.status_code != 200:
                    errors.append(f"{path} {res.status_code} {res.text[:100]}")
            if think_s:  # a dashboard refreshes, then shows it for a while
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    if errors:
        print(f"  {len(errors)} errors, e.g. {errors[0]}")
    return latencies


def report(label: str, lat: dict[tuple[str, str], list[float]], seconds: float) -> float:
    allms = [x for v in lat.values() for x in v]
    p50, p95, p99 = (float(np.percentile(allms, q)) for q in (50, 95, 99))
    print(f"{label}: {len(allms) / seconds:.1f} requests/s, p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms "
          f"({len(allms)} requests; target p95 <= 300 ms)")
    routes = sorted({r for r, _ in lat})
    for route in routes:
        parts = []
        for name in RANGES:
            v = lat.get((route, name), [])
            if v:
                parts.append(f"{name} p50 {statistics.median(v):.0f} / p95 {np.percentile(v, 95):.0f}")
        print(f"  {route:9s} " + ", ".join(parts))
    return p95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    ap.add_argument("--db", help="a database seeded by an earlier run (--keep); skips seeding")
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2, help="server processes of the measured run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the one-process baseline")
    ap.add_argument("--think-s", type=float, default=15.0,
                    help="also run dashboards that refresh every ~think_s s (the dashboard's poll period); 0: skip")
    ap.add_argument("--keep", action="store_true", help="keep the seeded database (prints its URL)")
    args = ap.parse_args()
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} CPUs".format(*os.getloadavg(), os.cpu_count()))
    url = args.db
    if url is None:
        url = create_database(args.admin_url, prefix="trafficprn_load_")
        db.upgrade(url)
        seed(url, args.passages)
    else:
        db.upgrade(url)
    print(f"database: {db.describe_url(url)}")
    try:
        runs = [(1, "baseline, 1 server process")] if not args.no_baseline else []
        runs.append((args.workers, f"{args.workers} server processes"))
        for workers, label in runs:
            proc, base = start_server(url, workers)
            try:
                asyncio.run(drive(base, args.clients, 5))  # warm-up
                lat = asyncio.run(drive(base, args.clients, args.seconds))
                report(f"{label}, {args.clients} clients, closed loop", lat, args.seconds)
                if args.think_s and workers == args.workers:
                    lat = asyncio.run(drive(base, args.clients, args.seconds, think_s=args.think_s))
                    report(f"{label}, {args.clients} dashboards refreshing every ~{args.think_s:g} s", lat,
                           args.seconds)
            finally:
                proc.terminate()
                proc.wait(20)
    finally:
        if args.db is None and not args.keep:
            drop_database(url)
        elif args.db is None:
            print(f"kept: --db {url}")
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
