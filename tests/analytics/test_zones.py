"""Leg zones and movement geometry; config errors that name the field."""

from __future__ import annotations

import numpy as np
import pytest
from junction_factory import make_site, to_px

from trafficprn.analytics.zones import Zones, classify_turn, turn_angle_deg
from trafficprn.camera.calibration import Calibration
from trafficprn.config import parse_site
from trafficprn.errors import ConfigError


@pytest.mark.parametrize(
    ("inbound", "outbound", "angle"),
    [((0, 1), (0, 1), 0.0), ((0, 1), (-1, 0), 90.0), ((0, 1), (1, 0), -90.0), ((1, 0), (-1, 0), 180.0)],
)
def test_turn_angle(inbound: tuple[float, float], outbound: tuple[float, float], angle: float) -> None:
    assert turn_angle_deg(np.array(inbound, float), np.array(outbound, float)) == pytest.approx(angle)


@pytest.mark.parametrize(
    ("angle", "side", "same_leg", "movement"),
    [
        (0.0, "right", False, "T"),
        (44.0, "right", False, "T"),
        (90.0, "right", False, "L"),
        (-90.0, "right", False, "R"),
        (-90.0, "left", False, "R"),
        (170.0, "right", False, "U"),
        (170.0, "left", False, "L"),
        (-170.0, "left", False, "U"),
        (-170.0, "right", False, "R"),
        (10.0, "right", True, "U"),
    ],
)
def test_classify_turn(angle: float, side: str, same_leg: bool, movement: str) -> None:
    assert classify_turn(angle, side, same_leg) == movement  # type: ignore[arg-type]


def test_zone_membership_and_leg_directions() -> None:
    cam = make_site().cameras[0]
    zones = Zones(cam, Calibration.from_camera(cam))
    pts = to_px(np.array([[-1.75, 12.0], [1.75, 12.0], [12.0, 1.75], [0.0, 0.0]]))
    assert zones.entry_of(pts).tolist() == [0, -1, 1, -1]  # N inbound is x < 0, E inbound y > 0
    assert zones.exit_of(pts).tolist() == [-1, 0, -1, -1]
    np.testing.assert_allclose(zones.legs[0].inbound, [0.0, -1.0], atol=0.05)  # N: heading south
    np.testing.assert_allclose(zones.legs[0].outbound, [0.0, 1.0], atol=0.05)


def _site_dict() -> dict:
    return make_site().model_dump(mode="json")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["cameras"][0]["legs"][0].update(entry=[[0, 0], [10, 10]]), "cameras[0].legs[0].entry"),
        (lambda d: d["cameras"][0]["lanes"][1].update(polygon=[[0, 0], [1, 1]]), "cameras[0].lanes[1].polygon"),
        (lambda d: d["cameras"][0]["lanes"][0].pop("stop_line"), "cameras[0].lanes[0].stop_line"),
        (lambda d: d["cameras"][0]["legs"][1].update(entry=d["cameras"][0]["legs"][0]["entry"]),
         "cameras[0].legs[1].entry"),
    ],
)
def test_bad_zones_and_lanes_name_the_field(edit, field: str) -> None:
    data = _site_dict()
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_site(data)
    assert info.value.field == field


def test_degenerate_stop_line_names_the_lane() -> None:
    data = _site_dict()
    p = data["cameras"][0]["lanes"][3]["stop_line"][0]
    data["cameras"][0]["lanes"][3]["stop_line"] = [p, p]
    with pytest.raises(ConfigError) as info:
        parse_site(data)
    assert info.value.field == "cameras[0].lanes[3].stop_line"
