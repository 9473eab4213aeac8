"""The site config (`site.yaml`): one file per box, pydantic models with extra="forbid".

`load_site(path)` returns a validated `SiteConfig` or raises `ConfigError` naming the
field path (``cameras[0].lens.fov_deg``) and what was expected. The sim writes scenes
through the same models (`dump_site`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trafficprn.config_outputs import HomeAssistant as HomeAssistant  # re-exported: the outputs section
from trafficprn.config_outputs import MqttOutput as MqttOutput
from trafficprn.config_outputs import MqttTls as MqttTls
from trafficprn.config_outputs import OutputsSection
from trafficprn.config_outputs import WebhookOutput as WebhookOutput
from trafficprn.errors import ConfigError
from trafficprn.plate_syntax import FIELD as PLATE_FIELD
from trafficprn.plate_syntax import parse_plate_format

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Point = tuple[FiniteFloat, FiniteFloat]
# Leg and lane names travel into database keys, CSV headers and MQTT topics.
ZoneName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
MAX_POLYGON_POINTS = 64


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- site / privacy
class SiteSection(_Model):
    name: str = Field(title="Site name", description="Short name of the intersection, e.g. main-and-5th.")
    timezone: str = Field("UTC", title="Time zone", description="IANA zone; count intervals align to its clock.")
    driving_side: Literal["right", "left"] = Field(
        "right", title="Driving side", description="right or left: decides which turn is a left turn."
    )
    interval_minutes: int = Field(
        15, ge=1, le=60, title="Count interval", description="Minutes per count interval (divides 60)."
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA time zone such as Europe/Berlin, got {v!r}") from None
        return v

    @field_validator("interval_minutes")
    @classmethod
    def _divides_hour(cls, v: int) -> int:
        if 60 % v:
            raise ValueError(f"expected a divisor of 60 (5, 10, 15, 30, 60), got {v}")
        return v


class RetentionDays(_Model):
    passages: int = Field(400, ge=1, title="Passage retention", description="Days to keep passages and queues.")
    plates: int = Field(30, ge=0, title="Plate retention", description="Days to keep plate text/hashes.")


class PrivacySection(_Model):
    plates: Literal["off", "hash", "clear"] = Field(
        "hash", title="Plate mode", description="off: no plates; hash: HMAC-SHA256 keyed; clear: plain text."
    )
    plate_format: str | list[str] = Field(
        "auto",
        title="Plate format",
        description="Plate syntax: a template (L letter, D digit, * either, e.g. LLL-DDDD), a list of "
        "them, a region (us, eu, br, de, fr, ...) or auto (every preset); none: keep raw reads. The reader "
        "decodes plates under it; the sim renders the first template.",
    )
    retention_days: RetentionDays = Field(default_factory=RetentionDays, title="Retention", description="Purge ages.")

    @field_validator("plate_format")
    @classmethod
    def _plate_syntax(cls, v: str | list[str]) -> str | list[str]:
        try:
            parse_plate_format(v)
        except ConfigError as exc:  # pydantic names the field (privacy.plate_format)
            raise ValueError(str(exc).removeprefix(f"{PLATE_FIELD}: ")) from None
        return v


# ---------------------------------------------------------------- lenses
def _check_size(v: tuple[int, int]) -> tuple[int, int]:
    if v[0] < 1 or v[1] < 1:
        raise ValueError(f"expected a positive [width, height] in px, got {list(v)}")
    return v


class _FisheyeLens(_Model):
    image_size: tuple[int, int] = Field(title="Image size", description="[width, height] in px.")
    _size = field_validator("image_size")(_check_size)
    center_px: Point = Field(title="Centre", description="Optical centre [x, y] in image px.")
    radius_px: float = Field(gt=0, title="Image-circle radius", description="Radius of the image circle in px.")
    fov_deg: float = Field(title="Field of view", description="Full field of view of the image circle, degrees.")

    @field_validator("fov_deg")
    @classmethod
    def _fov(cls, v: float) -> float:
        if not 0 < v <= 360:
            raise ValueError(f"expected a field of view in (0, 360] degrees, got {v}")
        return v


class EquidistantLens(_FisheyeLens):
    model: Literal["equidistant"] = Field(title="Lens model", description="r = f * theta.")


class EquisolidLens(_FisheyeLens):
    model: Literal["equisolid"] = Field(title="Lens model", description="r = 2 f sin(theta / 2).")


class StereographicLens(_FisheyeLens):
    model: Literal["stereographic"] = Field(title="Lens model", description="r = 2 f tan(theta / 2); fov < 360.")

    @field_validator("fov_deg")
    @classmethod
    def _stereo_fov(cls, v: float) -> float:
        if v >= 358:
            raise ValueError(f"a stereographic lens covers less than 358 degrees, got {v}")
        return v


class OrthographicLens(_FisheyeLens):
    model: Literal["orthographic"] = Field(title="Lens model", description="r = f sin(theta); fov <= 180.")

    @field_validator("fov_deg")
    @classmethod
    def _ortho_fov(cls, v: float) -> float:
        if v > 180:
            raise ValueError(f"an orthographic lens covers at most 180 degrees, got {v}")
        return v


class _Intrinsics(_Model):
    image_size: tuple[int, int] = Field(title="Image size", description="[width, height] in px.")
    _size = field_validator("image_size")(_check_size)
    fx: float = Field(gt=0, title="fx", description="Focal length in px along x.")
    fy: float = Field(gt=0, title="fy", description="Focal length in px along y.")
    cx: float = Field(title="cx", description="Principal point x in px.")
    cy: float = Field(title="cy", description="Principal point y in px.")


class KannalaBrandtLens(_Intrinsics):
    model: Literal["kannala_brandt"] = Field(title="Lens model", description="OpenCV cv2.fisheye model.")
    k: tuple[float, float, float, float] = Field(
        (0.0, 0.0, 0.0, 0.0), title="Distortion", description="k1..k4 of theta_d = theta(1 + k1 theta^2 + ...)."
    )
    fov_deg: float = Field(
        190.0, gt=0, le=360, title="Field of view", description="Valid field of view, degrees."
    )


class PinholeLens(_Intrinsics):
    model: Literal["pinhole"] = Field(title="Lens model", description="Pinhole with Brown-Conrady distortion.")
    dist: tuple[float, float, float, float, float] = Field(
        (0.0, 0.0, 0.0, 0.0, 0.0), title="Distortion", description="k1, k2, p1, p2, k3 as in OpenCV."
    )


LensConfig = Annotated[
    Union[EquidistantLens, EquisolidLens, StereographicLens, OrthographicLens, KannalaBrandtLens, PinholeLens],
    Field(discriminator="model"),
]
LENS_MODELS = ("equidistant", "equisolid", "stereographic", "orthographic", "kannala_brandt", "pinhole")


# ---------------------------------------------------------------- detector / calibration
class ViewConfig(_Model):
    name: str = Field(title="View name", description="Name of a dewarped perspective view.")
    yaw_deg: float = Field(0.0, title="Yaw", description="Rotation about the optical axis' up, degrees.")
    pitch_deg: float = Field(0.0, title="Pitch", description="Angle away from the optical axis, degrees.")
    roll_deg: float = Field(0.0, title="Roll", description="Roll of the view, degrees.")
    fov_deg: float = Field(90.0, title="Horizontal FOV", description="Horizontal field of view, (0, 180).")
    size: tuple[int, int] = Field((640, 480), title="Size", description="[width, height] of the view in px.")

    @field_validator("fov_deg")
    @classmethod
    def _fov(cls, v: float) -> float:
        if not 0 < v < 180:
            raise ValueError(f"expected a perspective field of view in (0, 180) degrees, got {v}")
        return v


class DetectorConfig(_Model):
    model: str = Field(
        "bundled", title="Model", description="'bundled' or a path to a model .onnx (with its .json beside it)."
    )
    input_size: int = Field(416, ge=32, title="Input size", description="Network input size, multiple of 32.")
    confidence: float = Field(0.25, gt=0, lt=1, title="Confidence threshold", description="Minimum score.")
    nms_iou: float = Field(0.45, gt=0, le=1, title="NMS IoU", description="IoU above which NMS suppresses.")
    threads: int = Field(1, ge=1, title="Threads", description="ONNX Runtime intra-op threads.")
    views: list[ViewConfig] = Field(
        default_factory=list, title="Detection views", description="Optional: detect on these dewarped views."
    )

    @field_validator("input_size")
    @classmethod
    def _mult32(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"expected a multiple of 32, got {v}")
        return v


class CalibrationPoint(_Model):
    image_px: Point = Field(title="Image point", description="[x, y] in image px.")
    ground_m: Point = Field(title="Ground point", description="[x, y] in metres on the road plane.")


class KnownDistance(_Model):
    a_px: Point = Field(title="First point", description="[x, y] image px of one end of a measured ground distance.")
    b_px: Point = Field(title="Second point", description="[x, y] image px of the other end.")
    distance_m: float = Field(gt=0, title="Distance", description="The measured distance between them on the road, m.")


class PoseCalibration(_Model):
    height_m: float = Field(gt=0, title="Camera height", description="Height of the camera over the road, m.")
    tilt_deg: float = Field(
        ge=0,
        le=90,
        title="Tilt",
        description="Downward tilt of the optical axis from horizontal, degrees (90: looking straight down).",
    )
    roll_deg: float = Field(0.0, ge=-45, le=45, title="Roll", description="Roll of the camera about its axis, degrees.")
    known_distance: KnownDistance | None = Field(
        None,
        title="Known distance",
        description="Optional: two image points a measured distance apart; rescales the height to fit it.",
    )


class CalibrationConfig(_Model):
    points: list[CalibrationPoint] = Field(
        default_factory=list, title="Point pairs", description=">= 4 surveyed image/ground pairs."
    )
    pose: PoseCalibration | None = Field(
        None, title="Pose", description="Alternative: camera height, tilt (and a known distance)."
    )

    @model_validator(mode="after")
    def _enough(self) -> CalibrationConfig:
        if self.pose is None and len(self.points) < 4:
            raise ValueError(f"expected at least 4 surveyed point pairs (or a pose), got {len(self.points)}")
        return self


# ---------------------------------------------------------------- legs / lanes / queue
Polygon = list[Point]


def _check_polygon(v: Polygon) -> Polygon:
    if len(v) < 3:
        raise ValueError(f"expected a polygon of at least 3 points, got {len(v)}")
    if len(v) > MAX_POLYGON_POINTS:
        raise ValueError(f"expected a polygon of at most {MAX_POLYGON_POINTS} points, got {len(v)}")
    return v


class LegConfig(_Model):
    name: ZoneName = Field(title="Leg name", description="Arm of the junction, by compass side (N, E, S, W); "
                           "letters, digits, '-', '_', '.', at most 32.")
    entry: Polygon = Field(title="Entry zone", description="Image px polygon over the inbound lanes at the stop line.")
    exit: Polygon = Field(title="Exit zone", description="Image px polygon over the outbound lanes.")

    _entry = field_validator("entry")(_check_polygon)
    _exit = field_validator("exit")(_check_polygon)


class LaneConfig(_Model):
    name: ZoneName = Field(title="Lane name", description="e.g. N-1; letters, digits, '-', '_', '.', at most 32.")
    leg: ZoneName = Field(title="Leg", description="Name of the leg this lane approaches on.")
    polygon: Polygon = Field(title="Lane polygon", description="Image px polygon over the lane, upstream of the stop line.")
    stop_line: tuple[Point, Point] = Field(title="Stop line", description="Two image px points on the stop line.")

    _poly = field_validator("polygon")(_check_polygon)

    @field_validator("stop_line")
    @classmethod
    def _line(cls, v: tuple[Point, Point]) -> tuple[Point, Point]:
        if v[0] == v[1]:
            raise ValueError(f"expected two distinct points, got {list(v)} twice")
        return v


class QueueConfig(_Model):
    stopped_kmh: float = Field(5.0, gt=0, title="Stopped speed", description="Below this a vehicle may be queued.")
    dwell_s: float = Field(2.0, ge=0, title="Dwell", description="Seconds below stopped_kmh before it counts.")
    max_gap_m: float = Field(8.0, gt=0, title="Max gap", description="Largest gap inside one queue, metres.")


class SupportedZone(_Model):
    name: ZoneName = Field(title="Zone", description="Name of the suggested leg or lane.")
    tracks: int = Field(ge=0, title="Support", description="Tracks of the footage that support it.")


class FittedCalibration(_Model):
    method: Literal["traffic", "pose", "points", "map"] = Field(
        title="Method", description="How the calibration was obtained: from traffic, the site's pose or points, "
        "or map pairs.")
    values: dict[str, FiniteFloat] = Field(
        default_factory=dict, title="Fitted values", description="e.g. focal_px, height_m, tilt_deg, roll_deg.")
    uncertainty: dict[str, FiniteFloat] = Field(
        default_factory=dict, title="Uncertainty", description="One standard deviation of each fitted value.")
    scale_source: str = Field("", title="Scale source", description="Where the metric scale came from "
                              "(a published vehicle-size prior, a lane width, a survey).")


class Suggestion(_Model):
    """What `trafficprn setup suggest` found; the worker ignores it, the setup page shows it."""

    source: str = Field(title="Footage", description="The video the suggestion was made from.")
    minutes: FiniteFloat = Field(ge=0, title="Minutes", description="Minutes of footage used.")
    tracks: int = Field(ge=0, title="Tracks", description="Vehicle tracks found in the footage.")
    naming: str = Field("", title="Naming rule", description="How the legs were named.")
    legs: list[SupportedZone] = Field(default_factory=list, title="Legs", description="Support per suggested leg.")
    lanes: list[SupportedZone] = Field(default_factory=list, title="Lanes", description="Support per suggested lane.")
    calibration: FittedCalibration | None = Field(None, title="Calibration", description="How it was fitted.")


class CameraConfig(_Model):
    name: str = Field(title="Camera name", description="Unique name; the worker's camera id.")
    source: str = Field(title="Source", description="RTSP/HTTP URL, video file path or /dev/videoN.")
    process_fps: float = Field(15.0, gt=0, title="Process fps", description="Frames beyond this rate are dropped.")
    live_url: str | None = Field(None, title="Live URL", description="The worker's HTTP endpoint, for the API.")
    lens: LensConfig = Field(title="Lens", description="Camera model: " + " | ".join(LENS_MODELS) + ".")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, title="Detector", description="PRN settings.")
    calibration: CalibrationConfig = Field(title="Calibration", description="Image px -> ground m.")
    legs: list[LegConfig] = Field(default_factory=list, title="Legs", description="One per arm of the junction.")
    lanes: list[LaneConfig] = Field(default_factory=list, title="Lanes", description="For queue length.")
    queue: QueueConfig = Field(default_factory=QueueConfig, title="Queue", description="Queue rule.")
    suggestion: Suggestion | None = Field(
        None, title="Suggestion", description="Written by `trafficprn setup suggest`: support and fit; not used to count.")


class SiteConfig(_Model):
    site: SiteSection = Field(title="Site", description="Name, time zone, driving side, interval.")
    privacy: PrivacySection = Field(default_factory=PrivacySection, title="Privacy", description="Plates, retention.")
    cameras: list[CameraConfig] = Field(min_length=1, title="Cameras", description="One worker per camera.")
    outputs: OutputsSection = Field(
        default_factory=OutputsSection, title="Outputs", description="Optional: MQTT and webhooks besides the database."
    )

    @model_validator(mode="after")
    def _unique(self) -> SiteConfig:
        names = [c.name for c in self.cameras]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"camera names must be unique, {name!r} repeats", field=f"cameras[{i}].name")
        for i, cam in enumerate(self.cameras):
            check_camera(cam, f"cameras[{i}]")  # raises ConfigError with the exact field path
        return self

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise ConfigError(f"no camera named {name!r}; the site has {[c.name for c in self.cameras]}", field="cameras")


# ---------------------------------------------------------------- cross-field checks
def _lens_half_fov_deg(lens: LensConfig) -> float:
    """Half the field of view that lands on the image, degrees (pinhole: to the farthest corner)."""
    if isinstance(lens, PinholeLens):
        w, h = lens.image_size
        dx = max(lens.cx, w - lens.cx) / lens.fx
        dy = max(lens.cy, h - lens.cy) / lens.fy
        return float(math.degrees(math.atan(math.hypot(dx, dy))))
    return lens.fov_deg / 2.0


def check_camera(cam: CameraConfig, prefix: str = "") -> None:
    """Cross-field checks of one camera; raises ConfigError naming the field (under `prefix`,
    e.g. ``cameras[0]``): leg names unique, lanes refer to legs, leg zones of different legs
    do not overlap, views look into the image circle."""
    from trafficprn.geometry.polygons import polygons_overlap  # pure numpy maths

    def at(path: str) -> str:
        return f"{prefix}.{path}" if prefix else path

    names = [leg.name for leg in cam.legs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"leg names must be unique, {name!r} repeats", field=at(f"legs[{i}].name"))
    for i, lane in enumerate(cam.lanes):
        if lane.leg not in names:
            raise ConfigError(
                f"lane {lane.name!r} refers to leg {lane.leg!r}; expected one of {names}", field=at(f"lanes[{i}].leg")
            )
    zones = [(i, kind, getattr(leg, kind)) for i, leg in enumerate(cam.legs) for kind in ("entry", "exit")]
    for a, (i, kind_a, poly_a) in enumerate(zones):
        for j, kind_b, poly_b in zones[:a]:
            if i != j and polygons_overlap(poly_a, poly_b):
                raise ConfigError(
                    f"overlaps legs[{j}].{kind_b} ({cam.legs[j].name}); zones of different legs must not overlap",
                    field=at(f"legs[{i}].{kind_a}"),
                )
    half = _lens_half_fov_deg(cam.lens)
    for j, view in enumerate(cam.detector.views):
        if view.pitch_deg > half:
            raise ConfigError(
                f"view {view.name!r} looks outside the image circle: pitch {view.pitch_deg} deg, "
                f"the lens sees up to {half:.1f} deg off its axis",
                field=at(f"detector.views[{j}]"),
            )


# ---------------------------------------------------------------- loading
def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in LENS_MODELS:  # discriminated-union tag, not a field
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def config_error_from(exc: ValidationError, source: str | None = None) -> ConfigError:
    """The first validation error as a ConfigError naming the field path."""
    err = exc.errors()[0]
    path = _field_path(tuple(err["loc"]))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif err["type"] == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", err.get("input"))
        msg = f"unknown lens model {tag!r}; expected one of {', '.join(LENS_MODELS)}"
    elif err["type"] == "union_tag_not_found":
        msg = f"missing lens model; expected model: one of {', '.join(LENS_MODELS)}"
    elif err["type"] == "missing":
        msg = "field required"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return ConfigError(msg, field=path or None, source=source)


def parse_site(data: Any, source: str | None = None) -> SiteConfig:
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(exc, source) from None
    except ConfigError as exc:
        if exc.source is None and source is not None:
            raise ConfigError(str(exc).removeprefix(f"{exc.field}: "), field=exc.field, source=source) from None
        raise


def read_site_yaml(path: Path) -> dict[str, Any]:
    """A site.yaml's YAML as a mapping, not yet validated; ConfigError naming the file (and
    the line of a YAML error) when it cannot be read or is not a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read site config: {exc.strerror}", source=str(path)) from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C parser when built
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=where) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with site, privacy and cameras", source=str(path))
    return data


def load_site(path: str | Path) -> SiteConfig:
    """Read and validate a site.yaml; relative camera sources resolve against its folder."""
    path = Path(path)
    site = parse_site(read_site_yaml(path), source=str(path))
    return _resolve_sources(site, path.parent)


def _resolve_sources(site: SiteConfig, base: Path) -> SiteConfig:
    cams = []
    for cam in site.cameras:
        src = cam.source
        if "://" not in src and not src.startswith("/dev/") and not Path(src).is_absolute():
            src = str((base / src).resolve())
        cams.append(cam.model_copy(update={"source": src}))
    return site.model_copy(update={"cameras": cams})


def dump_site(site: SiteConfig, path: str | Path) -> None:
    """Write a site config as YAML (used by the sim and the setup page)."""
    data = site.model_dump(mode="json", exclude_none=True)
    if site.outputs.empty:
        data.pop("outputs", None)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    Path(path).write_text(yaml.dump(data, Dumper=dumper, sort_keys=False), encoding="utf-8")

