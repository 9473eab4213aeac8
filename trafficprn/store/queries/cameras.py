"""Cameras with their state, uptime and last passage; row totals."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, text

from trafficprn.errors import InputError
from trafficprn.store import liveness
from trafficprn.store.cover_cache import CoverCache
from trafficprn.store.models import (
    CameraRow,
    CameraStatusRow,
    HeartbeatRow,
    Passage,
    PlateReadRow,
    QueueSampleRow,
    SiteRow,
)
from trafficprn.store.queries._common import Conn, _ts, camera_scope
from trafficprn.store.queries.counts import downtime
from trafficprn.store.repository import utc


# ---------------------------------------------------------------- cameras
@dataclass(frozen=True)
class CameraInfo:
    """A camera with its current status and its uptime over the last `window_s`.
    A camera is a site and a name (two boxes may both have a `fisheye-1`).
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
    site: str = ""


def cameras(
    conn: Conn, *, window_s: float = 86400.0, now_ts: float | None = None, stale_s: float = liveness.STALE_S,
    with_uptime: bool = True, site: str | None = None, cache: CoverCache | None = None,
) -> list[CameraInfo]:
    """All cameras (registered, or with status or heartbeats), of one site or of all,
    sorted by site and name. Without `with_uptime`, uptime is None (the cheap form, for
    frequent polls)."""
    now = time.time() if now_ts is None else now_ts
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window_s must be positive, got {window_s}")
    urls = _camera_urls(conn)
    out = []
    for key in sorted(urls):
        cam_site, name = key
        if site is not None and cam_site != site:
            continue
        live = liveness.liveness(conn, name, now_ts=now, stale_s=stale_s, site=cam_site)
        last = conn.execute(
            select(func.max(Passage.passage_ts)).where(*camera_scope(Passage.site, Passage.camera, cam_site, name))
        ).scalar()
        uptime = _uptime(conn, cam_site, name, now - window_s, now, stale_s, cache) if with_uptime else None
        out.append(
            CameraInfo(name, urls[key], live.state, live.since_ts, live.reason, uptime,
                       None if last is None else _ts(last), live.last_heartbeat_ts, cam_site)
        )
    return out


@dataclass(frozen=True)
class SiteInfo:
    """A site that wrote to this store; `timezone` None until one of its workers said it."""

    name: str
    timezone: str | None


def site_zones(conn: Conn) -> dict[str, str | None]:
    """The time zone each site's workers recorded (`sites` rows only: one small read)."""
    return {str(n): tz for n, tz in conn.execute(select(SiteRow.name, SiteRow.timezone))}


def sites(conn: Conn) -> list[SiteInfo]:
    """Every site with a camera or a `sites` row, sorted by name."""
    zones = site_zones(conn)
    for site, _ in _camera_urls(conn):
        zones.setdefault(site, None)
    return [SiteInfo(n, zones[n]) for n in sorted(zones)]


# The (site, camera) pairs with heartbeats, by a skip scan of the unique index on (site,
# camera, ts): one index probe per camera instead of reading every heartbeat (a month of
# a box holds millions). Row-value comparison works on Postgres and SQLite alike.
_HEARTBEAT_CAMERAS = text("""
WITH RECURSIVE cams(site, camera) AS (
    SELECT * FROM (SELECT site, camera FROM camera_heartbeats ORDER BY site, camera LIMIT 1) first_pair
    UNION ALL
    SELECT (SELECT h.site FROM camera_heartbeats h WHERE (h.site, h.camera) > (cams.site, cams.camera)
            ORDER BY h.site, h.camera LIMIT 1),
           (SELECT h.camera FROM camera_heartbeats h WHERE (h.site, h.camera) > (cams.site, cams.camera)
            ORDER BY h.site, h.camera LIMIT 1)
    FROM cams WHERE cams.camera IS NOT NULL
)
SELECT site, camera FROM cams WHERE camera IS NOT NULL
""")


def _heartbeat_cameras(conn: Conn) -> list[tuple[str, str]]:
    return [(str(site), str(name)) for site, name in conn.execute(_HEARTBEAT_CAMERAS)]


def _camera_urls(conn: Conn) -> dict[tuple[str, str], str | None]:
    urls: dict[tuple[str, str], str | None] = {
        (s, n): u for s, n, u in conn.execute(select(CameraRow.site, CameraRow.name, CameraRow.live_url))}
    for site, name in conn.execute(select(CameraStatusRow.site, CameraStatusRow.camera).distinct()):
        urls.setdefault((site, name), None)
    for key in _heartbeat_cameras(conn):
        urls.setdefault(key, None)
    return urls


def camera_keys(conn: Conn) -> list[tuple[str, str]]:
    """The (site, name) pairs `cameras()` lists, without their state: a cheap check that
    a camera exists, and at which sites."""
    return sorted(_camera_urls(conn))


def camera_names(conn: Conn) -> list[str]:
    """The camera names of every site, each once."""
    return sorted({name for _, name in _camera_urls(conn)})


def _uptime(conn: Conn, site: str, camera: str, from_ts: float, to_ts: float,
            stale_s: float = liveness.STALE_S, cache: CoverCache | None = None) -> float | None:
    """Share of [from_ts, to_ts) covered by up heartbeats, from the camera's first record."""
    firsts = [
        conn.execute(select(func.min(row.ts)).where(*camera_scope(row.site, row.camera, site, camera),
                                                    row.ts < utc(to_ts))).scalar()
        for row in (CameraStatusRow, HeartbeatRow)
    ]
    known = [_ts(f) for f in firsts if f is not None]
    if not known:
        return None
    known_from = max(from_ts, min(known))
    if known_from >= to_ts:
        return None
    down = sum(b - a for a, b in downtime(conn, camera, known_from, to_ts, now_ts=to_ts, stale_s=stale_s,
                                         site=site, cache=cache))
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
