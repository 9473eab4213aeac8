"""Polygons and segments in 2D (image px or ground m), vectorised over points."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError
from trafficprn.geometry.arrays import as_rows

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def as_points(points: npt.ArrayLike, name: str = "points") -> FloatArray:
    """(N, 2) float64 points; a single (2,) point becomes (1, 2); empty becomes (0, 2)."""
    return as_rows(points, 2, name)


def as_polygon(polygon: npt.ArrayLike, name: str = "polygon") -> FloatArray:
    poly = as_points(polygon, name)
    if len(poly) < 3:
        raise GeometryError(f"{name} must have at least 3 points, got {len(poly)}")
    return poly


def points_in_polygon(points: npt.ArrayLike, polygon: npt.ArrayLike) -> BoolArray:
    """(N,) True where a point of (N, 2) lies inside the (M, 2) polygon (even-odd rule).

    Points exactly on an edge may fall either side.
    """
    p = as_points(points)
    poly = as_polygon(polygon)
    x, y = p[:, 0:1], p[:, 1:2]
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / np.where(y2 != y1, y2 - y1, 1.0)
    crossings = straddles & (x < x_cross)
    return np.asarray(crossings.sum(axis=1) % 2 == 1)


def polygon_area(polygon: npt.ArrayLike) -> float:
    """Area of a simple polygon (shoelace), always >= 0, in the square of its unit."""
    poly = as_polygon(polygon)
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_centroid(polygon: npt.ArrayLike) -> FloatArray:
    """(2,) area centroid of a simple polygon (vertex mean if degenerate)."""
    poly = as_polygon(polygon)
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2.0
    if abs(a) < 1e-12:
        return np.asarray(poly.mean(axis=0), dtype=np.float64)
    return np.array([((x + xn) * cross).sum() / (6 * a), ((y + yn) * cross).sum() / (6 * a)])


def intersection_area(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Area of the intersection of two simple polygons (convex or not).

    Each polygon is split into convex pieces (ear clipping) and the pieces are clipped
    pairwise (Sutherland-Hodgman), so the result is exact up to float rounding.
    """
    total = 0.0
    for ta in _triangulate(as_polygon(a, "a")):
        for tb in _triangulate(as_polygon(b, "b")):
            clipped = _clip_convex(ta, tb)
            if len(clipped) >= 3:
                total += abs(_signed_area(clipped))
    return total


def polygons_overlap(a: npt.ArrayLike, b: npt.ArrayLike, min_area: float = 1e-6) -> bool:
    """True when two simple polygons share an area larger than `min_area` (touching edges do not count)."""
    pa, pb = as_polygon(a, "a"), as_polygon(b, "b")
    if (
        pa[:, 0].max() <= pb[:, 0].min()
        or pb[:, 0].max() <= pa[:, 0].min()
        or pa[:, 1].max() <= pb[:, 1].min()
        or pb[:, 1].max() <= pa[:, 1].min()
    ):
        return False
    return intersection_area(pa, pb) > min_area


def segments_cross(p1: npt.ArrayLike, p2: npt.ArrayLike, q1: npt.ArrayLike, q2: npt.ArrayLike) -> BoolArray:
    """(N,) True where segment p1->p2 properly crosses segment q1->q2.

    p1, p2: (N, 2) (e.g. a track's previous and current anchor); q1, q2: (N, 2) or (2,)
    (e.g. a stop line). Touching at an end point counts as crossing; collinear overlap does not.
    """
    a, b = as_points(p1, "p1"), as_points(p2, "p2")
    c = np.broadcast_to(as_points(q1, "q1"), a.shape)
    d = np.broadcast_to(as_points(q2, "q2"), a.shape)

    def orient(u: FloatArray, v: FloatArray, w: FloatArray) -> FloatArray:
        return np.asarray((v[:, 0] - u[:, 0]) * (w[:, 1] - u[:, 1]) - (v[:, 1] - u[:, 1]) * (w[:, 0] - u[:, 0]))

    d1, d2 = orient(c, d, a), orient(c, d, b)
    d3, d4 = orient(a, b, c), orient(a, b, d)
    proper = (d1 * d2 <= 0) & (d3 * d4 <= 0)
    collinear = (d1 == 0) & (d2 == 0)
    return np.asarray(proper & ~collinear)


def side_of_line(points: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """(N,) signed side of points relative to the directed line a->b: > 0 left (y down: clockwise), < 0 right."""
    p = as_points(points)
    pa, pb = as_points(a, "a")[0], as_points(b, "b")[0]
    return np.asarray((pb[0] - pa[0]) * (p[:, 1] - pa[1]) - (pb[1] - pa[1]) * (p[:, 0] - pa[0]))


def _clip_convex(subject: FloatArray, clip: FloatArray) -> FloatArray:
    """Sutherland-Hodgman: the part of convex `subject` inside convex counter-clockwise `clip`."""
    out = [p for p in subject]
    n = len(clip)
    for i in range(n):
        a, b = clip[i], clip[(i + 1) % n]
        if not out:
            break
        inp, out = out, []

        def inside(p: FloatArray, a: FloatArray = a, b: FloatArray = b) -> bool:
            return bool((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0)

        for j in range(len(inp)):
            cur, prev = inp[j], inp[j - 1]
            cur_in, prev_in = inside(cur), inside(prev)
            if cur_in != prev_in:
                d1 = (b[0] - a[0]) * (prev[1] - a[1]) - (b[1] - a[1]) * (prev[0] - a[0])
                d2 = (b[0] - a[0]) * (cur[1] - a[1]) - (b[1] - a[1]) * (cur[0] - a[0])
                t = d1 / (d1 - d2)
                out.append(prev + t * (cur - prev))
            if cur_in:
                out.append(cur)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _triangulate(poly: FloatArray) -> list[FloatArray]:
    """Convex pieces of a simple polygon, counter-clockwise (y up): the polygon itself when
    convex, else ear-clipped triangles."""
    pts = [p for p in poly]
    cross = _signed_area(poly)
    if cross < 0:
        pts = pts[::-1]
    if _is_convex(np.asarray(pts)):
        return [np.asarray(pts, dtype=np.float64)]
    tris: list[FloatArray] = []
    idx = list(range(len(pts)))
    guard = 0
    while len(idx) > 3 and guard < 10 * len(pts):
        guard += 1
        for k in range(len(idx)):
            i0, i1, i2 = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            a, b, c = pts[i0], pts[i1], pts[i2]
            if (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) <= 0:
                continue
            tri = np.asarray([a, b, c], dtype=np.float64)
            others = [pts[j] for j in idx if j not in (i0, i1, i2)]
            if others and points_in_polygon(np.asarray(others), tri).any():
                continue
            tris.append(tri)
            idx.pop(k)
            break
        else:
            break
    if len(idx) == 3:
        tris.append(np.asarray([pts[i] for i in idx], dtype=np.float64))
    return tris


def _signed_area(poly: npt.NDArray[np.floating]) -> float:
    x, y = poly[:, 0].astype(np.float64), poly[:, 1].astype(np.float64)
    return float((np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _is_convex(poly: npt.NDArray[np.floating]) -> bool:
    p = poly.astype(np.float64)
    d1 = np.roll(p, -1, axis=0) - p
    d2 = np.roll(p, -2, axis=0) - np.roll(p, -1, axis=0)
    cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    return bool(np.all(cross >= -1e-9) or np.all(cross <= 1e-9))
