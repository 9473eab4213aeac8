"""The central write path: boxes writing one Postgres over TCP through their spools.

Each box is its own process with the worker's `DatabaseSink` (spool on disk, batches,
idempotent inserts and the count rollup in the same transaction), emitting `--n`
passages of its own site as fast as it can (plus a heartbeat every 100 passages);
the figure is stored passages per second from the first emit until the last is in the
database. Baseline in the same run: one box alone. Then `--boxes` boxes at once, each
with the same camera name, and their aggregate rate. A busy junction makes about one
passage per second per camera, so the ratio to `boxes` passages/s is the headroom.

    .venv/bin/python benchmarks/bench_central.py [--db URL] [--n 20000] [--boxes 3]

Default database: a throw-away one on the Postgres at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from trafficprn.events import Heartbeat, event_uuid
from trafficprn.store.db import make_engine, upgrade
from trafficprn.store.models import Passage
from trafficprn.store.sink import DatabaseSink
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database, make_passage

T0 = 1_780_000_000.0


def _box(url: str, site: str, n: int, spool: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    sink = DatabaseSink(url, Path(spool), site_zone=(site, "Europe/Berlin"))
    start = time.perf_counter()
    for i in range(n):
        ts = T0 + i * 0.5
        sink.emit(make_passage(site=site, camera="fisheye-1", track_id=i, passage_ts=ts,
                               uuid=event_uuid("passage", site, "fisheye-1", "bench", ts - 5.0, i)))
        if i % 100 == 0:
            sink.emit(Heartbeat(camera="fisheye-1", ts=ts, up=True, site=site))
    ok = sink.flush(timeout_s=600)
    wall = time.perf_counter() - start
    sink.close()
    out.put((site, ok, wall))


def _run(url: str, sites: list[str], n: int) -> tuple[float, float]:
    """(aggregate passages/s, slowest box's wall s) of these boxes writing at once."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        procs = [ctx.Process(target=_box, args=(url, s, n, f"{tmp}/{s}", out)) for s in sites]
        t = time.perf_counter()
        for p in procs:
            p.start()
        results = [out.get(timeout=900) for _ in procs]
        for p in procs:
            p.join()
        wall = time.perf_counter() - t
    assert all(ok for _, ok, _ in results), results
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = {s: conn.execute(select(func.count()).where(Passage.site == s)).scalar_one() for s in sites}
    engine.dispose()
    assert all(v == n for v in stored.values()), stored
    return len(sites) * n / wall, max(w for _, _, w in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="Postgres URL (default: a throw-away database on 127.0.0.1:5432)")
    ap.add_argument("--n", type=int, default=20000, help="passages per box")
    ap.add_argument("--boxes", type=int, default=3)
    args = ap.parse_args()
    url = args.db or create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_bench_central_")
    try:
        upgrade(url)
        print(f"# {platform.processor() or platform.machine()}, {mp.cpu_count()} CPUs; {args.n} passages per box")
        base, base_wall = _run(url, ["baseline-box"], args.n)
        print(f"baseline 1 box        : {base:8.0f} passages/s stored (wall {base_wall:.1f} s)")
        agg, wall = _run(url, [f"box-{i + 1}" for i in range(args.boxes)], args.n)
        print(f"{args.boxes} boxes at once       : {agg:8.0f} passages/s stored in all (slowest box {wall:.1f} s); "
              f"ratio to 1 box {agg / base:.2f}")
        print(f"headroom at 1 passage/s per box: {agg / args.boxes:.0f}x")
    finally:
        if not args.db:
            drop_database(url)


if __name__ == "__main__":
    main()
