"""Calibration from traffic alone, on perfect tracks of a short pole sim scene: the fitted
camera measures ground distances and speeds as the scene's own (true) calibration does."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.setup.sim_tracks import truth_tracks
from trafficprn.camera.calibration import Calibration, pose_rotation
from trafficprn.camera.lens import make_lens
from trafficprn.config import CameraConfig, PoseCalibration, load_site
from trafficprn.errors import SetupError
from trafficprn.setup.calibrate import TrafficCalibration, calibrate_from_traffic, pose_angles
from trafficprn.setup.calibrate_vps import camera_from_vps, second_vp
from trafficprn.setup.tracks import ObservedTrack
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import SceneOptions, render_scene

SIZE = (640, 360)
ROUNDS = 4  # bootstrap rounds: enough to report a spread, few enough for CI


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    opts = SceneOptions(seconds=90, fps=5, camera="pole", seed=3, size_px=SIZE, video=False)
    return render_scene(load_scenario("default"), tmp_path_factory.mktemp("pole"), opts)


@pytest.fixture(scope="module")
def truth_camera(scene: Path) -> CameraConfig:
    return load_site(scene / "site.yaml").cameras[0]


@pytest.fixture(scope="module")
def fitted(scene: Path) -> TrafficCalibration:
    return calibrate_from_traffic(truth_tracks(scene), SIZE, bootstrap_rounds=ROUNDS)


def fitted_calibration(truth: CameraConfig, fit: TrafficCalibration) -> Calibration:
    return Calibration.from_camera(truth.model_copy(update={"lens": fit.lens, "calibration": fit.calibration}))


def anchor_tracks(scene: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per vehicle: (n,) ts and (n, 2) image px of its true ground reference point, in view."""
    rows: dict[int, list[tuple[float, list[float]]]] = defaultdict(list)
    for line in (scene / "frames.jsonl").read_text().splitlines():
        frame = json.loads(line)
        for obj in frame["objects"]:
            rows[obj["track_id"]].append((frame["ts"], obj["anchor_px"]))
    out = []
    for r in rows.values():
        ts, px = np.array([t for t, _ in r]), np.array([p for _, p in r])
        inside = (px[:, 0] > 0) & (px[:, 0] < SIZE[0]) & (px[:, 1] > 0) & (px[:, 1] < SIZE[1])
        if inside.sum() >= 6:
            out.append((ts[inside], px[inside]))
    return out


def test_focal_and_pose_close_to_the_truth(fitted: TrafficCalibration, truth_camera: CameraConfig) -> None:
    assert fitted.lens.fx == fitted.lens.fy
    assert fitted.lens.fx == pytest.approx(truth_camera.lens.fx, rel=0.04)
    assert (fitted.lens.cx, fitted.lens.cy) == (SIZE[0] / 2, SIZE[1] / 2)
    v = fitted.fit.values
    assert fitted.fit.method == "traffic"
    assert set(v) == {"focal_px", "height_m", "tilt_deg", "roll_deg", "yaw_deg"}
    # the true pose, from the scene's own calibration: the camera's distance to the road plane
    truth = Calibration.from_camera(truth_camera)
    ours = fitted_calibration(truth_camera, fitted)
    assert np.degrees(np.arccos(truth.ground_normal() @ ours.ground_normal())) < 1.5
    assert set(fitted.fit.uncertainty) == set(v)
    assert all(s > 0 for s in fitted.fit.uncertainty.values())
    assert "Inovev" in fitted.fit.scale_source


def test_distances_20_m_apart_within_8_percent(
    scene: Path, fitted: TrafficCalibration, truth_camera: CameraConfig
) -> None:
    truth, ours = Calibration.from_camera(truth_camera), fitted_calibration(truth_camera, fitted)
    px = np.concatenate([p for _, p in anchor_tracks(scene)])
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, len(px), (2, 50_000))
    true_m = np.linalg.norm(truth.image_to_ground(px[i]) - truth.image_to_ground(px[j]), axis=1)
    ours_m = np.linalg.norm(ours.image_to_ground(px[i]) - ours.image_to_ground(px[j]), axis=1)
    near_20 = np.abs(true_m - 20.0) < 1.0
    assert near_20.sum() > 500
    err = np.abs(ours_m[near_20] / true_m[near_20] - 1.0)
    assert np.median(err) <= 0.08
    assert np.quantile(err, 0.9) <= 0.12


