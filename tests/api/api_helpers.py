"""Helpers shared by the API, fuzz and browser tests (imported by name; see conftest)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from trafficprn.api import create_app
from trafficprn.settings import Settings

API_KEY = "test-key-123"
REPO = Path(__file__).resolve().parents[2]


def example_site_with_two_cameras(tmp_path: Path) -> Path:
    """examples/site.yaml with its comments, and a copy of its camera (same style) after it."""
    text = (REPO / "examples" / "site.yaml").read_text()
    camera = text[text.index("  - name: fisheye-1"):]
    text += "  # the second camera: a copy of the first\n" + camera.replace("name: fisheye-1", "name: fisheye-2", 1)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def make_client(url: str, site: Path | None, **overrides: object) -> TestClient:
    values: dict[str, object] = {"database_url": url, "api_key": API_KEY, "site_path": str(site) if site else None}
    return TestClient(create_app(Settings(**{**values, **overrides})))  # type: ignore[arg-type]
