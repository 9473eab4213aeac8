"""Retention purge: `privacy.retention_days` of the site config.

- passages, queue samples and heartbeats older than `passages` days are deleted (and
  their rollups: `passage_counts`, `queue_minutes`); camera status
  changes too, except each camera's last change before the cut (it says what state the
  camera was in when the kept history starts);
- plates have their own, shorter retention: after `plates` days the plate text, hash
  and confidence of a passage are set to NULL, and plate reads are deleted.
Run it periodically (the API or a cron job: `trafficprn db purge --db URL --site SITE`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, or_, select, update

from trafficprn.config import RetentionDays
from trafficprn.store import queue_rollup, rollup
from trafficprn.store.models import CameraStatusRow, HeartbeatRow, Passage, PlateReadRow, QueueSampleRow
from trafficprn.store.repository import utc

DAY_S = 86400.0


@dataclass(frozen=True)
class PurgeResult:
    """Rows touched by one purge."""

    passages: int
    queue_samples: int
    camera_status: int
    plates_cleared: int
    plate_reads: int
    heartbeats: int = 0


def purge(conn: Connection, retention: RetentionDays, *, now_ts: float | None = None) -> PurgeResult:
    """Delete and clear what is older than the retention allows, in the caller's transaction."""
    now = time.time() if now_ts is None else now_ts
    cut = utc(now - retention.passages * DAY_S)
    plate_cut = utc(now - retention.plates * DAY_S)
    passages = conn.execute(delete(Passage).where(Passage.passage_ts < cut)).rowcount
    rollup.purge_before(conn, cut)
    queues = conn.execute(delete(QueueSampleRow).where(QueueSampleRow.ts < cut)).rowcount
    queue_rollup.purge_before(conn, now - retention.passages * DAY_S)
    # heartbeats before the cut prove liveness of intervals whose passages are gone
    heartbeats = conn.execute(delete(HeartbeatRow).where(HeartbeatRow.ts < cut)).rowcount
    statuses = 0
    last_before = (
        select(CameraStatusRow.camera, func.max(CameraStatusRow.ts).label("keep_ts"))
        .where(CameraStatusRow.ts < cut)
        .group_by(CameraStatusRow.camera)
    )
    for camera, keep_ts in conn.execute(last_before).all():
        statuses += conn.execute(
            delete(CameraStatusRow).where(CameraStatusRow.camera == camera, CameraStatusRow.ts < keep_ts)
        ).rowcount
    cleared = conn.execute(
        update(Passage)
        .where(
            Passage.passage_ts < plate_cut,
            or_(Passage.plate_text.is_not(None), Passage.plate_hash.is_not(None), Passage.plate_confidence.is_not(None)),
        )
        .values(plate_text=None, plate_hash=None, plate_confidence=None)
    ).rowcount
    reads = conn.execute(delete(PlateReadRow).where(PlateReadRow.ts < plate_cut)).rowcount
    return PurgeResult(int(passages), int(queues), int(statuses), int(cleared), int(reads), int(heartbeats))
