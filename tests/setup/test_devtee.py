"""A T junction seen by the sim's pole camera from its open side: no leg comes towards the
camera, the side road N runs away from it and the main road E-W crosses the view. Perfect
tracks of a short render, cut to the boxes the bundled detector finds (it loses the side
road's small far vehicles, so that road leaves only a few short lines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.setup.sim_tracks import truth_tracks
from trafficprn.camera.calibration import Calibration
from trafficprn.config import CameraConfig, PinholeLens, load_site
from trafficprn.setup.calibrate import TrafficCalibration, calibrate_from_traffic
from trafficprn.setup.ground import GroundTrack, ground_tracks
from trafficprn.setup.lanes import suggest_lanes
from trafficprn.setup.legs import leg_votes, suggest_legs
from trafficprn.setup.tracks import ObservedTrack
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import SceneOptions, render_scene

SIZE = (640, 360)
TEE = Path(__file__).parent / "scenarios" / "devtee.yaml"
MIN_BOX_PX = 13.0  # box height below which the bundled detector (416 px input) loses a vehicle at 640 px width


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    opts = SceneOptions(seconds=240, fps=4, camera="pole", seed=5, size_px=SIZE, video=False)
    return render_scene(load_scenario(str(TEE)), tmp_path_factory.mktemp("tee-pole"), opts)


@pytest.fixture(scope="module")
def truth_camera(scene: Path) -> CameraConfig:
    return load_site(scene / "site.yaml").cameras[0]


def detectable(tracks: list[ObservedTrack]) -> list[ObservedTrack]:
    out = []
    for t in tracks:
        keep = t.boxes_px[:, 3] - t.boxes_px[:, 1] >= MIN_BOX_PX
        if keep.sum() >= 3:
            out.append(ObservedTrack(t.track_id, t.class_name, t.ts[keep], t.boxes_px[keep]))
    return out


@pytest.fixture(scope="module")
def fitted(scene: Path, truth_camera: CameraConfig) -> TrafficCalibration:
    lens = truth_camera.lens
    assert isinstance(lens, PinholeLens)
    return calibrate_from_traffic(detectable(truth_tracks(scene)), SIZE, focal_px=lens.fx, bootstrap_rounds=0)


def test_calibration_from_a_road_across_the_view_and_a_side_road_running_away(
    scene: Path, truth_camera: CameraConfig, fitted: TrafficCalibration
) -> None:
    """The road across the view gives the first direction; car sizes give the tilt (the few
    side-road lines cannot), so 20 m on the ground measure 20 m within 8 %."""
    assert fitted.fit.values["height_m"] == pytest.approx(7.0, rel=0.12)
    truth = Calibration.from_camera(truth_camera)
    ours = Calibration.from_camera(truth_camera.model_copy(update={"lens": fitted.lens,
                                                                   "calibration": fitted.calibration}))
    rng = np.random.default_rng(0)
    px = np.column_stack([rng.uniform(0, SIZE[0], 4000), rng.uniform(0.45 * SIZE[1], SIZE[1], 4000)])
    g_true, g_ours = truth.image_to_ground(px), ours.image_to_ground(px)
    i, j = rng.integers(0, len(px), size=(2, 100_000))
    d_true = np.linalg.norm(g_true[i] - g_true[j], axis=1)
    keep = np.abs(d_true - 20.0) <= 0.5
    d_ours = np.linalg.norm(g_ours[i[keep]] - g_ours[j[keep]], axis=1)
    assert keep.sum() > 100
    assert np.mean(np.abs(d_ours - d_true[keep]) / d_true[keep]) < 0.08


def test_three_legs_with_zones_and_lanes(scene: Path, truth_camera: CameraConfig) -> None:
    cal = Calibration.from_camera(truth_camera)
    legs = suggest_legs(ground_tracks(detectable(truth_tracks(scene)), cal), truth_camera.queue)
    assert sorted(leg.name for leg in legs) == ["E", "N", "W"]
    for leg in legs:
        assert leg.entry_m is not None and leg.exit_m is not None
        assert leg.inbound_s_m is not None and leg.inbound_s_m[1] - leg.inbound_s_m[0] < 10.0
        assert 5.0 < leg.stop_t_m < 16.0
        assert suggest_lanes(leg), leg.name


def hijacked(tracks: list[ObservedTrack], cal: Calibration, n: int = 8) -> list[ObservedTrack]:
    """`tracks` where n side-road (N) arrivals end by taking over the box of a vehicle queued
    on the E leg, as a tracker does when it loses a far, small vehicle beside a near one."""
    queued_e = []
    for t in tracks:
        g = cal.image_to_ground(np.column_stack([(t.boxes_px[:, 0] + t.boxes_px[:, 2]) / 2, t.boxes_px[:, 3]]))
        still = (g[:, 0] > 12.0) & (g[:, 1] > 0.0) & (np.linalg.norm(np.diff(t.boxes_px, axis=0, prepend=t.boxes_px[:1]),
                                                                          axis=1) < 1.0)
        if still.sum() >= 12:
            queued_e.append(t.boxes_px[still][:12])
    arrivals = [k for k, t in enumerate(tracks)
                if cal.image_to_ground(np.array([[(t.boxes_px[0, 0] + t.boxes_px[0, 2]) / 2, t.boxes_px[0, 3]]]))[0, 1]
                > 20.0]
    assert len(queued_e) >= 2 and len(arrivals) >= n
    out = list(tracks)
    for j, k in enumerate(arrivals[:n]):
        t, boxes = tracks[k], queued_e[j % len(queued_e)]
        ts = t.ts[-1] + 0.25 * np.arange(1, len(boxes) + 1)
        out[k] = ObservedTrack(t.track_id, t.class_name, np.r_[t.ts, ts], np.vstack([t.boxes_px, boxes]))
    return out


def test_another_legs_queue_on_a_side_road_track_does_not_widen_its_zone(scene: Path, truth_camera: CameraConfig) -> None:
    cal = Calibration.from_camera(truth_camera)
    tracks = hijacked(detectable(truth_tracks(scene)), cal)
    legs = {leg.name: leg for leg in suggest_legs(ground_tracks(tracks, cal), truth_camera.queue)}
    assert sorted(legs) == ["E", "N", "W"]
    n = legs["N"]
    assert n.inbound_s_m is not None and n.inbound_s_m[1] - n.inbound_s_m[0] < 6.0
    assert legs["E"].stop_from_queues and legs["E"].stop_t_m < 16.0


def test_a_track_that_begins_in_a_queue_votes_for_the_leg_it_leaves_by_its_driving_heading() -> None:
    """Standing 10 s at the E leg's queue, its box jitters 0.3 m (more than HEADING_RUN_M of
    travel, in no direction) before it drives west through the junction."""
    rng = np.random.default_rng(1)
    ts = np.arange(0.0, 20.0, 0.25)
    standing = ts < 10.0
    xy = np.column_stack([np.where(standing, 15.0, 15.0 - 8.0 * (ts - 10.0)), np.full(len(ts), 2.0)])
    xy[standing] += rng.normal(0.0, 0.3, (int(standing.sum()), 2))
    speed = np.where(standing, 0.0, 8.0 * 3.6)
    heading = np.where(standing[:, None], np.nan, np.array([[-1.0, 0.0]]))
    track = GroundTrack(1, "car", ts, xy, speed, heading)
    votes = leg_votes([track], np.zeros(2))
    inbound = [v for v in votes if v.inbound]
    assert len(inbound) == 1 and inbound[0].direction @ np.array([1.0, 0.0]) > 0.99
