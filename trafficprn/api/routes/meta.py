"""Health, the site, cameras with status and uptime, and server-sent live updates."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from trafficprn import __version__
from trafficprn.api.deps import (
    SESSION_COOKIE_NAME,
    ApiContext,
    ContextDep,
    SessionDep,
    SiteDep,
    read_access,
    require_key,
    session_token,
)
from trafficprn.api.schemas import CameraOut, Health, Name, SiteSummary
from trafficprn.api.sites import check_site, site_timezone
from trafficprn.config import CameraConfig, SiteConfig
from trafficprn.errors import StoreError
from trafficprn.store import queries
from trafficprn.store.db import check_database

router = APIRouter(prefix="/api", tags=["status"])


class SiteOut(BaseModel):
    name: str
    timezone: str
    interval_minutes: int
    driving_side: str
    plates: str = Field(description="Plate privacy mode: off, hash or clear.")
    cameras: list[str]
    banner: str | None = Field(None, description="A notice the dashboard shows on top (the demo's "
                               "\"simulated scene\"); TRAFFICPRN_BANNER.")


@router.get("/health", response_model=Health, summary="Liveness and database reachability")
def health(ctx: ContextDep) -> Health:
    try:
        check_database(ctx.engine, require_schema=True)
    except StoreError as exc:
        return Health(status="degraded", database="unreachable", version=__version__, detail=str(exc))
    return Health(status="ok", database="ok", version=__version__)


class SessionOut(BaseModel):
    expires_ts: float = Field(description="When the session cookie stops working (UTC epoch s).")


@router.post("/session", response_model=SessionOut, dependencies=[Depends(require_key)],
             summary="A session cookie for the API key (API key)",
             description="Sets an HttpOnly, SameSite=Strict cookie that passes the read rule, so that a browser's "
                         "live view (<img>) and server-sent events work where reads need the key. Writes and "
                         "plates still need the X-API-Key header.",
             responses={401: {"description": "missing or wrong API key"}})
def open_session(ctx: ContextDep, request: Request) -> JSONResponse:
    token, max_age = session_token(ctx.settings)
    res = JSONResponse({"expires_ts": float(token.split(".")[0])})
    res.set_cookie(SESSION_COOKIE_NAME, token, max_age=max_age, httponly=True, samesite="strict", path="/",
                   secure=request.url.scheme == "https")
    return res


@router.delete("/session", status_code=204, dependencies=[Depends(require_key)],
               summary="End the browser's session cookie (API key)")
def close_session() -> Response:
    res = Response(status_code=204)
    res.delete_cookie(SESSION_COOKIE_NAME, path="/")
    return res


@router.get("/site", response_model=SiteOut, dependencies=[Depends(read_access)], summary="Site name, time zone")
def site_info(site: SiteDep, ctx: ContextDep) -> SiteOut:
    banner = ctx.settings.banner
    if site is None:
        return SiteOut(name="trafficprn", timezone="UTC", interval_minutes=15, driving_side="right",
                       plates="hash", cameras=[], banner=banner)
    s = site.site
    return SiteOut(name=s.name, timezone=s.timezone, interval_minutes=s.interval_minutes,
                   driving_side=s.driving_side, plates=site.privacy.plates, cameras=[c.name for c in site.cameras],
                   banner=banner)


@router.get("/cameras", response_model=list[CameraOut], dependencies=[Depends(read_access)],
            summary="Cameras (of every site, or of one) with their status and uptime")
def list_cameras(db: SessionDep, site: SiteDep, ctx: ContextDep,
                 site_name: Annotated[Name | None, Query(alias="site", description="Only this site's cameras.")] = None,
                 ) -> list[CameraOut]:
    if site_name is not None:
        check_site(db, site, site_name)
    return [c for c in _camera_list(db, site, ctx) if site_name is None or c.site == site_name]


def _camera_list(db: Session, site: SiteConfig | None, ctx: ApiContext) -> list[CameraOut]:
    """Every camera of the store, by (site, name), with this box's configured cameras
    (legs, lanes, live view) merged into the stored ones of its site."""
    now = time.time()
    infos = queries.cameras(db, now_ts=now, stale_s=ctx.settings.stale_s, cache=ctx.cover)
    local = site.site.name if site else None
    configured = {c.name: c for c in site.cameras} if site else {}
    out: list[CameraOut] = []
    seen: set[str] = set()
    for info in infos:
        cam = configured.get(info.name) if site and info.site in ("", local) else None
        if cam is not None:
            seen.add(cam.name)
        out.append(_camera_out(info.site or local or "", info.name, info, cam, now))
    for name, cam in configured.items():
        if name not in seen:
            out.append(_camera_out(local or "", name, None, cam, now))
    return out


def _camera_out(site_name: str, name: str, info: queries.CameraInfo | None, cam: CameraConfig | None,
                now: float) -> CameraOut:
    up = info is not None and info.status == "up"
    return CameraOut(
        name=name,
        site=site_name,
        status=info.status if info else "unknown",
        since_ts=info.since_ts if info else None,
        reason=info.reason if info else "",
        last_heartbeat_ts=info.last_heartbeat_ts if info else None,
        uptime_s=now - info.since_ts if up and info and info.since_ts is not None else None,
        uptime_ratio_24h=info.uptime if info else None,
        last_passage_ts=info.last_passage_ts if info else None,
        live=bool(cam.live_url) if cam else False,
        legs=[leg.name for leg in cam.legs] if cam else [],
        lanes=[lane.name for lane in cam.lanes] if cam else [],
    )


@router.get("/sites", response_model=list[SiteSummary], dependencies=[Depends(read_access)],
            summary="Every site of this store with its time zone, cameras and their status")
def list_sites(db: SessionDep, site: SiteDep, ctx: ContextDep) -> list[SiteSummary]:
    cams = _camera_list(db, site, ctx)
    zones = {s.name: s.timezone for s in queries.sites(db)}
    names = {*zones, *(c.site for c in cams)}
    local = site.site.name if site else None
    if local is not None:
        names.add(local)
        names.discard("")  # rows this box stored before it knew its name are listed under it
    return [SiteSummary(name=n, timezone=site_timezone(db, site, n, zones), local=n == local,
                        cameras=[c for c in cams if c.site == n]) for n in sorted(names)]


def _snapshot(ctx: ApiContext) -> dict[str, Any]:
    with ctx.sessions() as db:
        newest = queries.passages(db, limit=1).items
        cams = queries.cameras(db, stale_s=ctx.settings.stale_s, with_uptime=False)  # every few s per client
    return {
        "latest_passage_ts": newest[0].passage_ts if newest else None,
        "latest_uuid": newest[0].uuid if newest else None,
        "cameras": {f"{c.site}/{c.name}" if c.site else c.name: c.status for c in cams},
    }


@router.get("/events", summary="Server-sent events: `update` whenever passages or camera status change",
            response_class=StreamingResponse, dependencies=[Depends(read_access)],
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request, ctx: ContextDep,
                 max_s: Annotated[float, Query(ge=1, le=3600, description="Close after this many seconds.")] = 300,
                 poll_s: Annotated[float, Query(ge=0.2, le=60, description="Database poll period.")] = 3
                 ) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        deadline = time.monotonic() + max_s
        last = None
        while time.monotonic() < deadline and not await request.is_disconnected():
            try:
                data = json.dumps(await run_in_threadpool(_snapshot, ctx), sort_keys=True)
            except Exception as exc:  # the DB may be down; say so and keep the stream
                yield f"event: error\ndata: {json.dumps({'detail': 'database unavailable: ' + type(exc).__name__})}\n\n"
            else:
                if data != last:
                    yield f"event: update\ndata: {data}\n\n"
                    last = data
                else:
                    yield ": keep-alive\n\n"
            await asyncio.sleep(poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
