"""Ground anchors of boxes: towards the world's down direction, further the more oblique."""

from __future__ import annotations

import numpy as np
import pytest

from trafficprn.analytics.anchor import EDGE_FRACTION, OFF_NADIR_DEG, GroundAnchor, bottom_centre_px
from trafficprn.camera.calibration import Calibration
from trafficprn.camera.lens import make_lens
from trafficprn.config import EquidistantLens, PinholeLens, PoseCalibration


def pinhole() -> PinholeLens:
    return PinholeLens(model="pinhole", image_size=(1280, 720), fx=800.0, fy=800.0, cx=640.0, cy=360.0)


def box_at(cx: float, cy: float, w: float = 60.0, h: float = 40.0) -> np.ndarray:
    return np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])


def test_looking_straight_down_the_centre_box_anchors_at_its_centre() -> None:
    cal = Calibration.from_pose(make_lens(pinhole()), PoseCalibration(height_m=10.0, tilt_deg=90.0))
    anchor = GroundAnchor(cal)
    np.testing.assert_allclose(anchor(box_at(640, 360)), [[640, 360]], atol=1e-6)
    right = anchor(box_at(1000, 360))[0]
    assert 1000 - 30 * 0.2 < right[0] < 1000 and right[1] == pytest.approx(360, abs=1e-6)  # a little towards nadir


@pytest.mark.parametrize(("tilt_deg", "box_y"), [(10.0, 500.0), (30.0, 500.0), (30.0, 300.0), (60.0, 600.0)])
def test_pole_camera_anchor_moves_down_the_box_by_the_viewing_angle(tilt_deg: float, box_y: float) -> None:
    cal = Calibration.from_pose(make_lens(pinhole()), PoseCalibration(height_m=8.0, tilt_deg=tilt_deg))
    a = GroundAnchor(cal)(box_at(640, box_y))[0]
    below_horizontal = tilt_deg + np.degrees(np.arctan((box_y - 360.0) / 800.0))
    expected = np.interp(90.0 - below_horizontal, OFF_NADIR_DEG, EDGE_FRACTION)
    assert a[0] == pytest.approx(640, abs=1e-6)
    assert (a[1] - box_y) / 20.0 == pytest.approx(expected, abs=1e-6)  # fraction of the half height


def test_fisheye_down_points_to_the_image_centre() -> None:
    lens = EquidistantLens(model="equidistant", image_size=(1280, 1280), center_px=(640, 640), radius_px=630, fov_deg=185)
    cal = Calibration.from_pose(make_lens(lens), PoseCalibration(height_m=9.0, tilt_deg=90.0))
    boxes = np.concatenate([box_at(640 + dx, 640 + dy) for dx, dy in [(400, 0), (0, -450), (-300, 300)]])
    a = GroundAnchor(cal)(boxes)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    towards = (np.array([640.0, 640.0]) - centres) / np.linalg.norm(np.array([640.0, 640.0]) - centres, axis=1)[:, None]
    step = a - centres
    cos = (step * towards).sum(axis=1) / np.linalg.norm(step, axis=1)
    assert (cos > 0.999).all()


def test_without_a_lens_or_in_bottom_mode_it_is_the_bottom_centre() -> None:
    class Flat:
        def image_to_ground(self, px: np.ndarray) -> np.ndarray:
            return px / 10.0

    boxes = np.array([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 4.0, 2.0]])
    np.testing.assert_allclose(GroundAnchor(Flat())(boxes), [[30, 60], [2, 2]])
    cal = Calibration.from_pose(make_lens(pinhole()), PoseCalibration(height_m=8.0, tilt_deg=20.0))
    np.testing.assert_allclose(GroundAnchor(cal, mode="bottom")(boxes), bottom_centre_px(boxes))