def test_speeds_within_3_kmh(scene: Path, fitted: TrafficCalibration, truth_camera: CameraConfig) -> None:
    truth, ours = Calibration.from_camera(truth_camera), fitted_calibration(truth_camera, fitted)

    def speed_kmh(cal: Calibration, ts: np.ndarray, px: np.ndarray) -> float:
        g = cal.image_to_ground(px)
        return float(np.linalg.norm(np.diff(g, axis=0), axis=1).sum() / (ts[-1] - ts[0]) * 3.6)

    pairs = [(speed_kmh(truth, ts, px), speed_kmh(ours, ts, px)) for ts, px in anchor_tracks(scene) if ts[-1] - ts[0] > 2]
    true_kmh, ours_kmh = np.array(pairs).T
    assert len(pairs) >= 20
    assert true_kmh.max() > 20  # moving traffic, not only queues
    assert np.mean(np.abs(ours_kmh - true_kmh)) <= 3.0


def test_points_frame_runs_y_up_the_viewed_road(fitted: TrafficCalibration, truth_camera: CameraConfig) -> None:
    cam = truth_camera.model_copy(update={"lens": fitted.lens, "calibration": fitted.calibration})
    ours = Calibration.from_camera(cam)
    assert len(fitted.calibration.points) >= 9 and fitted.calibration.pose is None
    assert ours.rms_m is not None and ours.rms_m < 1e-3  # the points are one exact pinhole plane
    # The pole camera looks up the sim's north leg (+y in the sim): +y in ours too.
    truth = Calibration.from_camera(truth_camera)
    px = truth.ground_to_image(np.array([[0.0, 5.0], [0.0, 25.0], [-10.0, 5.0], [10.0, 5.0]]))
    g = ours.image_to_ground(px)
    north, east = g[1] - g[0], g[3] - g[2]
    assert np.degrees(np.arctan2(abs(north[0]), north[1])) < 3.0
    assert np.degrees(np.arctan2(abs(east[1]), east[0])) < 3.0


def test_lane_width_sets_the_scale(scene: Path, truth_camera: CameraConfig) -> None:
    lane_m = load_scenario("default").lane_width_m
    fit = calibrate_from_traffic(truth_tracks(scene), SIZE, lane_width_m=lane_m, bootstrap_rounds=0)
    assert fit.fit.scale_source.startswith(f"lane width {lane_m:g} m")
    assert fit.fit.uncertainty == {}
    truth = Calibration.from_camera(truth_camera)
    ours = fitted_calibration(truth_camera, fit)
    a, b = truth.ground_to_image(np.array([[0.0, 0.0], [0.0, 20.0]]))
    got = np.linalg.norm(ours.image_to_ground(a[None])[0] - ours.image_to_ground(b[None])[0])
    assert got == pytest.approx(20.0, rel=0.08)


def test_a_known_focal_is_kept_and_only_the_pose_and_height_are_fitted(scene: Path, truth_camera: CameraConfig) -> None:
    focal = float(truth_camera.lens.fx)  # type: ignore[union-attr]  # the sim's pole camera is a pinhole
    fit = calibrate_from_traffic(truth_tracks(scene), SIZE, focal_px=focal, bootstrap_rounds=ROUNDS)
    assert fit.lens.fx == fit.lens.fy == pytest.approx(focal, rel=1e-9)
    assert "focal_px" not in fit.fit.uncertainty and "height_m" in fit.fit.uncertainty
    truth = Calibration.from_camera(truth_camera)
    ours = fitted_calibration(truth_camera, fit)
    a, b = truth.ground_to_image(np.array([[0.0, 0.0], [0.0, 20.0]]))
    got = np.linalg.norm(ours.image_to_ground(a[None])[0] - ours.image_to_ground(b[None])[0])
    assert got == pytest.approx(20.0, rel=0.08)
    with pytest.raises(SetupError, match="focal"):
        calibrate_from_traffic(truth_tracks(scene), SIZE, focal_px=float("nan"))


