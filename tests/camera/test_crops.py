from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from trafficprn.camera.crops import VehicleCropper
from trafficprn.camera.lens import make_lens
from trafficprn.config import LensConfig
from trafficprn.errors import GeometryError

LensFactory = Callable[..., LensConfig]


def frame_with_patch(lens: Any, centre_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame with a red disc plus a green dot placed radially outward (the "roof")."""
    image = np.full((lens.image_size[1], lens.image_size[0], 3), 40, np.uint8)
    c = np.round(centre_px).astype(int)
    cv2.circle(image, tuple(c), 30, (0, 0, 255), -1)
    out = centre_px - np.array(lens.center_px)
    out = out / np.linalg.norm(out)
    dot = np.round(centre_px + 22 * out).astype(int)
    cv2.circle(image, tuple(dot), 5, (0, 255, 0), -1)
    box = np.array([c[0] - 32, c[1] - 32, c[0] + 32, c[1] + 32], dtype=float)
    return image, box


@pytest.mark.parametrize("where", [(300.0, 320.0), (1000.0, 640.0), (640.0, 1100.0), (250.0, 900.0)])
def test_fisheye_crop_is_centred_and_upright(make_lens_config: LensFactory, where: tuple[float, float]) -> None:
    lens = make_lens(make_lens_config("equidistant"))
    image, box = frame_with_patch(lens, np.array(where))
    crop = VehicleCropper(lens).crop(image, box)
    h, w = crop.shape[:2]
    assert 16 <= max(w, h) <= 256
    red = (crop[..., 2] > 150) & (crop[..., 1] < 100)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - (w - 1) / 2) < 0.1 * w and abs(ys.mean() - (h - 1) / 2) < 0.15 * h
    # the green "roof" dot lies above the centre: away from the image centre is up
    gy, gx = np.nonzero((crop[..., 1] > 150) & (crop[..., 2] < 100))
    assert gy.mean() < (h - 1) / 2 - 0.1 * h
    assert abs(gx.mean() - (w - 1) / 2) < 0.1 * w


def test_crop_maps_agree_with_exact_projection(make_lens_config: LensFactory) -> None:
    lens = make_lens(make_lens_config("kannala_brandt"))
    cropper = VehicleCropper(lens)
    view = cropper.view_for([900, 250, 1010, 330], (160, 120))
    map_x, map_y = cropper._maps(view)
    ys, xs = np.mgrid[0:120, 0:160]
    exact = lens.project(view.rays(np.stack([xs.ravel(), ys.ravel()], 1))).reshape(120, 160, 2)
    err = np.hypot(map_x - exact[..., 0], map_y - exact[..., 1])
    assert err.max() < 0.1  # coarse grid + bilinear is exact to a tenth of a pixel


def test_out_size_and_pinhole_slice(make_lens_config: LensFactory) -> None:
    fish = VehicleCropper(make_lens_config("equidistant"))
    frame = np.zeros((1280, 1280, 3), np.uint8)
    assert fish.crop(frame, [600, 200, 700, 260], out_size=(96, 64)).shape == (64, 96, 3)
    pin = VehicleCropper(make_lens_config("pinhole"), pad=0.1)
    frame = np.arange(720 * 1280 * 3, dtype=np.uint32).reshape(720, 1280, 3).astype(np.uint8)
    out = pin.crop(frame, [100, 100, 200, 150])
    assert out.shape == (60, 120, 3)
    np.testing.assert_array_equal(out, frame[95:155, 90:210])
    assert pin.crop(frame, [1250, 700, 1300, 740]).shape == (24, 35, 3)  # clipped at the edge
    assert pin.crop(frame, [100, 100, 200, 150], out_size=(64, 32)).shape == (32, 64, 3)


@pytest.mark.parametrize(
    ("model", "box", "match"),
    [
        ("equidistant", [0, 0, 20, 20], "outside the lens' image circle"),
        ("pinhole", [2000, 2000, 2100, 2100], "outside the 1280x720 frame"),
    ],
)
def test_bad_boxes(make_lens_config: LensFactory, model: str, box: list[float], match: str) -> None:
    cropper = VehicleCropper(make_lens_config(model))
    w, h = cropper.lens.image_size
    with pytest.raises(GeometryError, match=match):
        cropper.crop(np.zeros((h, w, 3), np.uint8), box)
