"""Simulation scenarios: a signalised junction of 3-4 legs, its signal plan and demand.

A scenario is YAML validated by pydantic models with ``extra="forbid"`` (like the site
config). `load_scenario(name_or_path)` returns a `Scenario` or raises `ScenarioError`
naming the field (``legs[1].turns``) and what was expected. Names without a suffix refer
to the scenarios shipped in ``trafficprn/sim/scenarios/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trafficprn.config import config_error_from
from trafficprn.errors import ScenarioError

LEG_NAMES = ("N", "E", "S", "W")  # clockwise: from leg i, L -> i+1, T -> i+2, R -> i+3 (right-hand traffic)
MOVEMENTS = ("L", "T", "R", "U")
CLASSES = ("car", "bus", "truck", "motorcycle", "bicycle")
PALETTE = ("white", "black", "grey", "silver", "red", "blue", "green", "yellow", "orange", "brown", "beige")
SATURATION_VPH_PER_LANE = 1800.0
IMPOSSIBLE_DEMAND_FACTOR = 10.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Turns(_Model):
    L: float = Field(0.2, ge=0, le=1, title="Left", description="Share of the leg's demand turning left.")
    T: float = Field(0.6, ge=0, le=1, title="Through", description="Share going straight on.")
    R: float = Field(0.2, ge=0, le=1, title="Right", description="Share turning right.")
    U: float = Field(0.0, ge=0, le=1, title="U-turn", description="Share making a U-turn.")

    @model_validator(mode="after")
    def _sum(self) -> Turns:
        total = self.L + self.T + self.R + self.U
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"turning ratios L+T+R+U must sum to 1, got {total:.3f}")
        return self

    def share(self, movement: str) -> float:
        return float(getattr(self, movement))


class LegScenario(_Model):
    name: Literal["N", "E", "S", "W"] = Field(title="Leg", description="Compass side of the arm.")
    length_m: float = Field(150.0, ge=40, le=1000, title="Length", description="Length of the arm, metres.")
    lanes_in: list[str] = Field(
        title="Inbound lanes",
        description="Movements per inbound lane from the kerb side, e.g. [R, T, LU]; letters L, T, R, U.",
    )
    lanes_out: int = Field(2, title="Outbound lanes", description="Number of outbound lanes.")
    demand_vph: float = Field(ge=0, title="Demand", description="Inbound demand, vehicles per hour.")
    turns: Turns = Field(default_factory=Turns, title="Turning ratios", description="L/T/R/U shares, sum 1.")

    @field_validator("lanes_in")
    @classmethod
    def _lanes_in(cls, v: list[str]) -> list[str]:
        if len(v) == 0:
            raise ValueError("expected at least 1 inbound lane, got a lane count of 0")
        for lane in v:
            if not lane or set(lane) - set(MOVEMENTS):
                raise ValueError(f"each lane is a string of L, T, R, U, got {lane!r}")
        return v

    @field_validator("lanes_out")
    @classmethod
    def _lanes_out(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"expected at least 1 outbound lane, got a lane count of {v}")
        return v


class Phase(_Model):
    legs: list[str] = Field(min_length=1, title="Green legs", description="Legs whose movements are green.")
    green_s: float = Field(gt=0, title="Green", description="Green time, seconds.")


class SignalPlan(_Model):
    cycle_s: float = Field(gt=0, title="Cycle", description="Cycle length, seconds; = sum of green+yellow+all-red.")
    yellow_s: float = Field(3.0, ge=0, title="Yellow", description="Yellow after each green, seconds.")
    all_red_s: float = Field(2.0, ge=0, title="All red", description="All-red after each yellow, seconds.")
    phases: list[Phase] = Field(min_length=1, title="Phases", description="Green splits in order.")

    @model_validator(mode="after")
    def _cycle(self) -> SignalPlan:
        total = sum(p.green_s + self.yellow_s + self.all_red_s for p in self.phases)
        if abs(total - self.cycle_s) > 1e-6:
            raise ValueError(f"cycle_s must equal the sum of green + yellow + all-red = {total:g}, got {self.cycle_s:g}")
        return self


class VehicleType(_Model):
    share: float = Field(ge=0, title="Share", description="Share of the demand, normalised over all classes.")
    max_speed_kmh: float = Field(gt=0, title="Max speed", description="Desired speed cap, km/h.")
    speed_sd: float = Field(0.1, ge=0, le=0.5, title="Speed spread", description="SD of the speed factor.")


ClassName = Literal["car", "bus", "truck", "motorcycle", "bicycle"]


def _default_mix() -> dict[ClassName, VehicleType]:
    return {
        "car": VehicleType(share=0.80, max_speed_kmh=60),
        "bus": VehicleType(share=0.04, max_speed_kmh=50),
        "truck": VehicleType(share=0.08, max_speed_kmh=50),
        "motorcycle": VehicleType(share=0.05, max_speed_kmh=60),
        "bicycle": VehicleType(share=0.03, max_speed_kmh=20, speed_sd=0.2),
    }


def _default_colours() -> dict[str, float]:
    return {"white": 0.22, "black": 0.18, "grey": 0.14, "silver": 0.12, "red": 0.08, "blue": 0.08,
            "green": 0.04, "yellow": 0.03, "orange": 0.03, "brown": 0.04, "beige": 0.04}


class Scenario(_Model):
    name: str = Field(title="Name", description="Scenario name.")
    site_name: str = Field("sim-junction", title="Site name", description="Name written into site.yaml.")
    timezone: str = Field("UTC", title="Time zone", description="IANA zone of the site.")
    start_ts: float = Field(1_767_261_600.0, title="Start", description="Epoch seconds of the first frame.")
    plate_format: str = Field(
        "LLL-DDDD",
        min_length=1,
        title="Plate format",
        description="Plate syntax (a template, L letter, D digit, or a region); its first template is rendered.",
    )
    speed_limit_kmh: float = Field(50.0, gt=0, title="Speed limit", description="Speed limit of all lanes.")
    lane_width_m: float = Field(3.3, ge=2.5, le=4.5, title="Lane width", description="Metres.")
    warmup_s: float = Field(90.0, ge=0, title="Warm-up", description="Simulated before the first frame.")
    queue_zone_m: float = Field(40.0, gt=5, title="Queue zone", description="Lane polygon length upstream, m.")
    legs: list[LegScenario] = Field(min_length=3, max_length=4, title="Legs", description="Arms of the junction.")
    signal: SignalPlan = Field(title="Signal plan", description="Fixed-time plan of the junction.")
    vehicle_types: dict[ClassName, VehicleType] = Field(
        default_factory=_default_mix, title="Vehicle mix", description="Share and speed per class."
    )
    colours: dict[str, float] = Field(
        default_factory=_default_colours, title="Colours", description="Weights over the named palette."
    )

    @field_validator("colours")
    @classmethod
    def _colours(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(PALETTE))
        if bad:
            raise ValueError(f"unknown colours {bad}; expected names from {list(PALETTE)}")
        if not v or sum(v.values()) <= 0 or min(v.values()) < 0:
            raise ValueError("expected non-negative colour weights with a positive sum")
        return v

    def leg(self, name: str) -> LegScenario:
        for leg in self.legs:
            if leg.name == name:
                return leg
        raise ScenarioError(f"no leg named {name!r}", field="legs")


def movement_target(entry: str, movement: str) -> str:
    """Exit leg of a movement from `entry` (right-hand traffic, compass legs)."""
    i = LEG_NAMES.index(entry)
    step = {"L": 1, "T": 2, "R": 3, "U": 0}[movement]
    return LEG_NAMES[(i + step) % 4]


def _check_semantics(sc: Scenario) -> None:
    names = [leg.name for leg in sc.legs]
    if len(set(names)) != len(names):
        raise ScenarioError(f"leg names must be unique, got {names}", field="legs")
    phase_legs = [set(p.legs) for p in sc.signal.phases]
    for k, p in enumerate(sc.signal.phases):
        unknown = sorted(set(p.legs) - set(names))
        if unknown:
            raise ScenarioError(f"unknown legs {unknown}; expected some of {names}", field=f"signal.phases[{k}].legs")
    if sum(t.share for t in sc.vehicle_types.values()) <= 0:
        raise ScenarioError("expected at least one class with a positive share", field="vehicle_types")
    for i, leg in enumerate(sc.legs):
        lane_moves = set("".join(leg.lanes_in))
        for m in MOVEMENTS:
            if leg.turns.share(m) <= 0:
                continue
            if movement_target(leg.name, m) not in names:
                raise ScenarioError(
                    f"movement {m} from leg {leg.name} leads to missing leg {movement_target(leg.name, m)}",
                    field=f"legs[{i}].turns",
                )
            if m not in lane_moves:
                raise ScenarioError(f"movement {m} has demand but no inbound lane allows it", field=f"legs[{i}].lanes_in")
        green_s = sum(p.green_s for p, legs in zip(sc.signal.phases, phase_legs, strict=True) if leg.name in legs)
        if leg.demand_vph > 0 and green_s == 0:
            raise ScenarioError(f"leg {leg.name} has demand but no green phase", field="signal.phases")
        capacity = SATURATION_VPH_PER_LANE * len(leg.lanes_in) * green_s / sc.signal.cycle_s
        if leg.demand_vph > IMPOSSIBLE_DEMAND_FACTOR * capacity:
            raise ScenarioError(
                f"demand {leg.demand_vph:g} veh/h is more than {IMPOSSIBLE_DEMAND_FACTOR:g}x the capacity "
                f"{capacity:.0f} veh/h of {len(leg.lanes_in)} lanes with {green_s:g}/{sc.signal.cycle_s:g} s green",
                field=f"legs[{i}].demand_vph",
            )


def parse_scenario(data: Any, source: str | None = None) -> Scenario:
    """Validate a scenario mapping; raises ScenarioError naming the field."""
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping with name, legs and signal", source=source)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        err = config_error_from(exc, None)
        msg = str(err).removeprefix(f"{err.field}: ") if err.field else str(err)
        raise ScenarioError(msg, field=err.field, source=source) from None
    try:
        _check_semantics(sc)
    except ScenarioError as exc:
        if source is None:
            raise
        msg = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
        raise ScenarioError(msg, field=exc.field, source=source) from None
    return sc


def scenario_dir() -> Path:
    return Path(__file__).resolve().parent / "scenarios"


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``default``) or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = scenario_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            shipped = sorted(p.stem for p in scenario_dir().glob("*.yaml"))
            raise ScenarioError(f"no scenario named {str(name_or_path)!r}; shipped: {shipped}", field="scenario")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario: {exc.strerror}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", source=str(path)) from None
    return parse_scenario(data, source=str(path))
