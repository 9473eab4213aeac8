"""Dependencies: the per-app context, database sessions, the site config and API-key checks.

Everything hangs off one `ApiContext` built by `create_app`; nothing is created at import.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from trafficprn.config import CameraConfig, SiteConfig, load_site
from trafficprn.errors import ConfigError
from trafficprn.settings import Settings

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="TRAFFICPRN_API_KEY")


@dataclass
class SiteHolder:
    """The site config from `path`, re-read when the file changes (the setup page writes it)."""

    path: Path | None
    _site: SiteConfig | None = None
    _mtime: float = -1.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> SiteConfig | None:
        if self.path is None:
            return None
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                return self._site
            if mtime != self._mtime:
                try:
                    self._site = load_site(self.path)
                    self._mtime = mtime
                except ConfigError:
                    if self._site is None:
                        raise
            return self._site

    def write_zones(self, camera: str, legs: list[dict[str, object]], lanes: list[dict[str, object]]) -> SiteConfig:
        """Replace one camera's legs and lanes in the YAML file; validate before writing."""
        from trafficprn.config import dump_site, parse_site

        if self.path is None:
            raise ConfigError("the API was started without a site config (settings.site_path)")
        with self._lock:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8"))
            site = parse_site(raw, source=str(self.path))
            names = [c.name for c in site.cameras]
            if camera not in names:
                raise ConfigError(f"no camera named {camera!r}; the site has {names}", field="cameras")
            for cam in raw["cameras"]:
                if cam.get("name") == camera:
                    cam["legs"] = legs
                    cam["lanes"] = lanes
            checked = parse_site(raw, source="setup")
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            dump_site(checked, tmp)
            os.replace(tmp, self.path)
            self._mtime = -1.0
        return checked


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    site: SiteHolder
    web_dir: Path | None


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_db(ctx: ContextDep) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def get_site(ctx: ContextDep) -> SiteConfig | None:
    return ctx.site.get()


SiteDep = Annotated[SiteConfig | None, Depends(get_site)]


def _key_ok(settings: Settings, key: str | None) -> bool:
    expected = settings.api_key
    return bool(expected) and key is not None and hmac.compare_digest(key.encode(), str(expected).encode())


def require_key(ctx: ContextDep, key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
    """For plates and anything that changes state."""
    if not ctx.settings.api_key:
        raise HTTPException(403, "this server has no API key configured (TRAFFICPRN_API_KEY); the route is disabled")
    if not _key_ok(ctx.settings, key):
        raise HTTPException(401, "missing or wrong API key (send it in the X-API-Key header)")


def read_access(ctx: ContextDep, key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
    """Read-only data: open unless settings.require_key_for_reads."""
    if ctx.settings.require_key_for_reads and not _key_ok(ctx.settings, key):
        raise HTTPException(401, "this server requires the API key for reads (X-API-Key header)")


def camera_names(site: SiteConfig | None, known_in_db: list[str]) -> list[str]:
    names = [c.name for c in site.cameras] if site else []
    return list(dict.fromkeys([*names, *known_in_db]))


def site_camera(site: SiteConfig | None, name: str) -> CameraConfig | None:
    if site is None:
        return None
    for cam in site.cameras:
        if cam.name == name:
            return cam
    return None
