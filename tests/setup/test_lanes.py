"""Lanes from the lateral spread of queued tracks, on the sim's true tracks; the scene's
hand-made lanes are the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.setup.sim_tracks import truth_tracks
from trafficprn.camera.calibration import Calibration
from trafficprn.config import load_site
from trafficprn.geometry.polygons import points_in_polygon
from trafficprn.setup.ground import ground_tracks
from trafficprn.setup.lanes import lane_centres, suggest_lanes
from trafficprn.setup.legs import suggest_legs
from trafficprn.setup.suggest import _visibility


def test_lanes_match_the_hand_made_ones(fisheye_scene: Path) -> None:
    cam = load_site(fisheye_scene / "site.yaml").cameras[0]
    cal = Calibration.from_camera(cam)
    visible = _visibility(cal)
    legs = suggest_legs(ground_tracks(truth_tracks(fisheye_scene), cal), cam.queue, visible)
    lanes = {lane.name: (lane, leg) for leg in legs for lane in suggest_lanes(leg, visible)}
    hand = {lane.name: lane for lane in cam.lanes}
    # N-1, N-2, ... numbered from the kerb as the sim names them; in these three minutes one lane
    # (E-2, left turns only) never queued, so it cannot be found
    assert set(lanes) <= set(hand) and len(lanes) >= len(hand) - 1
    for name, (lane, leg) in lanes.items():
        ref = cal.image_to_ground(np.array(hand[name].polygon))
        # the lane's middle, 10 m upstream of its stop line, lies in the hand-made lane of that name
        probe = leg.frame.point(leg.stop_t_m + 10.0, lane.centre_s_m)
        assert points_in_polygon(probe[None], ref)[0], name
        ref_s = leg.frame.across(ref)
        assert abs(lane.centre_s_m - (ref_s.min() + ref_s.max()) / 2) < 0.8, name
        # the polygon starts at the stop line, reaches over the queue, and the camera sees all of it
        along = leg.frame.along(lane.polygon_m)
        assert abs(along.min() - leg.stop_t_m) < 1e-6 and along.max() - along.min() >= 30.0 - 1e-6
        assert visible(lane.polygon_m).all()
        assert np.allclose(leg.frame.along(lane.stop_line_m), leg.stop_t_m)


def test_lane_width_sets_the_outer_borders(fisheye_scene: Path) -> None:
    cam = load_site(fisheye_scene / "site.yaml").cameras[0]
    cal = Calibration.from_camera(cam)
    legs = suggest_legs(ground_tracks(truth_tracks(fisheye_scene), cal), cam.queue)
    for leg in legs:
        lanes = suggest_lanes(leg, lane_width_m=3.0)
        if not lanes:
            continue
        s = np.concatenate([leg.frame.across(lane.polygon_m) for lane in lanes])
        centres = [lane.centre_s_m for lane in lanes]
        assert s.min() == pytest.approx(min(centres) - 1.5) and s.max() == pytest.approx(max(centres) + 1.5)


@pytest.mark.parametrize(
    ("centres", "spread", "expected"),
    [
        ([1.65, 4.95], 0.25, [1.65, 4.95]),
        ([1.75, 5.25, 8.75], 0.3, [1.75, 5.25, 8.75]),
        ([2.0], 0.3, [2.0]),
        ([1.65, 3.0], 0.2, [1.65]),  # closer than a lane: one lane (the denser row)
    ],
)
def test_lane_centres(centres: list[float], spread: float, expected: list[float]) -> None:
    rng = np.random.default_rng(7)
    counts = [40, 25, 30][: len(centres)]
    s = np.concatenate([c + rng.normal(0, spread, n) for c, n in zip(centres, counts, strict=False)])
    found = lane_centres(s, min_support=5)
    assert len(found) == len(expected)
    assert np.allclose(found, expected, atol=0.2)
