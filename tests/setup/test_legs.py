"""Legs from tracks, on the sim's true tracks (the detector apart): the hand-made site of
the scene is the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.setup.sim_tracks import truth_tracks
from trafficprn.camera.calibration import Calibration
from trafficprn.config import load_site
from trafficprn.geometry.polygons import points_in_polygon, polygon_centroid
from trafficprn.setup.ground import GroundTrack, ground_tracks
from trafficprn.setup.legs import COMPASS, SuggestedLeg, assign_names, queue_head_m, suggest_legs
from trafficprn.setup.suggest import _visibility


def _scene(path: Path) -> tuple[list[GroundTrack], Calibration, object]:
    cam = load_site(path / "site.yaml").cameras[0]
    cal = Calibration.from_camera(cam)
    return ground_tracks(truth_tracks(path), cal), cal, cam


def _hand_stop_t(leg: SuggestedLeg, cam: object, cal: Calibration) -> float:
    """The hand-made entry zone's edge nearest the centre: the leg's stop line, m along the leg."""
    hand = next(h for h in cam.legs if h.name == leg.name)  # type: ignore[attr-defined]
    return float(leg.frame.along(cal.image_to_ground(np.array(hand.entry))).min())


@pytest.mark.parametrize("which", ["fisheye_scene", "pole_scene"])
def test_four_legs_named_and_placed_like_the_hand_made_ones(which: str, request: pytest.FixtureRequest) -> None:
    tracks, cal, cam = _scene(request.getfixturevalue(which))
    legs = suggest_legs(tracks, cam.queue, _visibility(cal))  # type: ignore[attr-defined]
    assert sorted(leg.name for leg in legs) == ["E", "N", "S", "W"]
    hand = {leg.name: leg for leg in cam.legs}  # type: ignore[attr-defined]
    for leg in legs:
        assert min(abs(leg.bearing_deg - COMPASS[leg.name]), 360 - abs(leg.bearing_deg - COMPASS[leg.name])) < 6
        assert leg.stop_from_queues
        assert abs(leg.stop_t_m - _hand_stop_t(leg, cam, cal)) < 1.5
        # the suggested zones sit on the hand-made ones of the same leg, in the ground frame
        for mine, theirs in ((leg.entry_m, hand[leg.name].entry), (leg.exit_m, hand[leg.name].exit)):
            assert mine is not None
            ref = cal.image_to_ground(np.array(theirs))
            assert points_in_polygon(polygon_centroid(mine)[None], ref)[0], leg.name


def test_three_leg_junction(fisheye_scene: Path) -> None:
    """Without the tracks that use the west leg the junction is a T: three legs, still N, E, S."""
    tracks, cal, cam = _scene(fisheye_scene)
    no_west = [t for t in tracks if t.xy_m[0, 0] > -10 and t.xy_m[-1, 0] > -10]
    legs = suggest_legs(no_west, cam.queue, _visibility(cal))  # type: ignore[attr-defined]
    assert sorted(leg.name for leg in legs) == ["E", "N", "S"]


def test_leg_that_never_queued_gets_its_stop_line_where_paths_converge(fisheye_scene: Path) -> None:
    tracks, cal, cam = _scene(fisheye_scene)
    # the north leg's vehicles seen only while they move: nobody queues there
    north = [t for t in tracks if t.xy_m[0, 1] > 12]
    moving = []
    for t in tracks:
        if t in north:
            keep = ~(t.speed_kmh < 15)
            t = GroundTrack(t.track_id, t.class_name, t.ts[keep], t.xy_m[keep], t.speed_kmh[keep], t.heading[keep])
        moving.append(t)
    legs = {leg.name: leg for leg in suggest_legs(moving, cam.queue, _visibility(cal))}  # type: ignore[attr-defined]
    n = legs["N"]
    assert not n.stop_from_queues and legs["S"].stop_from_queues
    assert abs(n.stop_t_m - _hand_stop_t(n, cam, cal)) < 4.0


@pytest.mark.parametrize(
    ("bearings", "names"),
    [
        ([3, 91, 178, 272], ["N", "E", "S", "W"]),
        ([200, 20, 110], ["S", "N", "E"]),
        ([350, 20, 180], ["N", "E", "S"]),  # two legs near north: one name each, the nearer keeps N
        ([45, 135, 225, 315], ["N", "E", "S", "W"]),  # a diagonal junction still gets one name per leg
        ([0, 60, 120, 180, 240], ["N", "NE", "SE", "S", "SW"]),
    ],
)
def test_names_are_unique_and_follow_the_bearing(bearings: list[float], names: list[str]) -> None:
    assert assign_names(bearings) == names


def test_queue_head_is_the_front_peak_not_vehicles_waiting_inside_the_junction() -> None:
    rng = np.random.default_rng(0)
    head = 14.5 + rng.normal(0, 0.2, 20)  # one head per queue
    behind = np.concatenate([21.0 + rng.normal(0, 0.6, 14), 28 + rng.normal(0, 1.0, 8)])
    waiting = 8.3 + rng.normal(0, 0.1, 12)  # left-turners stopped in the junction box, briefly
    t = np.concatenate([waiting, head, behind])
    waited = np.concatenate([np.full(12, 5.0), np.full(20, 30.0), np.full(22, 20.0)])
    assert abs(queue_head_m(t, waited) - 14.5) < 0.3
    assert abs(queue_head_m(t) - 8.3) < 0.3  # counted alone, the waiting turners would win
