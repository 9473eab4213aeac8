"""Request (query) and response models of the REST API. Times: ISO 8601 or UTC epoch s
in, UTC epoch seconds plus local ISO strings out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from trafficprn.config import LaneConfig, LegConfig

MovementCode = Literal["L", "T", "R", "U"]
ClassName = Literal["car", "bus", "truck", "motorcycle", "bicycle", "person"]
INTERVALS = {"5m": 5, "10m": 10, "15m": 15, "30m": 30, "60m": 60, "1h": 60}
MAX_RANGE_S = 400 * 86400

# Names and free text in queries: printable, no control characters (Postgres refuses NUL).
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


def to_ts(value: datetime | None) -> float | None:
    """Epoch seconds; a naive datetime is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class _Query(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class TimeRange(_Query):
    site: Name | None = Field(None, description="Site name (`GET /api/sites`); needed only when the camera's "
                              "name is at several sites of this store.")
    from_: datetime | None = Field(None, alias="from", description="Start (ISO 8601 or epoch s); naive = UTC.")
    to: datetime | None = Field(None, description="End, exclusive (ISO 8601 or epoch s); naive = UTC.")

    @field_validator("from_", "to")
    @classmethod
    def _plausible(cls, v: datetime | None) -> datetime | None:
        if v is not None:
            ts = to_ts(v)
            if ts is None or not 0 <= ts < 4102444800:  # 1970 .. 2100
                raise ValueError("expected a time between 1970 and 2100")
        return v

    @model_validator(mode="after")
    def _order(self) -> TimeRange:
        a, b = to_ts(self.from_), to_ts(self.to)
        if a is not None and b is not None:
            if b <= a:
                raise ValueError("'to' must be after 'from'")
            if b - a > MAX_RANGE_S:
                raise ValueError("the range may span at most 400 days")
        return self


class PassageQuery(TimeRange):
    camera: Name | None = Field(None, description="Camera name.")
    vehicle_class: ClassName | None = Field(None, alias="class", description="Vehicle class.")
    movement: MovementCode | None = Field(None, description="L, T, R or U.")
    entry_leg: Name | None = Field(None, description="Entry leg name.")
    exit_leg: Name | None = Field(None, description="Exit leg name.")
    colour: Name | None = Field(None, description="Colour name.")
    speed_min: float | None = Field(None, ge=0, le=400, description="Minimum median speed, km/h.")
    speed_max: float | None = Field(None, ge=0, le=400, description="Maximum median speed, km/h.")
    cursor: Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_=-]*$")] | None = Field(
        None, description="Opaque cursor from the previous page.")
    limit: int = Field(50, ge=1, le=1000, description="Page size.")
    format: Literal["json", "csv"] = Field("json", description="json or csv (one page; the next cursor is in "
                                           "the X-Next-Cursor header).")

    @model_validator(mode="after")
    def _speeds(self) -> PassageQuery:
        if self.speed_min is not None and self.speed_max is not None and self.speed_max < self.speed_min:
            raise ValueError("speed_max must be >= speed_min")
        return self


class TmcParams(TimeRange):
    """What selects a turning-movement count: the TMC routes and the count report share it."""

    camera: Name = Field(description="Camera name.")
    interval: Literal["5m", "10m", "15m", "30m", "60m", "1h"] = Field("15m", description="Interval length.")

    @property
    def minutes(self) -> int:
        return INTERVALS[self.interval]


class CountQuery(TmcParams):
    format: Literal["json", "csv"] = Field("json", description="json or csv.")
    row_counts: bool = Field(True, description="JSON: each row's count per column. false leaves them out (rows "
                             "keep by_movement, by_class, total and heavy; totals stay whole): what a chart needs, "
                             "a tenth of the answer over 30 days.")


class ReportQuery(TmcParams):
    format: Literal["html", "pdf"] = Field("html", description="html or pdf.")


class QueueQuery(TimeRange):
    camera: Name = Field(description="Camera name.")
    lane: Name | None = Field(None, description="One lane, or all lanes.")
    step_s: int = Field(60, ge=1, le=86400, description="Resample step in seconds; raised (see the answer's "
                        "step_s) where the range would hold more than max_points steps.")
    max_points: int = Field(1500, ge=10, le=100_000, description="Most points per lane; a longer range gets a "
                            "coarser step (2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12, 24 h).")


class SpeedQuery(TimeRange):
    camera: Name = Field(description="Camera name.")
    vehicle_class: ClassName | None = Field(None, alias="class", description="Vehicle class.")
    bin_kmh: float = Field(5.0, gt=0.5, le=50, description="Histogram bin width, km/h.")


class PlateQuery(TimeRange):
    text: Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=r"^[^\x00-\x1f\x7f]+$")] = Field(
        description="Plate text (or part of it); matched case-insensitively.")
    camera: Name | None = Field(None, description="Camera name.")
    limit: int = Field(50, ge=1, le=500, description="Most rows.")


# ---------------------------------------------------------------- responses
class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str
    detail: str | None = None