def _mostly_along_image_y(track: ObservedTrack) -> bool:
    c = track.centres_px
    d = c[-1] - c[0]
    return bool(abs(d[1]) > abs(d[0]))


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (lambda tracks: [t for t in tracks if _mostly_along_image_y(t)], "second road direction"),
        (lambda tracks: tracks[:3], "at least 6 tracks"),
        (lambda tracks: [], "along any road, got 0"),
    ],
    ids=["one-direction", "too-few", "none"],
)
def test_footage_that_cannot_calibrate_says_what_is_missing(
    scene: Path, keep: Callable[[list[ObservedTrack]], list[ObservedTrack]], message: str
) -> None:
    with pytest.raises(SetupError, match=message):
        calibrate_from_traffic(keep(truth_tracks(scene)), SIZE, bootstrap_rounds=0)


def test_bad_lane_width_is_refused(scene: Path) -> None:
    with pytest.raises(SetupError, match="lane width of 1.5-6 m, got 12"):
        calibrate_from_traffic(truth_tracks(scene), SIZE, lane_width_m=12.0)


@pytest.mark.parametrize(("tilt_deg", "roll_deg", "yaw_deg"), [(12.0, 0.0, -17.0), (30.0, 4.0, 25.0), (55.0, -3.0, 5.0)])
def test_two_orthogonal_vanishing_points_give_back_the_pose(tilt_deg: float, roll_deg: float, yaw_deg: float) -> None:
    focal = 1.4
    # camera -> ground rotation in calibration.pose_rotation's convention, then a yaw of the roads
    rot = pose_rotation(tilt_deg, roll_deg)  # columns: camera axes in a frame with Y along the view
    yaw = np.radians(yaw_deg)
    road_y = np.array([-np.sin(yaw), np.cos(yaw), 0.0])  # the road the camera looks along, yaw_deg off its axis
    road_x = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    vps = []
    for road in (road_x, road_y):
        d = rot.T @ road  # in camera coordinates
        v = np.array([focal * d[0], focal * d[1], d[2]])
        vps.append(v / np.linalg.norm(v) * np.sign(v[2]))
    f, rotation, first_is_y = camera_from_vps(vps[0], vps[1])
    assert f == pytest.approx(focal, rel=1e-9)
    assert not first_is_y
    tilt, roll, fitted_yaw = pose_angles(rotation)
    assert (tilt, roll, fitted_yaw) == pytest.approx((tilt_deg, roll_deg, yaw_deg), abs=1e-6)


def test_second_vanishing_point_is_orthogonal_on_the_ground() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        first = np.array([*rng.uniform(-1, 1, 2), 1.0])
        focal, roll = rng.uniform(0.5, 4.0), rng.uniform(-0.2, 0.2)
        v = second_vp(first, focal, roll)
        d1, d2 = np.array([first[0], first[1], focal * first[2]]), np.array([v[0], v[1], focal * v[2]])
        assert abs(d1 @ d2) / np.linalg.norm(d1) / np.linalg.norm(d2) < 1e-9


def test_pose_angles_match_the_pose_calibration(fitted: TrafficCalibration) -> None:
    """The fitted tilt and roll, as a PoseCalibration, measure the ground as the points do."""
    v = fitted.fit.values
    lens = make_lens(fitted.lens)
    pose = Calibration.from_pose(lens, PoseCalibration(height_m=v["height_m"], tilt_deg=v["tilt_deg"],
                                                       roll_deg=v["roll_deg"]))
    points = Calibration.from_points(lens, [p.image_px for p in fitted.calibration.points],
                                     [p.ground_m for p in fitted.calibration.points])
    px = np.array([p.image_px for p in fitted.calibration.points])
    a, b = pose.image_to_ground(px), points.image_to_ground(px)
    da = np.linalg.norm(a[:, None] - a[None], axis=2)
    db = np.linalg.norm(b[:, None] - b[None], axis=2)
    np.testing.assert_allclose(da, db, rtol=1e-6, atol=1e-6)
