"""Helpers shared by the API, fuzz and browser tests (imported by name; see conftest)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from trafficprn.api import create_app
from trafficprn.settings import Settings

API_KEY = "test-key-123"


def make_client(url: str, site: Path | None, **overrides: object) -> TestClient:
    values: dict[str, object] = {"database_url": url, "api_key": API_KEY, "site_path": str(site) if site else None}
    return TestClient(create_app(Settings(**{**values, **overrides})))  # type: ignore[arg-type]
