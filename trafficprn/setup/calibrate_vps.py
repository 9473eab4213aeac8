"""Vanishing points of the two road directions from straight stretches of tracks, and the
camera rotation and focal length they give (for `calibrate.py`).

Works in normalised image coordinates q = (px - c) / s: c the image centre (the assumed
principal point), s half the larger image side; a focal length is in q units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from trafficprn.errors import SetupError
from trafficprn.setup.calibrate_scale import bottom_centres, usable
from trafficprn.setup.tracks import ObservedTrack

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MIN_LINES_PER_DIRECTION = 6
INLIER_DEG = 1.5
MIN_SEGMENT_POINTS = 5
HFOV_RANGE_DEG = (10.0, 130.0)
ROLL_SEARCH_DEG = 10.0
# A line within this of the first vanishing point is never taken for the crossing road's: a
# road seen across the view has nearly parallel lines, spread by lane changes and by box
# centres that drift on the vehicle as its aspect turns, and a second vanishing point on the
# horizon near those lines would collect them (on a T junction whose side road runs away
# from the camera they outnumber the side road's few, short lines many times over).
CROSSING_DEG = 6.0
NEAR_SUPPORT = 0.25  # the vanishing point nearer the image centre is first with this share of the other's lines


@dataclass(frozen=True)
class Lines:
    """S straight stretches of tracks in normalised image coordinates q = (px - c) / s.

    The lines run through box centres: any point fixed to a vehicle driving straight moves
    along a line through the road direction's vanishing point, and the box centre stays
    nearer one such point than the bottom-centre does (whose nearest corner changes).
    mid: (S, 2) midpoints; direction: (S, 2) unit directions; length: (S,) in q units;
    ground_mid: (S, 2) mean box bottom-centre (the ground-contact proxy) over the stretch;
    track: (S,) index of the track each came from."""

    mid: FloatArray
    direction: FloatArray
    length: FloatArray
    ground_mid: FloatArray
    track: IntArray

    def take(self, keep: npt.NDArray[np.bool_] | IntArray) -> Lines:
        return Lines(self.mid[keep], self.direction[keep], self.length[keep], self.ground_mid[keep], self.track[keep])



# ---------------------------------------------------------------- lines from tracks
def _split_straight(points: FloatArray, tol: float) -> list[tuple[int, int]]:
    """Douglas-Peucker: index ranges [i, j] of `points` (n, 2) whose chord stays within `tol`."""
    out: list[tuple[int, int]] = []
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            out.append((i, j))
            continue
        a, b = points[i], points[j]
        chord = b - a
        n = np.linalg.norm(chord)
        rel = points[i + 1 : j] - a
        dev = np.linalg.norm(rel, axis=1) if n < 1e-9 else np.abs(chord[0] * rel[:, 1] - chord[1] * rel[:, 0]) / n
        k = int(np.argmax(dev))
        if dev[k] <= tol:
            out.append((i, j))
        else:
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return sorted(out)


def track_lines(
    tracks: Sequence[ObservedTrack], image_size: tuple[int, int], anchors: Sequence[FloatArray] | None = None
) -> tuple[Lines, FloatArray, float]:
    """The straight stretches of `tracks` as lines, with the image centre c (2,) px and the
    normalising scale s (px per q unit). The lines run through the box centres, or through
    `anchors[k]` ((n_k, 2) px, one per usable observation of track k: box clear of the
    image edges) where given."""
    w, h = image_size
    centre = np.array([w / 2.0, h / 2.0])
    scale = max(w, h) / 2.0
    tol_px = max(1.5, 0.004 * max(w, h))
    min_len_px = 0.1 * max(w, h)
    mids, dirs, lens, grounds, owner = [], [], [], [], []
    for k, tr in enumerate(tracks):
        boxes = tr.boxes_px[usable(tr, image_size)]
        pts = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
        bottoms = bottom_centres(boxes)
        if anchors is not None:
            ok = np.all(np.isfinite(anchors[k]), axis=1)
            pts = bottoms = anchors[k][ok]
        if len(pts) < MIN_SEGMENT_POINTS:
            continue
        for i, j in _split_straight(pts, tol_px):
            seg = pts[i : j + 1]
            if j - i + 1 < MIN_SEGMENT_POINTS or np.linalg.norm(seg[-1] - seg[0]) < min_len_px:
                continue
            mean = seg.mean(axis=0)
            _, _, vt = np.linalg.svd(seg - mean, full_matrices=False)
            d = vt[0]
            span = (seg - mean) @ d
            mids.append((mean - centre) / scale)
            dirs.append(d)
            lens.append(float(span.max() - span.min()) / scale)
            grounds.append((bottoms[i : j + 1].mean(axis=0) - centre) / scale)
            owner.append(k)
    lines = Lines(
        np.array(mids, dtype=np.float64).reshape(-1, 2),
        np.array(dirs, dtype=np.float64).reshape(-1, 2),
        np.array(lens, dtype=np.float64),
        np.array(grounds, dtype=np.float64).reshape(-1, 2),
        np.array(owner, dtype=np.int64),
    )
    return lines, centre, scale


# ---------------------------------------------------------------- vanishing points
def vp_residuals(v: FloatArray, lines: Lines) -> FloatArray:
    """(S,) sine of the angle between each line and the direction from its midpoint to the
    homogeneous vanishing point v (3,)."""
    to_v = v[:2][None, :] - lines.mid * v[2]
    norm = np.linalg.norm(to_v, axis=1)
    cross = lines.direction[:, 0] * to_v[:, 1] - lines.direction[:, 1] * to_v[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(norm > 1e-12, cross / norm, 1.0), dtype=np.float64)


def crossing(first: FloatArray, lines: Lines) -> BoolArray:
    """(S,) the lines that may belong to the road crossing `first`'s: more than CROSSING_DEG
    off the direction to `first`."""
    return np.asarray(np.abs(vp_residuals(first, lines)) >= np.sin(np.radians(CROSSING_DEG)), dtype=bool)


def _homogeneous_line(lines: Lines, i: IntArray) -> FloatArray:
    n = np.column_stack([-lines.direction[i, 1], lines.direction[i, 0]])
    return np.column_stack([n, -(n * lines.mid[i]).sum(axis=1)])


def _ransac_vp(lines: Lines, rng: np.random.Generator, rounds: int = 600) -> FloatArray:
    """The homogeneous vanishing point (3,) most of the lines' length points at."""
    thr = np.sin(np.radians(INLIER_DEG))
    p = lines.length / lines.length.sum()
    pairs = rng.choice(len(lines.length), size=(rounds, 2), p=p)
    pairs = pairs[lines.track[pairs[:, 0]] != lines.track[pairs[:, 1]]]
    hyp = np.cross(_homogeneous_line(lines, pairs[:, 0]), _homogeneous_line(lines, pairs[:, 1]))
    hyp /= np.linalg.norm(hyp, axis=1, keepdims=True) + 1e-300
    best, best_score = np.array([0.0, 1.0, 0.0]), -1.0
    for v in hyp:
        if not np.all(np.isfinite(v)):
            continue
        score = float(lines.length[np.abs(vp_residuals(v, lines)) < thr].sum())
        if score > best_score:
            best, best_score = v, score
    return best


