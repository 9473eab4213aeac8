"""Engines, SQL helpers per dialect, and Alembic driven from Python.

`make_engine(url)` accepts any SQLAlchemy URL; `postgresql://` and `postgres://` are
mapped to psycopg 3 (`postgresql+psycopg://`). SQLite connections get the function
`tp_utc_offset(epoch_s, tz)` that the interval rule needs (SQLite has no time-zone data).

`upgrade(url)` / `downgrade(url)` run the migrations in `trafficprn.resources.migrations_dir()`
on the given URL; nothing here hard-codes a URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

from trafficprn.errors import StoreError
from trafficprn.resources import migrations_dir

log = logging.getLogger(__name__)


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL, choosing psycopg 3 for Postgres. Raises StoreError."""
    if isinstance(url, URL):
        parsed = url
    else:
        text = str(url).strip()
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            parsed = make_url(text)
        except ArgumentError:
            raise StoreError(
                f"invalid database URL {text!r}: expected e.g. postgresql://user:pass@host:5432/db "
                "or sqlite:///path/to/file.sqlite"
            ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: expected postgresql or sqlite")
    return parsed


def describe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and error messages."""
    try:
        return normalise_url(url).render_as_string(hide_password=True)
    except StoreError:
        return "<invalid URL>"


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def utc_offset_s(epoch_s: int | float | None, tz: str | None) -> int | None:
    """UTC offset in whole seconds of zone `tz` at `epoch_s` (the SQLite function)."""
    if epoch_s is None or tz is None:
        return None
    local = datetime.fromtimestamp(float(epoch_s), tz=UTC).astimezone(_zone(tz))
    offset = local.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.create_function("tp_utc_offset", 2, utc_offset_s, deterministic=True)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def make_engine(url: str | URL, *, echo: bool = False, connect_timeout_s: int = 5) -> Engine:
    """An Engine for a Postgres (psycopg 3) or SQLite URL. Creates nothing in the DB;
    a SQLite file's parent folder is created. Raises StoreError for a bad URL."""
    parsed = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": connect_timeout_s}
    else:
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 10, "check_same_thread": False}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no driver for {parsed.drivername!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
    return engine


def explain_error(exc: BaseException, url: str | URL) -> str:
    """One line saying what failed when talking to the database at `url`."""
    where = describe_url(url)
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    lowered = text.lower()
    if "authentication failed" in lowered or ("role" in lowered and "does not exist" in lowered):
        hint = "wrong user or password"
    elif "does not exist" in lowered and "database" in lowered:
        hint = "the database does not exist (create it, then run `trafficprn db upgrade`)"
    elif "connection refused" in lowered or "could not connect" in lowered or "timeout" in lowered:
        hint = "the server is unreachable (is it running, are host and port right?)"
    elif "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        hint = "the schema is missing: run `trafficprn db upgrade --db URL`"
    elif "unable to open database file" in lowered:
        hint = "the SQLite file cannot be opened (check the path and permissions)"
    else:
        hint = type(orig).__name__
    return f"database {where}: {hint}: {text[:300]}"


def check_database(engine_or_url: Engine | str | URL, *, require_schema: bool = True) -> None:
    """Connect once and check that the schema is at the newest revision.
    Raises StoreError with a message that says what failed."""
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        with engine.connect() as conn:
            if not require_schema:
                return
            have = set(inspect(conn).get_table_names())
            rev = _current_revision_on(conn) if "alembic_version" in have else None
    except SQLAlchemyError as exc:
        raise StoreError(explain_error(exc, engine.url)) from None
    finally:
        if engine is not engine_or_url:
            engine.dispose()
    head = head_revision()
    if rev != head:
        raise StoreError(
            f"database {describe_url(engine.url)}: schema revision is {rev or 'empty'}, expected {head}: "
            "run `trafficprn db upgrade --db URL`"
        )


def wait_for_database(
    url: str | URL,
    *,
    timeout_s: float = 60.0,
    require_schema: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Retry `check_database` with backoff until it passes or `timeout_s` runs out
    (then raise the last StoreError). Each failure is logged."""
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while True:
        try:
            check_database(url, require_schema=require_schema)
            return
        except StoreError as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s; retrying in %.1f s", exc, delay)
            sleep(delay)
            delay = min(delay * 2, 10.0)


def is_retryable(exc: BaseException) -> bool:
    """True for errors that waiting can fix: the server is down, the network failed,
    the schema is not migrated yet. False for errors in the data itself."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        lowered = str(exc.orig).lower()
        return "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered)
    return False


# ---------------------------------------------------------------- Alembic
def _alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _current_revision_on(conn: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def current_revision(url: str | URL) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _current_revision_on(conn)
    except SQLAlchemyError as exc:
        raise StoreError(explain_error(exc, url)) from None
    finally:
        engine.dispose()


def _run(url: str | URL, action: str, revision: str, site_name: str | None = None) -> None:
    from alembic import command

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config(conn)
            if site_name:
                cfg.attributes["site_name"] = site_name
            getattr(command, action)(cfg, revision)
    except SQLAlchemyError as exc:
        raise StoreError(explain_error(exc, url)) from None
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head", *, site_name: str | None = None) -> None:
    """Migrate the database at `url` up to `revision`. `site_name`: the box's site, for
    the rows a one-site box stored without one (revision 0006). Raises StoreError."""
    _run(url, "upgrade", revision, site_name)


def downgrade(url: str | URL, revision: str = "-1") -> None:
    """Migrate the database at `url` down to `revision` ("-1": one step, "base": empty)."""
    _run(url, "downgrade", revision)
