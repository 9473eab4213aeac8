"""Plate search over passages, and the plate-read audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from trafficprn.errors import InputError
from trafficprn.store.models import Passage, PlateReadRow
from trafficprn.store.queries._common import MAX_PAGE, Conn, _scalars, _ts
from trafficprn.store.queries.passages import PassageFilter, PassageRecord, _record
from trafficprn.store.repository import utc


# ---------------------------------------------------------------- plates
def plate_passages(
    conn: Conn,
    *,
    text: str | None = None,
    plate_hash: str | None = None,
    contains: bool = False,
    camera: str | None = None,
    from_ts: float | None = None,
    to_ts: float | None = None,
    limit: int = 100,
    site: str | None = None,
) -> list[PassageRecord]:
    """Passages with a plate, newest first, found by clear text (case-insensitive;
    exact, or substring with `contains`) or by keyed hash. One of text/plate_hash."""
    if (text is None) == (plate_hash is None):
        raise InputError("give exactly one of plate text or plate hash")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    conds = PassageFilter(site=site, camera=camera, from_ts=from_ts, to_ts=to_ts).where()
    if text is not None:
        needle = text.strip().upper()
        if not needle:
            raise InputError("plate text is empty")
        if contains:
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(func.upper(Passage.plate_text).like(f"%{escaped}%", escape="\\"))
        else:
            conds.append(or_(Passage.plate_text == needle, func.upper(Passage.plate_text) == needle))
    else:
        conds.append(Passage.plate_hash == str(plate_hash).strip().lower())
    stmt = select(Passage).where(*conds).order_by(Passage.passage_ts.desc(), Passage.id.desc()).limit(limit)
    return [_record(r) for r in _scalars(conn, stmt)]


@dataclass(frozen=True)
class PlateReadRecord:
    uuid: str
    camera: str
    track_id: int
    ts: float
    confidence: float
    plate_text: str | None
    plate_hash: str | None


def plate_reads(
    conn: Conn, *, camera: str | None = None, from_ts: float | None = None, to_ts: float | None = None, limit: int = 100,
    site: str | None = None,
) -> list[PlateReadRecord]:
    """The plate-read audit trail, newest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    conds: list[Any] = []
    if site is not None:
        conds.append(PlateReadRow.site == site)
    if camera is not None:
        conds.append(PlateReadRow.camera == camera)
    if from_ts is not None:
        conds.append(PlateReadRow.ts >= utc(from_ts))
    if to_ts is not None:
        conds.append(PlateReadRow.ts < utc(to_ts))
    stmt = select(PlateReadRow).where(*conds).order_by(PlateReadRow.ts.desc(), PlateReadRow.id.desc()).limit(limit)
    return [
        PlateReadRecord(str(r.uuid), r.camera, r.track_id, _ts(r.ts), r.confidence, r.plate_text, r.plate_hash)
        for r in _scalars(conn, stmt)
    ]
