"""API fixtures: a seeded database per backend (SQLite and the real Postgres), migrated
with the store's Alembic upgrade; an app on it; a site.yaml in a temp folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

import seeding  # noqa: E402
from api_helpers import API_KEY, make_client  # noqa: E402

from trafficprn.store import db as store_db  # noqa: E402
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database, postgres_reachable  # noqa: E402


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('api-sqlite') / 'seeded.sqlite'}"
    store_db.upgrade(url)
    seeding.seed(url)
    return url


@pytest.fixture(scope="session")
def seeded_postgres() -> Iterator[str]:
    if not postgres_reachable(DEFAULT_ADMIN_URL):
        pytest.skip("Postgres on 127.0.0.1:5432 is not reachable")
    url = create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_apitest_")
    try:
        store_db.upgrade(url)
        seeding.seed(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded_url(request: pytest.FixtureRequest) -> str:
    name = "seeded_sqlite" if request.param == "sqlite" else "seeded_postgres"
    return str(request.getfixturevalue(name))


@pytest.fixture
def site_path(tmp_path: Path) -> Path:
    return seeding.write_site(tmp_path / "site.yaml")


@pytest.fixture
def client(seeded_url: str, site_path: Path) -> Iterator[TestClient]:
    with make_client(seeded_url, site_path) as c:
        yield c


@pytest.fixture
def key() -> dict[str, str]:
    return {"X-API-Key": API_KEY}


