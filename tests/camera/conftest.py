"""Factories for lens configs and synthetic cameras shared by the camera tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import TypeAdapter

from trafficprn.config import LensConfig

FISHEYE_MODELS = ("equidistant", "equisolid", "stereographic", "orthographic", "kannala_brandt")

KB_K = (0.05, -0.01, 0.002, -0.0005)


def lens_dict(model: str, **over: Any) -> dict[str, Any]:
    """A plausible 1280x1280 lens config of `model` (fisheyes cover the frame's image circle)."""
    if model in ("equidistant", "equisolid", "stereographic"):
        base: dict[str, Any] = dict(image_size=[1280, 1280], center_px=[640, 640], radius_px=630, fov_deg=185)
    elif model == "orthographic":
        base = dict(image_size=[1280, 1280], center_px=[640, 640], radius_px=630, fov_deg=180)
    elif model == "kannala_brandt":
        base = dict(image_size=[1280, 1280], fx=350.0, fy=352.0, cx=641.5, cy=638.0, k=list(KB_K), fov_deg=185)
    elif model == "pinhole":
        base = dict(
            image_size=[1280, 720], fx=900.0, fy=905.0, cx=645.0, cy=358.0, dist=[-0.28, 0.09, 0.001, -0.0008, -0.01]
        )
    else:
        raise ValueError(model)
    base.update(over)
    base["model"] = model
    return base


def lens_config(model: str, **over: Any) -> LensConfig:
    return TypeAdapter(LensConfig).validate_python(lens_dict(model, **over))  # type: ignore[no-any-return]


@pytest.fixture
def make_lens_config() -> Callable[..., LensConfig]:
    return lens_config


class SyntheticCamera:
    """A lens at a pose over the ground plane (ground frame X, Y on the road, Z up)."""

    def __init__(self, lens: Any, height_m: float, tilt_deg: float, yaw_deg: float = 0.0, position_m: Any = (0, 0)):
        import numpy as np

        from trafficprn.camera.calibration import pose_rotation

        y = np.radians(yaw_deg)
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1.0]])
        self.lens = lens
        self.rotation = rz @ pose_rotation(tilt_deg)  # camera -> ground
        self.centre_m = np.array([position_m[0], position_m[1], height_m], dtype=float)

    def ground_to_image(self, ground_m: Any) -> Any:
        import numpy as np

        p = np.hstack([np.asarray(ground_m, dtype=float), np.zeros((len(ground_m), 1))])
        rays = (p - self.centre_m) @ self.rotation  # R^T (P - C), row-wise
        return self.lens.project(rays)


@pytest.fixture
def synthetic_camera() -> type[SyntheticCamera]:
    return SyntheticCamera


def render_checkerboard(
    lens: Any, plane_point: Any, plane_u: Any, plane_v: Any, square: float, n: tuple[int, int]
) -> Any:
    """A grey checkerboard of n = (cols, rows) squares on a plane in the lens frame, seen
    through `lens`: (H, W, 3) uint8. The plane is plane_point + a * plane_u + b * plane_v;
    edges are smoothed (tanh) so the saddle points stay exact for corner detection."""
    import numpy as np

    w, h = lens.image_size
    ys, xs = np.mgrid[0:h, 0:w]
    rays = lens.unproject(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float))
    normal = np.cross(plane_u, plane_v)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (plane_point @ normal) / (rays @ normal)
    hit = rays * t[:, None] - plane_point
    a, b = hit @ plane_u, hit @ plane_v
    inside = (t > 0) & (np.abs(a) < n[0] * square / 2) & (np.abs(b) < n[1] * square / 2)
    # squares of side `square`, a corner at the centre; blur ~ 0.7 px equivalent
    f = np.sin(np.pi * (a / square)) * np.sin(np.pi * (b / square))
    val = 128 + 110 * np.tanh(f * 25)
    img = np.where(inside & np.isfinite(val), val, 128.0).reshape(h, w)
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


@pytest.fixture
def checkerboard() -> Callable[..., Any]:
    return render_checkerboard
