"""Read-only data routes: passages, turning-movement counts, queues, speeds and plates."""

from __future__ import annotations

import csv
import io
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from trafficprn.api import tmc
from trafficprn.api.deps import ApiContext, ContextDep, SessionDep, SiteDep, read_access, require_key
from trafficprn.api.schemas import (
    CountQuery,
    HistogramBin,
    MovementCounts,
    PassageOut,
    PassagePage,
    PassageQuery,
    PeakHourOut,
    PlateOut,
    PlateQuery,
    QueueQuery,
    QueueSeries,
    QueuesOut,
    SpeedQuery,
    SpeedsOut,
    TimeRange,
    TmcParams,
    TmcRowOut,
    to_ts,
)
from trafficprn.api.sites import CameraRef, check_site, resolve_camera
from trafficprn.config import SiteConfig
from trafficprn.store import queries

router = APIRouter(prefix="/api", dependencies=[Depends(read_access)])
DEFAULT_SPAN_S = 86400.0
MAX_INTERVALS = 20_000  # rows of one TMC table (about 7 months of 15-minute intervals)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "unknown camera or site"}}


def as_json(model: BaseModel) -> Response:
    """The model as JSON straight from pydantic's serializer. A route that returns the
    model itself has FastAPI turn it into Python objects and those into JSON with the
    standard library: 11 ms instead of 2 for a 30-day count table. `response_model` on
    the route still documents the shape."""
    return Response(model.model_dump_json(), media_type="application/json")


def _range(q: TimeRange, default_span_s: float = DEFAULT_SPAN_S) -> tuple[float, float]:
    """(from_ts, to_ts): defaults to the last day, or a day from `from`/until `to`."""
    a, b = to_ts(q.from_), to_ts(q.to)
    if b is None:
        b = time.time() if a is None else a + default_span_s
    if a is None:
        a = b - default_span_s
    return a, b


def _scope(db: Session, site: SiteConfig | None, q: TimeRange, camera: str | None) -> str | None:
    """The site filter of a route whose camera is optional: the camera's site when one is
    named (`sites.resolve_camera`), else the `site=` asked for (checked), else None."""
    if camera is not None:
        return resolve_camera(db, site, q.site, camera).site
    if q.site is not None:
        check_site(db, site, q.site)
    return q.site


@router.get("/passages", response_model=PassagePage, tags=["counts"],
            responses={**NOT_FOUND, 200: {"content": {"text/csv": {}}}},
            summary="Vehicle passages, newest first, with filters and a cursor (JSON or CSV)")
def list_passages(q: Annotated[PassageQuery, Query()], db: SessionDep, site: SiteDep) -> PassagePage | Response:
    flt = queries.PassageFilter(
        site=_scope(db, site, q, q.camera), camera=q.camera, from_ts=to_ts(q.from_), to_ts=to_ts(q.to), vehicle_class=q.vehicle_class,
        movement=q.movement, colour=q.colour.lower() if q.colour else None, entry_leg=q.entry_leg,
        exit_leg=q.exit_leg, speed_min_kmh=q.speed_min, speed_max_kmh=q.speed_max,
    )
    page = queries.passages(db, flt, limit=q.limit, cursor=q.cursor)
    items = [PassageOut.model_validate(p, from_attributes=True) for p in page.items]
    if q.format == "csv":
        headers = {"Content-Disposition": 'attachment; filename="passages.csv"'}
        if page.next_cursor:
            headers["X-Next-Cursor"] = page.next_cursor
        return Response(passages_csv(items), media_type="text/csv; charset=utf-8", headers=headers)
    return as_json(PassagePage(items=items, next_cursor=page.next_cursor))


