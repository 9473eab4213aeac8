"""Camera lens models, vectorised over N points, in both directions.

Camera frame: x right, y down, z along the optical axis. A ray is a unit 3-vector in that
frame; theta is its angle from the optical axis and phi its azimuth atan2(y, x).

- `project(rays (N, 3)) -> (N, 2)` image px; rays the model cannot represent give nan.
- `unproject(px (N, 2)) -> (N, 3)` unit rays; px outside the model's domain give nan.
- `valid(px (N, 2)) -> (N,) bool`: inside the image and inside the image circle / FOV.
- `in_fov(rays (N, 3)) -> (N,) bool`: the ray is inside the lens' field of view.

Models: fisheye equidistant / equisolid / stereographic / orthographic (centre, radius of
the image circle, FOV), Kannala-Brandt (OpenCV's cv2.fisheye: fx, fy, cx, cy, k1..k4) and
pinhole with Brown-Conrady distortion (OpenCV's k1, k2, p1, p2, k3). The inverses of the
distorted models are solved with vectorised Newton iterations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from trafficprn.config import (
    EquidistantLens,
    EquisolidLens,
    KannalaBrandtLens,
    LensConfig,
    OrthographicLens,
    PinholeLens,
    StereographicLens,
)
from trafficprn.errors import ConfigError
from trafficprn.geometry.arrays import as_rows
from trafficprn.geometry.polygons import as_points

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_NEWTON_STEPS = 30


def as_rays(rays: npt.ArrayLike) -> FloatArray:
    """(N, 3) float64 unit rays; a single (3,) ray becomes (1, 3). Zero vectors give nan."""
    arr = as_rows(rays, 3, "rays")
    if not len(arr):
        return arr
    norm = np.linalg.norm(arr, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(arr / np.where(norm > 0, norm, np.nan), dtype=np.float64)


def rays_from_angles(theta_rad: FloatArray, phi_rad: FloatArray) -> FloatArray:
    """(N, 3) unit rays at angle theta from the optical axis and azimuth phi."""
    s = np.sin(theta_rad)
    return np.stack([s * np.cos(phi_rad), s * np.sin(phi_rad), np.cos(theta_rad)], axis=-1)


def ray_angles(rays: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(theta, phi) in radians of (N, 3) unit rays."""
    rho = np.hypot(rays[:, 0], rays[:, 1])
    return np.arctan2(rho, rays[:, 2]), np.arctan2(rays[:, 1], rays[:, 0])


class Lens(ABC):
    """A camera model mapping unit rays <-> image px."""

    image_size: tuple[int, int]  # (width, height) px
    fov_deg: float  # full field of view that yields valid pixels

    @property
    def max_theta_rad(self) -> float:
        """Largest angle from the optical axis inside the field of view."""
        return float(np.radians(self.fov_deg) / 2.0)

    @property
    @abstractmethod
    def center_px(self) -> tuple[float, float]:
        """The principal point (optical centre) in image px."""

    @abstractmethod
    def project(self, rays: npt.ArrayLike) -> FloatArray:
        """(N, 3) rays (need not be unit) -> (N, 2) image px; nan where not representable."""

    @abstractmethod
    def unproject(self, px: npt.ArrayLike) -> FloatArray:
        """(N, 2) image px -> (N, 3) unit rays; nan where outside the model's domain."""

    def in_fov(self, rays: npt.ArrayLike) -> BoolArray:
        """(N,) True where a ray lies inside the field of view."""
        theta, _ = ray_angles(as_rays(rays))
        return np.asarray(theta <= self.max_theta_rad + 1e-12)

    def in_image(self, px: npt.ArrayLike) -> BoolArray:
        """(N,) True where px lies inside the image rectangle [0, w] x [0, h]."""
        p = as_points(px, "px")
        w, h = self.image_size
        return np.asarray((p[:, 0] >= 0) & (p[:, 0] <= w) & (p[:, 1] >= 0) & (p[:, 1] <= h))

    def valid(self, px: npt.ArrayLike) -> BoolArray:
        """(N,) True where px is inside the image and maps to a ray inside the field of view."""
        p = as_points(px, "px")
        rays = self.unproject(p)
        ok: BoolArray = np.asarray(np.isfinite(rays).all(axis=1))
        ok[ok] = self.in_fov(rays[ok])
        return np.asarray(ok & self.in_image(p))