def _refine_vp(v: FloatArray, lines: Lines) -> FloatArray:
    """Least-squares vanishing point of `lines` (their length-weighted angular residuals,
    robust loss), starting at v; returned unit-norm with v[2] >= 0."""
    v = v / np.linalg.norm(v)
    if v[2] < 0:
        v = -v
    # tangent-plane parametrisation around the start
    basis = np.linalg.svd(v[None, :])[2][1:]
    sw = np.sqrt(lines.length)
    scale = np.sin(np.radians(INLIER_DEG))

    def point(x: FloatArray) -> FloatArray:
        u = v + x @ basis
        return np.asarray(u / np.linalg.norm(u), dtype=np.float64)

    res = least_squares(lambda x: sw * vp_residuals(point(x), lines), np.zeros(2), loss="soft_l1", f_scale=scale)
    out = point(res.x)
    return out if out[2] >= 0 else -out


@dataclass(frozen=True)
class RoadDirections:
    """Two orthogonal road directions: the vanishing point `first` (3,) homogeneous, the
    focal `focal` (q units) and the roll `roll_rad` of the horizon about the first direction
    from "level", which together give the second's vanishing point; and the (S,) masks of
    the lines along each."""

    first: FloatArray
    focal: float
    roll_rad: float
    on_first: BoolArray
    on_second: BoolArray

    @property
    def second(self) -> FloatArray:
        return second_vp(self.first, self.focal, self.roll_rad)


