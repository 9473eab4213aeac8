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
from trafficprn.api.deps import ApiContext, SiteHolder
from trafficprn.errors import ConfigError, StoreError, TrafficPRNError
from trafficprn.resources import web_dir
from trafficprn.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Counts, queues, speeds and passages of the intersection cameras of one box.

Read-only routes are open unless the server requires a key for reads; plates and
anything that changes state need the `X-API-Key` header (TRAFFICPRN_API_KEY).
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
            msg = "contains characters that are not allowed (control characters, or not a cursor)"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


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
    from trafficprn.api.routes import data, live, meta
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
    app.state.ctx = ApiContext(
        settings=settings,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        site=SiteHolder(Path(settings.site_path) if settings.site_path else None),
        web_dir=web,
    )
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "PUT"],
                           allow_headers=["X-API-Key", "Content-Type"])
    _install_handlers(app)
    app.include_router(meta.router)
    app.include_router(data.router)
    app.include_router(live.router)
    if web is not None:
        app.mount("/ui", StaticFiles(directory=web, html=True), name="web")

        @app.get("/", include_in_schema=False)
        def _root() -> RedirectResponse:
            return RedirectResponse("/ui/")

    return app
