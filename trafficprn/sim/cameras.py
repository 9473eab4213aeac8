"""Sim cameras: a lens (trafficprn.camera.lens) plus a pose in the ground frame.

Ground frame: x east, y north, z up, metres, origin at the junction centre.
Camera frame (lens contract): x right, y down, z along the optical axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trafficprn.camera.lens import Lens, make_lens
from trafficprn.config import EquidistantLens, LensConfig, PinholeLens
from trafficprn.errors import ScenarioError
from trafficprn.types import FloatArray

CAMERA_KINDS = ("fisheye", "pole")


def look_rotation(forward: FloatArray, north_up: bool = False) -> FloatArray:
    """(3, 3) world->camera rotation whose rows are the camera x, y, z axes in the world."""
    z = np.asarray(forward, dtype=np.float64)
    z = z / np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6 or north_up:
        # looking (almost) straight down: image up = north
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
        x = x if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


@dataclass
class SimCamera:
    name: str
    lens_cfg: LensConfig
    rotation: FloatArray  # (3, 3) world -> camera
    position_m: FloatArray  # (3,)

    def __post_init__(self) -> None:
        self.lens: Lens = make_lens(self.lens_cfg)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.lens.image_size

    @property
    def is_fisheye(self) -> bool:
        return not isinstance(self.lens_cfg, PinholeLens)

    def to_camera(self, points_m: FloatArray) -> FloatArray:
        """(N, 3) ground-frame points -> (N, 3) camera-frame points."""
        return (np.asarray(points_m, dtype=np.float64) - self.position_m) @ self.rotation.T

    def project(self, points_m: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """(N, 3) ground-frame points -> ((N, 2) image px, (N,) bool representable in the lens' FOV)."""
        pc = self.to_camera(points_m)
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = self.lens.in_fov(pc) & (np.linalg.norm(pc, axis=1) > 0.05)
            if not self.is_fisheye:
                ok &= pc[:, 2] > 0.2
            px = self.lens.project(np.where(ok[:, None], pc, np.array([0.0, 0.0, 1.0])))
        ok &= np.isfinite(px).all(axis=1)
        return px, ok

    def ground_points(self, px: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """(N, 2) image px -> ((N, 2) ground m, (N,) bool hits the ground in front of the camera)."""
        return self.ground_from_rays(self.lens.unproject(px) @ self.rotation)

    def ground_from_rays(self, rays_w: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """(N, 3) ground-frame rays from the camera -> ((N, 2) ground m, (N,) bool hit)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            t = -self.position_m[2] / rays_w[:, 2]
            ok = np.isfinite(t) & (t > 0) & np.isfinite(rays_w).all(axis=1)
            t = np.where(ok, t, 0.0)
        g = self.position_m[None, :2] + t[:, None] * rays_w[:, :2]
        return g, ok


def fisheye_camera(size_px: int = 1280, height_m: float = 10.0, fov_deg: float = 185.0) -> SimCamera:
    """The overhead equidistant fisheye, `height_m` above the junction centre, north up."""
    c = size_px / 2
    lens = EquidistantLens(model="equidistant", image_size=(size_px, size_px), center_px=(c, c),
                           radius_px=c * 0.985, fov_deg=fov_deg)
    return SimCamera("fisheye-1", lens, look_rotation(np.array([0.0, 0.0, -1.0])), np.array([0.0, 0.0, height_m]))


def pole_camera(size_px: tuple[int, int] = (1280, 720), hfov_deg: float = 64.0) -> SimCamera:
    """A pole-mounted pinhole beside the south leg, 7 m high, looking north along the leg."""
    w, h = size_px
    f = (w / 2) / np.tan(np.radians(hfov_deg / 2))
    lens = PinholeLens(model="pinhole", image_size=(w, h), fx=f, fy=f, cx=w / 2, cy=h / 2)
    pos = np.array([9.5, -33.0, 7.0])
    target = np.array([-1.0, 0.0, 0.0])
    return SimCamera("pole-1", lens, look_rotation(target - pos), pos)


def make_camera(kind: str, size_px: tuple[int, int] | None = None) -> SimCamera:
    if kind == "fisheye":
        return fisheye_camera(size_px[0] if size_px else 1280)
    if kind == "pole":
        return pole_camera(size_px or (1280, 720))
    raise ScenarioError(f"unknown camera {kind!r}; expected one of {list(CAMERA_KINDS)}", field="camera")