class CameraOut(BaseModel):
    name: str
    site: str = Field("", description="The site the camera belongs to (a camera is a site and a name).")
    status: Literal["up", "down", "stale", "unknown"] = Field(
        description="up / down (the worker's own report), stale (no heartbeat for 30 s: the worker is gone; "
        "its counts since are missing, not zero) or unknown (never reported)."
    )
    since_ts: float | None = Field(None, description="When the current status began.")
    reason: str = Field("", description="Why, for down and stale.")
    last_heartbeat_ts: float | None = Field(None, description="The worker's last heartbeat.")
    uptime_s: float | None = Field(None, description="Seconds up since the current status began, if up.")
    uptime_ratio_24h: float | None = Field(None, description="Share of the last 24 h the camera was up.")
    last_passage_ts: float | None = None
    live: bool = Field(description="Whether a live view is configured (live_url).")
    legs: list[str] = Field(default_factory=list)
    lanes: list[str] = Field(default_factory=list)


class PassageOut(BaseModel):
    uuid: str
    site: str = Field("", description="The site of the camera (a camera is a site and a name).")
    camera: str
    track_id: int
    passage_ts: float
    first_seen_ts: float
    last_seen_ts: float
    vehicle_class: str
    class_confidence: float | None = None
    entry_leg: str | None = None
    exit_leg: str | None = None
    movement: str | None = None
    speed_median_kmh: float | None = None
    speed_max_kmh: float | None = None
    speed_flagged: bool = False
    approach_speed_kmh: float | None = Field(None, description="Median moving speed over the 30 m before the entry zone, km/h.")
    through_speed_kmh: float | None = Field(None, description="Path length over time from the entry to the exit zone, km/h.")
    stopped_s: float | None = Field(None, description="Time below 5 km/h, s.")
    stops: int | None = Field(None, description="Times it stopped (below 5 km/h after moving above 10).")
    colour: str | None = None


class PassagePage(BaseModel):
    items: list[PassageOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null at the end.")


class TmcRowOut(BaseModel):
    start: str = Field(description="Local ISO time of the interval start.")
    start_ts: float
    end_ts: float
    complete: bool = Field(description="False when the camera was down during the interval.")
    counts: dict[str, int] | None = Field(
        description="Column (leg_movement_class) -> vehicles, every column; null with row_counts=false.")
    by_movement: dict[str, int] = Field(description="Movement (L, T, R, U) -> vehicles.")
    by_class: dict[str, int] = Field(description="Vehicle class -> vehicles (with a complete movement).")
    total: int
    heavy: int


class PeakHourOut(BaseModel):
    start: str
    start_ts: float
    end_ts: float
    volume: int
    phf: float | None = Field(description="Peak-hour factor: volume / (intervals per hour x busiest interval).")


class MovementCounts(BaseModel):
    camera: str
    site: str = ""
    timezone: str
    interval_minutes: int
    from_ts: float
    to_ts: float
    legs: list[str]
    columns: list[str]
    rows: list[TmcRowOut]
    totals: dict[str, int]
    total: int
    heavy_share: float | None = Field(description="(bus + truck) / all, or null without vehicles.")
    peak_hour: PeakHourOut | None
    incomplete_intervals: int
    od_matrix: list[list[int]] = Field(description="Rows: entry legs (legs); columns: exit legs (legs).")
    unassigned: int = Field(description="Vehicles without a complete movement.")


class QueueSeries(BaseModel):
    lane: str
    ts: list[float] = Field(description="Start of each step, epoch s.")
    length_m: list[float | None] = Field(description="Mean queue length over the step; null breaks the line.")
    length_m_max: list[float | None] = Field(default_factory=list, description="Longest queue within the step.")
    vehicles: list[float | None]


class QueuesOut(BaseModel):
    camera: str
    site: str = ""
    step_s: int = Field(description="The step used: the one asked for, or coarser where max_points required.")
    lanes: list[QueueSeries]


class HistogramBin(BaseModel):
    lo_kmh: float
    hi_kmh: float
    count: int


class SpeedsOut(BaseModel):
    camera: str
    site: str = ""
    count: int
    percentiles: dict[str, float | None] = Field(description="p15, p50, p85, p95 of approach speeds (median speed where no approach was measured), km/h.")
    histogram: list[HistogramBin]


class PlateOut(BaseModel):
    uuid: str
    camera: str
    passage_ts: float
    plate_text: str | None
    plate_hash: str | None
    plate_confidence: float | None
    vehicle_class: str
    colour: str | None = None
    movement: str | None = None


class SiteSummary(BaseModel):
    name: str
    timezone: str = Field(description="The time zone its counts are binned in.")
    local: bool = Field(description="Whether it is this box's own site (the API's site.yaml).")
    cameras: list[CameraOut]


class WorkerStatus(BaseModel):
    camera: str
    reachable: bool = Field(description="Whether the camera's worker answered.")
    detail: str | None = Field(None, description="What failed, when it did not.")
    camera_up: bool | None = Field(None, description="Whether frames arrive (as the worker sees it).")
    fps: float | None = None
    frames: int | None = None
    passages: int | None = None
    spool_pending: int | None = Field(None, description="Events waiting for the database.")
    db_ok: bool | None = None


class ZonesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    legs: list[LegConfig] = Field(description="Legs with entry and exit polygons in image px.")
    lanes: list[LaneConfig] = Field(default_factory=list, description="Lanes with polygon and stop line.")


class ZonesOut(BaseModel):
    camera: str
    image_size: tuple[int, int] | None
    legs: list[LegConfig]
    lanes: list[LaneConfig]
    yaml: str = Field(description="The camera's legs/lanes section as YAML.")
