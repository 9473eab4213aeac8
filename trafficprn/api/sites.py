"""Which camera a request means when one store holds many sites.

A camera is a site and a name: two boxes writing one central Postgres may both have a
`fisheye-1`. Requests name the camera and may name the site (`site=`); without it the
name must be unique across the store (one-site boxes never need `site=`), else the API
answers 422 listing the sites. The time zone that bins a site's counts is the local
site config's for this box's own site, else the one its workers recorded (`sites`
table), else the local site's (or UTC).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException
from sqlalchemy.orm import Session

from trafficprn.config import CameraConfig, SiteConfig
from trafficprn.store import queries


@dataclass(frozen=True)
class CameraRef:
    """A resolved camera: `site` is what the queries filter on (None: the name at any
    site, for a camera configured here that has stored nothing yet); `config` is the
    local site config's camera when the camera is this box's own."""

    site: str | None
    camera: str
    timezone: str
    config: CameraConfig | None


def _is_local(local: SiteConfig | None, site: str | None) -> bool:
    # rows a one-site box stored before it knew its name carry site ''
    return local is not None and site in (None, "", local.site.name)


def _local_camera(local: SiteConfig | None, name: str) -> CameraConfig | None:
    return next((c for c in local.cameras if c.name == name), None) if local else None


def site_timezone(db: Session, local: SiteConfig | None, site: str | None,
                  zones: dict[str, str | None] | None = None) -> str:
    """The time zone of a site: the local config's for this box's site, else the one
    its workers recorded (`zones`, read from the store when not given), else the local
    site's, else UTC."""
    if local is not None and _is_local(local, site):
        return local.site.timezone
    if zones is None:
        zones = queries.site_zones(db)
    recorded = zones.get(site or "")
    if recorded:
        return recorded
    return local.site.timezone if local else "UTC"


def check_site(db: Session, local: SiteConfig | None, site: str) -> None:
    """404 for a site this store has never heard of."""
    known = [s.name for s in queries.sites(db)]
    if site in known or (local is not None and site == local.site.name):
        return
    names = sorted({*known, *([local.site.name] if local else [])})
    raise HTTPException(404, f"no site named {site!r}; known sites: {names}")


def resolve_camera(db: Session, local: SiteConfig | None, site: str | None, camera: str) -> CameraRef:
    """The camera a request names. 404 for an unknown camera (or one not at `site`), 422
    when the name is at several sites and no `site` was given."""
    at = sorted({s for s, n in queries.camera_keys(db) if n == camera})
    local_cam = _local_camera(local, camera)
    if site is not None:
        if local is not None and site == local.site.name and site not in at and "" in at:
            site = ""  # this box's rows stored before it knew its name
        if site in at:
            return CameraRef(site, camera, site_timezone(db, local, site), local_cam if _is_local(local, site) else None)
        if local is not None and local_cam is not None and site == local.site.name:
            return CameraRef(site, camera, local.site.timezone, local_cam)  # configured, nothing stored yet
        check_site(db, local, site)
        names = sorted({n for s, n in queries.camera_keys(db) if s == site})
        raise HTTPException(404, f"no camera named {camera!r} at site {site!r}; its cameras: {names}")
    if len(at) > 1:
        raise HTTPException(422, f"camera {camera!r} is at several sites {at}: pass site= to choose one")
    if len(at) == 1:
        only = at[0]
        return CameraRef(only, camera, site_timezone(db, local, only), local_cam if _is_local(local, only) else None)
    if local_cam is not None and local is not None:
        return CameraRef(None, camera, local.site.timezone, local_cam)
    names = sorted({*(c.name for c in local.cameras), *queries.camera_names(db)} if local
                   else queries.camera_names(db))
    raise HTTPException(404, f"no camera named {camera!r}; known cameras: {names}")
