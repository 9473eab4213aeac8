"""Write side: all SQL that stores events. Inserts are batched and idempotent.

Idempotency keys: `uuid` for passages and plate reads (derived from what they describe,
`events.event_uuid`), (site, camera, ts, lane) for queue samples, (site, camera, ts) for
camera status and heartbeats. A replayed event is skipped by the database
(`INSERT ... ON CONFLICT DO NOTHING` on both Postgres and SQLite), so a spool replayed
after a crash never duplicates.
"""

from __future__ import annotations

import json
import uuid as uuid_lib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from trafficprn.errors import InputError
from trafficprn.events import CameraStatus, Event, Heartbeat, PlateRead, QueueSample, VehiclePassage
from trafficprn.store import queue_rollup, rollup
from trafficprn.store.models import (
    CameraRow,
    CameraStatusRow,
    HeartbeatRow,
    Passage,
    PlateReadRow,
    QueueSampleRow,
    SiteRow,
)

MOVEMENTS = frozenset({"L", "T", "R", "U"})


def utc(ts: float) -> datetime:
    """Epoch seconds -> aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), tz=UTC)


def _uuid(value: str) -> uuid_lib.UUID:
    try:
        return uuid_lib.UUID(str(value))
    except ValueError:
        raise InputError(f"expected a UUID as idempotency key, got {value!r}") from None


def passage_row(p: VehiclePassage) -> dict[str, Any]:
    """Column values of one passage. Raises InputError for values the schema refuses."""
    if p.movement is not None and p.movement not in MOVEMENTS:
        raise InputError(f"movement must be one of L, T, R, U or None, got {p.movement!r}")
    return {
        "uuid": _uuid(p.uuid),
        "site": p.site,
        "camera": p.camera,
        "track_id": int(p.track_id),
        "passage_ts": utc(p.passage_ts),
        "first_seen_ts": utc(p.first_seen_ts),
        "last_seen_ts": utc(p.last_seen_ts),
        "vehicle_class": p.vehicle_class,
        "class_confidence": float(p.class_confidence),
        "colour": p.colour,
        "colour_confidence": p.colour_confidence,
        "entry_leg": p.entry_leg,
        "exit_leg": p.exit_leg,
        "movement": p.movement,
        "speed_median_kmh": p.speed_median_kmh,
        "speed_max_kmh": p.speed_max_kmh,
        "speed_flagged": bool(p.speed_flagged),
        "approach_speed_kmh": p.approach_speed_kmh,
        "through_speed_kmh": p.through_speed_kmh,
        "stopped_s": p.stopped_s,
        "stops": None if p.stops is None else int(p.stops),
        "plate_text": p.plate_text,
        "plate_hash": p.plate_hash,
        "plate_confidence": p.plate_confidence,
        "extras": dict(p.extras),
    }


def queue_row(q: QueueSample) -> dict[str, Any]:
    return {
        "site": q.site,
        "camera": q.camera,
        "lane": q.lane,
        "ts": utc(q.ts),
        "length_m": float(q.length_m),
        "vehicles": int(q.vehicles),
    }


def plate_read_row(r: PlateRead) -> dict[str, Any]:
    return {
        "uuid": _uuid(r.uuid),
        "site": r.site,
        "camera": r.camera,
        "track_id": int(r.track_id),
        "ts": utc(r.ts),
        "confidence": float(r.confidence),
        "plate_text": r.plate_text,
        "plate_hash": r.plate_hash,
    }


def status_row(s: CameraStatus) -> dict[str, Any]:
    return {"site": s.site, "camera": s.camera, "ts": utc(s.ts), "up": bool(s.up), "reason": s.reason[:500]}


def heartbeat_row(h: Heartbeat) -> dict[str, Any]:
    return {
        "site": h.site,
        "camera": h.camera,
        "ts": utc(h.ts),
        "up": bool(h.up),
        "frames_seen": int(h.frames_seen),
        "frames_processed": int(h.frames_processed),
        "events_pending": int(h.events_pending),
        "events_dropped": int(h.events_dropped),
    }


def _insert_ignore(conn: Connection, table: Table) -> Insert:
    """INSERT that skips rows whose unique key already exists."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise InputError(f"unsupported database dialect {conn.dialect.name!r}")


