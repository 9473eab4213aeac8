"""Passage counts per camera (site and name) and 15-minute bucket of UTC time (table
`passage_counts`).

Why: a 30-day table of 15-minute movement counts groups ~250k passages into ~70k
cells; aggregating them per query took ~0.5 s (bench_store.py). The rollup keeps one
row per camera and bucket with all its (entry leg, exit leg, movement, class) counts
as a JSON array, so a 30-day table reads 2,880 rows.

Rules that keep it exact:
- it is written in the transaction that inserts the passages, from the rows the insert
  actually added (`INSERT ... ON CONFLICT DO NOTHING RETURNING`), so replays of known
  uuids never count twice (`add_counts`);
- a bucket [b, b + 900) of UTC time lies in one local count interval whenever the
  site's UTC offset is a multiple of 15 minutes (every zone in use today, +05:45 and
  +12:45 included) and the interval is 15, 30 or 60 minutes: then the interval of
  every passage in it is the interval of b (`timebins.interval_start`). `read_counts`
  checks this for the range asked (offsets, transition instants, range ends) and
  returns None otherwise; the caller then counts raw passages;
- deleting passages (retention) rebuilds the buckets it touches (`rebuild_counts`).
"""

from __future__ import annotations

import bisect
import gc
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from trafficprn.store.models import PassageCountRow, UTCDateTime
from trafficprn.store.sqlexpr import MAX_SEGMENTS, offset_segments

BUCKET_S = 900
ROLLUP_MINUTES = (15, 30, 60)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BUCKET = timedelta(seconds=BUCKET_S)

class MovementCount(NamedTuple):
    """Vehicles of one class on one movement in one interval (a named tuple: a 30-day
    table has ~70k of them, and tuples are cheap to make). `queries` re-exports it."""

    interval_start_ts: float
    entry_leg: str | None
    exit_leg: str | None
    movement: str | None
    vehicle_class: str
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, by design


Key = tuple[str, str, int, str | None, str | None, str | None, str]
"""(site, camera, bucket_s, entry_leg, exit_leg, movement, vehicle_class)"""


