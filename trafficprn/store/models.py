"""SQLAlchemy 2.0 models of what is stored (DESIGN.md, "What is stored").

Times are `timestamptz` in UTC on Postgres; on SQLite they are stored as UTC text
(SQLAlchemy's DATETIME format) and come back as aware UTC datetimes through
`UTCDateTime`. Columns the dashboard filters on are real, indexed columns; JSON is only
for extras. The schema changes only through Alembic revisions in `migrations/`.

Tables:
- `vehicle_passages`: one row per vehicle that left the scene; `uuid` is the
  idempotency key (unique).
- `queue_samples`: one row per camera, lane and second; unique (site, camera, ts, lane).
- `camera_status`: status changes; each row starts an up or down interval that lasts
  until the camera's next row (or until now). Unique (site, camera, ts).
- `camera_heartbeats`: a worker's sign of life every ~10 s (revision 0003); unique
  (site, camera, ts). Intervals are complete only where up heartbeats cover them.
- Every event row carries its `site` (the site config's `site.name`; revision 0003).
- `plate_reads`: fused plate reads per track (audit); `uuid` unique.
- `cameras`: the cameras that reported anything, per (site, name), with their live-view URL.
- `sites`: every site that wrote here, with its time zone (revision 0006).
- `passage_counts`: passages per camera, 15-minute UTC bucket, legs, movement and
  class (a rollup for long count tables; revision 0002).
"""

from __future__ import annotations

import uuid as uuid_lib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes INTEGER PRIMARY KEY an alias of the auto-increasing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on Postgres; UTC text on SQLite. Binds aware datetimes (or epoch
    seconds) and always returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(float(value), tz=UTC)
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime or epoch seconds, got {type(value).__name__}")
        if value.tzinfo is None:
            raise TypeError("expected an aware datetime (UTC), got a naive one")
        aware: datetime = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return aware.replace(tzinfo=None)
        return aware

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        dt: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if dt.tzinfo is None:
            return dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Passage(Base):
    """One vehicle that left the scene (`trafficprn.events.VehiclePassage`)."""

    __tablename__ = "vehicle_passages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[uuid_lib.UUID] = mapped_column(Uuid(), nullable=False, unique=True)
    site: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), nullable=False)
    track_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    passage_ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    first_seen_ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen_ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    vehicle_class: Mapped[str] = mapped_column(String(32), nullable=False)
    class_confidence: Mapped[float] = mapped_column(Float, nullable=False)
    colour: Mapped[str | None] = mapped_column(String(32))
    colour_confidence: Mapped[float | None] = mapped_column(Float)
    entry_leg: Mapped[str | None] = mapped_column(String(32))
    exit_leg: Mapped[str | None] = mapped_column(String(32))
    movement: Mapped[str | None] = mapped_column(String(1))
    speed_median_kmh: Mapped[float | None] = mapped_column(Float)
    speed_max_kmh: Mapped[float | None] = mapped_column(Float)
    speed_flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Speeds engineers report (revision 0005, docs/speeds.md); null where not measured.
    approach_speed_kmh: Mapped[float | None] = mapped_column(Float)
    through_speed_kmh: Mapped[float | None] = mapped_column(Float)
    stopped_s: Mapped[float | None] = mapped_column(Float)
    stops: Mapped[int | None] = mapped_column(Integer)
    plate_text: Mapped[str | None] = mapped_column(String(32))
    plate_hash: Mapped[str | None] = mapped_column(String(64))
    plate_confidence: Mapped[float | None] = mapped_column(Float)
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)

    __table_args__ = (
        # Per-camera time ranges (a camera is a site and a name, revision 0006) and keyset
        # pagination; on Postgres it also carries the movement-count and speed columns, so
        # counting per interval and the speed distribution are index-only scans (0007).
        Index(
            "ix_passages_site_camera_ts",
            "site",
            "camera",
            "passage_ts",
            "id",
            postgresql_include=["entry_leg", "exit_leg", "movement", "vehicle_class",
                                "approach_speed_kmh", "speed_median_kmh", "speed_flagged"],
        ),
        Index("ix_passages_ts", "passage_ts", "id"),
        # Dashboard filters (always per camera, newest first).
        Index("ix_passages_camera_class_ts", "camera", "vehicle_class", "passage_ts"),
        Index("ix_passages_camera_movement_ts", "camera", "movement", "passage_ts"),
        Index("ix_passages_camera_colour_ts", "camera", "colour", "passage_ts"),
        Index("ix_passages_camera_speed", "camera", "speed_median_kmh"),
        # Plate search: only passages with a plate are indexed.
        Index(
            "ix_passages_plate_text",
            "plate_text",
            postgresql_where=text("plate_text IS NOT NULL"),
            sqlite_where=text("plate_text IS NOT NULL"),
        ),
        Index(
            "ix_passages_plate_hash",
            "plate_hash",
            postgresql_where=text("plate_hash IS NOT NULL"),
            sqlite_where=text("plate_hash IS NOT NULL"),
        ),
    )