def second_vp(first: FloatArray, focal: float, roll_rad: float) -> FloatArray:
    """The vanishing point (3,) of the ground direction orthogonal to `first`'s, for a
    camera of focal `focal` whose horizon is rolled `roll_rad` about `first`'s direction
    from the level (the one in the plane of `first`'s direction and the image x axis)."""
    return np.asarray(second_vps(first, focal, np.array([roll_rad]))[0], dtype=np.float64)


def second_vps(first: FloatArray, focal: float, rolls_rad: FloatArray) -> FloatArray:
    """`second_vp` for (R,) rolls at once: (R, 3)."""
    d = np.array([first[0], first[1], focal * first[2]])
    d /= np.linalg.norm(d)
    up0 = np.array([0.0, -1.0, 0.0]) + d[1] * d
    up0 /= np.linalg.norm(up0)
    side = np.cross(d, up0)
    # d x (up0 cos r + side sin r) = (d x up0) cos r + (d x side) sin r = side cos r - up0 sin r
    other = side[None, :] * np.cos(rolls_rad)[:, None] - up0[None, :] * np.sin(rolls_rad)[:, None]
    v = np.column_stack([other[:, 0], other[:, 1], other[:, 2] / focal])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(np.where(v[:, 2:3] >= 0, v, -v), dtype=np.float64)


def _tangent_basis(v: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.svd(v[None, :])[2][1:], dtype=np.float64)


def refine_directions(
    dirs: RoadDirections, lines: Lines, *, focal_range: tuple[float, float] | None = None,
    fix_roll: bool = False,
) -> RoadDirections:
    """Least squares (robust) on the length-weighted angular residuals of both families at
    once, orthogonality built in: the first vanishing point, the roll (kept where `fix_roll`)
    and the focal (within `focal_range` where given, else HFOV_RANGE_DEG)."""
    a, b = lines.take(dirs.on_first), lines.take(dirs.on_second)
    v0 = dirs.first / np.linalg.norm(dirs.first)
    basis = _tangent_basis(v0)
    wa, wb = np.sqrt(a.length), np.sqrt(b.length)

    def first(x: FloatArray) -> FloatArray:
        u = v0 + x[:2] @ basis
        return np.asarray(u / np.linalg.norm(u), dtype=np.float64)

    def residuals(x: FloatArray) -> FloatArray:
        v = first(x)
        return np.concatenate([wa * vp_residuals(v, a), wb * vp_residuals(second_vp(v, np.exp(x[2]), x[3]), b)])

    lo_f, hi_f = (np.log(1.0 / np.tan(np.radians(h) / 2)) for h in HFOV_RANGE_DEG[::-1])
    roll_max = np.radians(ROLL_SEARCH_DEG)
    lo_r, hi_r = (dirs.roll_rad - 1e-6, dirs.roll_rad + 1e-6) if fix_roll else (-roll_max, roll_max)
    x0 = np.array([0.0, 0.0, np.clip(np.log(dirs.focal), lo_f, hi_f), np.clip(dirs.roll_rad, lo_r, hi_r)])
    if focal_range is not None:
        lo_f, hi_f = np.log(focal_range[0]), np.log(focal_range[1])
        x0[2] = np.clip(x0[2], lo_f + 1e-9, hi_f - 1e-9)
    bounds = ([-np.inf, -np.inf, lo_f, lo_r], [np.inf, np.inf, hi_f, hi_r])
    res = least_squares(residuals, x0, bounds=bounds, loss="soft_l1", f_scale=np.sin(np.radians(INLIER_DEG)))
    v = first(res.x)
    return RoadDirections(v if v[2] >= 0 else -v, float(np.exp(res.x[2])), float(res.x[3]),
                          dirs.on_first, dirs.on_second)


FOCAL_STEP = 1.06  # ratio between neighbouring focals of the grid
FOCAL_GRID = np.exp(np.arange(np.log(1 / np.tan(np.radians(HFOV_RANGE_DEG[1]) / 2)),
                               np.log(1 / np.tan(np.radians(HFOV_RANGE_DEG[0]) / 2)), np.log(FOCAL_STEP)))