def passages_csv(items: list[PassageOut]) -> str:
    """Passages as CSV, one column per PassageOut field (speeds in km/h, times epoch s)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(PassageOut.model_fields)
    w.writerow(names)
    for it in items:
        w.writerow(["" if (v := getattr(it, n)) is None else v for n in names])
    return buf.getvalue()


def tmc_table(q: TmcParams, db: Session, site: SiteConfig | None,
              ctx: ApiContext) -> tuple[tmc.TmcTable, float, CameraRef]:
    """The TMC table of a count query, with the range start and the camera it counts
    (its site and time zone): the checks (camera known: 404; at several sites without
    site=: 422; too many intervals: 422) and the counting the TMC routes and the count
    report share."""
    ref = resolve_camera(db, site, q.site, q.camera)
    a, b = _range(q)
    if (b - a) / (q.minutes * 60) > MAX_INTERVALS:
        raise HTTPException(422, f"the range holds more than {MAX_INTERVALS} intervals of {q.interval}; "
                                 "choose a shorter range or a longer interval")
    tz = ref.timezone
    intervals = queries.count_intervals(db, q.camera, a, b, tz=tz, minutes=q.minutes, stale_s=ctx.settings.stale_s,
                                        site=ref.site, cache=ctx.cover)
    cells = queries.movement_counts(db, q.camera, intervals[0].start_ts, intervals[-1].end_ts, tz=tz,
                                    minutes=q.minutes, site=ref.site)
    table = tmc.build_table(q.camera, cells, intervals, tz=tz, minutes=q.minutes,
                            legs=[leg.name for leg in ref.config.legs] if ref.config else ())
    return table, a, ref


@router.get("/counts/movements", response_model=MovementCounts, tags=["counts"],
            summary="Turning-movement counts per interval (JSON or CSV)",
            responses={**NOT_FOUND, 200: {"content": {"text/csv": {}}}})
def movement_counts(q: Annotated[CountQuery, Query()], db: SessionDep, site: SiteDep,
                    ctx: ContextDep) -> MovementCounts | Response:
    table, a, ref = tmc_table(q, db, site, ctx)
    intervals = table.rows
    if q.format == "csv":
        stamp = time.strftime("%Y%m%dT%H%M", time.gmtime(a))
        prefix = f"{ref.site}-" if ref.site else ""
        return Response(tmc.to_csv(table), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="tmc-{prefix}{q.camera}-{stamp}-{q.interval}.csv"'})
    peak = table.peak_hour
    return as_json(MovementCounts(
        camera=q.camera, site=ref.site or "", timezone=ref.timezone, interval_minutes=q.minutes, from_ts=intervals[0].start_ts,
        to_ts=intervals[-1].end_ts, legs=table.legs, columns=table.columns,
        rows=[TmcRowOut(start=r.start, start_ts=r.start_ts, end_ts=r.end_ts, complete=r.complete,
                        counts=r.full_counts(table.columns) if q.row_counts else None, by_movement=r.by_movement,
                        by_class=r.by_class, total=r.total, heavy=r.heavy) for r in table.rows],
        totals=table.totals, total=table.total, heavy_share=table.heavy_share,
        peak_hour=PeakHourOut(start=peak.start, start_ts=peak.start_ts, end_ts=peak.end_ts, volume=peak.volume,
                              phf=peak.phf) if peak else None,
        incomplete_intervals=sum(not r.complete for r in table.rows),
        od_matrix=table.od_matrix, unassigned=table.unassigned,
    ))


QUEUE_STEPS_S = (2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def queue_step(from_ts: float, to_ts: float, step_s: int, max_points: int) -> int:
    """`step_s`, or the finest step of QUEUE_STEPS_S that keeps the range within
    `max_points` steps (a month of 1-minute steps would be 43,200 points per lane)."""
    if (to_ts - from_ts) / step_s <= max_points:
        return step_s
    for step in QUEUE_STEPS_S:
        if step > step_s and (to_ts - from_ts) / step <= max_points:
            return step
    return QUEUE_STEPS_S[-1]


@router.get("/queues", response_model=QueuesOut, tags=["counts"], responses=NOT_FOUND,
            summary="Queue length per lane, resampled to step_s (mean and max length per step)")
def queue_series(q: Annotated[QueueQuery, Query()], db: SessionDep, site: SiteDep) -> Response:
    ref = resolve_camera(db, site, q.site, q.camera)
    a, b = _range(q)
    step_s = queue_step(a, b, q.step_s, q.max_points)
    bins = queries.queues(db, q.camera, a, b, step_s=step_s, lane=q.lane, site=ref.site)
    lanes: dict[str, QueueSeries] = {}
    for qb in bins:
        s = lanes.setdefault(qb.lane, QueueSeries(lane=qb.lane, ts=[], length_m=[], length_m_max=[], vehicles=[]))
        if s.ts and qb.start_ts - s.ts[-1] > step_s:  # a gap: break the line
            s.ts.append(s.ts[-1] + step_s)
            s.length_m.append(None)
            s.length_m_max.append(None)
            s.vehicles.append(None)
        s.ts.append(qb.start_ts)
        s.length_m.append(round(qb.length_m_mean, 2))
        s.length_m_max.append(round(qb.length_m_max, 2))
        s.vehicles.append(qb.vehicles_max)
    return as_json(QueuesOut(camera=q.camera, site=ref.site or "", step_s=step_s, lanes=list(lanes.values())))


@router.get("/speeds", response_model=SpeedsOut, tags=["counts"], responses=NOT_FOUND,
            summary="Speed percentiles (p15/p50/p85/p95) and histogram of approach speeds")
def speeds(q: Annotated[SpeedQuery, Query()], db: SessionDep, site: SiteDep) -> SpeedsOut:
    ref = resolve_camera(db, site, q.site, q.camera)
    a, b = _range(q)
    st = queries.speed_stats(db, q.camera, a, b, vehicle_class=q.vehicle_class, bin_kmh=q.bin_kmh, site=ref.site)
    return SpeedsOut(
        camera=q.camera, site=ref.site or "", count=st.count,
        percentiles={"p15": st.p15_kmh, "p50": st.p50_kmh, "p85": st.p85_kmh, "p95": st.p95_kmh},
        histogram=[HistogramBin(lo_kmh=h.lo_kmh, hi_kmh=h.hi_kmh, count=h.count) for h in st.histogram],
    )


@router.get("/plates", response_model=list[PlateOut], tags=["plates"], dependencies=[Depends(require_key)],
            summary="Passages by plate text (substring, case-insensitive) or keyed hash (API key)",
            responses={401: {"description": "missing or wrong API key"}, **NOT_FOUND,
                       409: {"description": "hashed plates but no TRAFFICPRN_PLATE_SECRET"}})
def plates(q: Annotated[PlateQuery, Query()], db: SessionDep, site: SiteDep, ctx: ContextDep) -> list[PlateOut]:
    scope = _scope(db, site, q, q.camera)
    a, b = to_ts(q.from_), to_ts(q.to)
    text = q.text.strip()
    rows = queries.plate_passages(db, text=text, contains=True, camera=q.camera, from_ts=a, to_ts=b, limit=q.limit,
                                  site=scope)
    if site is not None and site.privacy.plates == "hash" and not rows:
        if not ctx.settings.plate_secret:
            raise HTTPException(409, "plates are stored as keyed hashes (privacy.plates: hash) and this server "
                                     "has no TRAFFICPRN_PLATE_SECRET, so it cannot search them; set the secret "
                                     "the workers hash with")
        rows = _by_hash(db, site, ctx.settings.plate_secret, text, q.camera, a, b, q.limit, scope)
    return [PlateOut.model_validate(r, from_attributes=True) for r in rows]


def _by_hash(db: Session, site: SiteConfig, secret: str | None, text: str, camera: str | None, a: float | None,
             b: float | None, limit: int, scope: str | None) -> list[queries.PassageRecord]:
    """With hashed plates, search by the keyed hash of the typed plate (exact match only)."""
    try:
        from trafficprn.analytics.privacy import PlatePrivacy
    except ImportError:
        return []
    if not secret:
        return []  # the route refuses before this
    _, digest = PlatePrivacy.from_config(site.privacy, secret).apply(text.upper())
    if not digest:
        return []
    return queries.plate_passages(db, plate_hash=digest, camera=camera, from_ts=a, to_ts=b, limit=limit, site=scope)
