"""The FastAPI app factory: routes, error handlers, CORS and the dashboard (web/)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from trafficprn import __version__
from trafficprn.api import access_log
from trafficprn.api.deps import ApiContext
from trafficprn.api.limits import RequestLimits
from trafficprn.api.site_file import SiteHolder
from trafficprn.errors import ConfigError, StoreError, TrafficPRNError
from trafficprn.resources import web_dir
from trafficprn.settings import Settings
from trafficprn.store.cover_cache import CoverCache

log = logging.getLogger(__name__)

DESCRIPTION = """Counts, queues, speeds and passages of the intersection cameras of one box.

Read-only routes are open unless the server requires a key for reads; plates and
anything that changes state need the `X-API-Key` header (TRAFFICPRN_API_KEY). A write
without the key is refused before its body is read; bodies over the limit
(TRAFFICPRN_MAX_BODY_BYTES, 1 MB) get 413. A browser gets a session cookie for the key
from `POST /api/session`, so that its live view and server-sent events pass the read rule.
Times go in as ISO 8601 (naive = UTC) or epoch seconds and come out as UTC epoch
seconds, with local ISO strings where intervals are concerned."""


def _web_dir() -> Path | None:
    path = web_dir()
    return path if (path / "index.html").is_file() else None


def _message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "string_pattern_mismatch":
            pattern = (err.get("ctx") or {}).get("pattern", "")
            msg = f"contains characters that are not allowed, or is too long (expected {pattern})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


# What a 422 carries (the handler below), documented in place of FastAPI's default shape.
VALIDATION_ERROR_SCHEMA = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string", "title": "Detail", "description": "The first problems, in words."},
        "errors": {
            "type": "array", "title": "Errors",
            "items": {
                "type": "object", "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}


def _document_errors(app: FastAPI) -> None:
    """Make /openapi.json describe the 422 body the API really sends."""
    plain = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = plain()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _warn_unsearchable_plates(settings: Settings, site_path: Path | None) -> None:
    if site_path is None:
        return
    try:
        site = SiteHolder(site_path).get()
    except ConfigError:
        return  # reported when a route needs it
    if site is not None and site.privacy.plates == "hash" and not settings.plate_secret:
        log.warning("plates are stored as keyed hashes (privacy.plates: hash) but TRAFFICPRN_PLATE_SECRET is "
                    "not set: plate search cannot find any plate until it is")


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return JSONResponse({"detail": _message(exc), "errors": errors}, status_code=422)

    @app.exception_handler(DataError)
    async def _refused(_: Request, exc: DataError) -> JSONResponse:
        log.info("database refused a value: %s", " ".join(str(exc.orig).split())[:200])
        return JSONResponse({"detail": "the database cannot take a value of this request; check the parameters"},
                            status_code=422)

    @app.exception_handler(SQLAlchemyError)
    async def _db_down(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("database error: %s", " ".join(str(exc).split())[:300])
        return JSONResponse({"detail": "the database is unavailable; try again shortly"}, status_code=503)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(TrafficPRNError)
    async def _other(_: Request, exc: TrafficPRNError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)


def create_app(settings: Settings) -> FastAPI:
    """Build the API for `settings`: database engine, site config, routes, dashboard."""
    from trafficprn.api.routes import data, live, meta, reports, setup
    from trafficprn.store.db import make_engine

    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="trafficprn", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  openapi_tags=[{"name": "status"}, {"name": "counts"}, {"name": "plates"},
                                {"name": "live and setup"}])
    web = _web_dir()
    site_path = Path(settings.site_path) if settings.site_path else None
    app.state.ctx = ApiContext(
        settings=settings,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        site=SiteHolder(site_path),
        web_dir=web,
        cover=CoverCache(),
    )
    _warn_unsearchable_plates(settings, site_path)
    access_log.install()
    _document_errors(app)
    app.add_middleware(RequestLimits, settings=settings)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "PUT", "POST"],
                           allow_headers=["X-API-Key", "Content-Type"])
    _install_handlers(app)
    app.include_router(meta.router)
    app.include_router(data.router)
    app.include_router(reports.router)
    app.include_router(live.router)
    app.include_router(setup.router)
    if web is not None:
        app.mount("/ui", StaticFiles(directory=web, html=True), name="web")

        @app.get("/", include_in_schema=False)
        def _root() -> RedirectResponse:
            return RedirectResponse("/ui/")

    return app


def app_from_env() -> FastAPI:
    """The app for settings from the environment: the factory that `serve --workers N`
    gives uvicorn, so that each server process builds its own (engine, site)."""
    return create_app(Settings())