ROLL_GRID = np.radians(np.arange(-ROLL_SEARCH_DEG, ROLL_SEARCH_DEG + 0.01, 1.0))


def best_roll(first: FloatArray, focal: float, rest: Lines) -> tuple[float, float]:
    """(roll, score): the roll whose second vanishing point (at `focal`) the most of
    `rest`'s length points at, and that length (a 1 deg grid, then 0.1 deg around its best)."""
    thr = np.sin(np.radians(INLIER_DEG))

    def scores(rolls: FloatArray) -> FloatArray:
        v = second_vps(first, focal, rolls)  # (R, 3)
        to_v = v[:, None, :2] - rest.mid[None, :, :] * v[:, None, 2:3]  # (R, S, 2)
        cross = rest.direction[None, :, 0] * to_v[..., 1] - rest.direction[None, :, 1] * to_v[..., 0]
        sin = np.abs(cross) / np.maximum(np.linalg.norm(to_v, axis=2), 1e-12)
        return np.asarray((rest.length[None, :] * (sin < thr)).sum(axis=1), dtype=np.float64)

    coarse = ROLL_GRID
    k = int(np.argmax(scores(coarse)))
    fine = coarse[k] + np.radians(np.arange(-1.0, 1.01, 0.1))
    sc = scores(fine)
    j = int(np.argmax(sc))
    return float(fine[j]), float(sc[j])


def focal_candidates(first: FloatArray, rest: Lines, keep: float = 0.9) -> list[tuple[float, float]]:
    """(focal, roll) pairs over FOCAL_GRID whose second vanishing point gathers at least
    `keep` of the best score of `rest`'s lines: the focals the lines cannot tell apart."""
    rows = [(float(f), *best_roll(first, float(f), rest)) for f in FOCAL_GRID]
    top = max(r[2] for r in rows)
    return [(f, roll) for f, roll, score in rows if score >= keep * top]


def _search_second(first: FloatArray, rest: Lines) -> tuple[float, float]:
    """The (focal, roll) whose second vanishing point most of `rest`'s length points at."""
    rows = [(float(f), *best_roll(first, float(f), rest)) for f in FOCAL_GRID]
    f, roll, _ = max(rows, key=lambda r: r[2])
    return f, roll


def road_directions(lines: Lines, rng: np.random.Generator) -> RoadDirections:
    """The two dominant, orthogonal road directions of `lines`. Raises SetupError when
    either has straight stretches of fewer than MIN_LINES_PER_DIRECTION tracks."""
    thr = np.sin(np.radians(INLIER_DEG))
    _need(lines, np.ones(len(lines.length), dtype=bool), "any road")
    v1 = _ransac_vp(lines, rng)
    v1 = _refine_vp(v1, lines.take(np.abs(vp_residuals(v1, lines)) < thr))
    on1 = np.abs(vp_residuals(v1, lines)) < thr
    _need(lines, on1, "a first road direction")
    _need(lines, crossing(v1, lines), "a second road direction crossing the first")
    rest = lines.take(crossing(v1, lines))
    v2 = _ransac_vp(rest, rng)
    v2 = _refine_vp(v2, rest.take(np.abs(vp_residuals(v2, rest)) < thr))
    # The vanishing point nearer the image centre is the better determined, given lines
    # enough: search the focal and roll that place the other where its lines meet. A side road
    # running away from the camera (a T junction seen from its open side) has only few, short,
    # far lines: the road crossing the view is then the first.
    if _offset(v2) < _offset(v1) and _support(v2, rest) >= NEAR_SUPPORT * _support(v1, lines):
        v1 = v2
    on1 = np.abs(vp_residuals(v1, lines)) < thr
    cross = crossing(v1, lines)
    _need(lines, cross, "a second road direction crossing the first")
    focal, roll = _search_second(v1, lines.take(cross))
    dirs = RoadDirections(v1, focal, roll, on1, cross & (np.abs(vp_residuals(second_vp(v1, focal, roll), lines)) < thr))
    _need(lines, dirs.on_second, "a second road direction crossing the first")
    return dirs


