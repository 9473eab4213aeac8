"""The live view, snapshots and zone setup: proxied from each camera's worker (live_url)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import yaml
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from trafficprn.api.deps import ContextDep, SiteDep, camera_or_404, read_access, require_key, site_write_errors
from trafficprn.api.schemas import WorkerStatus, ZonesIn, ZonesOut
from trafficprn.config import CameraConfig
from trafficprn.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/cameras", tags=["live and setup"], dependencies=[Depends(read_access)])
CONNECT_TIMEOUT_S = 3.0


def _worker_url(cam: CameraConfig, path: str) -> str:
    if not cam.live_url:
        raise HTTPException(404, f"camera {cam.name!r} has no live_url in the site config")
    return cam.live_url.rstrip("/") + path


def _worker_headers(settings: Settings) -> dict[str, str]:
    """What the worker's endpoint asks of the API when TRAFFICPRN_WORKER_TOKEN is set."""
    if not settings.worker_token:
        return {}
    return {"Authorization": f"Bearer {settings.worker_token}", "X-Trafficprn-Proxy": "1"}


def _unreachable(cam: CameraConfig, exc: Exception) -> HTTPException:
    """The answer names the camera, never the worker's internal address (that goes to the log)."""
    if isinstance(exc, httpx.TimeoutException):
        log.warning("worker of camera %s at %s timed out", cam.name, cam.live_url)
        return HTTPException(504, f"the worker of camera {cam.name!r} did not answer in time")
    log.warning("worker of camera %s at %s is unreachable: %s", cam.name, cam.live_url, exc)
    return HTTPException(502, f"the worker of camera {cam.name!r} is unreachable ({type(exc).__name__})")


def _zones_yaml(cam: CameraConfig) -> str:
    data = {
        "legs": [leg.model_dump(mode="json") for leg in cam.legs],
        "lanes": [lane.model_dump(mode="json") for lane in cam.lanes],
    }
    return yaml.safe_dump(data, sort_keys=False)


@router.get("/{name}/live.mjpg", summary="Live annotated MJPEG stream from the camera's worker",
            response_class=StreamingResponse, responses={200: {"content": {"multipart/x-mixed-replace": {}}}})
async def live(name: str, site: SiteDep, ctx: ContextDep) -> StreamingResponse:
    cam = camera_or_404(site, name)
    url = _worker_url(cam, "/live.mjpg")
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S),
                               headers=_worker_headers(ctx.settings))
    try:
        upstream = await client.send(client.build_request("GET", url), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise _unreachable(cam, exc) from None
    if upstream.status_code != 200:
        await upstream.aclose()
        await client.aclose()
        raise HTTPException(502, f"the worker of camera {name!r} answered {upstream.status_code}")

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return
        finally:
            await upstream.aclose()
            await client.aclose()

    media = upstream.headers.get("content-type", "multipart/x-mixed-replace; boundary=frame")
    return StreamingResponse(body(), media_type=media, headers={"Cache-Control": "no-store"})


@router.get("/{name}/snapshot.jpg", summary="One camera frame (plates blurred) from the worker",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def snapshot(name: str, site: SiteDep, ctx: ContextDep) -> Response:
    cam = camera_or_404(site, name)
    url = _worker_url(cam, "/snapshot.jpg")
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=CONNECT_TIMEOUT_S),
                                     headers=_worker_headers(ctx.settings)) as client:
            res = await client.get(url)
    except httpx.HTTPError as exc:
        raise _unreachable(cam, exc) from None
    if res.status_code != 200:
        raise HTTPException(502, f"the worker of camera {name!r} answered {res.status_code} for a snapshot")
    return Response(res.content, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/{name}/worker", response_model=WorkerStatus,
            summary="Whether the camera's worker answers, with its frame rate and spool (never a 5xx)")
async def worker_status(name: str, site: SiteDep, ctx: ContextDep) -> WorkerStatus:
    cam = camera_or_404(site, name)
    if not cam.live_url:
        return WorkerStatus(camera=name, reachable=False, detail="no live_url in the site config")
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(3.0, connect=CONNECT_TIMEOUT_S),
                                     headers=_worker_headers(ctx.settings)) as client:
            res = await client.get(_worker_url(cam, "/health"))
        body = res.json() if res.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return WorkerStatus(camera=name, reachable=False, detail=_unreachable(cam, exc).detail)
    if not isinstance(body, dict):
        return WorkerStatus(camera=name, reachable=False, detail=f"the worker answered {res.status_code}")
    try:
        return WorkerStatus(camera=name, reachable=True, camera_up=body.get("up"), fps=body.get("fps"),
                            frames=body.get("frames"), passages=body.get("passages"),
                            spool_pending=body.get("spool_pending"), db_ok=body.get("db_ok"))
    except ValidationError:
        return WorkerStatus(camera=name, reachable=False, detail="the worker's /health answer is not understood")


@router.get("/{name}/zones", response_model=ZonesOut, summary="The camera's legs, lanes and stop lines")
def get_zones(name: str, site: SiteDep) -> ZonesOut:
    cam = camera_or_404(site, name)
    size = tuple(cam.lens.image_size)
    return ZonesOut(camera=name, image_size=(int(size[0]), int(size[1])), legs=list(cam.legs),
                    lanes=list(cam.lanes), yaml=_zones_yaml(cam))


@router.put("/{name}/zones", response_model=ZonesOut, dependencies=[Depends(require_key)],
            summary="Replace the camera's legs and lanes in site.yaml (API key)",
            responses={401: {"description": "missing or wrong API key"}, 422: {"description": "invalid zones"},
                       409: {"description": "site.yaml on disk is broken; fix it by hand first"},
                       413: {"description": "body over the size limit"}})
def put_zones(name: str, zones: ZonesIn, ctx: ContextDep, site: SiteDep) -> ZonesOut:
    camera_or_404(site, name)
    with site_write_errors():
        checked = ctx.site.write_zones(
            name,
            [leg.model_dump(mode="json") for leg in zones.legs],
            [lane.model_dump(mode="json") for lane in zones.lanes],
        )
    return get_zones(name, checked)

