"""Cameras with their state, uptime and last passage; row totals."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, text

from trafficprn.errors import InputError
from trafficprn.store import liveness
from trafficprn.store.models import CameraRow, CameraStatusRow, HeartbeatRow, Passage, PlateReadRow, QueueSampleRow
from trafficprn.store.queries._common import Conn, _ts
from trafficprn.store.queries.counts import downtime
from trafficprn.store.repository import utc


# ---------------------------------------------------------------- cameras
@dataclass(frozen=True)
class CameraInfo:
    """A camera with its current status and its uptime over the last `window_s`.
    status: "up", "down", "stale" (no heartbeat for 30 s: the worker is gone) or
    "unknown" (never reported); uptime: share of the window since its first record
    covered by up heartbeats, None when nothing is known."""

    name: str
    live_url: str | None
    status: liveness.State
    since_ts: float | None
    reason: str
    uptime: float | None
    last_passage_ts: float | None
    last_heartbeat_ts: float | None = None


def cameras(
    conn: Conn, *, window_s: float = 86400.0, now_ts: float | None = None, stale_s: float = liveness.STALE_S,
    with_uptime: bool = True,
) -> list[CameraInfo]:
    """All cameras (registered, or with status or heartbeats), sorted by name. Without
    `with_uptime`, uptime is None (the cheap form, for frequent polls)."""
    now = time.time() if now_ts is None else now_ts
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window_s must be positive, got {window_s}")
    urls = _camera_urls(conn)
    out = []
    for name in sorted(urls):
        live = liveness.liveness(conn, name, now_ts=now, stale_s=stale_s)
        last = conn.execute(select(func.max(Passage.passage_ts)).where(Passage.camera == name)).scalar()
        uptime = _uptime(conn, name, now - window_s, now, stale_s) if with_uptime else None
        out.append(
            CameraInfo(name, urls[name], live.state, live.since_ts, live.reason, uptime,
                       None if last is None else _ts(last), live.last_heartbeat_ts)
        )
    return out


# The cameras with heartbeats, by a skip scan of ix_camera_heartbeats_camera_ts: one index
# probe per camera instead of reading every heartbeat (a month of a box holds millions).
_HEARTBEAT_CAMERAS = text("""
WITH RECURSIVE cams(camera) AS (
    SELECT MIN(camera) FROM camera_heartbeats
    UNION ALL
    SELECT (SELECT MIN(h.camera) FROM camera_heartbeats h WHERE h.camera > cams.camera)
    FROM cams WHERE cams.camera IS NOT NULL
)
SELECT camera FROM cams WHERE camera IS NOT NULL
""")


def _heartbeat_cameras(conn: Conn) -> list[str]:
    return [str(name) for (name,) in conn.execute(_HEARTBEAT_CAMERAS)]


def _camera_urls(conn: Conn) -> dict[str, str | None]:
    urls: dict[str, str | None] = {n: u for n, u in conn.execute(select(CameraRow.name, CameraRow.live_url))}
    for (name,) in conn.execute(select(CameraStatusRow.camera).distinct()):
        urls.setdefault(name, None)
    for name in _heartbeat_cameras(conn):
        urls.setdefault(name, None)
    return urls


def camera_names(conn: Conn) -> list[str]:
    """The names `cameras()` lists, without their state: a cheap check that a camera exists."""
    return sorted(_camera_urls(conn))


def _uptime(conn: Conn, camera: str, from_ts: float, to_ts: float, stale_s: float = liveness.STALE_S) -> float | None:
    """Share of [from_ts, to_ts) covered by up heartbeats, from the camera's first record."""
    firsts = [
        conn.execute(select(func.min(row.ts)).where(row.camera == camera, row.ts < utc(to_ts))).scalar()
        for row in (CameraStatusRow, HeartbeatRow)
    ]
    known = [_ts(f) for f in firsts if f is not None]
    if not known:
        return None
    known_from = max(from_ts, min(known))
    if known_from >= to_ts:
        return None
    down = sum(b - a for a, b in downtime(conn, camera, known_from, to_ts, now_ts=to_ts, stale_s=stale_s))
    return max(0.0, 1.0 - down / (to_ts - known_from))


def totals(conn: Conn, camera: str | None = None) -> dict[str, int]:
    """Row counts per table (optionally for one camera), for health and tests."""
    conds_p = [Passage.camera == camera] if camera else []
    conds_q = [QueueSampleRow.camera == camera] if camera else []
    passages_n = conn.execute(select(func.count()).select_from(Passage).where(*conds_p)).scalar_one()
    queues_n = conn.execute(select(func.count()).select_from(QueueSampleRow).where(*conds_q)).scalar_one()
    plates_n = conn.execute(select(func.count()).select_from(PlateReadRow)).scalar_one()
    with_plate = conn.execute(
        select(func.count())
        .select_from(Passage)
        .where(*conds_p, and_(or_(Passage.plate_text.is_not(None), Passage.plate_hash.is_not(None))))
    ).scalar_one()
    return {
        "passages": int(passages_n),
        "queue_samples": int(queues_n),
        "plate_reads": int(plates_n),
        "passages_with_plate": int(with_plate),
    }