COPY_MIN_ROWS = 100


def _insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping existing keys. Large Postgres batches go through COPY."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS and conn.dialect.driver == "psycopg":
        _copy_insert(conn, table, rows)
    else:
        conn.execute(_insert_ignore(conn, table), list(rows))
    return len(rows)


def _copy_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict) else value


def _copy_insert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], returning: Sequence[str] = ()
) -> list[Any]:
    """COPY rows into a per-session staging table, then INSERT ... SELECT ... ON CONFLICT
    DO NOTHING, all inside the caller's transaction (about 10x executemany). Returns
    the `returning` columns of the rows actually inserted."""
    import psycopg

    columns = list(rows[0])
    names = ", ".join(columns)
    stage = f"_tp_stage_{table.name}"
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {names} FROM {table.name} WITH NO DATA"
    )
    conn.exec_driver_sql(f"TRUNCATE {stage}")
    statement = f"COPY {stage} ({names}) FROM STDIN"
    try:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row([_copy_value(row[c]) for c in columns])
    except psycopg.Error as exc:  # raise it as SQLAlchemy would (OperationalError, DataError, ...)
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from None
    insert = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
    if not returning:
        conn.exec_driver_sql(insert)
        return []
    return list(conn.exec_driver_sql(f"{insert} RETURNING {', '.join(returning)}").all())


COUNTED = ("site", "camera", "passage_ts", "entry_leg", "exit_leg", "movement", "vehicle_class")


def _insert_returning(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                      returning: Sequence[str]) -> list[Any]:
    """Insert rows, skipping existing keys; the `returning` columns of the rows actually
    inserted (what a rollup must count, so replays never count twice)."""
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS and conn.dialect.driver == "psycopg":
        return _copy_insert(conn, table, rows, returning=returning)
    stmt = _insert_ignore(conn, table).returning(*[table.c[name] for name in returning])
    return list(conn.execute(stmt, list(rows)).all())