def _support(v: FloatArray, lines: Lines) -> float:
    """Length (q units) of the lines pointing at `v` within INLIER_DEG."""
    return float(lines.length[np.abs(vp_residuals(v, lines)) < np.sin(np.radians(INLIER_DEG))].sum())


def _offset(v: FloatArray) -> float:
    """Distance of a homogeneous image point from the image centre (q units; inf at infinity)."""
    return float(np.linalg.norm(v[:2]) / abs(v[2])) if abs(v[2]) > 1e-12 else float("inf")


def settle(
    dirs: RoadDirections, lines: Lines, rounds: int = 2, *, focal_range: tuple[float, float] | None = None,
    fix_roll: bool = False,
) -> RoadDirections:
    """Refine `dirs` on (new) `lines`, reassigning each line to the direction it fits, in turn
    (`fix_roll`: the roll stays, as set by car sizes; the crossing road may then lack lines)."""
    thr = np.sin(np.radians(INLIER_DEG))
    for _ in range(rounds):
        on1 = np.abs(vp_residuals(dirs.first, lines)) < thr
        on2 = crossing(dirs.first, lines) & (np.abs(vp_residuals(dirs.second, lines)) < thr)
        _need(lines, on1, "a first road direction")
        if not fix_roll:  # a fixed roll places the second direction without its lines
            _need(lines, on2, "a second road direction crossing the first")
        dirs = refine_directions(RoadDirections(dirs.first, dirs.focal, dirs.roll_rad, on1, on2), lines,
                                 focal_range=focal_range, fix_roll=fix_roll)
    return dirs


def _need(lines: Lines, mask: BoolArray, what: str) -> None:
    tracks = len(np.unique(lines.track[mask]))
    if tracks < MIN_LINES_PER_DIRECTION:
        raise SetupError(
            f"cannot calibrate from traffic: expected straight stretches of at least {MIN_LINES_PER_DIRECTION} "
            f"tracks along {what}, got {tracks}; the footage needs traffic moving along both roads of the junction"
        )


# ---------------------------------------------------------------- rotation from two directions
def camera_from_vps(v1: FloatArray, v2: FloatArray) -> tuple[float, FloatArray, bool]:
    """Focal (q units), rotation (rows: ground X, Y, up in camera coordinates) and whether
    v1's direction became the ground y axis, from the vanishing points of two orthogonal
    ground directions, principal point at q = 0.
    Raises SetupError when the two cannot be orthogonal directions of a real camera."""
    f2 = -float(v1[:2] @ v2[:2]) / (v1[2] * v2[2]) if abs(v1[2] * v2[2]) > 1e-12 else -1.0
    if not np.isfinite(f2) or f2 <= 0:
        raise SetupError(
            "cannot calibrate from traffic: the two road directions found do not meet at a right angle "
            "for any focal length; the junction's roads may not cross at right angles"
        )
    f = float(np.sqrt(f2))
    hfov = 2 * np.degrees(np.arctan(1.0 / f))
    if not HFOV_RANGE_DEG[0] <= hfov <= HFOV_RANGE_DEG[1]:
        raise SetupError(
            f"cannot calibrate from traffic: the road directions imply a {hfov:.0f} deg horizontal field of view, "
            f"outside {HFOV_RANGE_DEG[0]:.0f}-{HFOV_RANGE_DEG[1]:.0f} deg"
        )
    d1 = np.array([v1[0], v1[1], f * v1[2]])
    d2 = np.array([v2[0], v2[1], f * v2[2]])
    d1, d2 = d1 / np.linalg.norm(d1), d2 / np.linalg.norm(d2)
    d2 = d2 - (d2 @ d1) * d1  # exactly orthogonal
    d2 /= np.linalg.norm(d2)
    up = np.cross(d1, d2)
    if up[1] > 0:  # image y runs down: up has a negative y component
        up = -up
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    forward /= np.linalg.norm(forward)
    first_is_y = abs(d1 @ forward) >= abs(d2 @ forward)
    y_axis = d1 if first_is_y else d2
    y_axis = y_axis if y_axis @ forward >= 0 else -y_axis
    x_axis = np.cross(y_axis, up)
    return f, np.array([x_axis, y_axis, up], dtype=np.float64), bool(first_is_y)


