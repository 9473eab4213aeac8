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
