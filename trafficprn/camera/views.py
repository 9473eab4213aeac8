"""Virtual cameras looking through a lens: perspective views ("virtual PTZ") and a
cylindrical panorama. Each maps view px <-> rays in the lens' camera frame exactly;
`camera.dewarp` turns them into cached remap tables.

Orientation (for an overhead fisheye, optical axis down, image up = north):
- pitch_deg: angle of the view's axis away from the optical axis (0: along it, 90: horizon);
- yaw_deg: azimuth of the view's axis around the optical axis, clockwise on the image
  from image-up (0: towards image top, 90: towards image right);
- roll_deg: rotation of the view about its own axis.
A view's "up" points away from the image centre, so an outward-looking view is upright.
View px follow OpenCV: integer coordinates are pixel centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trafficprn.geometry.polygons import as_points

FloatArray = npt.NDArray[np.float64]


def view_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> FloatArray:
    """(3, 3) rotation view frame -> lens frame; columns are the view's x, y, z axes."""
    y, p, r = np.radians([yaw_deg, pitch_deg, roll_deg])
    z = np.array([np.sin(p) * np.sin(y), -np.sin(p) * np.cos(y), np.cos(p)])
    down = np.array([-np.cos(p) * np.sin(y), np.cos(p) * np.cos(y), np.sin(p)])  # -d(z)/d(pitch)
    x = np.cross(down, z)
    base = np.stack([x, down, z], axis=1)
    roll = np.array([[np.cos(r), -np.sin(r), 0.0], [np.sin(r), np.cos(r), 0.0], [0.0, 0.0, 1.0]])
    return np.asarray(base @ roll, dtype=np.float64)


def direction_angles(ray: FloatArray) -> tuple[float, float]:
    """(yaw_deg, pitch_deg) of the view whose axis is the unit `ray` (3,)."""
    pitch = np.degrees(np.arctan2(np.hypot(ray[0], ray[1]), ray[2]))
    yaw = np.degrees(np.arctan2(ray[0], -ray[1])) if np.hypot(ray[0], ray[1]) > 1e-12 else 0.0
    return float(yaw), float(pitch)


@dataclass(frozen=True)
class PerspectiveView:
    """A pinhole "virtual PTZ" camera inside the lens frame.

    size: (width, height) px; focal_px: focal length in px (square pixels);
    rotation: (3, 3) view -> lens frame. Centre at ((w - 1) / 2, (h - 1) / 2).
    """

    name: str
    size: tuple[int, int]
    focal_px: float
    rotation: FloatArray = field(repr=False)

    @classmethod
    def from_angles(
        cls, name: str, yaw_deg: float, pitch_deg: float, roll_deg: float, fov_deg: float, size: tuple[int, int]
    ) -> PerspectiveView:
        """A view of horizontal field of view `fov_deg` (0 < fov < 180)."""
        w = int(size[0])
        focal = (w / 2.0) / np.tan(np.radians(fov_deg) / 2.0)
        return cls(name, (int(size[0]), int(size[1])), float(focal), view_rotation(yaw_deg, pitch_deg, roll_deg))

    @property
    def center_px(self) -> tuple[float, float]:
        return ((self.size[0] - 1) / 2.0, (self.size[1] - 1) / 2.0)

    @property
    def axis(self) -> FloatArray:
        """(3,) the view's optical axis in the lens frame."""
        return np.asarray(self.rotation[:, 2], dtype=np.float64)

    def rays(self, view_px: npt.ArrayLike) -> FloatArray:
        """(N, 2) view px -> (N, 3) unit rays in the lens frame."""
        p = as_points(view_px, "view_px")
        cx, cy = self.center_px
        v = np.stack([(p[:, 0] - cx) / self.focal_px, (p[:, 1] - cy) / self.focal_px, np.ones(len(p))], axis=1)
        r = v @ self.rotation.T
        return np.asarray(r / np.linalg.norm(r, axis=1, keepdims=True), dtype=np.float64)

    def pixels(self, rays: npt.ArrayLike) -> FloatArray:
        """(N, 3) lens-frame rays -> (N, 2) view px; nan for rays behind the view."""
        r = np.asarray(rays, dtype=np.float64).reshape(-1, 3) @ self.rotation
        z = np.where(r[:, 2] > 1e-12, r[:, 2], np.nan)
        cx, cy = self.center_px
        return np.stack([cx + self.focal_px * r[:, 0] / z, cy + self.focal_px * r[:, 1] / z], axis=1)

    def grid_rays(self) -> FloatArray:
        """(h, w, 3) the ray of every view pixel."""
        w, h = self.size
        cx, cy = self.center_px
        xs = (np.arange(w) - cx) / self.focal_px
        ys = (np.arange(h) - cy) / self.focal_px
        v = np.empty((h, w, 3))
        v[..., 0] = xs[None, :]
        v[..., 1] = ys[:, None]
        v[..., 2] = 1.0
        r = v @ self.rotation.T
        return np.asarray(r / np.linalg.norm(r, axis=2, keepdims=True), dtype=np.float64)


