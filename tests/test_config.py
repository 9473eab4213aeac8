"""The site config: the example loads, round-trips, and every broken input names its field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficprn.camera.dewarp import Dewarper
from trafficprn.config import dump_site, load_site, parse_site
from trafficprn.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "site.yaml"


def example() -> dict[str, Any]:
    return yaml.load(EXAMPLE.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)  # type: ignore[no-any-return]


def cam(d: dict[str, Any]) -> dict[str, Any]:
    return d["cameras"][0]  # type: ignore[no-any-return]


Edit = Callable[[dict[str, Any]], None]


def setter(path: str, value: Any) -> Edit:
    """An edit that sets (or, with value DELETE, removes) a dotted path like cameras.0.lens.fov_deg."""

    def edit(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = d
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value

    return edit


DELETE = object()
KB = {"model": "kannala_brandt", "image_size": [1280, 1280], "fy": 350, "cx": 640, "cy": 640, "k": [0, 0, 0, 0]}
PINHOLE = {"model": "pinhole", "image_size": [1280, 720], "fx": 900, "fy": 900, "cx": 640}


def overlap_legs(d: dict[str, Any]) -> None:
    cam(d)["legs"][1]["entry"] = copy.deepcopy(cam(d)["legs"][0]["exit"])


def duplicate_camera(d: dict[str, Any]) -> None:
    d["cameras"].append(copy.deepcopy(cam(d)))


def two_point_entry(d: dict[str, Any]) -> None:
    cam(d)["legs"][0]["entry"] = cam(d)["legs"][0]["entry"][:2]


BROKEN: list[tuple[str, Edit, str, str]] = [
    # (case, edit, field path, message fragment)
    ("unknown lens model", setter("cameras.0.lens.model", "fishy"), "cameras[0].lens", "unknown lens model 'fishy'"),
    ("no lens model", setter("cameras.0.lens.model", DELETE), "cameras[0].lens", "missing lens model"),
    ("KB without fx", setter("cameras.0.lens", KB), "cameras[0].lens.fx", "field required"),
    ("pinhole without cy", setter("cameras.0.lens", PINHOLE), "cameras[0].lens.cy", "field required"),
    (
        "fisheye without radius",
        setter("cameras.0.lens.radius_px", DELETE),
        "cameras[0].lens.radius_px",
        "field required",
    ),
    ("FOV 0", setter("cameras.0.lens.fov_deg", 0), "cameras[0].lens.fov_deg", "(0, 360]"),
    ("FOV over 360", setter("cameras.0.lens.fov_deg", 400), "cameras[0].lens.fov_deg", "(0, 360]"),
    (
        "KB FOV 0",
        setter("cameras.0.lens", {**KB, "fx": 350, "fov_deg": 0}),
        "cameras[0].lens.fov_deg",
        "greater than 0",
    ),
    (
        "orthographic over 180",
        setter("cameras.0.lens", {**cam(example())["lens"], "model": "orthographic", "fov_deg": 190}),
        "cameras[0].lens.fov_deg",
        "at most 180",
    ),
    ("zero image size", setter("cameras.0.lens.image_size", [1280, 0]), "cameras[0].lens.image_size", "positive"),
    (
        "view FOV 0",
        setter("cameras.0.detector.views", [{"name": "N", "fov_deg": 0}]),
        "cameras[0].detector.views[0].fov_deg",
        "(0, 180)",
    ),
    (
        "view outside the image circle",
        setter("cameras.0.detector.views", [{"name": "N", "pitch_deg": 30}, {"name": "up", "pitch_deg": 120}]),
        "cameras[0].detector.views[1]",
        "looks outside the image circle",
    ),
    ("leg without entry", setter("cameras.0.legs.1.entry", DELETE), "cameras[0].legs[1].entry", "field required"),
    ("entry of 2 points", two_point_entry, "cameras[0].legs[0].entry", "at least 3 points"),
    ("overlapping legs", overlap_legs, "cameras[0].legs[1].entry", "overlaps legs[0].exit"),
    ("duplicate leg", setter("cameras.0.legs.1.name", "N"), "cameras[0].legs[1].name", "unique"),
    (
        "lane without stop line",
        setter("cameras.0.lanes.2.stop_line", DELETE),
        "cameras[0].lanes[2].stop_line",
        "field required",
    ),
    (
        "stop line of one point",
        setter("cameras.0.lanes.0.stop_line", [[1, 2], [1, 2]]),
        "cameras[0].lanes[0].stop_line",
        "distinct",
    ),
    ("lane of unknown leg", setter("cameras.0.lanes.3.leg", "NE"), "cameras[0].lanes[3].leg", "refers to leg 'NE'"),
    ("typo", setter("cameras.0.proces_fps", 10), "cameras[0].proces_fps", "unknown field"),
    (
        "3 calibration points",
        setter("cameras.0.calibration.points", [{"image_px": [1, 1], "ground_m": [0, 0]}] * 3),
        "cameras[0].calibration",
        "at least 4",
    ),
    ("bad time zone", setter("site.timezone", "Mars/Olympus"), "site.timezone", "IANA"),
    ("interval 7", setter("site.interval_minutes", 7), "site.interval_minutes", "divisor of 60"),
    ("plate mode", setter("privacy.plates", "maybe"), "privacy.plates", "'off', 'hash' or 'clear'"),
    ("no cameras", setter("cameras", []), "cameras", "at least 1"),
    ("duplicate camera", duplicate_camera, "cameras[1].name", "unique"),
    (
        "bad input size",
        setter("cameras.0.detector.input_size", 400),
        "cameras[0].detector.input_size",
        "multiple of 32",
    ),
]


@pytest.mark.parametrize(("case", "edit", "field", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_site_names_the_field(tmp_path: Path, case: str, edit: Edit, field: str, message: str) -> None:
    data = example()
    edit(data)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.dump(data, Dumper=yaml.CSafeDumper), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.field == field
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_example_loads_and_round_trips(tmp_path: Path) -> None:
    site = load_site(EXAMPLE)
    assert [c.name for c in site.cameras] == ["fisheye-1"]
    cam0 = site.cameras[0]
    assert [leg.name for leg in cam0.legs] == ["N", "E", "S", "W"]
    assert len(cam0.lanes) == 8 and len(cam0.calibration.points) >= 4
    out = tmp_path / "again.yaml"
    dump_site(site, out)
    assert load_site(out) == site


def test_relative_file_source_resolves(tmp_path: Path) -> None:
    data = example()
    cam(data)["source"] = "video.mp4"
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_site(tmp_path / "site.yaml").cameras[0].source == str(tmp_path / "video.mp4")


@pytest.mark.parametrize(
    ("text", "match"),
    [("site: [unclosed", r"site.yaml:\d+: not valid YAML"), ("- just\n- a list\n", "expected a mapping")],
)
def test_unreadable_yaml(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_site(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read site config"):
        load_site(tmp_path / "nope.yaml")


def test_dewarper_checks_views_exactly() -> None:
    """The loader checks a view's angle; the Dewarper checks with the lens model, naming the same field."""
    data = example()
    # within the FOV by angle, but the image circle is cut off by a narrower frame
    cam(data)["lens"].update(image_size=[1280, 800], center_px=[640, 400])
    cam(data)["detector"]["views"] = [{"name": "N", "yaw_deg": 0, "pitch_deg": 85}]
    site = parse_site(data)
    with pytest.raises(ConfigError) as info:
        Dewarper.from_camera(site.cameras[0], camera_index=0)
    assert info.value.field == "cameras[0].detector.views[0]"
