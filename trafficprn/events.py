"""Events the analytics emit and the store persists. Times are UTC epoch seconds."""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Movement = Literal["L", "T", "R", "U"]

HEARTBEAT_S = 10.0  # a worker's heartbeat period (settings.heartbeat_s)


def new_uuid() -> str:
    """A random id: for events made by hand (tests, imports). The pipeline derives its
    events' ids from what they describe (`event_uuid`)."""
    return str(uuid_lib.uuid4())


# Fixed namespace of trafficprn's derived event ids (a uuid5 of a URL-like name).
EVENT_NAMESPACE = uuid_lib.uuid5(uuid_lib.NAMESPACE_URL, "https://trafficprn.org/events")


def source_identity(source: str) -> str:
    """What identifies footage across runs: a file by its name (so a copy or a moved file
    is the same footage), a stream by its URL without credentials."""
    if "://" not in source:
        return source.replace("\\", "/").rsplit("/", 1)[-1]
    scheme, rest = source.split("://", 1)
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{host}"


def event_uuid(kind: str, site: str, camera: str, source: str, first_seen_ts: float, track_id: int) -> str:
    """The id of an event derived from what it describes, so the same footage processed
    again (a re-run after a crash, a replay) gives the same ids and the database skips
    them (`INSERT ... ON CONFLICT DO NOTHING` on the unique uuid).

    Inputs: `kind` ("passage", "plate_read"), the site name, the camera name, the
    footage's `source_identity`, the track's first-seen time (footage time, rounded to
    the millisecond) and its track id. Tracking is deterministic for the same frames and
    timestamps, so these are the same on every run of the same footage with the same
    `--start`; live footage differs in time, and so in id.
    """
    name = f"{kind}|{site}|{camera}|{source}|{first_seen_ts:.3f}|{int(track_id)}"
    return str(uuid_lib.uuid5(EVENT_NAMESPACE, name))


@dataclass(frozen=True)
class VehiclePassage:
    """One vehicle that left the scene. `uuid` is the idempotency key for storage.

    passage_ts: when it left its entry zone (crossed the stop line into the junction).
    speed_median_kmh / speed_max_kmh: over its time in the calibrated area; None if unknown.
    speed_flagged: True when the measured speed is implausible (kept, not clamped).
    approach_speed_kmh: median moving (> 5 km/h) speed over the 30 m of path before the
    entry zone; through_speed_kmh: path length over time from leaving the entry zone to
    reaching the exit zone; stopped_s: time below 5 km/h; stops: how many times it stopped
    (below 5 km/h after moving above 10). See docs/speeds.md; None where not measured.
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
    approach_speed_kmh: float | None = None
    through_speed_kmh: float | None = None
    stopped_s: float | None = None
    stops: int | None = None
    colour: str | None = None
    colour_confidence: float | None = None
    plate_text: str | None = None
    plate_hash: str | None = None
    plate_confidence: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    uuid: str = field(default_factory=new_uuid)
    site: str = ""

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
    site: str = ""

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
    site: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CameraStatus:
    """A camera went up or down at `ts`. A down status also records a loss the worker
    could not avoid (events it had to drop): it flags the intervals it falls in."""

    camera: str
    ts: float
    up: bool
    reason: str = ""
    site: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Heartbeat:
    """A worker's sign of life, every `heartbeat_s` (10 s) while it runs, frames or not.

    `up`: frames arrive; frames_seen / frames_processed: since the worker started;
    events_pending: in its spool, not yet in the database; events_dropped: since start,
    events it could not keep (spool disk full and its memory buffer too).
    An interval is complete only where up heartbeats cover it (`store.liveness`).
    """

    camera: str
    ts: float
    up: bool
    frames_seen: int = 0
    frames_processed: int = 0
    events_pending: int = 0
    events_dropped: int = 0
    site: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Event = VehiclePassage | QueueSample | PlateRead | CameraStatus | Heartbeat


class EventSink(Protocol):
    """Where analytics events go (database, spool, memory, ...). The pipeline gets its
    sinks injected and does no I/O of its own. `emit` must not block the frame loop
    for long; a database sink batches."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class FanOutSink:
    """Emits every event to each of `sinks`, in order (the database sink first, then the
    outputs). `close` closes none of them: their owner closes each with its own timeout."""

    def __init__(self, sinks: list[EventSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        pass


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
