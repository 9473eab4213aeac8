"""The metric scale of a calibration from traffic: the camera height, from the sizes of
passing cars (a published size prior) or from the spacing of lanes of traffic (a given
lane width). The rotation and focal length are fixed beforehand (`calibrate.py`).

Everything works in normalised image coordinates q = (px - c) / s, as `calibrate.py` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from trafficprn.errors import SetupError
from trafficprn.setup.priors import VehicleSizePrior
from trafficprn.setup.tracks import ObservedTrack

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EDGE_MARGIN_PX = 3.0
MIN_CAR_BOX_PX = 10.0  # at 1280 px image width; scaled with the image
HEADING_STEP = 2  # observations either side used for a sighting's direction of motion
SNAP_DEG = 15.0  # headings this close to a road axis are taken along it
MIN_CAR_TRACKS = 5
HEIGHT_RANGE_M = (0.5, 150.0)
LANE_BANDWIDTH_M = 0.35
LANE_SPACING_M = (2.0, 6.0)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in normalised image coordinates over the ground frame.

    focal: focal length in q units; rotation: (3, 3) rows are the ground X, Y, Z (up) axes
    in camera coordinates (ground_dir = rotation @ camera_dir); height: metres."""

    focal: float
    rotation: FloatArray
    height: float

    def at_height(self, height: float) -> Camera:
        return Camera(self.focal, self.rotation, height)

    def ground(self, q: FloatArray) -> FloatArray:
        """(N, 2) normalised image points -> (N, 2) ground m from the camera's foot; nan
        above the horizon."""
        rays = np.column_stack([q, np.full(len(q), self.focal)])
        d = rays @ self.rotation.T
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d[:, 2] < -1e-9, self.height / -d[:, 2], np.nan)
        return np.asarray(d[:, :2] * t[:, None], dtype=np.float64)

    def project(self, xyz: FloatArray) -> FloatArray:
        """(..., 3) ground-frame points from the camera's foot -> (..., 2) normalised image
        points; nan behind the camera."""
        cam = (xyz - np.array([0.0, 0.0, self.height])) @ self.rotation  # rotation.T applied row-wise
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(cam[..., 2] > 1e-6, cam[..., 2], np.nan)
            return np.asarray(self.focal * cam[..., :2] / z[..., None], dtype=np.float64)


def usable(track: ObservedTrack, image_size: tuple[int, int]) -> BoolArray:
    """(n,) True for the observations whose box clears the image edges by EDGE_MARGIN_PX."""
    w, h = image_size
    b = track.boxes_px
    m = EDGE_MARGIN_PX
    return np.asarray((b[:, 0] > m) & (b[:, 1] > m) & (b[:, 2] < w - m) & (b[:, 3] < h - m), dtype=bool)


def bottom_centres(boxes: FloatArray) -> FloatArray:
    """(n, 2) bottom-centre of (n, 4) xyxy boxes: the ground-contact proxy."""
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]])


@dataclass(frozen=True)
class CarSightings:
    """N unoccluded car observations in normalised image coordinates: box bottom-centres
    (N, 2), box width/height (N, 2), the bottom-centres HEADING_STEP observations before
    and after (N, 2) each (for the direction of motion), and their track index (N,)."""

    bottom: FloatArray
    size: FloatArray
    before: FloatArray
    after: FloatArray
    track: IntArray

    def take(self, keep: npt.NDArray[np.bool_] | IntArray) -> CarSightings:
        return CarSightings(self.bottom[keep], self.size[keep], self.before[keep], self.after[keep], self.track[keep])


