"""Plane homographies: fitting (normalised DLT) and applying, vectorised over points.

A homography H (3, 3) maps homogeneous points: [u, v, w]^T = H [x, y, 1]^T, (u/w, v/w).
RANSAC for outliers lives with the caller (camera.calibration uses cv2.findHomography);
this module stays numpy-only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError
from trafficprn.geometry.polygons import as_points

FloatArray = npt.NDArray[np.float64]


def as_homography(h: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(h, dtype=np.float64)
    if arr.shape != (3, 3):
        raise GeometryError(f"a homography must have shape (3, 3), got shape {arr.shape}")
    return arr


def apply_homography(h: npt.ArrayLike, points: npt.ArrayLike) -> FloatArray:
    """(N, 2) points mapped through the (3, 3) homography `h`.

    Points that map to infinity (w == 0) come back as nan.
    """
    hm = as_homography(h)
    p = as_points(points)
    uvw = p @ hm[:, :2].T + hm[:, 2]
    w = uvw[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = uvw[:, :2] / np.where(w == 0, np.nan, w)
    return np.asarray(out, dtype=np.float64)


def invert_homography(h: npt.ArrayLike) -> FloatArray:
    """The inverse (3, 3) homography, scaled so that [2, 2] == 1 where possible."""
    hm = as_homography(h)
    try:
        inv = np.asarray(np.linalg.inv(hm), dtype=np.float64)
    except np.linalg.LinAlgError:
        raise GeometryError("the homography is singular and has no inverse") from None
    return _normalise(inv)


def _normalise(h: FloatArray) -> FloatArray:
    scale = h[2, 2] if abs(h[2, 2]) > 1e-12 else np.linalg.norm(h)
    return np.asarray(h / scale, dtype=np.float64)


def _similarity(points: FloatArray) -> FloatArray:
    """Hartley normalisation: centroid to the origin, mean distance sqrt(2)."""
    c = points.mean(axis=0)
    d = np.sqrt(((points - c) ** 2).sum(axis=1)).mean()
    s = np.sqrt(2.0) / d if d > 0 else 1.0
    return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1.0]])


def collinear(points: npt.ArrayLike, tol: float = 1e-3) -> bool:
    """True when (N, 2) points lie (nearly) on one line: the smaller singular value of the
    centred points is below `tol` times the larger one."""
    p = as_points(points)
    if len(p) < 3:
        return True
    sv = np.linalg.svd(p - p.mean(axis=0), compute_uv=False)
    return bool(sv[0] == 0 or sv[1] / sv[0] < tol)


def fit_homography(src: npt.ArrayLike, dst: npt.ArrayLike) -> FloatArray:
    """(3, 3) homography H with dst ~ H src, least squares over all N >= 4 pairs.

    src, dst: (N, 2) corresponding points (any units). Raises GeometryError for fewer
    than 4 pairs, mismatched shapes, or points with three or more on a line such that
    the fit is degenerate (all collinear).
    """
    s = as_points(src, "src")
    d = as_points(dst, "dst")
    if s.shape != d.shape:
        raise GeometryError(f"src and dst must have the same shape, got {s.shape} and {d.shape}")
    if len(s) < 4:
        raise GeometryError(f"a homography needs at least 4 point pairs, got {len(s)}")
    if collinear(s) or collinear(d):
        raise GeometryError("the points are collinear; a homography needs points spread over the plane")
    ts, td = _similarity(s), _similarity(d)
    sn = s @ ts[:2, :2].T + ts[:2, 2]
    dn = d @ td[:2, :2].T + td[:2, 2]
    n = len(s)
    a = np.zeros((2 * n, 9))
    x, y = sn[:, 0], sn[:, 1]
    u, v = dn[:, 0], dn[:, 1]
    a[0::2, 0:3] = np.stack([x, y, np.ones(n)], axis=1)
    a[0::2, 6:9] = -u[:, None] * np.stack([x, y, np.ones(n)], axis=1)
    a[1::2, 3:6] = np.stack([x, y, np.ones(n)], axis=1)
    a[1::2, 6:9] = -v[:, None] * np.stack([x, y, np.ones(n)], axis=1)
    _, sv, vt = np.linalg.svd(a)
    if sv[7] < 1e-9 * sv[0]:  # rank < 8: the solution is not unique
        raise GeometryError("the point pairs are degenerate (need 4 points with no three on a line)")
    hn = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ hn @ ts
    if abs(np.linalg.det(h)) < 1e-15 * np.abs(h).max() ** 3:
        raise GeometryError("the fitted homography is singular; the points are degenerate")
    return _normalise(h)


def reprojection_errors(h: npt.ArrayLike, src: npt.ArrayLike, dst: npt.ArrayLike) -> FloatArray:
    """(N,) Euclidean distances between H src and dst, in dst units."""
    mapped = apply_homography(h, src)
    return np.asarray(np.linalg.norm(mapped - as_points(dst, "dst"), axis=1), dtype=np.float64)
