"""A pole camera's calibration from its traffic alone, for sites with no survey.

Method (single-view metrology from vehicle motion; `calibrate_vps.py`, `calibrate_scale.py`):

1. Each track's box centres are cut into straight stretches (Douglas-Peucker); each
   stretch becomes an image line.
2. RANSAC over line pairs finds the vanishing points of the two dominant road directions;
   the one nearer the image centre (the better determined) is kept. The two roads are taken
   as orthogonal on the ground, the principal point at the image centre and pixels square:
   then a focal and a roll about the first direction place the second vanishing point,
   f^2 = -(v1 - c) . (v2 - c), and give the camera's rotation (tilt and roll: the horizon).
3. Scale (camera height): a cuboid of the published car-size prior
   (`priors.EUROPEAN_CAR_2022`) is stood on each unoccluded moving car's box bottom-centre,
   heading along its motion, and projected; the height is the one at which the median over
   tracks of the log ratio of observed to projected box width is zero. With a user-given
   lane width the spacing of neighbouring lanes of traffic sets it instead.
4. Twice: the lines are fitted again through each observation's cuboid footprint centre
   (one point fixed to the vehicle, unlike a box corner), and the focal is chosen where
   cars' apparent widths best follow their distance along their own tracks, among the
   focals the crossing road's lines cannot tell apart (nearly parallel in the image, and
   tilted by lane changes); the lines then refine the first vanishing point and roll, and
   the focal within 2 %.
5. Uncertainty: one standard deviation over a bootstrap of the tracks.

Ground frame of `calibration.points`: metres on the road plane, +y along the road
direction nearest the camera's forward view (pointing away from the camera), +x to its
right (+x, +y, up is right-handed), origin at the middle of the traffic (the median
ground point of the tracks). A camera looking up a road thus sees that road's far leg
at +y (north).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trafficprn.config import CalibrationConfig, CalibrationPoint, FittedCalibration, PinholeLens
from trafficprn.errors import SetupError
from trafficprn.setup.calibrate_scale import (
    Camera,
    CarSightings,
    car_sightings,
    footprint_anchors,
    height_from_car_sizes,
    height_from_lanes,
    sighting_headings,
    size_inconsistency,
    size_log_ratios,
)
from trafficprn.setup.calibrate_vps import (
    FOCAL_STEP,
    INLIER_DEG,
    Lines,
    RoadDirections,
    best_roll,
    camera_from_vps,
    crossing,
    focal_candidates,
    refine_directions,
    road_directions,
    second_vp,
    settle,
    track_lines,
    vp_residuals,
)
from trafficprn.setup.priors import EUROPEAN_CAR_2022, VehicleSizePrior
from trafficprn.setup.tracks import ObservedTrack

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

BOOTSTRAP_ROUNDS = 20
ANCHOR_ROUNDS = 2
FOCAL_KEEP = 0.75  # focals whose crossing-road lines score at least this share of the best
FOCAL_SLACK = 1.02  # the lines may move the size-chosen focal by this factor
FOCAL_FIXED = 1.0005  # a known focal stays put (the least-squares bounds must not meet)
ACROSS_VIEW_DEG = 45.0  # a first road direction this far off the optical axis crosses the view
SIZE_ROLL_DEG = 30.0  # rolls about a road crossing the view searched by car sizes: +- this
SIZE_ROLL_STEP_DEG = 1.0
GROUNDED_SHARE = 0.99  # a roll must stand the prior's car on this share of the moving car sightings


@dataclass(frozen=True)
class TrafficCalibration:
    """What `calibrate_from_traffic` found: a pinhole lens (fx = fy = the fitted focal,
    principal point at the image centre, no distortion), the ground calibration as >= 9
    image/ground point pairs in the frame of the module docstring, and the fitted values
    with their 1-sd uncertainty."""

    lens: PinholeLens
    calibration: CalibrationConfig
    fit: FittedCalibration


def pose_angles(rotation: FloatArray) -> tuple[float, float, float]:
    """(tilt_deg, roll_deg, yaw_deg) of a rotation from `camera_from_vps`, in the
    conventions of `camera.calibration.pose_rotation`; yaw is the optical axis' heading from
    the ground +y, positive towards +x."""
    up = rotation[2]
    tilt = float(np.degrees(np.arcsin(np.clip(-up[2], -1.0, 1.0))))
    roll = float(np.degrees(np.arctan2(-up[0], -up[1])))
    axis = rotation @ np.array([0.0, 0.0, 1.0])
    yaw = float(np.degrees(np.arctan2(axis[0], axis[1])))
    return tilt, roll, yaw


# ---------------------------------------------------------------- the whole fit
@dataclass(frozen=True)
class _Fit:
    camera: Camera
    scale_source: str


def _fit_once(
    dirs: RoadDirections, lines: Lines, cars: CarSightings, lane_width_m: float | None, prior: VehicleSizePrior
) -> _Fit:
    """Camera from the two road directions, then its height from car sizes or lanes."""
    focal, rotation, first_is_y = camera_from_vps(dirs.first, dirs.second)
    cam = Camera(focal, rotation, 1.0)
    height: float | None = None
    source = ""
    try:
        height = height_from_car_sizes(cam, cars, prior)
        source = prior.source
    except SetupError:
        if lane_width_m is None:
            raise
    if lane_width_m is None:
        if height is None:  # unreachable: the prior's SetupError was re-raised
            raise SetupError("cannot scale the calibration from vehicle sizes")
        return _Fit(Camera(focal, rotation, height), source)
    along = (dirs.on_second, dirs.on_first) if first_is_y else (dirs.on_first, dirs.on_second)  # ground x, y
    guess = Camera(focal, rotation, height if height is not None else 1.0)
    lanes = height_from_lanes(guess, [lines.ground_mid[m] for m in along], [lines.length[m] for m in along],
                              lane_width_m)
    if lanes is not None:
        return _Fit(Camera(focal, rotation, lanes),
                    f"lane width {lane_width_m:g} m (user-given; spacing of neighbouring lanes of traffic)")
    if height is None:
        raise SetupError(
            "cannot scale the calibration: found neither two neighbouring lanes of traffic nor enough unoccluded "
            "moving cars"
        )
    return _Fit(Camera(focal, rotation, height), f"{source}; no two neighbouring lanes found for the {lane_width_m:g} m "
                "lane width")


def _with_focal(dirs: RoadDirections, lines: Lines, focal: float) -> RoadDirections:
    """`dirs` at `focal` (q units), with the roll that best places the crossing road."""
    thr = np.sin(np.radians(INLIER_DEG))
    on1 = np.abs(vp_residuals(dirs.first, lines)) < thr
    cross = crossing(dirs.first, lines)
    roll, _ = best_roll(dirs.first, focal, lines.take(cross))
    on2 = cross & (np.abs(vp_residuals(second_vp(dirs.first, focal, roll), lines)) < thr)
    return RoadDirections(dirs.first, focal, roll, on1, on2)


def crosses_view(first: FloatArray, focal: float) -> bool:
    """Whether the first road direction (vanishing point `first`, focal in q units) lies more
    than ACROSS_VIEW_DEG off the optical axis: a road seen across the view."""
    d = np.array([first[0], first[1], focal * first[2]])
    return bool(abs(d[2]) / np.linalg.norm(d) < np.cos(np.radians(ACROSS_VIEW_DEG)))


def _roll_by_sizes(dirs: RoadDirections, lines: Lines, cars: CarSightings, prior: VehicleSizePrior,
                   focal: float) -> RoadDirections:
    """`dirs` at `focal` with the roll about the first direction at which cars' apparent
    sizes best follow their distance along each track (`size_inconsistency`; a grid of
    SIZE_ROLL_STEP_DEG refined by a parabola). For a first road crossing the view this roll
    is the camera's tilt, which the crossing road's lines fix only when there are many: a
    side road that runs away from the camera (a T junction seen from its open side) leaves a
    few short lines near their vanishing point, which hardly fix it. Falls back to the lines
    (`_with_focal`) where no roll gives a size to compare."""
    rolls = np.radians(np.arange(-SIZE_ROLL_DEG, SIZE_ROLL_DEG + 1e-9, SIZE_ROLL_STEP_DEG))
    costs = np.full(len(rolls), np.inf)
    for i, roll in enumerate(rolls):
        try:
            f, rotation, _ = camera_from_vps(dirs.first, second_vp(dirs.first, focal, float(roll)))
        except SetupError:
            continue
        cam = Camera(f, rotation, 1.0)
        # cars stand on the ground: a camera that cannot stand the prior's car on their box
        # bottoms (below its horizon) is wrong, and would compare sizes over the near cars only,
        # which favours it
        heading, moving = sighting_headings(cam, cars)
        if not moving.any() or np.isfinite(size_log_ratios(cam, cars.take(moving), heading[moving], prior)).mean() \
                < GROUNDED_SHARE:
            continue
        costs[i] = size_inconsistency(cam, cars, prior)
    if not np.isfinite(costs).any():
        return _with_focal(dirs, lines, focal)
    k = int(np.argmin(costs))
    roll = float(rolls[k])
    if 0 < k < len(rolls) - 1 and np.all(np.isfinite(costs[k - 1 : k + 2])):
        c0, c1, c2 = costs[k - 1 : k + 2]
        curve = c0 - 2 * c1 + c2
        if curve > 0:
            roll += 0.5 * np.radians(SIZE_ROLL_STEP_DEG) * (c0 - c2) / curve
    thr = np.sin(np.radians(INLIER_DEG))
    on1 = np.abs(vp_residuals(dirs.first, lines)) < thr
    on2 = crossing(dirs.first, lines) & (np.abs(vp_residuals(second_vp(dirs.first, focal, roll), lines)) < thr)
    return RoadDirections(dirs.first, focal, roll, on1, on2)


def _focal_range(dirs: RoadDirections, known: float | None) -> tuple[float, float]:
    """The focals the refinement may move to: the known one (a lens from the camera's data
    sheet), else FOCAL_SLACK around the size-chosen one."""
    if known is not None:
        return known / FOCAL_FIXED, known * FOCAL_FIXED
    return dirs.focal / FOCAL_SLACK, dirs.focal * FOCAL_SLACK


def _select_focal(dirs: RoadDirections, lines: Lines, cars: CarSightings, prior: VehicleSizePrior,
                  known: float | None = None) -> RoadDirections:
    """The focal (and roll) at which cars' apparent sizes best follow their distance along
    each track, among the focals the crossing road's lines cannot tell apart: nearly parallel
    image lines far from their vanishing point hardly fix it, and lane changes and merges
    across the junction bias them towards parallel (a focal too long). The grid's best is
    refined by a parabola through its neighbours (in log focal). With a `known` focal (q
    units) only the roll is chosen."""
    if known is not None:
        if crosses_view(dirs.first, known):
            return _roll_by_sizes(dirs, lines, cars, prior, known)
        return _with_focal(dirs, lines, known)
    thr = np.sin(np.radians(INLIER_DEG))
    on1 = np.abs(vp_residuals(dirs.first, lines)) < thr
    cross = crossing(dirs.first, lines)
    rest = lines.take(cross)
    rows: list[tuple[float, float]] = []  # (log focal, cost)
    for focal, roll in focal_candidates(dirs.first, rest, keep=FOCAL_KEEP):
        try:
            f, rotation, _ = camera_from_vps(dirs.first, second_vp(dirs.first, focal, roll))
        except SetupError:
            continue
        rows.append((float(np.log(focal)), size_inconsistency(Camera(f, rotation, 1.0), cars, prior)))
    finite = [r for r in rows if np.isfinite(r[1])]
    if not finite:
        return dirs
    k = int(np.argmin([c for _, c in finite]))
    log_f = finite[k][0]
    if 0 < k < len(finite) - 1 and abs(finite[k + 1][0] - finite[k - 1][0] - 2 * np.log(FOCAL_STEP)) < 1e-6:
        (x0, c0), (x1, c1), (x2, c2) = finite[k - 1 : k + 2]
        curve = c0 - 2 * c1 + c2
        if curve > 0:
            log_f = x1 + 0.5 * (x1 - x0) * (c0 - c2) / curve
    focal = float(np.exp(log_f))
    roll, _ = best_roll(dirs.first, focal, rest)
    on2 = cross & (np.abs(vp_residuals(second_vp(dirs.first, focal, roll), lines)) < thr)
    return RoadDirections(dirs.first, focal, roll, on1, on2)


def calibrate_from_traffic(
    tracks: Sequence[ObservedTrack],
    image_size: tuple[int, int],
    *,
    lane_width_m: float | None = None,
    prior: VehicleSizePrior = EUROPEAN_CAR_2022,
    focal_px: float | None = None,
    seed: int = 0,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
) -> TrafficCalibration:
    """A pinhole camera's calibration from its tracks alone (see the module docstring).

    tracks: vehicle tracks in source-image px; image_size: (width, height) px.
    lane_width_m: the site's lane width, if known; it then sets the scale from the spacing of
    neighbouring lanes of traffic (the car-size prior where no lanes are found).
    focal_px: the lens' focal length in px where the site gives a pinhole lens (a data
    sheet's field of view); then only the pose and the height are fitted.
    bootstrap_rounds: resamplings of the tracks for the uncertainty (fewer than 3: none).
    Raises SetupError naming what the footage lacks (too few straight tracks, one road
    direction only, roads that cannot be orthogonal, too few cars to scale).
    """
    if lane_width_m is not None and not 1.5 <= lane_width_m <= 6.0:
        raise SetupError(f"expected a lane width of 1.5-6 m, got {lane_width_m} m")
    rng = np.random.default_rng(seed)
    if focal_px is not None and not (np.isfinite(focal_px) and focal_px > 0):
        raise SetupError(f"expected a positive focal length in px, got {focal_px}")
    lines, centre, scale = track_lines(tracks, image_size)
    known = None if focal_px is None else float(focal_px) / scale
    dirs = road_directions(lines, rng)
    cars = car_sightings(tracks, image_size, centre, scale)
    if known is not None:
        dirs = settle(_select_focal(dirs, lines, cars, prior, known), lines, focal_range=_focal_range(dirs, known),
                      fix_roll=_roll_from_sizes(dirs, known))
    fit = _fit_once(dirs, lines, cars, lane_width_m, prior)
    for _ in range(ANCHOR_ROUNDS):  # lines again, through fitted footprint centres instead of box centres
        anchors = footprint_anchors(fit.camera, tracks, image_size, centre, scale, prior)
        lines = track_lines(tracks, image_size, anchors)[0]
        dirs = _select_focal(dirs, lines, cars, prior, known)
        dirs = settle(dirs, lines, focal_range=_focal_range(dirs, known), fix_roll=_roll_from_sizes(dirs, known))
        fit = _fit_once(dirs, lines, cars, lane_width_m, prior)
    values = _values(fit.camera, scale)
    spread = _bootstrap(dirs, lines, cars, len(tracks), scale, lane_width_m, prior, rng, bootstrap_rounds, known)
    if known is not None:
        values["focal_px"] = float(focal_px)  # type: ignore[arg-type]  # checked above
        spread.pop("focal_px", None)
    lens = PinholeLens(model="pinhole", image_size=image_size, fx=values["focal_px"], fy=values["focal_px"],
                       cx=float(centre[0]), cy=float(centre[1]))
    origin = np.nanmedian(fit.camera.ground(lines.ground_mid), axis=0)
    points = _calibration_points(fit.camera, image_size, centre, scale, origin)
    return TrafficCalibration(
        lens=lens,
        calibration=CalibrationConfig(points=points),
        fit=FittedCalibration(method="traffic", values=values, uncertainty=spread, scale_source=fit.scale_source),
    )


def _roll_from_sizes(dirs: RoadDirections, known: float | None) -> bool:
    """Whether the roll is set by car sizes (`_roll_by_sizes`) and the lines must not move it."""
    return known is not None and crosses_view(dirs.first, known)


def _values(cam: Camera, scale: float) -> dict[str, float]:
    tilt, roll, yaw = pose_angles(cam.rotation)
    return {"focal_px": cam.focal * scale, "height_m": cam.height, "tilt_deg": tilt, "roll_deg": roll, "yaw_deg": yaw}


def _bootstrap(
    dirs: RoadDirections,
    lines: Lines,
    cars: CarSightings,
    n_tracks: int,
    scale: float,
    lane_width_m: float | None,
    prior: VehicleSizePrior,
    rng: np.random.Generator,
    rounds: int,
    known: float | None = None,
) -> dict[str, float]:
    """One standard deviation of each fitted value over `rounds` resamplings of the
    tracks (the road directions refined again from the resampled lines, the height solved
    again from the resampled cars)."""
    rows: list[dict[str, float]] = []
    line_rows = [np.nonzero(lines.track == k)[0] for k in range(n_tracks)]
    car_rows = [np.nonzero(cars.track == k)[0] for k in range(n_tracks)]
    for _ in range(rounds):
        pick = rng.integers(0, n_tracks, n_tracks)
        sub, on1, on2 = _resample_lines(lines, dirs.on_first, dirs.on_second, line_rows, pick)
        try:
            sub_cars = _resample_cars(cars, car_rows, pick)
            sub_dirs = RoadDirections(dirs.first, dirs.focal, dirs.roll_rad, on1, on2)
            sub_dirs = _select_focal(sub_dirs, sub, sub_cars, prior, known)
            sub_dirs = refine_directions(sub_dirs, sub, focal_range=_focal_range(sub_dirs, known),
                                         fix_roll=_roll_from_sizes(sub_dirs, known))
            fit = _fit_once(sub_dirs, sub, sub_cars, lane_width_m, prior)
        except (SetupError, ValueError):
            continue
        rows.append(_values(fit.camera, scale))
    if len(rows) < 3:
        return {}
    return {k: float(np.std([r[k] for r in rows], ddof=1)) for k in rows[0]}


def _resample_lines(
    lines: Lines, in1: BoolArray, in2: BoolArray, rows: list[IntArray], pick: IntArray
) -> tuple[Lines, BoolArray, BoolArray]:
    """The lines of the picked tracks (each pick a new track id) and their family masks."""
    idx = np.concatenate([rows[k] for k in pick] + [np.zeros(0, dtype=np.int64)]).astype(np.int64)
    owner = np.concatenate([np.full(len(rows[k]), j) for j, k in enumerate(pick)] + [np.zeros(0)]).astype(np.int64)
    sub = Lines(lines.mid[idx], lines.direction[idx], lines.length[idx], lines.ground_mid[idx], owner)
    return sub, in1[idx], in2[idx]


def _resample_cars(cars: CarSightings, rows: list[IntArray], pick: IntArray) -> CarSightings:
    idx = np.concatenate([rows[k] for k in pick] + [np.zeros(0, dtype=np.int64)]).astype(np.int64)
    owner = np.concatenate([np.full(len(rows[k]), j) for j, k in enumerate(pick)] + [np.zeros(0)]).astype(np.int64)
    sub = cars.take(idx)
    return CarSightings(sub.bottom, sub.size, sub.before, sub.after, owner)


def _calibration_points(
    cam: Camera, image_size: tuple[int, int], centre: FloatArray, scale: float, origin: FloatArray
) -> list[CalibrationPoint]:
    """A 4 x 4 grid of image points over the road below the horizon, with their ground m in
    the module's frame (origin subtracted). Raises SetupError when fewer than 9 see the road."""
    w, h = image_size
    xs = np.linspace(0.05 * w, 0.95 * w, 4)
    edge = (np.array([[0.0, 0.0], [w, 0.0]]) - centre) / scale
    horizon = _horizon_y(cam, edge[:, 0]) * scale + centre[1]
    top = max(0.05 * h, float(np.nanmax(horizon)) + 0.08 * h) if np.all(np.isfinite(horizon)) else 0.05 * h
    ys = np.linspace(top, 0.95 * h, 4)
    px = np.array([(x, y) for y in ys for x in xs], dtype=np.float64)
    ground = cam.ground((px - centre) / scale) - origin
    ok = np.all(np.isfinite(ground), axis=1)
    if ok.sum() < 9:
        raise SetupError("cannot calibrate from traffic: the fitted camera sees too little road below the horizon")
    return [CalibrationPoint(image_px=(float(p[0]), float(p[1])), ground_m=(float(g[0]), float(g[1])))
            for p, g in zip(px[ok], ground[ok], strict=True)]


def _horizon_y(cam: Camera, qx: FloatArray) -> FloatArray:
    """(N,) normalised image y of the horizon at normalised image x `qx`: up . (qx, qy, f) = 0."""
    up = cam.rotation[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(-(up[0] * qx + up[2] * cam.focal) / up[1], dtype=np.float64)
