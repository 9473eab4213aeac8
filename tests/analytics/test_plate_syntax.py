"""Plate syntax: templates, region presets, `auto`, and `privacy.plate_format` / `--format`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from trafficprn.analytics.commands import register
from trafficprn.config import PrivacySection, parse_site
from trafficprn.errors import ConfigError
from trafficprn.plate_syntax import COUNTRIES, PRESETS, first_template, parse_plate_format, regions
from trafficprn.sim.sumo import make_plate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"


@pytest.mark.parametrize(
    ("spec", "matches", "rejects"),
    [
        ("LLL-DDDD", ["ABC1234"], ["AB12345", "ABC123"]),
        ("LLL-DDDD, DLLL-DDD", ["ABC1234", "1ABC234"], ["12AB345"]),
        (["LL-DDD-LL", "DDDD-LLL"], ["AB123CD", "1234BCD"], ["ABC1234"]),
        ("B-L*-DDD", ["BX1123", "BXY123"], ["AXY123"]),  # literal B, * either
        ("fr", ["AB123CD"], ["ABC1234"]),
        ("br", ["ABC1234", "ABC1D23"], ["AB12345"]),
        ("de", ["MAB1234", "BX1", "HHAB123"], ["1234567"]),
        ("us", ["ABC1234", "7ABC123"], ["AB123CD"]),
        ("eu", ["AB123CD", "1234BCD", "MAB1234"], ["ABCDEFG"]),
    ],
)
def test_syntax_matches(spec: str | list[str], matches: list[str], rejects: list[str]) -> None:
    syntax = parse_plate_format(spec)
    assert syntax is not None
    assert all(syntax.matches(t) for t in matches)
    assert not any(syntax.matches(t) for t in rejects)


def test_auto_is_every_preset_and_eu_every_country() -> None:
    auto, eu = parse_plate_format("auto"), parse_plate_format("eu")
    assert auto is not None and eu is not None and auto.auto
    every = {p.replace("-", "") for patterns in PRESETS.values() for p in patterns}
    assert {t.slots for t in auto.templates} == every
    assert {t.region for t in eu.templates} <= set(COUNTRIES)
    assert {t.slots for t in eu.templates} == {p.replace("-", "") for c in COUNTRIES.values() for p in c}
    assert len(COUNTRIES) >= 25
    assert set(regions()) >= {"auto", "us", "eu", "br", "de", "fr", "it", "es", "nl", "pl", "gb"}


def test_us_prior_kept_beside_a_shared_pattern() -> None:
    """LLL-DDDD is a US and a Brazilian pattern: auto keeps one of each prior (US: O, I, Q rare)."""
    auto = parse_plate_format("auto")
    assert auto is not None
    shared = [t for t in auto.templates if t.slots == "LLLDDDD"]
    assert sorted(t.rare_letters for t in shared) == ["", "OIQ"]


@pytest.mark.parametrize("spec", [None, "", "none", " NONE "])
def test_no_syntax(spec: str | None) -> None:
    assert parse_plate_format(spec) is None


@pytest.mark.parametrize(("spec", "message"), [("usa", "neither a template"), ("- -", "neither"),
                                               ("LLLLLDDDDDD", "more than 10")])  # fmt: skip
def test_bad_spec_names_the_field(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_plate_format(spec)
    assert info.value.field == "privacy.plate_format"


def test_site_config_validates_plate_format() -> None:
    site: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    site["privacy"]["plate_format"] = ["de", "LL-DDDD"]
    assert parse_site(site).privacy.plate_format == ["de", "LL-DDDD"]
    site["privacy"]["plate_format"] = "germany"
    with pytest.raises(ConfigError, match="plate_format") as info:
        parse_site(site)
    assert info.value.field is not None and "plate_format" in info.value.field
    assert PrivacySection().plate_format == "auto"


def test_sim_renders_the_first_template() -> None:
    rng = np.random.default_rng(0)
    assert first_template("fr") == "LL-DDD-LL"
    assert first_template("auto") == "LLL-DDDD"
    assert first_template("DLLL-DDD, LLL-DDDD") == "DLLL-DDD"
    plate = make_plate("fr", rng)
    assert parse_plate_format("fr").matches(plate.replace("-", ""))  # type: ignore[union-attr]
    assert make_plate("LLL-DDDD", rng)[3] == "-"


def test_cli_format_defaults_to_auto() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert parser.parse_args(["plate", "x.png"]).plate_format == "auto"
    assert parser.parse_args(["plate", "x.png", "--format", "de,fr"]).plate_format == "de,fr"