# ---------------------------------------------------------------- ideal fisheyes
class RadialFisheye(Lens):
    """A fisheye with r = f * g(theta), described by its image circle (centre, radius, FOV)."""

    name = "radial"
    max_model_theta_rad = np.pi  # beyond this the mapping is not defined / not invertible

    def __init__(self, image_size: tuple[int, int], center_px: tuple[float, float], radius_px: float, fov_deg: float):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._center = (float(center_px[0]), float(center_px[1]))
        self.radius_px = float(radius_px)
        self.fov_deg = float(fov_deg)
        if self.max_theta_rad > self.max_model_theta_rad + 1e-9:
            raise ConfigError(
                f"a {self.name} lens covers at most {np.degrees(2 * self.max_model_theta_rad):.0f} deg, "
                f"got fov_deg={fov_deg}",
                field="lens.fov_deg",
            )
        self.focal_px = self.radius_px / float(self._g(np.array([self.max_theta_rad]))[0])

    @property
    def center_px(self) -> tuple[float, float]:
        return self._center

    @abstractmethod
    def _g(self, theta: FloatArray) -> FloatArray:
        """Normalised radius r / f at angle theta."""

    @abstractmethod
    def _g_inv(self, r_norm: FloatArray) -> FloatArray:
        """Angle theta at normalised radius r / f (nan outside the domain)."""

    def project(self, rays: npt.ArrayLike) -> FloatArray:
        r = as_rays(rays)
        theta, phi = ray_angles(r)
        with np.errstate(invalid="ignore"):
            bad = theta > self.max_model_theta_rad + 1e-12
        rad = self.focal_px * self._g(np.where(bad, 0.0, theta))
        rad = np.where(bad, np.nan, rad)
        return np.stack([self._center[0] + rad * np.cos(phi), self._center[1] + rad * np.sin(phi)], axis=1)

    def unproject(self, px: npt.ArrayLike) -> FloatArray:
        p = as_points(px, "px")
        dx, dy = p[:, 0] - self._center[0], p[:, 1] - self._center[1]
        with np.errstate(invalid="ignore"):
            theta = self._g_inv(np.hypot(dx, dy) / self.focal_px)
        return rays_from_angles(theta, np.arctan2(dy, dx))


class EquidistantFisheye(RadialFisheye):
    """r = f * theta."""

    name = "equidistant"

    def _g(self, theta: FloatArray) -> FloatArray:
        return theta

    def _g_inv(self, r_norm: FloatArray) -> FloatArray:
        return np.where(r_norm <= np.pi, r_norm, np.nan)


class EquisolidFisheye(RadialFisheye):
    """r = 2 f sin(theta / 2)."""

    name = "equisolid"

    def _g(self, theta: FloatArray) -> FloatArray:
        return np.asarray(2.0 * np.sin(theta / 2.0))

    def _g_inv(self, r_norm: FloatArray) -> FloatArray:
        return np.asarray(2.0 * np.arcsin(np.where(r_norm <= 2.0, r_norm / 2.0, np.nan)))


class StereographicFisheye(RadialFisheye):
    """r = 2 f tan(theta / 2)."""

    name = "stereographic"
    max_model_theta_rad = np.radians(179.0)

    def _g(self, theta: FloatArray) -> FloatArray:
        return np.asarray(2.0 * np.tan(theta / 2.0))

    def _g_inv(self, r_norm: FloatArray) -> FloatArray:
        return np.asarray(2.0 * np.arctan(r_norm / 2.0))


class OrthographicFisheye(RadialFisheye):
    """r = f sin(theta); covers at most 180 deg."""

    name = "orthographic"
    max_model_theta_rad = np.pi / 2

    def _g(self, theta: FloatArray) -> FloatArray:
        return np.asarray(np.sin(theta))

    def _g_inv(self, r_norm: FloatArray) -> FloatArray:
        return np.asarray(np.arcsin(np.where(r_norm <= 1.0, r_norm, np.nan)))


