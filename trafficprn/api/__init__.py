"""trafficprn.api: the REST API and dashboard server. Build it with `create_app(settings)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from trafficprn.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app for `settings` (see trafficprn.api.app.create_app)."""
    from trafficprn.api.app import create_app as _create

    return _create(settings)


__all__: list[Any] = ["create_app"]
