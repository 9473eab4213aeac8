"""Property-based fuzzing of every documented route with schemathesis (in-process ASGI):
the server never answers 5xx to client input. Streaming routes (SSE, MJPEG) are left out:
they stay open by design."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import seeding
from api_helpers import API_KEY
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from trafficprn.api import create_app
from trafficprn.settings import Settings
from trafficprn.store.db import upgrade

# The app is built at collection (it touches no database then); the fixture below
# migrates and seeds its SQLite file before the first case runs.
_DIR = Path(tempfile.mkdtemp(prefix="trafficprn-fuzz-"))
_URL = f"sqlite:///{_DIR / 'fuzz.sqlite'}"
_APP = create_app(Settings(database_url=_URL, api_key=API_KEY, site_path=str(seeding.write_site(_DIR / "site.yaml"))))
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP).exclude(path_regex=r"(/api/events|live\.mjpg)$")


@pytest.fixture(scope="module", autouse=True)
def _seeded() -> Iterator[None]:
    upgrade(_URL)
    seeding.seed(_URL)
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=[not_a_server_error])