# ---------------------------------------------------------------- Kannala-Brandt
class KannalaBrandt(Lens):
    """OpenCV's cv2.fisheye model: theta_d = theta (1 + k1 t^2 + k2 t^4 + k3 t^6 + k4 t^8),
    u = fx theta_d cos(phi) + cx, v = fy theta_d sin(phi) + cy.

    Unlike cv2.fisheye (theta = atan(r), z > 0 only) theta here is the full angle from the
    axis, so rays behind the image plane of FOVs above 180 deg are represented too.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        k: tuple[float, float, float, float],
        fov_deg: float = 190.0,
    ):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.fx, self.fy, self.cx, self.cy = float(fx), float(fy), float(cx), float(cy)
        self.k = np.asarray(k, dtype=np.float64)
        # The polynomial must be increasing for the inverse to exist; stop at its first peak.
        theta = np.linspace(0.0, np.pi, 20001)
        slope = np.diff(self._theta_d(theta))
        falling = np.nonzero(slope <= 0)[0]
        self.max_model_theta_rad = float(theta[falling[0]]) if len(falling) else float(np.pi)
        self.fov_deg = float(min(fov_deg, np.degrees(2 * self.max_model_theta_rad)))

    @property
    def center_px(self) -> tuple[float, float]:
        return (self.cx, self.cy)

    def _theta_d(self, theta: FloatArray) -> FloatArray:
        t2 = theta * theta
        k1, k2, k3, k4 = self.k
        return np.asarray(theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))))

    def _dtheta_d(self, theta: FloatArray) -> FloatArray:
        t2 = theta * theta
        k1, k2, k3, k4 = self.k
        return np.asarray(1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4))))

    def project(self, rays: npt.ArrayLike) -> FloatArray:
        r = as_rays(rays)
        theta, phi = ray_angles(r)
        with np.errstate(invalid="ignore"):
            td = np.where(theta <= self.max_model_theta_rad + 1e-12, self._theta_d(theta), np.nan)
        return np.stack([self.cx + self.fx * td * np.cos(phi), self.cy + self.fy * td * np.sin(phi)], axis=1)

    def unproject(self, px: npt.ArrayLike) -> FloatArray:
        p = as_points(px, "px")
        mx, my = (p[:, 0] - self.cx) / self.fx, (p[:, 1] - self.cy) / self.fy
        td = np.hypot(mx, my)
        theta = self._solve_theta(td)
        return rays_from_angles(theta, np.arctan2(my, mx))

    def _solve_theta(self, td: FloatArray) -> FloatArray:
        """Newton's method for theta_d(theta) = td on [0, max_model_theta], vectorised."""
        hi = self.max_model_theta_rad
        td_max = float(self._theta_d(np.array([hi]))[0])
        theta = np.clip(td, 0.0, hi)
        for _ in range(_NEWTON_STEPS):
            step = (self._theta_d(theta) - td) / self._dtheta_d(theta)
            theta = np.clip(theta - step, 0.0, hi)
            if np.all(np.abs(step) < 1e-13):
                break
        return np.where(td <= td_max + 1e-12, theta, np.nan)


