"""Database fixtures for store tests (the API tests can copy these; the helpers they
use live in `trafficprn.store.testing`).

- `pg_database_url` (session): a fresh, empty Postgres database `trafficprn_test_<random>`
  on 127.0.0.1:5432, dropped after the run. Skips when that server is unreachable.
- `pg_migrated_url` (session): the same database migrated to head once.
- `sqlite_template` (session): a SQLite file migrated to head once.
- `db_url` (function, parametrized "sqlite" / "postgresql"): an empty, migrated database:
  a copy of the SQLite template, or the Postgres database truncated.
- `db_engine` (function): an Engine on `db_url`, disposed after the test.
- `make_db_url` (session): a factory `make_db_url("sqlite" | "postgresql") -> URL` of a new,
  migrated database (for module-scoped, read-only data sets); Postgres ones are dropped
  at the end of the run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from trafficprn.store import db as store_db
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database, postgres_reachable, truncate_all


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    if not postgres_reachable(DEFAULT_ADMIN_URL):
        pytest.skip("Postgres on 127.0.0.1:5432 is not reachable")
    url = create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_test_")
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def pg_migrated_url(pg_database_url: str) -> str:
    store_db.upgrade(pg_database_url)
    return pg_database_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    store_db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "db.sqlite"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_migrated_url")
    engine = store_db.make_engine(url)
    try:
        truncate_all(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = store_db.make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def make_db_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Callable[[str], str]]:
    created: list[str] = []

    def make(dialect: str) -> str:
        if dialect == "sqlite":
            path = tmp_path_factory.mktemp("sqlite-db") / "db.sqlite"
            shutil.copyfile(sqlite_template, path)
            return f"sqlite:///{path}"
        if not postgres_reachable(DEFAULT_ADMIN_URL):
            pytest.skip("Postgres on 127.0.0.1:5432 is not reachable")
        url = create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_test_")
        created.append(url)
        store_db.upgrade(url)
        return url

    try:
        yield make
    finally:
        for url in created:
            drop_database(url)