def _insert_passage_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert passages, skipping known uuids, and add the ones inserted to the
    `passage_counts` rollup in the same transaction. Returns rows offered."""
    if not rows:
        return 0
    inserted = _insert_returning(conn, Passage.__table__, rows, COUNTED)  # type: ignore[arg-type]
    rollup.add_counts(conn, rollup.count_rows(inserted))
    return len(rows)


def insert_passages(conn: Connection, passages: Iterable[VehiclePassage]) -> int:
    """Insert passages in one batch, skipping known uuids. Returns rows offered."""
    return _insert_passage_rows(conn, [passage_row(p) for p in passages])


QUEUE_COUNTED = ("site", "camera", "lane", "ts", "length_m", "vehicles")


def insert_queue_samples(conn: Connection, samples: Iterable[QueueSample]) -> int:
    """Insert queue samples, skipping known keys, and add the ones inserted to the
    `queue_minutes` rollup in the same transaction. Returns rows offered."""
    return _insert_queue_rows(conn, [queue_row(q) for q in samples])


def _insert_queue_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    inserted = _insert_returning(conn, QueueSampleRow.__table__, rows, QUEUE_COUNTED)  # type: ignore[arg-type]
    queue_rollup.add_samples(conn, queue_rollup.minute_cells(inserted))
    return len(rows)


def insert_plate_reads(conn: Connection, reads: Iterable[PlateRead]) -> int:
    return _insert_rows(conn, PlateReadRow.__table__, [plate_read_row(r) for r in reads])  # type: ignore[arg-type]


def insert_camera_status(conn: Connection, statuses: Iterable[CameraStatus]) -> int:
    return _insert_rows(conn, CameraStatusRow.__table__, [status_row(s) for s in statuses])  # type: ignore[arg-type]


def ensure_cameras(conn: Connection, cameras: Iterable[tuple[str, str]], *, now_ts: float | None = None) -> None:
    """Add a `cameras` row for each (site, name) not known yet, and a `sites` row for
    each site not known yet (time zone unknown until its worker says, `upsert_site`)."""
    created = utc(now_ts) if now_ts is not None else datetime.now(UTC)
    pairs = sorted(set(cameras))
    _insert_rows(conn, SiteRow.__table__,  # type: ignore[arg-type]
                 [{"name": s, "timezone": None, "updated_ts": created} for s in sorted({s for s, _ in pairs})])
    rows = [{"site": s, "name": n, "live_url": None, "created_ts": created} for s, n in pairs]
    _insert_rows(conn, CameraRow.__table__, rows)  # type: ignore[arg-type]


def _upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str], update: list[str]) -> None:
    ins = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    stmt = ins.values(values)
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update}))


def upsert_camera(conn: Connection, site: str, name: str, live_url: str | None, *, now_ts: float | None = None) -> None:
    """Register a camera of a site with its live-view URL."""
    created = utc(now_ts) if now_ts is not None else datetime.now(UTC)
    _upsert(conn, CameraRow.__table__, {"site": site, "name": name, "live_url": live_url, "created_ts": created},  # type: ignore[arg-type]
            ["site", "name"], ["live_url"])


def upsert_site(conn: Connection, name: str, timezone: str, *, now_ts: float | None = None) -> None:
    """Record a site's time zone (its workers write it with their first batch), so an
    API serving many sites bins each one's counts on its own clock."""
    updated = utc(now_ts) if now_ts is not None else datetime.now(UTC)
    _upsert(conn, SiteRow.__table__, {"name": name, "timezone": timezone, "updated_ts": updated},  # type: ignore[arg-type]
            ["name"], ["timezone", "updated_ts"])


@dataclass(frozen=True)
class WriteCounts:
    """Events offered to the database per kind in one batch (replays included)."""

    passages: int = 0
    queue_samples: int = 0
    plate_reads: int = 0
    camera_status: int = 0
    heartbeats: int = 0

    @property
    def total(self) -> int:
        return self.passages + self.queue_samples + self.plate_reads + self.camera_status + self.heartbeats


def write_events(conn: Connection, events: Sequence[Event]) -> WriteCounts:
    """Write a mixed batch of events inside the caller's transaction.
    Raises InputError (before touching the database) for an event the schema refuses."""
    passages = [passage_row(e) for e in events if isinstance(e, VehiclePassage)]
    queues = [queue_row(e) for e in events if isinstance(e, QueueSample)]
    reads = [plate_read_row(e) for e in events if isinstance(e, PlateRead)]
    statuses = [status_row(e) for e in events if isinstance(e, CameraStatus)]
    beats = [heartbeat_row(e) for e in events if isinstance(e, Heartbeat)]
    known = VehiclePassage | QueueSample | PlateRead | CameraStatus | Heartbeat
    unknown = [type(e).__name__ for e in events if not isinstance(e, known)]
    if unknown:
        raise InputError(f"cannot store events of type {sorted(set(unknown))}")
    ensure_cameras(conn, [(e.site, e.camera) for e in events])
    return WriteCounts(
        passages=_insert_passage_rows(conn, passages),
        queue_samples=_insert_queue_rows(conn, queues),
        plate_reads=_insert_rows(conn, PlateReadRow.__table__, reads),  # type: ignore[arg-type]
        camera_status=_insert_rows(conn, CameraStatusRow.__table__, statuses),  # type: ignore[arg-type]
        heartbeats=_insert_rows(conn, HeartbeatRow.__table__, beats),  # type: ignore[arg-type]
    )