@dataclass(frozen=True)
class CylindricalView:
    """A 360 deg cylindrical panorama around the optical axis.

    Column c covers azimuth yaw = yaw0 + 360 * (c + 0.5) / w (clockwise from image up);
    row r has cot(theta) linear between theta_max_deg (top row: outward, the horizon side)
    and theta_min_deg (bottom row: towards the axis), so vertical lines stay vertical.
    """

    name: str
    size: tuple[int, int]
    theta_min_deg: float
    theta_max_deg: float
    yaw0_deg: float = 0.0

    def _rows(self) -> tuple[float, float]:
        top = 1.0 / np.tan(np.radians(self.theta_max_deg))
        bottom = 1.0 / np.tan(np.radians(self.theta_min_deg))
        return float(top), float(bottom)

    def _angles_to_rays(self, yaw: FloatArray, cot: FloatArray) -> FloatArray:
        r = np.stack([np.sin(yaw), -np.cos(yaw), cot], axis=-1)
        return np.asarray(r / np.linalg.norm(r, axis=-1, keepdims=True), dtype=np.float64)

    def rays(self, view_px: npt.ArrayLike) -> FloatArray:
        p = as_points(view_px, "view_px")
        w, h = self.size
        top, bottom = self._rows()
        yaw = np.radians(self.yaw0_deg) + 2 * np.pi * (p[:, 0] + 0.5) / w
        cot = top + (bottom - top) * (p[:, 1] + 0.5) / h
        return self._angles_to_rays(yaw, cot)

    def pixels(self, rays: npt.ArrayLike) -> FloatArray:
        """(N, 3) rays -> (N, 2) panorama px; nan on the axis itself."""
        r = np.asarray(rays, dtype=np.float64).reshape(-1, 3)
        w, h = self.size
        top, bottom = self._rows()
        rho = np.hypot(r[:, 0], r[:, 1])
        yaw = np.mod(np.arctan2(r[:, 0], -r[:, 1]) - np.radians(self.yaw0_deg), 2 * np.pi)
        with np.errstate(divide="ignore", invalid="ignore"):
            cot = np.where(rho > 1e-12, r[:, 2] / rho, np.nan)
        x = yaw / (2 * np.pi) * w - 0.5
        y = (cot - top) / (bottom - top) * h - 0.5
        return np.stack([x, y], axis=1)

    def grid_rays(self) -> FloatArray:
        w, h = self.size
        top, bottom = self._rows()
        yaw = np.radians(self.yaw0_deg) + 2 * np.pi * (np.arange(w) + 0.5) / w
        cot = top + (bottom - top) * (np.arange(h) + 0.5) / h
        yy, cc = np.meshgrid(yaw, cot)
        return self._angles_to_rays(yy, cc)


VirtualView = PerspectiveView | CylindricalView
