"""Store benchmark: 1,000,000 passages in Postgres over 30 days and 4 cameras.

Prints:
- passages/s inserted through the repository's batch path (`repository.insert_passages`,
  one transaction per batch, idempotent ON CONFLICT DO NOTHING, with the
  `passage_counts` rollup updated in the same transaction) (target >= 5,000/s);
- p50/p95 latency of the 15-minute movement-count query (`queries.movement_counts`) for
  one camera over one day and over 30 days (from the rollup; also counted from the
  passages themselves, `source="passages"`, for comparison);
- p50/p95 latency of the passages query (`queries.passages`, page of 100, with filters
  and a cursor) (target p95 <= 100 ms).

Runs against a dedicated database `trafficprn_bench_<random>` created on the server of
--admin-url (default postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the
end (--keep to keep it).

    .venv/bin/python benchmarks/bench_store.py [--passages 1000000] [--batch 5000]

The machine's load average is printed at the start and at the end: the figures are
wall-clock times on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
from sqlalchemy import text

from trafficprn.events import VehiclePassage
from trafficprn.store import db, queries, repository
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database

TZ = "Europe/Berlin"
T0 = 1_774_738_800.0  # 2026-03-29 00:00 Europe/Berlin (includes a DST change)
DAYS = 30
CAMERAS = ["cam-1", "cam-2", "cam-3", "cam-4"]
LEGS = ["N", "E", "S", "W"]
CLASSES = ["car", "truck", "bus", "motorcycle", "bicycle"]
CLASS_P = [0.80, 0.08, 0.03, 0.06, 0.03]
COLOURS = ["white", "black", "grey", "silver", "red", "blue", "green", "yellow"]
TURN = {1: "L", 2: "T", 3: "R", 0: "U"}


def generate(n: int, batch: int, seed: int = 1) -> Iterator[list[VehiclePassage]]:
    """Passages with a daily profile (busier by day), in time order as workers write
    them, in batches."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, DAYS, n)
    hour = np.clip(rng.normal(13.0, 4.5, n), 0, 23.999)
    all_ts = np.sort(T0 + day * 86400.0 + hour * 3600.0)
    done = 0
    while done < n:
        k = min(batch, n - done)
        ts = all_ts[done : done + k]
        cam = rng.integers(0, len(CAMERAS), k)
        entry = rng.integers(0, 4, k)
        turn = rng.choice([1, 2, 3, 0], k, p=[0.25, 0.55, 0.18, 0.02])
        cls = rng.choice(len(CLASSES), k, p=CLASS_P)
        speed = np.clip(rng.normal(38.0, 9.0, k), 2.0, 120.0)
        colour = rng.integers(0, len(COLOURS), k)
        out = []
        for i in range(k):
            exit_leg = LEGS[(entry[i] + turn[i]) % 4]
            out.append(
                VehiclePassage(
                    camera=CAMERAS[cam[i]],
                    track_id=done + i,
                    passage_ts=float(ts[i]),
                    first_seen_ts=float(ts[i] - 4.0),
                    last_seen_ts=float(ts[i] + 3.0),
                    vehicle_class=CLASSES[cls[i]],
                    class_confidence=0.85,
                    entry_leg=LEGS[entry[i]],
                    exit_leg=exit_leg,
                    movement=TURN[int(turn[i])],  # type: ignore[arg-type]
                    speed_median_kmh=round(float(speed[i]), 2),
                    speed_max_kmh=round(float(speed[i]) * 1.15, 2),
                    colour=COLOURS[colour[i]],
                    colour_confidence=0.7,
                    plate_hash=f"{rng.integers(0, 2**63):064x}" if i % 2 else None,
                    plate_confidence=0.8 if i % 2 else None,
                )
            )
        done += k
        yield out


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """p50, p95 in ms over `reps` calls (after one warm-up call)."""
    fn()
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms), float(np.percentile(ms, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    ap.add_argument("--passages", "--n", dest="n", type=int, default=1_000_000, help="passages to insert")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = ap.parse_args()

    url = create_database(args.admin_url, prefix="trafficprn_bench_")
    print(f"database: {db.describe_url(url)}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} CPUs".format(*os.getloadavg(), os.cpu_count()))
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        gen_s = insert_s = 0.0
        batches = generate(args.n, args.batch)
        while True:
            t = time.perf_counter()
            chunk = next(batches, None)
            gen_s += time.perf_counter() - t
            if chunk is None:
                break
            t = time.perf_counter()
            with engine.begin() as conn:
                repository.insert_passages(conn, chunk)
            insert_s += time.perf_counter() - t
        print(f"inserted {args.n:,} passages in batches of {args.batch}: {insert_s:.1f} s "
              f"-> {args.n / insert_s:,.0f} passages/s (target >= 5,000/s; generating them took {gen_s:.1f} s more)")
        t = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE vehicle_passages"))
            conn.execute(text("VACUUM ANALYZE passage_counts"))
        print(f"vacuum analyze: {time.perf_counter() - t:.1f} s")

        rng = np.random.default_rng(5)
        with engine.connect() as conn:

            def one_day() -> object:
                day = int(rng.integers(0, DAYS - 1))
                lo = queries.interval_starts(T0 + day * 86400 + 7200, T0 + day * 86400 + 7201, TZ, 15)[0]
                return queries.movement_counts(conn, "cam-2", lo, lo + 86400, tz=TZ, minutes=15)

            def thirty_days() -> object:
                return queries.movement_counts(conn, "cam-2", T0, T0 + DAYS * 86400, tz=TZ, minutes=15)

            def thirty_days_raw() -> object:
                return queries.movement_counts(
                    conn, "cam-2", T0, T0 + DAYS * 86400, tz=TZ, minutes=15, source="passages"
                )

            def one_day_raw() -> object:
                day = int(rng.integers(0, DAYS - 1))
                lo = queries.interval_starts(T0 + day * 86400 + 7200, T0 + day * 86400 + 7201, TZ, 15)[0]
                return queries.movement_counts(conn, "cam-2", lo, lo + 86400, tz=TZ, minutes=15, source="passages")

            def tmc_with_intervals() -> object:
                day = int(rng.integers(0, DAYS - 1))
                lo = T0 + day * 86400
                queries.count_intervals(conn, "cam-2", lo, lo + 86400, tz=TZ, minutes=15)
                return queries.movement_counts(conn, "cam-2", lo, lo + 86400, tz=TZ, minutes=15)

            filters = [
                queries.PassageFilter(camera="cam-1"),
                queries.PassageFilter(camera="cam-3", vehicle_class="truck"),
                queries.PassageFilter(camera="cam-2", movement="L", colour="red"),
                queries.PassageFilter(camera="cam-4", speed_min_kmh=60),
                queries.PassageFilter(camera="cam-1", vehicle_class="bus", movement="U"),
                queries.PassageFilter(vehicle_class=["bus", "truck"], speed_max_kmh=20),
            ]

            def passages_page() -> object:
                flt = filters[int(rng.integers(0, len(filters)))]
                day = int(rng.integers(0, DAYS - 1))
                flt = queries.PassageFilter(**{**flt.__dict__, "from_ts": T0 + day * 86400, "to_ts": T0 + (day + 2) * 86400})
                page = queries.passages(conn, flt, limit=100)
                if page.next_cursor:
                    page = queries.passages(conn, flt, limit=100, cursor=page.next_cursor)
                return page

            def passages_latest() -> object:
                return queries.passages(conn, filters[int(rng.integers(0, len(filters)))], limit=100)

            rows_day = len(one_day())  # type: ignore[arg-type]
            rows_30 = len(thirty_days())  # type: ignore[arg-type]
            for name, fn, reps in (
                (f"movement counts 15 min, 1 camera, 1 day ({rows_day} groups)", one_day, args.reps),
                (f"movement counts 15 min, 1 camera, 30 days ({rows_30} groups)", thirty_days, args.reps),
                ("  the same from the passages (no rollup), 1 day", one_day_raw, max(5, args.reps // 3)),
                ("  the same from the passages (no rollup), 30 days", thirty_days_raw, max(5, args.reps // 3)),
                ("movement counts + interval list (TMC inputs), 1 camera, 1 day", tmc_with_intervals, args.reps),
                ("passages query, 100 per page, filters + time range, 2 pages", passages_page, args.reps * 2),
                ("passages query, 100 per page, filters, newest first", passages_latest, args.reps * 2),
            ):
                p50, p95 = timed(fn, reps)
                print(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (n={reps})")
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        engine.dispose()
        if args.keep:
            print(f"kept {db.describe_url(url)}")
        else:
            drop_database(url)


if __name__ == "__main__":
    main()