class QueueSampleRow(Base):
    """Queue length on one lane at one second (`trafficprn.events.QueueSample`)."""

    __tablename__ = "queue_samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), nullable=False)
    lane: Mapped[str] = mapped_column(String(32), nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    length_m: Mapped[float] = mapped_column(Float, nullable=False)
    vehicles: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        # Also the idempotency key and the index of per-camera time ranges.
        UniqueConstraint("site", "camera", "ts", "lane", name="uq_queue_samples_site_camera_ts_lane"),
        Index("ix_queue_samples_ts", "ts"),
    )


class QueueMinuteRow(Base):
    """Queue samples of one lane in one UTC minute (`store.queue_rollup`): long charts
    read these instead of every sample."""

    __tablename__ = "queue_minutes"

    site: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    lane: Mapped[str] = mapped_column(String(32), primary_key=True)
    minute_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    samples: Mapped[int] = mapped_column(Integer, nullable=False)
    length_sum_m: Mapped[float] = mapped_column(Float, nullable=False)
    length_max_m: Mapped[float] = mapped_column(Float, nullable=False)
    vehicles_max: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (Index("ix_queue_minutes_camera_minute", "camera", "minute_s"),)


class CameraStatusRow(Base):
    """A status change: the camera is `up` (or down) from `ts` until its next row."""

    __tablename__ = "camera_status"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    up: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False, default="")

    __table_args__ = (UniqueConstraint("site", "camera", "ts", name="uq_camera_status_site_camera_ts"),)


class HeartbeatRow(Base):
    """A worker's sign of life (`trafficprn.events.Heartbeat`), every ~10 s; unique
    (site, camera, ts). Liveness and interval completeness come from these."""

    __tablename__ = "camera_heartbeats"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    up: Mapped[bool] = mapped_column(Boolean, nullable=False)
    frames_seen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    frames_processed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    events_pending: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    events_dropped: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    __table_args__ = (
        # Also the index of per-camera time ranges.
        UniqueConstraint("site", "camera", "ts", name="uq_camera_heartbeats_site_camera_ts"),
    )


class PlateReadRow(Base):
    """One fused plate read of a track (`trafficprn.events.PlateRead`), for audit."""

    __tablename__ = "plate_reads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[uuid_lib.UUID] = mapped_column(Uuid(), nullable=False, unique=True)
    site: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), nullable=False)
    track_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    plate_text: Mapped[str | None] = mapped_column(String(32))
    plate_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_plate_reads_ts", "ts"),
        Index("ix_plate_reads_plate_text", "plate_text"),
        Index("ix_plate_reads_plate_hash", "plate_hash"),
    )


class CameraRow(Base):
    """A camera that reported events, one per (site, name): two boxes may both have a
    `fisheye-1` (revision 0006). Rows appear when a camera first writes."""

    __tablename__ = "cameras"

    site: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    live_url: Mapped[str | None] = mapped_column(String(500))
    created_ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SiteRow(Base):
    """A site that wrote to this store, with its time zone (its workers write it on
    start; revision 0006), so a central API bins each site's counts on its own clock."""

    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class PassageCountRow(Base):
    """Passage counts of one camera (site and name) in one 15-minute bucket of UTC time (a rollup kept
    in the transaction that inserts the passages; `trafficprn.store.rollup`).
    `counts` is a JSON array of [entry_leg, exit_leg, movement, vehicle_class, n]."""

    __tablename__ = "passage_counts"

    site: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    counts: Mapped[str] = mapped_column(Text, nullable=False)


TABLES = (
    "vehicle_passages",
    "queue_samples",
    "camera_status",
    "camera_heartbeats",
    "plate_reads",
    "cameras",
    "passage_counts",
    "queue_minutes",
    "sites",
)
