"""Events the analytics emit and the store persists. Times are UTC epoch seconds."""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Movement = Literal["L", "T", "R", "U"]


def new_uuid() -> str:
    return str(uuid_lib.uuid4())


@dataclass(frozen=True)
class VehiclePassage:
    """One vehicle that left the scene. `uuid` is the idempotency key for storage.

    passage_ts: when it left its entry zone (crossed the stop line into the junction).
    speed_median_kmh / speed_max_kmh: over its time in the calibrated area; None if unknown.
    speed_flagged: True when the measured speed is implausible (kept, not clamped).
    plate_text holds clear text only when privacy.plates == "clear"; plate_hash the
    HMAC-SHA256 hex when "hash".
    """

    camera: str
    track_id: int
    passage_ts: float
    first_seen_ts: float
    last_seen_ts: float
    vehicle_class: str
    class_confidence: float
    entry_leg: str | None = None
    exit_leg: str | None = None
    movement: Movement | None = None
    speed_median_kmh: float | None = None
    speed_max_kmh: float | None = None
    speed_flagged: bool = False
    colour: str | None = None
    colour_confidence: float | None = None
    plate_text: str | None = None
    plate_hash: str | None = None
    plate_confidence: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    uuid: str = field(default_factory=new_uuid)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QueueSample:
    """Queue on one lane at one second: length from the stop line upstream."""

    camera: str
    lane: str
    ts: float
    length_m: float
    vehicles: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlateRead:
    """One fused plate read of a track (audit trail)."""

    camera: str
    track_id: int
    ts: float
    confidence: float
    plate_text: str | None = None
    plate_hash: str | None = None
    uuid: str = field(default_factory=new_uuid)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CameraStatus:
    """A camera went up or down at `ts`."""

    camera: str
    ts: float
    up: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Event = VehiclePassage | QueueSample | PlateRead | CameraStatus


class EventSink(Protocol):
    """Where analytics events go (database, spool, memory, ...). The pipeline gets its
    sinks injected and does no I/O of its own. `emit` must not block the frame loop
    for long; a database sink batches."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class ListSink:
    """Keeps events in memory: for tests, `eval` and offline summaries."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