# ---------------------------------------------------------------- pinhole
class Pinhole(Lens):
    """Pinhole with Brown-Conrady distortion, OpenCV's (k1, k2, p1, p2, k3)."""

    def __init__(
        self,
        image_size: tuple[int, int],
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        dist: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    ):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.fx, self.fy, self.cx, self.cy = float(fx), float(fy), float(cx), float(cy)
        self.dist = np.asarray(dist, dtype=np.float64)
        # Radial distortion folds back beyond the first peak of r_d(r); rays past it are invalid.
        r = np.linspace(0.0, 20.0, 40001)
        k1, _, _, _, k3 = self.dist
        k2 = self.dist[1]
        r_d = r * (1 + r**2 * (k1 + r**2 * (k2 + r**2 * k3)))
        falling = np.nonzero(np.diff(r_d) <= 0)[0]
        self.max_undistorted_r = float(r[falling[0]]) if len(falling) else float(r[-1])
        self.fov_deg = float(2 * np.degrees(np.arctan(self.max_undistorted_r)))

    @property
    def center_px(self) -> tuple[float, float]:
        return (self.cx, self.cy)

    def _distort(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        k1, k2, p1, p2, k3 = self.dist
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return xd, yd

    def _jacobian(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        k1, k2, p1, p2, k3 = self.dist
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dradial = k1 + r2 * (2 * k2 + 3 * k3 * r2)  # d radial / d r2
        dxx = radial + x * dradial * 2 * x + 2 * p1 * y + p2 * 6 * x
        dxy = x * dradial * 2 * y + 2 * p1 * x + 2 * p2 * y
        dyx = y * dradial * 2 * x + 2 * p1 * x + 2 * p2 * y
        dyy = radial + y * dradial * 2 * y + p1 * 6 * y + 2 * p2 * x
        return dxx, dxy, dyx, dyy

    def project(self, rays: npt.ArrayLike) -> FloatArray:
        r = as_rays(rays)
        z = np.where(r[:, 2] > 1e-9, r[:, 2], np.nan)
        xd, yd = self._distort(r[:, 0] / z, r[:, 1] / z)
        return np.stack([self.cx + self.fx * xd, self.cy + self.fy * yd], axis=1)

    def unproject(self, px: npt.ArrayLike) -> FloatArray:
        p = as_points(px, "px")
        xd, yd = (p[:, 0] - self.cx) / self.fx, (p[:, 1] - self.cy) / self.fy
        x, y = xd.copy(), yd.copy()
        if np.any(self.dist != 0):
            for _ in range(_NEWTON_STEPS):
                fx_, fy_ = self._distort(x, y)
                ex, ey = fx_ - xd, fy_ - yd
                a, b, c, d = self._jacobian(x, y)
                det = a * d - b * c
                with np.errstate(divide="ignore", invalid="ignore"):
                    sx = (d * ex - b * ey) / det
                    sy = (a * ey - c * ex) / det
                x, y = x - sx, y - sy
                if np.all(np.abs(sx) + np.abs(sy) < 1e-14):
                    break
            fx_, fy_ = self._distort(x, y)
            bad = np.hypot(fx_ - xd, fy_ - yd) * max(self.fx, self.fy) > 1e-3
            x, y = np.where(bad, np.nan, x), np.where(bad, np.nan, y)
        rays = np.stack([x, y, np.ones_like(x)], axis=1)
        return np.asarray(rays / np.linalg.norm(rays, axis=1, keepdims=True), dtype=np.float64)


# ---------------------------------------------------------------- factory
def make_lens(cfg: LensConfig) -> Lens:
    """The Lens for a validated lens config (`CameraConfig.lens`)."""
    if isinstance(cfg, EquidistantLens):
        return EquidistantFisheye(cfg.image_size, cfg.center_px, cfg.radius_px, cfg.fov_deg)
    if isinstance(cfg, EquisolidLens):
        return EquisolidFisheye(cfg.image_size, cfg.center_px, cfg.radius_px, cfg.fov_deg)
    if isinstance(cfg, StereographicLens):
        return StereographicFisheye(cfg.image_size, cfg.center_px, cfg.radius_px, cfg.fov_deg)
    if isinstance(cfg, OrthographicLens):
        return OrthographicFisheye(cfg.image_size, cfg.center_px, cfg.radius_px, cfg.fov_deg)
    if isinstance(cfg, KannalaBrandtLens):
        return KannalaBrandt(cfg.image_size, cfg.fx, cfg.fy, cfg.cx, cfg.cy, cfg.k, cfg.fov_deg)
    if isinstance(cfg, PinholeLens):
        return Pinhole(cfg.image_size, cfg.fx, cfg.fy, cfg.cx, cfg.cy, cfg.dist)
    raise ConfigError(f"unknown lens model {getattr(cfg, 'model', cfg)!r}", field="lens.model")
