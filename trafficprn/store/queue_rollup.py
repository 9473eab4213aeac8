"""Queue samples per lane and UTC minute (table `queue_minutes`).

Why: a lane sampled every second holds 2.6 million rows a month; resampling 30 days of
two lanes took about a second per request (bench_api_load.py). The rollup keeps, per
(site, camera, lane, minute), the number of samples, the sum and max of their lengths
and the max vehicle count, so a 30-day chart reads 43,200 rows per lane at most, and any
step that is a whole number of minutes is exact: a bucket's mean is its sum over its
count, its max the max of maxima.

Rules that keep it exact, as for the passage counts (`store.rollup`):
- written in the transaction that inserts the samples, from the rows the insert actually
  added (`ON CONFLICT DO NOTHING RETURNING`), so replays never count twice (`add_samples`);
- a range that starts or ends inside a minute reads its partial minutes from the samples
  themselves (`queries.queues`);
- retention deletes whole minutes before the cut and rebuilds the minute it cuts
  (`purge_before`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from trafficprn.store.models import QueueMinuteRow, QueueSampleRow
from trafficprn.store.sqlexpr import as_epoch, camera_scope

MINUTE_S = 60


@dataclass
class MinuteCell:
    samples: int = 0
    length_sum_m: float = 0.0
    length_max_m: float = 0.0
    vehicles_max: int = 0

    def add(self, samples: int, length_sum_m: float, length_max_m: float, vehicles_max: int) -> None:
        first = self.samples == 0
        self.samples += samples
        self.length_sum_m += length_sum_m
        self.length_max_m = length_max_m if first else max(self.length_max_m, length_max_m)
        self.vehicles_max = vehicles_max if first else max(self.vehicles_max, vehicles_max)


Key = tuple[str, str, str, int]  # site, camera, lane, minute_s


def minute_cells(rows: Iterable[Sequence[Any]]) -> dict[Key, MinuteCell]:
    """(site, camera, lane, ts, length_m, vehicles) rows -> cells per minute."""
    cells: dict[Key, MinuteCell] = {}
    for site, camera, lane, ts, length_m, vehicles in rows:
        minute = int(math.floor(as_epoch(ts) / MINUTE_S)) * MINUTE_S
        cells.setdefault((str(site), str(camera), str(lane), minute), MinuteCell()).add(
            1, float(length_m), float(length_m), int(vehicles))
    return cells


def add_samples(conn: Connection, cells: dict[Key, MinuteCell]) -> None:
    """Add newly inserted samples to their minutes (in the inserting transaction)."""
    if not cells:
        return
    table: Table = QueueMinuteRow.__table__  # type: ignore[assignment]
    rows = [{"site": k[0], "camera": k[1], "lane": k[2], "minute_s": k[3], "samples": c.samples,
             "length_sum_m": c.length_sum_m, "length_max_m": c.length_max_m, "vehicles_max": c.vehicles_max}
            for k, c in sorted(cells.items())]
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    new = insert.excluded
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
    stmt = insert.on_conflict_do_update(
        index_elements=["site", "camera", "lane", "minute_s"],
        set_={
            "samples": table.c.samples + new.samples,
            "length_sum_m": table.c.length_sum_m + new.length_sum_m,
            "length_max_m": greatest(table.c.length_max_m, new.length_max_m),
            "vehicles_max": greatest(table.c.vehicles_max, new.vehicles_max),
        },
    )
    conn.execute(stmt, rows)


def read_minutes(conn: Connection | Session, camera: str, from_minute_s: int, to_minute_s: int, *, step_s: int,
                 lane: str | None = None, site: str | None = None) -> dict[tuple[str, int], MinuteCell]:
    """Cells per (lane, bucket of `step_s`, a multiple of a minute) for the whole minutes
    of [from_minute_s, to_minute_s)."""
    t = QueueMinuteRow
    conds = [*camera_scope(t.site, t.camera, site, camera), t.minute_s >= from_minute_s, t.minute_s < to_minute_s]
    if lane is not None:
        conds.append(t.lane == lane)
    bucket = (t.minute_s // step_s) * step_s
    stmt = (
        select(t.lane, bucket.label("bucket"), func.sum(t.samples), func.sum(t.length_sum_m),
               func.max(t.length_max_m), func.max(t.vehicles_max))
        .where(*conds)
        .group_by(t.lane, bucket)
    )
    out: dict[tuple[str, int], MinuteCell] = {}
    for ln, b, n, total, mx, vmax in conn.execute(stmt).all():
        out[(str(ln), int(b))] = MinuteCell(int(n), float(total), float(mx), int(vmax))
    return out


def rebuild_minute(conn: Connection, minute_s: int) -> None:
    """Recount one minute (all cameras) from the samples left in it."""
    conn.execute(delete(QueueMinuteRow).where(QueueMinuteRow.minute_s == minute_s))
    q = QueueSampleRow
    rows = conn.execute(
        select(q.site, q.camera, q.lane, q.ts, q.length_m, q.vehicles)
        .where(q.ts >= float(minute_s), q.ts < float(minute_s + MINUTE_S))  # UTCDateTime binds epoch s
    ).all()
    add_samples(conn, minute_cells(rows))


def purge_before(conn: Connection, cut_ts: float) -> None:
    """After the samples before `cut_ts` were deleted: drop their minutes."""
    minute = int(math.floor(cut_ts / MINUTE_S)) * MINUTE_S
    conn.execute(delete(QueueMinuteRow).where(QueueMinuteRow.minute_s < minute))
    if cut_ts > minute:
        rebuild_minute(conn, minute)