def car_sightings(
    tracks: Sequence[ObservedTrack], image_size: tuple[int, int], centre: FloatArray, scale: float
) -> CarSightings:
    """Car observations clear of the image edges and of every other box at the same time."""
    min_box = MIN_CAR_BOX_PX * max(image_size) / 1280.0
    all_boxes = np.concatenate([t.boxes_px for t in tracks]) if tracks else np.zeros((0, 4))
    all_ts = np.concatenate([t.ts for t in tracks]) if tracks else np.zeros(0)
    clear_all = unoccluded(all_boxes, all_ts)
    parts: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]] = []
    start = 0
    for k, tr in enumerate(tracks):
        n = len(tr.ts)
        clear = clear_all[start : start + n]
        start += n
        if tr.class_name != "car":
            continue
        ok = usable(tr, image_size)
        b = tr.boxes_px[ok]
        if len(b) <= 2 * HEADING_STEP:
            continue
        bc = (bottom_centres(b) - centre) / scale
        i = np.arange(len(b))
        before = bc[np.maximum(i - HEADING_STEP, 0)]
        after = bc[np.minimum(i + HEADING_STEP, len(b) - 1)]
        size = np.column_stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]) / scale
        keep = clear[ok] & (b[:, 3] - b[:, 1] >= min_box)
        parts.append((bc[keep], size[keep], before[keep], after[keep], np.full(int(keep.sum()), k, dtype=np.int64)))
    if not parts:
        z = np.zeros((0, 2))
        return CarSightings(z, z, z, z, np.zeros(0, dtype=np.int64))
    cols = [np.concatenate([p[j] for p in parts]) for j in range(5)]
    return CarSightings(cols[0], cols[1], cols[2], cols[3], cols[4].astype(np.int64))


def unoccluded(boxes: FloatArray, ts: FloatArray) -> BoolArray:
    """(N,) True where a box overlaps no other box of the same capture time."""
    ok = np.ones(len(boxes), dtype=bool)
    if not len(boxes):
        return ok
    order = np.argsort(ts, kind="stable")
    groups = np.split(order, np.nonzero(np.diff(ts[order]) > 1e-6)[0] + 1)
    for g in groups:
        if len(g) < 2:
            continue
        b = boxes[g]
        ix = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
        iy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
        overlap = (ix > 0) & (iy > 0)
        np.fill_diagonal(overlap, False)
        ok[g] = ~overlap.any(axis=1)
    return ok


def sighting_headings(cam: Camera, cars: CarSightings) -> tuple[FloatArray, BoolArray]:
    """(N, 2) unit ground direction of motion of each sighting (snapped onto the x or y
    axis within SNAP_DEG) and (N,) whether it was moving at all."""
    step = cam.ground(cars.after) - cam.ground(cars.before)
    norm = np.linalg.norm(step, axis=1)
    moving = np.isfinite(norm) & (norm > 0.05 * cam.height)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = step / norm[:, None]
    snap = np.cos(np.radians(SNAP_DEG))
    on_x = np.abs(a[:, 0]) >= snap
    on_y = np.abs(a[:, 1]) >= snap
    a[on_x] = np.column_stack([np.sign(a[on_x, 0]), np.zeros(int(on_x.sum()))])
    a[on_y] = np.column_stack([np.zeros(int(on_y.sum())), np.sign(a[on_y, 1])])
    return np.asarray(a, dtype=np.float64), np.asarray(moving, dtype=bool)


