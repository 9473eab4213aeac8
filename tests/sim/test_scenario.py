"""Scenario validation: impossible scenarios are rejected naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from trafficprn.errors import ScenarioError
from trafficprn.sim.scenario import load_scenario, movement_target, parse_scenario, scenario_dir


def default_data() -> dict[str, Any]:
    data = yaml.safe_load((scenario_dir() / "default.yaml").read_text())
    assert isinstance(data, dict)
    return data


def with_change(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(default_data())
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (with_change(["legs", 0, "turns"], {"L": 0.5, "T": 0.6, "R": 0.1, "U": 0.0}), "legs[0].turns", "sum to 1"),
        (with_change(["legs", 1, "lanes_in"], []), "legs[1].lanes_in", "lane count of 0"),
        (with_change(["legs", 2, "lanes_out"], 0), "legs[2].lanes_out", "lane count of 0"),
        (with_change(["legs", 3, "demand_vph"], 40000), "legs[3].demand_vph", "capacity"),
        (with_change(["signal", "cycle_s"], 90), "signal", "cycle_s"),
        (with_change(["legs", 0, "lanes_in"], ["RT", "T"]), "legs[0].lanes_in", "movement L"),
        (with_change(["colours"], {"pink": 1.0}), "colours", "unknown colours"),
        (with_change(["name"], None), "name", ""),
        ({**default_data(), "lanes": 3}, "lanes", "unknown field"),
    ],
)
def test_bad_scenarios_name_the_field(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, source="test.yaml")
    assert field in str(err.value)
    assert message in str(err.value)


def test_default_scenario_loads_with_all_movements() -> None:
    sc = load_scenario("default")
    moves = {m for leg in sc.legs for m in "LTRU" if leg.turns.share(m) > 0}
    assert moves == {"L", "T", "R", "U"}


def test_unknown_scenario_name() -> None:
    with pytest.raises(ScenarioError, match="no scenario named"):
        load_scenario("nope")


@pytest.mark.parametrize(
    ("entry", "movement", "exit_leg"),
    [("N", "L", "E"), ("N", "T", "S"), ("N", "R", "W"), ("N", "U", "N"), ("E", "L", "S"), ("W", "R", "S")],
)
def test_movement_targets_right_hand_traffic(entry: str, movement: str, exit_leg: str) -> None:
    assert movement_target(entry, movement) == exit_leg
