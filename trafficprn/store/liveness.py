"""Liveness from heartbeats: is a camera up, down or stale, and which stretches of time
did its worker actually watch?

A worker writes a heartbeat every `events.HEARTBEAT_S` (10 s) while it runs, with `up` saying
whether frames arrive, and a status change (`camera_status`) when the camera goes down
or comes back, or when it had to drop events. From these:

- **coverage**: time from an *up* heartbeat to the next heartbeat, where that came at
  most `STALE_S` (30 s) later, minus every down window of the status changes. Nothing else counts: a status
  row saying "up" with no heartbeats after it (a worker killed with -9, a power cut)
  covers nothing, so the time after it is missing, not zero traffic;
- **state** now: `stale` when the last heartbeat is older than `STALE_S`, else the last
  heartbeat's (or status change's) up or down; `unknown` for a camera that never wrote
  either. A worker whose camera never connects writes down heartbeats: `down`.

An interval is complete only where coverage spans it from start to end
(`queries.count_intervals`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.orm import Session

from trafficprn.store.cover_cache import CoverCache
from trafficprn.store.models import CameraStatusRow, HeartbeatRow
from trafficprn.store.repository import utc
from trafficprn.store.sqlexpr import as_epoch as _ts
from trafficprn.store.sqlexpr import camera_scope
from trafficprn.store.sqlexpr import dialect_of as _dialect

STALE_S = 30.0  # three missed heartbeats (events.HEARTBEAT_S)

Span = tuple[float, float]
Conn = Connection | Session
State = Literal["up", "down", "stale", "unknown"]


def status_down(conn: Conn, camera: str, from_ts: float, to_ts: float, *, site: str | None = None) -> list[Span]:
    """Down windows within [from_ts, to_ts) from the status changes (each lasts until the
    next change, or until `to_ts`)."""
    previous = conn.execute(
        select(CameraStatusRow.ts, CameraStatusRow.up)
        .where(*camera_scope(CameraStatusRow.site, CameraStatusRow.camera, site, camera),
               CameraStatusRow.ts <= utc(from_ts))
        .order_by(CameraStatusRow.ts.desc())
        .limit(1)
    ).all()
    changes = conn.execute(
        select(CameraStatusRow.ts, CameraStatusRow.up)
        .where(*camera_scope(CameraStatusRow.site, CameraStatusRow.camera, site, camera),
               CameraStatusRow.ts > utc(from_ts), CameraStatusRow.ts < utc(to_ts))
        .order_by(CameraStatusRow.ts)
    ).all()
    points = [(_ts(ts), bool(up)) for ts, up in [*previous, *changes]]
    out: list[Span] = []
    for i, (ts, up) in enumerate(points):
        if up:
            continue
        start = max(ts, from_ts)
        stop = min(points[i + 1][0], to_ts) if i + 1 < len(points) else to_ts
        if stop > start:
            out.append((start, stop))
    return out


def heartbeat_cover(conn: Conn, camera: str, from_ts: float, to_ts: float, *, stale_s: float = STALE_S,
                    site: str | None = None, cache: CoverCache | None = None) -> list[Span]:
    """Spans within [from_ts, to_ts) from an up heartbeat to the next heartbeat, where
    that one came at most `stale_s` later (the worker lived through the span).

    The pairs of successive heartbeats tile [first, last]; the database returns only the
    first and last heartbeat and the pairs that break the cover (a down beat, or a gap
    over `stale_s`), so 30 days of 10 s heartbeats (259,200 rows) come back as a few rows.
    With `cache`, whole past days come from it (`store.cover_cache`)."""
    if cache is not None:
        cache.refresh(conn)
        return cache.cover(site, camera, from_ts, to_ts, stale_s,
                           lambda a, b: heartbeat_cover(conn, camera, a, b, stale_s=stale_s, site=site))
    where = (*camera_scope(HeartbeatRow.site, HeartbeatRow.camera, site, camera), HeartbeatRow.ts >= utc(from_ts - stale_s),
             HeartbeatRow.ts <= utc(to_ts + stale_s))
    first, last = conn.execute(select(func.min(HeartbeatRow.ts), func.max(HeartbeatRow.ts)).where(*where)).one()
    if first is None or last is None:
        return []
    pairs = (
        select(HeartbeatRow.ts.label("ts"), HeartbeatRow.up.label("up"),
               func.lead(HeartbeatRow.ts).over(order_by=HeartbeatRow.ts).label("nxt"))
        .where(*where)
        .subquery()
    )
    if _dialect(conn) == "postgresql":  # timestamp arithmetic: no per-row epoch conversion
        gap_over = pairs.c.nxt - pairs.c.ts > timedelta(seconds=stale_s)
    else:
        gap_over = (func.julianday(pairs.c.nxt) - func.julianday(pairs.c.ts)) * 86400.0 > stale_s
    breaks = conn.execute(
        select(pairs.c.ts, pairs.c.nxt)
        .where(pairs.c.nxt.is_not(None), or_(pairs.c.up.is_(False), gap_over))
        .order_by(pairs.c.ts)
    ).all()
    out: list[Span] = []
    start = _ts(first)
    for a, b in [*((_ts(a), _ts(b)) for a, b in breaks), (_ts(last), _ts(last))]:
        lo, hi = max(start, from_ts), min(a, to_ts)
        if hi > lo:
            out.append((lo, hi))
        start = b
    return out


def _subtract(spans: list[Span], holes: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in spans:
        pieces = [(a, b)]
        for c, d in holes:
            pieces = [p for x, y in pieces for p in ((x, min(y, c)), (max(x, d), y)) if p[1] > p[0]]
        out += pieces
    return out


def coverage(conn: Conn, camera: str, from_ts: float, to_ts: float, *, stale_s: float = STALE_S,
             site: str | None = None, cache: CoverCache | None = None) -> list[Span]:
    """Stretches of [from_ts, to_ts) the camera's worker watched with the camera up."""
    return _subtract(heartbeat_cover(conn, camera, from_ts, to_ts, stale_s=stale_s, site=site, cache=cache),
                     status_down(conn, camera, from_ts, to_ts, site=site))