def cuboid_boxes(
    cam: Camera, bottom: FloatArray, heading: FloatArray, dims_m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(N, 4) xyxy (normalised image) of a cuboid of (N, 3) length/width/height `dims_m`
    standing where each box bottom-centre `bottom` (N, 2) is, heading along `heading`
    (N, 2), for the camera's height; and (N, 2) its footprint centre on the ground."""
    n = len(bottom)
    target = cam.ground(bottom)
    side = np.column_stack([-heading[:, 1], heading[:, 0]])
    sx = np.array([1, 1, -1, -1, 1, 1, -1, -1])[None, :] * dims_m[:, :1] / 2  # (N, 8)
    sy = np.array([1, -1, 1, -1, 1, -1, 1, -1])[None, :] * dims_m[:, 1:2] / 2
    sz = np.array([0, 0, 0, 0, 1, 1, 1, 1])[None, :] * dims_m[:, 2:3]
    offsets = sx[..., None] * heading[:, None, :] + sy[..., None] * side[:, None, :]  # (N, 8, 2)
    centre = target.copy()
    box = np.full((n, 4), np.nan)
    for _ in range(4):  # move the footprint until the projected box's bottom-centre sits on `bottom`
        xyz = np.concatenate([centre[:, None, :] + offsets, sz[..., None]], axis=2)
        q = cam.project(xyz)
        box = np.column_stack([q[..., 0].min(1), q[..., 1].min(1), q[..., 0].max(1), q[..., 1].max(1)])
        centre = centre + target - cam.ground(bottom_centres(box))
    return box, centre


def _prior_dims(prior: VehicleSizePrior, n: int) -> FloatArray:
    return np.tile(np.array([[prior.length_m, prior.width_m, prior.height_m]]), (n, 1))


def size_log_ratios(cam: Camera, cars: CarSightings, heading: FloatArray, prior: VehicleSizePrior) -> FloatArray:
    """(N,) log of observed over projected box width.

    Width only: a box's width is set by the body's outer corners (bumpers, sides), where a
    car is close to its bounding cuboid; its height also takes in the top face, and a roof
    is narrower and shorter than the body, so the cuboid overstates box heights."""
    box, _ = cuboid_boxes(cam, cars.bottom, heading, _prior_dims(prior, len(cars.bottom)))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(cars.size[:, 0] / (box[:, 2] - box[:, 0]))
    return np.asarray(r, dtype=np.float64)


def size_inconsistency(cam: Camera, cars: CarSightings, prior: VehicleSizePrior) -> float:
    """How much each car's box width strays, along its own track, from what the prior's
    cuboid predicts (RMS of log ratios about the track's median, each capped at 0.2): the
    right focal length and tilt make a car's apparent size follow its distance. The height
    is set from the median ratio first (sizes scale as 1 / height). inf without tracks."""
    heading, moving = sighting_headings(cam, cars)
    cars, heading = cars.take(moving), heading[moving]
    first = size_log_ratios(cam.at_height(1.0), cars, heading, prior)
    ok = np.isfinite(first)
    if not ok.any():
        return float("inf")
    ratios = size_log_ratios(cam.at_height(float(np.exp(-np.median(first[ok])))), cars, heading, prior)
    dev = []
    for t in np.unique(cars.track):
        r = ratios[(cars.track == t) & np.isfinite(ratios)]
        if len(r) >= 4:
            dev.append(r - np.median(r))
    if not dev:
        return float("inf")
    d = np.concatenate(dev)
    return float(np.sqrt(np.mean(np.minimum(d**2, 0.04))))


def footprint_anchors(
    cam: Camera, tracks: Sequence[ObservedTrack], image_size: tuple[int, int], centre: FloatArray,
    scale: float, prior: VehicleSizePrior,
) -> list[FloatArray]:
    """Per track, (n_k, 2) px of the fitted footprint centre of each usable observation (box
    clear of the image edges): the prior's cuboid, scaled to the box size, heading along the
    track's motion and standing on the box's bottom-centre, projected at its ground centre.
    Unlike the box bottom-centre it is one point fixed to the vehicle, so a straight drive
    traces a line through the road direction's vanishing point. nan where it cannot be placed."""
    out = []
    for tr in tracks:
        b = tr.boxes_px[usable(tr, image_size)]
        n = len(b)
        if n <= 2 * HEADING_STEP:
            out.append(np.full((n, 2), np.nan))
            continue
        bc = (bottom_centres(b) - centre) / scale
        i = np.arange(n)
        step = cam.ground(bc[np.minimum(i + HEADING_STEP, n - 1)]) - cam.ground(bc[np.maximum(i - HEADING_STEP, 0)])
        norm = np.linalg.norm(step, axis=1)
        moving = np.isfinite(norm) & (norm > 0.05 * cam.height)
        if not moving.any():
            out.append(np.full((n, 2), np.nan))
            continue
        nearest = np.nonzero(moving)[0][np.abs(np.nonzero(moving)[0][None, :] - i[:, None]).argmin(axis=1)]
        heading = step[nearest] / norm[nearest, None]
        dims = _prior_dims(prior, n)
        box, _ = cuboid_boxes(cam, bc, heading, dims)
        size = np.column_stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]) / scale
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.exp(np.log(size / np.column_stack([box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]])).mean(1))
        ratio = np.clip(np.nan_to_num(ratio, nan=1.0), 0.6, 4.0)
        _, foot = cuboid_boxes(cam, bc, heading, dims * ratio[:, None])
        q = cam.project(np.column_stack([foot, np.zeros(n)]))
        out.append(np.asarray(q * scale + centre, dtype=np.float64))
    return out


