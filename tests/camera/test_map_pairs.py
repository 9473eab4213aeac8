"""Map pairs and the check grid against a synthetic camera whose ground truth is known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafficprn.camera.calibration import Calibration
from trafficprn.camera.check_grid import check_grid
from trafficprn.camera.lens import make_lens
from trafficprn.camera.map_pairs import aerial_to_ground, fit_map_pairs
from trafficprn.errors import CalibrationError

GROUND = np.array([[-12.0, 15.0], [10.0, 14.0], [11.0, 26.0], [-9.0, 30.0], [0.0, 20.0], [4.0, 9.0]])
FACTORIES = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _camera(kind: str, synthetic_camera: Any, make_lens_config: Any) -> tuple[Any, Any]:
    """(camera, its ground points): a fisheye 9 m over the junction looking straight down
    (y north = up the image), or a pinhole on a 7 m pole tilted 35 deg down."""
    if kind == "fisheye":
        return synthetic_camera(make_lens(make_lens_config("equidistant")), 9.0, 90.0), GROUND
    lens = make_lens(make_lens_config("pinhole", dist=[0, 0, 0, 0, 0]))
    return synthetic_camera(lens, 7.0, 35.0), GROUND * [0.5, 0.8]


def _aerial(ground_m: Any, mpp: float, origin_px: Any) -> Any:
    """The inverse of aerial_to_ground: where a ground point lies on the aerial image."""
    g = np.asarray(ground_m, dtype=float)
    return np.stack([origin_px[0] + g[:, 0] / mpp, origin_px[1] - g[:, 1] / mpp], 1)


@settings(max_examples=25, deadline=None)
@given(mpp=st.floats(0.02, 1.0), ox=st.floats(-500, 500), oy=st.floats(-500, 500))
def test_aerial_to_ground_inverts_the_aerial_image(mpp: float, ox: float, oy: float) -> None:
    aerial = _aerial(GROUND, mpp, (ox, oy))
    np.testing.assert_allclose(aerial_to_ground(aerial, mpp, (ox, oy)), GROUND, atol=1e-6)


@pytest.mark.parametrize("kind", ["fisheye", "pinhole"])
@FACTORIES
@given(mpp=st.floats(0.05, 0.5), shift=st.floats(-40, 40))
def test_map_pairs_recover_the_true_ground_up_to_the_origin(kind: str, synthetic_camera: Any, make_lens_config: Any,
                                                            mpp: float, shift: float) -> None:
    cam, ground = _camera(kind, synthetic_camera, make_lens_config)
    image_px = cam.ground_to_image(ground)
    origin = (600.0 + shift, 400.0 - shift)
    fit = fit_map_pairs(cam.lens, image_px, _aerial(ground, mpp, origin), mpp)
    # the first pair's aerial point is the origin; everything else is the truth moved by it
    np.testing.assert_allclose(fit.ground_m, np.round(ground - ground[0], 2), atol=0.011)
    assert fit.calibration.rms_m is not None and fit.calibration.rms_m < 0.02
    probe = cam.ground_to_image(np.array([[-5.0, 12.0], [6.0, 24.0]]))
    np.testing.assert_allclose(fit.calibration.image_to_ground(probe), np.array([[-5.0, 12.0], [6.0, 24.0]])
                               - ground[0], atol=0.05)


def test_map_pairs_refuse_too_few_or_degenerate_pairs(synthetic_camera: Any, make_lens_config: Any) -> None:
    cam, _ = _camera("fisheye", synthetic_camera, make_lens_config)
    px = cam.ground_to_image(GROUND)
    with pytest.raises(CalibrationError, match="at least 4 map pairs, got 3"):
        fit_map_pairs(cam.lens, px[:3], _aerial(GROUND[:3], 0.1, (0, 0)), 0.1)
    line = np.array([[0.0, 0], [1, 1], [2, 2], [3, 3]])
    with pytest.raises(CalibrationError, match="collinear"):
        fit_map_pairs(cam.lens, px[:4], _aerial(line, 0.1, (0, 0)), 0.1)
    with pytest.raises(CalibrationError, match="metres_per_px"):
        fit_map_pairs(cam.lens, px, _aerial(GROUND, 0.1, (0, 0)), 0.0)


@pytest.mark.parametrize("kind", ["fisheye", "pinhole"])
def test_check_grid_lines_lie_on_their_ground_lines(kind: str, synthetic_camera: Any, make_lens_config: Any) -> None:
    cam, ground = _camera(kind, synthetic_camera, make_lens_config)
    cal = Calibration.from_points(cam.lens, cam.ground_to_image(ground), ground)
    grid = check_grid(cal, 5.0)
    w, h = cam.lens.image_size
    assert {line.axis for line in grid.lines} == {"x", "y"} and grid.spacing_m == 5.0
    for line in grid.lines:
        assert line.value_m % 5.0 == 0.0
        for piece in line.pieces_px:
            assert piece.shape[1] == 2 and len(piece) >= 2
            inside = (piece[:, 0] >= 0) & (piece[:, 0] <= w) & (piece[:, 1] >= 0) & (piece[:, 1] <= h)
            back = cal.image_to_ground(piece[inside])
            fixed = back[:, 0] if line.axis == "x" else back[:, 1]
            np.testing.assert_allclose(fixed, line.value_m, atol=0.05)


def test_check_grid_widens_its_spacing_over_large_areas(synthetic_camera: Any, make_lens_config: Any) -> None:
    cam, _ = _camera("fisheye", synthetic_camera, make_lens_config)
    far = GROUND * 4
    cal = Calibration.from_points(cam.lens, cam.ground_to_image(far), far)
    grid = check_grid(cal, 1.0)
    assert grid.spacing_m > 1.0
    assert sum(line.axis == "x" for line in grid.lines) <= 41
