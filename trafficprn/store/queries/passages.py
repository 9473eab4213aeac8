"""Passages: filters, keyset pages and their cursor."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, tuple_

from trafficprn.errors import InputError
from trafficprn.store.models import Passage
from trafficprn.store.queries._common import MAX_PAGE, Conn, _check_range, _scalars, _ts, _values
from trafficprn.store.repository import utc


# ---------------------------------------------------------------- passages
@dataclass(frozen=True)
class PassageRecord:
    """One stored passage (`trafficprn.events.VehiclePassage` plus its row id)."""

    id: int
    uuid: str
    camera: str
    track_id: int
    passage_ts: float
    first_seen_ts: float
    last_seen_ts: float
    vehicle_class: str
    class_confidence: float
    colour: str | None
    colour_confidence: float | None
    entry_leg: str | None
    exit_leg: str | None
    movement: str | None
    speed_median_kmh: float | None
    speed_max_kmh: float | None
    speed_flagged: bool
    approach_speed_kmh: float | None
    through_speed_kmh: float | None
    stopped_s: float | None
    stops: int | None
    plate_text: str | None
    plate_hash: str | None
    plate_confidence: float | None
    extras: dict[str, Any] = field(default_factory=dict)
    site: str = ""


def _record(p: Passage) -> PassageRecord:
    return PassageRecord(
        id=p.id,
        uuid=str(p.uuid),
        camera=p.camera,
        track_id=p.track_id,
        passage_ts=_ts(p.passage_ts),
        first_seen_ts=_ts(p.first_seen_ts),
        last_seen_ts=_ts(p.last_seen_ts),
        vehicle_class=p.vehicle_class,
        class_confidence=p.class_confidence,
        colour=p.colour,
        colour_confidence=p.colour_confidence,
        entry_leg=p.entry_leg,
        exit_leg=p.exit_leg,
        movement=p.movement,
        speed_median_kmh=p.speed_median_kmh,
        speed_max_kmh=p.speed_max_kmh,
        speed_flagged=p.speed_flagged,
        approach_speed_kmh=p.approach_speed_kmh,
        through_speed_kmh=p.through_speed_kmh,
        stopped_s=p.stopped_s,
        stops=p.stops,
        plate_text=p.plate_text,
        plate_hash=p.plate_hash,
        plate_confidence=p.plate_confidence,
        extras=dict(p.extras or {}),
        site=p.site,
    )


@dataclass(frozen=True)
class PassageFilter:
    """Filters of the passages query; None means "any". Class, movement and colour take
    one value or a list. Speeds filter on `speed_median_kmh`, bounds inclusive. `site`
    with or without `camera`: a site's passages (a camera is a site and a name)."""

    site: str | None = None
    camera: str | None = None
    from_ts: float | None = None
    to_ts: float | None = None
    vehicle_class: str | Sequence[str] | None = None
    movement: str | Sequence[str] | None = None
    colour: str | Sequence[str] | None = None
    entry_leg: str | None = None
    exit_leg: str | None = None
    speed_min_kmh: float | None = None
    speed_max_kmh: float | None = None

    def where(self) -> list[Any]:
        """SQLAlchemy conditions on `Passage`. Raises InputError for a bad combination."""
        if self.from_ts is not None and self.to_ts is not None:
            _check_range(self.from_ts, self.to_ts)
        if self.speed_min_kmh is not None and self.speed_max_kmh is not None and self.speed_min_kmh > self.speed_max_kmh:
            raise InputError(f"speed_min_kmh ({self.speed_min_kmh}) must not exceed speed_max_kmh ({self.speed_max_kmh})")
        conds: list[Any] = []
        if self.site is not None:
            conds.append(Passage.site == self.site)
        if self.camera is not None:
            conds.append(Passage.camera == self.camera)
        if self.from_ts is not None:
            conds.append(Passage.passage_ts >= utc(self.from_ts))
        if self.to_ts is not None:
            conds.append(Passage.passage_ts < utc(self.to_ts))
        for column, value in (
            (Passage.vehicle_class, self.vehicle_class),
            (Passage.movement, self.movement),
            (Passage.colour, self.colour),
        ):
            values = _values(value)
            if values is not None:
                conds.append(column.in_(values))
        if self.entry_leg is not None:
            conds.append(Passage.entry_leg == self.entry_leg)
        if self.exit_leg is not None:
            conds.append(Passage.exit_leg == self.exit_leg)
        if self.speed_min_kmh is not None:
            conds.append(Passage.speed_median_kmh >= self.speed_min_kmh)
        if self.speed_max_kmh is not None:
            conds.append(Passage.speed_median_kmh <= self.speed_max_kmh)
        return conds


@dataclass(frozen=True)
class PassagePage:
    items: list[PassageRecord]
    next_cursor: str | None


MAX_CURSOR_TS = 1e11  # epoch seconds, about the year 5138


def encode_cursor(passage_ts: float, row_id: int) -> str:
    raw = json.dumps([round(passage_ts, 6), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    """Inverse of `encode_cursor`. Raises InputError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, row_id = json.loads(raw)
        if isinstance(row_id, bool) or not isinstance(row_id, int) or not isinstance(ts, int | float):
            raise ValueError
        # Bounded to what a real page can hold, so no database driver overflows on it.
        if not math.isfinite(ts) or abs(ts) > MAX_CURSOR_TS or not 0 <= row_id < 2**63:
            raise ValueError
        return float(ts), row_id
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InputError(f"invalid cursor {cursor[:40]!r}: pass the next_cursor of a previous page") from None


def passages(
    conn: Conn,
    flt: PassageFilter | None = None,
    *,
    limit: int = 100,
    cursor: str | None = None,
    order: Literal["desc", "asc"] = "desc",
) -> PassagePage:
    """A page of passages, newest first ("desc") or oldest first, with a keyset cursor
    on (passage_ts, id). `next_cursor` is None on the last page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    if order not in ("desc", "asc"):
        raise InputError(f"order must be 'desc' or 'asc', got {order!r}")
    conds = (flt or PassageFilter()).where()
    key = tuple_(Passage.passage_ts, Passage.id)
    if cursor is not None:
        ts, row_id = decode_cursor(cursor)
        after = tuple_(utc(ts), row_id)
        conds.append(key < after if order == "desc" else key > after)
    stmt = select(Passage).where(*conds)
    if order == "desc":
        stmt = stmt.order_by(Passage.passage_ts.desc(), Passage.id.desc())
    else:
        stmt = stmt.order_by(Passage.passage_ts.asc(), Passage.id.asc())
    rows = list(_scalars(conn, stmt.limit(limit + 1)))
    items = [_record(r) for r in rows[:limit]]
    nxt = encode_cursor(items[-1].passage_ts, items[-1].id) if len(rows) > limit else None
    return PassagePage(items=items, next_cursor=nxt)
