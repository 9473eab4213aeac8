"""Dependencies: the per-app context, database sessions, the site config and API-key checks.

Everything hangs off one `ApiContext` built by `create_app`; nothing is created at import.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from trafficprn.api.site_file import SiteFileBroken, SiteHolder
from trafficprn.config import CameraConfig, SiteConfig
from trafficprn.errors import ConfigError
from trafficprn.settings import Settings
from trafficprn.store.cover_cache import CoverCache

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="TRAFFICPRN_API_KEY")
SESSION_COOKIE_NAME = "trafficprn_session"
SESSION_COOKIE = APIKeyCookie(name=SESSION_COOKIE_NAME, auto_error=False,
                              description="Issued by POST /api/session for the API key; lets the browser's live "
                                          "view and server-sent events pass a read rule that needs the key.")


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    site: SiteHolder
    web_dir: Path | None
    cover: CoverCache  # heartbeat cover of past days, this process's (store.cover_cache)


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


def key_matches(settings: Settings, key: str | None) -> bool:
    expected = settings.api_key
    return bool(expected) and key is not None and hmac.compare_digest(key.encode(), str(expected).encode())


def _session_mac(settings: Settings, expires: int) -> str:
    secret = hashlib.sha256(b"trafficprn-session:" + str(settings.api_key).encode()).digest()
    return hmac.new(secret, str(expires).encode(), hashlib.sha256).hexdigest()


def session_token(settings: Settings, now: float | None = None) -> tuple[str, int]:
    """(token, max_age_s): `<expiry epoch s>.<HMAC>` keyed by the API key, so changing
    the key ends every session."""
    max_age = int(settings.session_hours * 3600)
    expires = int(now if now is not None else time.time()) + max_age
    return f"{expires}.{_session_mac(settings, expires)}", max_age


def session_valid(settings: Settings, token: str | None, now: float | None = None) -> bool:
    if not settings.api_key or not token or token.count(".") != 1:
        return False
    raw_expiry, mac = token.split(".")
    if not raw_expiry.isdigit() or len(raw_expiry) > 12:
        return False
    expires = int(raw_expiry)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(mac, _session_mac(settings, expires))


def require_key(ctx: ContextDep, key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
    """For plates and anything that changes state."""
    if not ctx.settings.api_key:
        raise HTTPException(403, "this server has no API key configured (TRAFFICPRN_API_KEY); the route is disabled")
    if not key_matches(ctx.settings, key):
        raise HTTPException(401, "missing or wrong API key (send it in the X-API-Key header)")


def read_access(ctx: ContextDep, key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
                session: Annotated[str | None, Security(SESSION_COOKIE)] = None) -> None:
    """Read-only data: open unless settings.require_key_for_reads; then the key in the
    header, or the session cookie issued for it (what a browser's <img> and EventSource send)."""
    if not ctx.settings.require_key_for_reads:
        return
    if not (key_matches(ctx.settings, key) or session_valid(ctx.settings, session)):
        raise HTTPException(401, "this server requires the API key for reads (X-API-Key header, or the "
                                 "session cookie from POST /api/session)")


def caller_has_key(ctx: ContextDep, key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
                   session: Annotated[str | None, Security(SESSION_COOKIE)] = None) -> bool:
    """Whether the caller proved the key (for details only key holders may see)."""
    return key_matches(ctx.settings, key) or session_valid(ctx.settings, session)


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


@contextmanager
def site_write_errors() -> Iterator[None]:
    """A site.yaml save's failures as HTTP answers: 409 for a broken file on disk, 422 for an
    invalid result (the message names the field), 503 when the file cannot be written."""
    try:
        yield
    except SiteFileBroken as exc:
        raise HTTPException(409, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    except OSError as exc:
        raise HTTPException(503, f"cannot write the site config: {exc.strerror}") from None


def camera_or_404(site: SiteConfig | None, name: str) -> CameraConfig:
    """The site's camera `name`, or 404 saying why there is none (no site config, no such camera)."""
    if site is None:
        raise HTTPException(404, "the API was started without a site config, so it knows no camera geometry")
    cam = site_camera(site, name)
    if cam is None:
        raise HTTPException(404, f"no camera named {name!r}; the site has {[c.name for c in site.cameras]}")
    return cam
