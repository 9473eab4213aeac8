"""`trafficprn setup suggest`: a camera's legs, lanes (and, for a pole camera without one,
its calibration) from its own footage, written as a complete, valid site.yaml.

    result = suggest_site(SuggestRequest(site, "pole-1", video, out))

The site file is read leniently: the camera may lack `calibration` (then it is fitted from
the traffic, `setup.calibrate`) and, for a pinhole camera, `lens` (it comes with the
traffic calibration, the image size from the video). Its legs, lanes and suggestion are
replaced. Ground polygons are projected to image px through the calibration and kept to
where the camera sees the road; the result is validated through `SiteConfig` (so
`check_camera`) and `Calibration.from_camera` before it is written.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import TypeAdapter, ValidationError

from trafficprn.camera.calibration import Calibration
from trafficprn.config import (
    CalibrationConfig,
    CameraConfig,
    DetectorConfig,
    FittedCalibration,
    LaneConfig,
    LegConfig,
    LensConfig,
    PinholeLens,
    QueueConfig,
    SiteConfig,
    Suggestion,
    SupportedZone,
    config_error_from,
    parse_site,
    read_site_yaml,
)
from trafficprn.errors import ConfigError, SetupError
from trafficprn.setup.calibrate import calibrate_from_traffic
from trafficprn.setup.footage import (
    MIN_MINUTES,
    Footage,
    background_samples,
    camera_detector,
    check_background,
    check_duration,
    check_moving_traffic,
    collect_tracks,
    probe_video,
)
from trafficprn.setup.ground import ground_tracks
from trafficprn.setup.lanes import SuggestedLane, suggest_lanes
from trafficprn.setup.legs import NAMING_RULE, SuggestedLeg, suggest_legs
from trafficprn.setup.tracks import ObservedTrack
from trafficprn.types import Detector, FloatArray

EDGE_MARGIN_PX = 4.0  # zones keep this far inside the image (and the image circle)


@dataclass(frozen=True)
class SuggestRequest:
    site: Path
    camera: str
    video: Path
    out: Path
    minutes: float | None = 10.0  # footage used (None: all)
    lane_width_m: float | None = None  # passed to the traffic calibration; lane borders use it too
    min_minutes: float = MIN_MINUTES  # footage shorter than this is refused (tests use less)


@dataclass(frozen=True)
class SuggestResult:
    site: SiteConfig
    camera: CameraConfig
    legs: list[SuggestedLeg]
    lanes: list[SuggestedLane]
    footage: Footage


@dataclass(frozen=True)
class _RawCamera:
    """The camera entry as the site file has it, before its geometry is known."""

    data: dict[str, Any]
    site: dict[str, Any]
    index: int
    lens: LensConfig | None
    calibration: CalibrationConfig | None
    detector: DetectorConfig
    queue: QueueConfig
    process_fps: float
    driving_side: str


def read_site_leniently(path: Path, camera: str) -> _RawCamera:
    data = read_site_yaml(path)
    if not isinstance(data.get("cameras"), list):
        raise ConfigError("expected a list of cameras", field="cameras", source=str(path))
    names = [c.get("name") for c in data["cameras"] if isinstance(c, dict)]
    if camera not in names:
        raise ConfigError(f"no camera named {camera!r}; the site has {names}", field="cameras", source=str(path))
    index = names.index(camera)
    cam = dict(data["cameras"][index])
    field = f"cameras[{index}]"

    def part(key: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(cam[key])
        except ValidationError as exc:
            err = config_error_from(exc, str(path))
            raise ConfigError(str(err).split(": ", 1)[-1], field=f"{field}.{key}", source=str(path)) from None

    lens = part("lens", TypeAdapter(LensConfig).validate_python) if "lens" in cam else None
    calibration = part("calibration", CalibrationConfig.model_validate) if "calibration" in cam else None
    detector = part("detector", DetectorConfig.model_validate) if "detector" in cam else DetectorConfig()
    queue = part("queue", QueueConfig.model_validate) if "queue" in cam else QueueConfig()
    if calibration is not None and lens is None:
        raise ConfigError("a camera with a calibration needs its lens", field=f"{field}.lens", source=str(path))
    side = str((data.get("site") or {}).get("driving_side", "right"))
    return _RawCamera(cam, data, index, lens, calibration, detector, queue, float(cam.get("process_fps", 15.0)), side)


def suggest_site(req: SuggestRequest, *, detector: Detector | None = None,
                 progress: Callable[[int], None] | None = None) -> SuggestResult:
    """Check the footage, track it, fit legs and lanes, validate and write `req.out`."""
    raw = read_site_leniently(req.site, req.camera)
    video = probe_video(req.video)
    check_duration(video, req.min_minutes)
    check_background(video, background_samples(video))
    if raw.lens is not None and tuple(raw.lens.image_size) != video.image_size:
        raise SetupError(f"{video.path}: frames are {video.image_size[0]}x{video.image_size[1]} px, the camera's "
                         f"lens says {raw.lens.image_size[0]}x{raw.lens.image_size[1]}")
    if detector is None:
        detector = camera_detector(raw.detector, raw.lens, req.site.parent)
    footage = collect_tracks(req.camera, raw.process_fps, raw.lens, video, detector, minutes=req.minutes,
                             progress=progress)
    check_moving_traffic(video, footage.tracks)
    lens, calibration, fit = _calibration(raw, footage.tracks, video.image_size, req.lane_width_m)
    base = _camera(raw, lens, calibration, [], [], None)
    cal = Calibration.from_camera(base)
    visible = _visibility(cal)
    legs = suggest_legs(ground_tracks(footage.tracks, cal), raw.queue, visible, raw.driving_side)
    lanes = [lane for leg in legs for lane in suggest_lanes(leg, visible, lane_width_m=req.lane_width_m,
                                                            driving_side=raw.driving_side)]
    leg_cfgs = [_leg_config(leg, cal) for leg in legs if leg.entry_m is not None and leg.exit_m is not None]
    if len(leg_cfgs) < 2:
        raise SetupError(f"only {len(leg_cfgs)} leg(s) have both an entry and an exit the camera sees; a junction "
                         "needs at least 2")
    kept = {leg.name for leg in leg_cfgs}
    lanes = [lane for lane in lanes if lane.leg in kept]
    suggestion = Suggestion(
        source=str(req.video), minutes=round(footage.seconds / 60.0, 2), tracks=len(footage.tracks),
        naming=NAMING_RULE,
        legs=[SupportedZone(name=leg.name, tracks=leg.support) for leg in legs if leg.name in kept],
        lanes=[SupportedZone(name=lane.name, tracks=lane.support) for lane in lanes],
        calibration=fit,
    )
    camera = _camera(raw, lens, calibration, leg_cfgs, [_lane_config(lane, cal) for lane in lanes], suggestion)
    site = _site(raw, camera)
    Calibration.from_camera(site.cameras[raw.index])
    write_site(site, raw, req.out)
    return SuggestResult(site, site.cameras[raw.index], [leg for leg in legs if leg.name in kept], lanes, footage)


def _calibration(raw: _RawCamera, tracks: list[ObservedTrack], image_size: tuple[int, int],
                 lane_width_m: float | None) -> tuple[LensConfig, CalibrationConfig, FittedCalibration]:
    if raw.calibration is not None and raw.lens is not None:
        cal = raw.calibration
        if cal.pose is not None and len(cal.points) < 4:
            values = {"height_m": cal.pose.height_m, "tilt_deg": cal.pose.tilt_deg, "roll_deg": cal.pose.roll_deg}
            return raw.lens, cal, FittedCalibration(method="pose", values=values, scale_source="the site's pose")
        return raw.lens, cal, FittedCalibration(method="points", scale_source="surveyed point pairs")
    focal_px: float | None = None
    if isinstance(raw.lens, PinholeLens):
        focal_px = (raw.lens.fx + raw.lens.fy) / 2.0  # the data sheet's; from traffic it is the weak part
    elif raw.lens is not None:
        raise SetupError(f"camera {raw.data.get('name')!r} has a {raw.lens.model} lens and no calibration; traffic "
                         "calibrates pinhole (pole) cameras only: give a fisheye calibration.pose (height_m, "
                         "tilt_deg: 90) or calibration.points")
    fitted = calibrate_from_traffic(tracks, image_size, lane_width_m=lane_width_m, focal_px=focal_px)
    # The fit's lens: the same focal (when given), principal point at the image centre and no
    # distortion, which is what its calibration points were computed through.
    return fitted.lens, fitted.calibration, fitted.fit


def _camera(raw: _RawCamera, lens: LensConfig, calibration: CalibrationConfig, legs: list[LegConfig],
            lanes: list[LaneConfig], suggestion: Suggestion | None) -> CameraConfig:
    data = {k: v for k, v in raw.data.items() if k not in ("lens", "calibration", "legs", "lanes", "suggestion")}
    try:
        return CameraConfig.model_validate({**data, "lens": lens, "calibration": calibration, "legs": legs,
                                            "lanes": lanes, "suggestion": suggestion})
    except ValidationError as exc:
        raise config_error_from(exc, f"cameras[{raw.index}]") from None


def _site(raw: _RawCamera, camera: CameraConfig) -> SiteConfig:
    data = dict(raw.site)
    cams = list(data["cameras"])
    cams[raw.index] = camera.model_dump(mode="json", exclude_none=True)
    data["cameras"] = cams
    try:
        return parse_site(data, source="suggested site")
    except ConfigError as exc:
        raise SetupError(f"the suggestion does not validate ({exc}); please report this with the footage") from None


def _visibility(cal: Calibration) -> Callable[[FloatArray], np.ndarray]:
    """Ground points (N, 2) m -> (N,) whether the camera sees them EDGE_MARGIN_PX inside the image."""
    lens = cal.lens
    w, h = lens.image_size
    m = EDGE_MARGIN_PX
    steps = np.array([[m, 0.0], [-m, 0.0], [0.0, m], [0.0, -m]])

    def visible(ground_m: FloatArray) -> np.ndarray:
        px = cal.ground_to_image(ground_m)
        ok = np.isfinite(px).all(axis=1)
        ok &= (px[:, 0] >= m) & (px[:, 0] <= w - 1 - m) & (px[:, 1] >= m) & (px[:, 1] <= h - 1 - m)
        for d in steps:
            ok &= lens.valid(np.where(np.isfinite(px), px, 0.0) + d)
        return np.asarray(ok, dtype=bool)

    return visible


def _densify(polygon_m: FloatArray, per_edge: int) -> FloatArray:
    """The polygon with each edge cut into `per_edge` pieces (edges bend through a fisheye)."""
    nxt = np.roll(polygon_m, -1, axis=0)
    f = np.linspace(0.0, 1.0, per_edge, endpoint=False)
    return np.asarray((polygon_m[:, None, :] + f[None, :, None] * (nxt - polygon_m)[:, None, :]).reshape(-1, 2),
                      dtype=np.float64)


def _to_image(cal: Calibration, ground_m: FloatArray, what: str) -> list[tuple[float, float]]:
    px = cal.ground_to_image(ground_m)
    if not np.isfinite(px).all():
        raise SetupError(f"{what}: part of it falls outside the camera's view; please report this with the footage")
    return [(round(float(x), 1), round(float(y), 1)) for x, y in px]


def _leg_config(leg: SuggestedLeg, cal: Calibration) -> LegConfig:
    assert leg.entry_m is not None and leg.exit_m is not None  # filtered by the caller
    return LegConfig(name=leg.name, entry=_to_image(cal, _densify(leg.entry_m, 4), f"leg {leg.name} entry"),
                     exit=_to_image(cal, _densify(leg.exit_m, 4), f"leg {leg.name} exit"))


def _lane_config(lane: SuggestedLane, cal: Calibration) -> LaneConfig:
    line = _to_image(cal, lane.stop_line_m, f"lane {lane.name} stop line")
    return LaneConfig(name=lane.name, leg=lane.leg, polygon=_to_image(cal, lane.polygon_m, f"lane {lane.name}"),
                      stop_line=(line[0], line[1]))


def write_site(site: SiteConfig, raw: _RawCamera, out: Path) -> None:
    """The site as YAML, headed by a comment that says where the geometry came from and the
    naming rule; other cameras and sections as validated."""
    data = site.model_dump(mode="json", exclude_none=True)
    if site.outputs.empty:
        data.pop("outputs", None)
    cam = site.cameras[raw.index]
    header = [
        f"# Suggested by `trafficprn setup suggest` for camera {cam.name!r} from {cam.suggestion.source if cam.suggestion else ''}.",
        "# Check the zones on the setup page before counting with it.",
        *_wrap("# Naming rule: " + NAMING_RULE),
        "",
    ]
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header) + yaml.dump(data, Dumper=dumper, sort_keys=False), encoding="utf-8")


def _wrap(text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width=width, subsequent_indent="#   ")
