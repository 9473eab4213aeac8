"""Shared helpers of the query modules: connection type, range checks, conversions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.orm import Session

from trafficprn.errors import InputError
from trafficprn.store.sqlexpr import as_epoch as _ts
from trafficprn.store.sqlexpr import camera_scope
from trafficprn.store.sqlexpr import dialect_of as _dialect

__all__ = ["MAX_PAGE", "Conn", "_check_range", "_dialect", "_scalars", "_ts", "_values", "camera_scope"]

Conn = Connection | Session
MAX_PAGE = 1000


def _check_range(from_ts: float, to_ts: float) -> None:
    if not (math.isfinite(from_ts) and math.isfinite(to_ts)):
        raise InputError(f"time range must be finite, got {from_ts}..{to_ts}")
    if to_ts <= from_ts:
        raise InputError(f"time range is empty: 'to' ({to_ts}) must be after 'from' ({from_ts})")


def _values(v: str | Sequence[str] | None) -> list[str] | None:
    if v is None:
        return None
    return [v] if isinstance(v, str) else list(v)


def _scalars(conn: Conn, stmt: Select[Any]) -> list[Any]:
    """ORM rows of `stmt`, detached, from a Session or a plain Connection."""
    if isinstance(conn, Session):
        return list(conn.scalars(stmt))
    with Session(bind=conn) as session:
        out = list(session.scalars(stmt))
        session.expunge_all()
        return out
