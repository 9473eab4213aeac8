from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from trafficprn.camera.calibration import Calibration
from trafficprn.camera.lens import make_lens
from trafficprn.config import KnownDistance, LensConfig, PoseCalibration
from trafficprn.errors import CalibrationError

LensFactory = Callable[..., LensConfig]

# (model, height m, tilt deg, yaw deg, survey area half-size m)
CAMERAS = [
    ("equidistant", 8.0, 90.0, 20.0, 14.0),
    ("kannala_brandt", 7.0, 75.0, -40.0, 12.0),
    ("stereographic", 9.0, 90.0, 0.0, 15.0),
    ("pinhole", 6.0, 25.0, 10.0, 6.0),
]


def survey(cam: Any, rng: np.random.Generator, n: int, half_m: float, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """n ground points the camera sees, with their image px."""
    ahead = 0.0 if tilt == 90 else 14.0
    pts = []
    while len(pts) < n:
        g = rng.uniform([-half_m, -half_m + ahead], [half_m, half_m + ahead], (4 * n, 2))
        g = g @ np.array([[np.cos(cam.yaw), np.sin(cam.yaw)], [-np.sin(cam.yaw), np.cos(cam.yaw)]])
        px = cam.ground_to_image(g)
        ok = cam.lens.valid(px)
        pts.extend(zip(g[ok], px[ok], strict=True))
    pts = pts[:n]
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def make_camera(
    synthetic_camera: Any, make_lens_config: LensFactory, model: str, h: float, tilt: float, yaw: float
) -> Any:
    cam = synthetic_camera(make_lens(make_lens_config(model)), h, tilt, yaw)
    cam.yaw = np.radians(yaw)
    return cam


@pytest.mark.parametrize(("model", "height", "tilt", "yaw", "half"), CAMERAS)
def test_held_out_points_within_10cm(
    synthetic_camera: Any,
    make_lens_config: LensFactory,
    model: str,
    height: float,
    tilt: float,
    yaw: float,
    half: float,
) -> None:
    rng = np.random.default_rng(7)
    cam = make_camera(synthetic_camera, make_lens_config, model, height, tilt, yaw)
    ground, px = survey(cam, rng, 10, half, tilt)
    noisy_px = px + rng.normal(0, 0.3, px.shape)  # clicked to a third of a pixel
    cal = Calibration.from_points(cam.lens, noisy_px, ground)
    assert cal.inliers.all()
    held_ground, held_px = survey(cam, rng, 200, half, tilt)
    err = np.linalg.norm(cal.image_to_ground(held_px) - held_ground, axis=1)
    assert np.sqrt(np.mean(err**2)) <= 0.1
    assert cal.rms_m is not None and cal.rms_m < 0.1
    assert cal.rms_px is not None and cal.rms_px < 1.0
    # exact mapping both ways
    np.testing.assert_allclose(cal.ground_to_image(cal.image_to_ground(held_px)), held_px, atol=1e-6)


def test_ransac_rejects_a_bad_survey_point(synthetic_camera: Any, make_lens_config: LensFactory) -> None:
    rng = np.random.default_rng(3)
    cam = make_camera(synthetic_camera, make_lens_config, "equidistant", 8.0, 90.0, 0.0)
    ground, px = survey(cam, rng, 9, 12.0, 90.0)
    ground[4] += [4.0, -3.0]  # a typo in the survey
    cal = Calibration.from_points(cam.lens, px, ground)
    assert cal.inliers.tolist() == [i != 4 for i in range(9)]
    assert cal.rms_m is not None and cal.rms_m < 1e-6
    assert cal.residuals_m[4] == pytest.approx(5.0, abs=0.01)


def test_pose_calibration_matches_the_camera(synthetic_camera: Any, make_lens_config: LensFactory) -> None:
    rng = np.random.default_rng(5)
    cam = make_camera(synthetic_camera, make_lens_config, "equisolid", 7.5, 70.0, 0.0)
    ground, px = survey(cam, rng, 100, 10.0, 70.0)
    cal = Calibration.from_pose(cam.lens, PoseCalibration(height_m=7.5, tilt_deg=70.0))
    np.testing.assert_allclose(cal.image_to_ground(px), ground, atol=1e-6)
    assert cal.rms_m is None
    # a wrong height, corrected by one known distance
    kd = KnownDistance(a_px=tuple(px[0]), b_px=tuple(px[1]), distance_m=float(np.linalg.norm(ground[0] - ground[1])))
    fixed = Calibration.from_pose(
        cam.lens,
        PoseCalibration(height_m=5.0, tilt_deg=70.0, known_distance=kd),
        check_image_px=px,
        check_ground_m=ground,
    )
    np.testing.assert_allclose(fixed.image_to_ground(px), ground, atol=1e-6)
    assert fixed.rms_m is not None and fixed.rms_m < 1e-6


def test_horizon_and_outside_give_nan(synthetic_camera: Any, make_lens_config: LensFactory) -> None:
    cam = make_camera(synthetic_camera, make_lens_config, "equidistant", 8.0, 30.0, 0.0)
    cal = Calibration.from_pose(cam.lens, PoseCalibration(height_m=8.0, tilt_deg=30.0))
    out = cal.image_to_ground([[640, 200], [640, 1000], [5, 5]])  # sky, road, outside the circle
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all() and np.isnan(out[2]).all()


@pytest.mark.parametrize(
    ("image_px", "ground_m", "match"),
    [
        ([[600, 600], [700, 600], [650, 700]], [[0, 0], [1, 0], [0, 1]], "at least 4"),
        (
            [[600, 600], [700, 610], [650, 700], [500, 500]],
            [[0, 0], [1, 1], [2, 2], [3, 3]],
            "ground points are collinear",
        ),
        (
            [[600, 600], [610, 610], [620, 620], [630, 630]],
            [[0, 0], [1, 0], [0, 1], [1, 1]],
            "image points are collinear",
        ),
        (
            [[600, 600], [700, 600], [650, 700], [5, 5]],
            [[0, 0], [1, 0], [0, 1], [1, 1]],
            r"points\[3\].*outside the image circle",
        ),
        ([[600, 600], [700, 600], [650, 700], [600, 700]], [[0, 0], [1, 0], [2, 0], [0, 1]], "degenerate"),
    ],
)
def test_degenerate_input(make_lens_config: LensFactory, image_px: list, ground_m: list, match: str) -> None:
    lens = make_lens(make_lens_config("equidistant"))
    with pytest.raises(CalibrationError, match=match):
        Calibration.from_points(lens, image_px, ground_m)


@pytest.mark.parametrize(
    ("tilt", "pixel_offset", "expected_m"),
    [
        (90.0, (0, 0), (0.0, 0.0)),  # straight down: the centre sees the foot of the pole
        (45.0, (0, 0), (0.0, 5.0)),  # 45 deg: the axis meets the road one height ahead
        (90.0, (0, -100), (0.0, None)),  # image up is +Y when looking straight down
        (90.0, (100, 0), (None, 0.0)),  # image right is +X
    ],
)
def test_pose_axes(make_lens_config: LensFactory, tilt: float, pixel_offset: tuple, expected_m: tuple) -> None:
    lens = make_lens(make_lens_config("equidistant"))
    cal = Calibration.from_pose(lens, PoseCalibration(height_m=5.0, tilt_deg=tilt))
    g = cal.image_to_ground([[640 + pixel_offset[0], 640 + pixel_offset[1]]])[0]
    for value, want in zip(g, expected_m, strict=True):
        if want is None:
            assert value > 0.5
        else:
            assert value == pytest.approx(want, abs=1e-9)


def test_finest_ground_scale_is_the_across_view_axis(make_lens_config: LensFactory) -> None:
    """Looking straight down both image axes see the same ground per px; tilted, the axis
    along the view is foreshortened, so the finer one is across it, finer than the mean."""
    lens = make_lens(make_lens_config("equidistant"))
    down = Calibration.from_pose(lens, PoseCalibration(height_m=5.0, tilt_deg=90.0))
    np.testing.assert_allclose(down.finest_metres_per_px([[640, 640]]), down.metres_per_px([[640, 640]]), rtol=1e-3)
    tilted = Calibration.from_pose(lens, PoseCalibration(height_m=5.0, tilt_deg=45.0))
    px = [[640, 640]]
    finest, mean = tilted.finest_metres_per_px(px)[0], tilted.metres_per_px(px)[0]
    across = np.linalg.norm(tilted.image_to_ground([[641, 640]])[0] - tilted.image_to_ground(px)[0])
    assert finest == pytest.approx(across) and finest < 0.9 * mean


def test_from_camera_names_the_camera_and_point() -> None:
    from pathlib import Path

    from trafficprn.config import load_site

    site = load_site(Path(__file__).resolve().parents[2] / "examples" / "site.yaml")
    cam = site.cameras[0]
    cal = Calibration.from_camera(cam)
    assert cal.rms_m is not None and cal.rms_m < 0.1
    points = list(cam.calibration.points)
    points[3] = points[3].model_copy(update={"image_px": (3.0, 3.0)})
    bad = cam.model_copy(update={"calibration": cam.calibration.model_copy(update={"points": points})})
    with pytest.raises(
        CalibrationError, match=r"camera 'fisheye-1': calibration.points\[3\].image_px .* outside the image circle"
    ):
        Calibration.from_camera(bad)
    pose_only = cam.model_copy(
        update={
            "calibration": cam.calibration.model_copy(
                update={"points": [], "pose": PoseCalibration(height_m=8, tilt_deg=90)}
            )
        }
    )
    assert Calibration.from_camera(pose_only).method == "pose"