def missing(
    conn: Conn, camera: str, from_ts: float, to_ts: float, *, now_ts: float | None = None, stale_s: float = STALE_S,
    site: str | None = None, cache: CoverCache | None = None,
) -> list[Span]:
    """Stretches of [from_ts, min(to_ts, now)) not covered: camera down, worker dead or
    not running, or events lost."""
    end = min(to_ts, time.time() if now_ts is None else now_ts)
    if end <= from_ts:
        return []
    return _subtract([(from_ts, end)], coverage(conn, camera, from_ts, end, stale_s=stale_s, site=site, cache=cache))


@dataclass(frozen=True)
class Liveness:
    """A camera's state now. since_ts: start of that state (for stale: the last
    heartbeat); last_heartbeat_ts: None when it never wrote one."""

    state: State
    since_ts: float | None
    reason: str
    last_heartbeat_ts: float | None


def liveness(conn: Conn, camera: str, *, now_ts: float | None = None, stale_s: float = STALE_S,
             site: str | None = None) -> Liveness:
    now = time.time() if now_ts is None else now_ts
    beat = conn.execute(
        select(HeartbeatRow.ts, HeartbeatRow.up)
        .where(*camera_scope(HeartbeatRow.site, HeartbeatRow.camera, site, camera), HeartbeatRow.ts <= utc(now))
        .order_by(HeartbeatRow.ts.desc())
        .limit(1)
    ).first()
    status = conn.execute(
        select(CameraStatusRow.ts, CameraStatusRow.up, CameraStatusRow.reason)
        .where(*camera_scope(CameraStatusRow.site, CameraStatusRow.camera, site, camera), CameraStatusRow.ts <= utc(now))
        .order_by(CameraStatusRow.ts.desc())
        .limit(1)
    ).first()
    if beat is None and status is None:
        return Liveness("unknown", None, "", None)
    last_beat = None if beat is None else _ts(beat.ts)
    last_status = None if status is None else _ts(status.ts)
    status_newer = last_status is not None and (last_beat is None or last_status >= last_beat)
    if status is not None and status_newer and not status.up:
        # its own last word, however old: down (camera lost, source ended, worker stopped)
        return Liveness("down", last_status, status.reason, last_beat)
    latest = max(x for x in (last_beat, last_status) if x is not None)
    if now - latest > stale_s:
        reason = f"no heartbeat for {now - latest:.0f} s (worker stopped or unreachable)"
        return Liveness("stale", latest, reason, last_beat)
    if beat is not None and not (status is not None and status_newer):
        up = bool(beat.up)
    else:
        up = status is not None and bool(status.up)
    if status is not None and bool(status.up) == up:
        return Liveness("up" if up else "down", last_status, status.reason, last_beat)
    return Liveness("up" if up else "down", last_beat, "" if up else "camera not connected", last_beat)