def _per_track_median(values: FloatArray, track: IntArray) -> float:
    ok = np.isfinite(values)
    values, track = values[ok], track[ok]
    if not len(values):
        return float("nan")
    order = np.argsort(track, kind="stable")
    groups = np.split(values[order], np.nonzero(np.diff(track[order]))[0] + 1)
    return float(np.median([np.median(g) for g in groups]))


def height_from_car_sizes(cam: Camera, cars: CarSightings, prior: VehicleSizePrior) -> float:
    """The camera height (m) at which the prior's car, projected at every moving car
    sighting, matches the observed box sizes: the median over tracks of each track's median
    log size ratio is zero. Raises SetupError without enough moving cars."""
    heading, moving = sighting_headings(cam, cars)
    cars, heading = cars.take(moving), heading[moving]
    if len(np.unique(cars.track)) < MIN_CAR_TRACKS:
        raise SetupError(
            f"cannot scale the calibration from vehicle sizes: expected unoccluded moving cars on at least "
            f"{MIN_CAR_TRACKS} tracks, got {len(np.unique(cars.track))}"
        )

    def imbalance(h: float) -> float:
        return _per_track_median(size_log_ratios(cam.at_height(h), cars, heading, prior), cars.track)

    lo, hi = HEIGHT_RANGE_M
    f_lo, f_hi = imbalance(lo), imbalance(hi)
    if not (np.isfinite(f_lo) and np.isfinite(f_hi)) or f_lo * f_hi > 0:
        raise SetupError(
            f"cannot scale the calibration from vehicle sizes: no camera height in {lo}-{hi} m makes the cars "
            "the prior's size"
        )
    return float(brentq(imbalance, lo, hi, xtol=1e-4))


def lane_peaks_m(offsets_m: FloatArray, weights: FloatArray) -> FloatArray:
    """Centres (K,) of the lanes in lateral line offsets (m): the peaks of a weighted
    kernel density with LANE_BANDWIDTH_M, each at least 15 % of the highest."""
    if len(offsets_m) < 2:
        return np.zeros(0)
    grid = np.arange(offsets_m.min() - 1.0, offsets_m.max() + 1.0, LANE_BANDWIDTH_M / 8)
    dens = (weights[None, :] * np.exp(-0.5 * ((grid[:, None] - offsets_m[None, :]) / LANE_BANDWIDTH_M) ** 2)).sum(1)
    peak = (dens[1:-1] > dens[:-2]) & (dens[1:-1] >= dens[2:]) & (dens[1:-1] >= 0.15 * dens.max())
    return np.asarray(grid[1:-1][peak], dtype=np.float64)


def lane_spacing_m(offsets_m: FloatArray, weights: FloatArray) -> FloatArray:
    """Spacings (m) of neighbouring lane peaks within LANE_SPACING_M."""
    d = np.diff(lane_peaks_m(offsets_m, weights))
    return np.asarray(d[(d >= LANE_SPACING_M[0]) & (d <= LANE_SPACING_M[1])], dtype=np.float64)


def height_from_lanes(
    cam: Camera, mids: Sequence[FloatArray], weights: Sequence[FloatArray], lane_width_m: float
) -> float | None:
    """The camera height (m) at which neighbouring lanes of traffic lie `lane_width_m` apart,
    from the straight stretches of each road direction (`mids`: (S, 2) normalised midpoints
    per direction: [along ground x, along ground y]); `cam.height` only sets the kernel
    bandwidth. None where no two neighbouring lanes are found."""
    spacings = []
    for axis, (m, w) in enumerate(zip(mids, weights, strict=True)):
        g = cam.ground(m)
        lateral = g[:, 1 - axis]  # a road along x has its lanes apart in y, and vice versa
        ok = np.isfinite(lateral)
        spacings.append(lane_spacing_m(lateral[ok], w[ok]))
    found = np.concatenate(spacings) if spacings else np.zeros(0)
    if not len(found):
        return None
    return float(cam.height * lane_width_m / np.median(found))