def bucket_of(ts: datetime) -> int:
    """UTC epoch seconds of the bucket holding an aware datetime (exact, no float)."""
    return ((ts - _EPOCH) // _BUCKET) * BUCKET_S


def count_rows(rows: Iterable[Sequence[Any]]) -> Counter[Key]:
    """Counter of rollup keys from (site, camera, passage_ts, entry, exit, movement, class) rows."""
    return Counter((site, cam, bucket_of(ts), e, x, m, c) for site, cam, ts, e, x, m, c in rows)


def add_counts(conn: Connection, delta: Counter[Key]) -> None:
    """Add counts of newly inserted passages to their buckets, in the caller's
    transaction. Buckets are created empty first and locked (Postgres: FOR UPDATE, in
    key order) before they are merged, so concurrent writers never lose a count."""
    if not delta:
        return
    table: Table = PassageCountRow.__table__  # type: ignore[assignment]
    buckets = sorted({k[:3] for k in delta})
    empty = [{"site": s, "camera": c, "bucket_s": b, "counts": "[]"} for s, c, b in buckets]
    ins = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    conn.execute(ins.on_conflict_do_nothing(), empty)
    merged: dict[tuple[str, str, int], dict[tuple[Any, ...], int]] = {}
    for site, camera in sorted({(s, c) for s, c, _ in buckets}):
        wanted = [b for s, c, b in buckets if (s, c) == (site, camera)]
        stmt = (
            select(PassageCountRow.bucket_s, PassageCountRow.counts)
            .where(PassageCountRow.site == site, PassageCountRow.camera == camera, PassageCountRow.bucket_s.in_(wanted))
            .order_by(PassageCountRow.bucket_s)
            .with_for_update()
        )
        for b, counts in conn.execute(stmt):
            merged[(site, camera, int(b))] = {(e, x, m, c): int(n) for e, x, m, c, n in json.loads(counts)}
    for (site, camera, b, e, x, m, c), n in delta.items():
        cell = merged[(site, camera, b)]
        cell[(e, x, m, c)] = cell.get((e, x, m, c), 0) + n
    stmt_u = (
        update(table)
        .where(table.c.site == bindparam("b_site"), table.c.camera == bindparam("b_camera"),
               table.c.bucket_s == bindparam("b_bucket"))
        .values(counts=bindparam("b_counts"))
    )
    conn.execute(
        stmt_u,
        [
            {"b_site": site, "b_camera": cam, "b_bucket": b,
             "b_counts": json.dumps([[*k, n] for k, n in cells.items()], separators=(",", ":"))}
            for (site, cam, b), cells in merged.items()
        ],
    )


_REBUILD_PG = """
INSERT INTO passage_counts (site, camera, bucket_s, counts)
SELECT site, camera, b, json_agg(json_build_array(entry_leg, exit_leg, movement, vehicle_class, n))::text
FROM (SELECT site, camera, (floor(extract(epoch FROM passage_ts) / 900) * 900)::bigint AS b,
             entry_leg, exit_leg, movement, vehicle_class, count(*) AS n
      FROM vehicle_passages WHERE passage_ts >= :lo AND passage_ts < :hi
      GROUP BY 1, 2, 3, 4, 5, 6, 7) g
GROUP BY site, camera, b
"""
_REBUILD_SQLITE = """
INSERT INTO passage_counts (site, camera, bucket_s, counts)
SELECT site, camera, b, json_group_array(json_array(entry_leg, exit_leg, movement, vehicle_class, n))
FROM (SELECT site, camera, (CAST(strftime('%s', passage_ts) AS INTEGER) / 900) * 900 AS b,
             entry_leg, exit_leg, movement, vehicle_class, count(*) AS n
      FROM vehicle_passages WHERE passage_ts >= :lo AND passage_ts < :hi
      GROUP BY 1, 2, 3, 4, 5, 6, 7) g
GROUP BY site, camera, b
"""


def rebuild_counts(conn: Connection, from_s: int, to_s: int) -> None:
    """Recount the buckets in [from_s, to_s) (multiples of BUCKET_S) from the passages."""
    if from_s % BUCKET_S or to_s % BUCKET_S:
        raise ValueError(f"bucket range must be on {BUCKET_S} s boundaries, got {from_s}..{to_s}")
    conn.execute(delete(PassageCountRow).where(PassageCountRow.bucket_s >= from_s, PassageCountRow.bucket_s < to_s))
    sql = _REBUILD_PG if conn.dialect.name == "postgresql" else _REBUILD_SQLITE
    stmt = text(sql).bindparams(bindparam("lo", type_=UTCDateTime()), bindparam("hi", type_=UTCDateTime()))
    lo = datetime.fromtimestamp(from_s, tz=UTC)
    hi = datetime.fromtimestamp(to_s, tz=UTC)
    conn.execute(stmt, {"lo": lo, "hi": hi})


def purge_before(conn: Connection, cut: datetime) -> None:
    """After passages older than `cut` were deleted: drop the buckets before it and
    recount the one it falls in."""
    b = bucket_of(cut)
    conn.execute(delete(PassageCountRow).where(PassageCountRow.bucket_s < b))
    rebuild_counts(conn, b, b + BUCKET_S)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a large result of plain tuples is
    built (a full collection there took ~100 ms of a ~200 ms 30-day query). Re-enables
    it only if it was enabled on entry; tuples of numbers and strings hold no cycles."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _whole(ts: float) -> int | None:
    return int(ts) if float(ts).is_integer() else None


def read_counts(
    conn: Connection, camera: str, from_ts: float, to_ts: float, *, tz: str, minutes: int, classes: list[str] | None,
    site: str | None = None,
) -> list[MovementCount] | None:
    """Counts per (interval start, entry, exit, movement, class) from the rollup,
    ordered by interval, or None when the rollup cannot answer exactly (see module).
    Each bucket's JSON is parsed and dropped in turn, so that only the results stay
    alive (fewer garbage-collector passes over a large heap). `site` None: the camera's
    counts at every site with a camera of that name, merged."""
    lo, hi = _whole(from_ts), _whole(to_ts)
    if minutes not in ROLLUP_MINUTES or lo is None or hi is None or lo % BUCKET_S or hi % BUCKET_S:
        return None
    segments = offset_segments(from_ts, to_ts, tz)
    if len(segments) > MAX_SEGMENTS or any(start % BUCKET_S or off % BUCKET_S for start, off in segments):
        return None
    starts = [int(s) for s, _ in segments]
    offsets = [off for _, off in segments]
    conds = [PassageCountRow.camera == camera, PassageCountRow.bucket_s >= lo, PassageCountRow.bucket_s < hi]
    if site is not None:
        conds.append(PassageCountRow.site == site)
    rows = conn.execute(
        select(PassageCountRow.bucket_s, PassageCountRow.counts).where(*conds).order_by(PassageCountRow.bucket_s)
    ).all()
    step = minutes * 60
    with gc_paused():
        # One site holds one row per bucket; rows of several sites merge in the general path.
        return _unpack(rows, starts, offsets, step, classes, merge=site is None)


def _unpack(
    rows: Sequence[Any], starts: list[int], offsets: list[int], step: int, classes: list[str] | None,
    *, merge: bool = False,
) -> list[MovementCount]:
    wanted = None if classes is None else set(classes)
    make = MovementCount
    out: list[MovementCount] = []
    if step == BUCKET_S and not merge:  # one bucket = one interval
        for b, counts in rows:
            start = float(b)
            if wanted is None:
                out.extend([make(start, e, x, m, c, n) for e, x, m, c, n in json.loads(counts)])
            else:
                out.extend([make(start, e, x, m, c, n) for e, x, m, c, n in json.loads(counts) if c in wanted])
        return out
    acc: dict[tuple[int, Any, Any, Any, Any], int] = {}
    for b, counts in rows:
        off = offsets[bisect.bisect_right(starts, b) - 1]
        start_i = b - (b + off) % step
        for e, x, m, c, n in json.loads(counts):
            if wanted is None or c in wanted:
                key = (start_i, e, x, m, c)
                acc[key] = acc.get(key, 0) + n
    out.extend(make(float(k[0]), k[1], k[2], k[3], k[4], n) for k, n in acc.items())
    out.sort(key=lambda r: r[0])
    return out
