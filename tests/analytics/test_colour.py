"""Vehicle colour: body pixels only, robust to light, voted over a track; and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.analytics.colour import DEFAULT_PALETTE, ColourClassifier, ColourResult, box_purity, vote_colours
from trafficprn.analytics.plate_synth import random_plate, render_vehicle
from trafficprn.cli import main
from trafficprn.errors import ConfigError, InputError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def classifier() -> ColourClassifier:
    return ColourClassifier()


def _bgr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return rgb[2], rgb[1], rgb[0]


@pytest.mark.parametrize("name", list(DEFAULT_PALETTE))
def test_each_palette_colour_in_plain_light(classifier: ColourClassifier, name: str) -> None:
    rng = np.random.default_rng(len(name))
    crop = render_vehicle(_bgr(DEFAULT_PALETTE[name][0]), rng, size=(220, 180), plate_text="ABC1234")
    result = classifier.classify(crop.image)
    assert result.name == name
    assert 0 < result.confidence <= 1


def test_accuracy_under_varied_light_sizes_and_shades(classifier: ColourClassifier) -> None:
    """Shaded bodies, glass, shadow and road, light from 0.7x to 1.25x with tints."""
    rng = np.random.default_rng(2024)
    correct, total, confusions = 0, 0, Counter[tuple[str, str]]()
    for name, protos in DEFAULT_PALETTE.items():
        for i in range(8):
            rgb = np.clip(np.array(protos[i % len(protos)]) + rng.normal(0, 6, 3), 0, 255)
            crop = render_vehicle(
                (float(rgb[2]), float(rgb[1]), float(rgb[0])),  # type: ignore[arg-type]
                rng,
                size=(int(rng.integers(80, 300)), int(rng.integers(70, 240))),
                plate_text=random_plate("LLL-DDDD", rng) if i % 2 else None,
                light=float(rng.uniform(0.7, 1.25)),
                light_tint=tuple(rng.uniform(0.92, 1.08, 3)),  # type: ignore[arg-type]
            )
            got = classifier.classify(crop.image).name
            correct += got == name
            total += 1
            if got != name:
                confusions[(name, got)] += 1
    assert correct / total >= 0.88, confusions.most_common(5)


def test_windows_road_and_shadow_do_not_decide(classifier: ColourClassifier) -> None:
    # a red car: dark glass, grey road and a black shadow fill much of the box
    crop = render_vehicle((30, 30, 175), np.random.default_rng(9), size=(160, 200))
    assert crop.body_mask.mean() < 0.6
    assert classifier.classify(crop.image).name == "red"


def test_real_photograph_of_a_silver_car(classifier: ColourClassifier) -> None:
    """A silver car on a wet, dark road. Exposure is normalised on the road (assumed dry
    asphalt), which brightens this car towards white: silver and white are the two
    answers a light-achromatic car may get; a dark or chromatic name would be wrong."""
    image = cv2.imread(str(DATA / "real_car_5AU5341.jpg"))
    assert classifier.classify(image[45:270, 45:450]).name in {"silver", "white"}  # the car's box
    assert classifier.classify(image).name in {"silver", "white", "grey"}  # the whole photo


def _faceted_vehicle(
    paint_rgb: tuple[int, int, int], *, lit: float = 1.05, shaded: float = 0.55, roof_share: float = 0.35,
    stripes: bool = False, seed: int = 0,
) -> np.ndarray:
    """A box-shaped vehicle as a camera above sees it (BGR crop, 160x120 px): a roof in
    sun (lit x paint), a side in shade (shaded x paint), a dark window band, on asphalt;
    optionally white road stripes in the box margins (a zebra crossing)."""
    rng = np.random.default_rng(seed)
    h, w = 120, 160
    img = np.full((h, w, 3), 88.0) + rng.normal(0, 4, (h, w, 1))
    if stripes:
        for x in range(0, w, 24):
            img[:, x : x + 12][np.r_[0:14, h - 14 : h]] = 235.0
    paint = np.asarray(paint_rgb[::-1], np.float64)
    top, bottom = 14, h - 14
    split = top + int(roof_share * (bottom - top))
    img[top:split, 16 : w - 16] = paint * lit
    img[split : split + 10, 20 : w - 20] = (62, 50, 42)  # windows
    img[split + 10 : bottom, 16 : w - 16] = paint * shaded
    img += rng.normal(0, 2, (h, w, 1))
    return np.asarray(np.clip(img, 0, 255), dtype=np.uint8)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("red", {}),  # shaded red is not brown: hue decides, read on the lit face
        ("blue", {"roof_share": 0.2}),
        pytest.param(
            "grey", {}, marks=pytest.mark.xfail(strict=True, reason="known: a grey car whose shaded side "
                                                "outnumbers its lit roof reads black (the group's median)")
        ),
        ("grey", {"roof_share": 0.5}),  # with as much lit roof as shaded side: grey, not black or silver
        ("grey", {"roof_share": 0.6, "shaded": 0.7}),
        ("white", {"roof_share": 0.5, "shaded": 0.7}),
        ("silver", {"roof_share": 0.5}),
        ("black", {}),
        ("black", {"stripes": True}),  # white road marks in the box margins are not paint
        ("silver", {"stripes": True}),
        ("white", {}),
        ("yellow", {"shaded": 0.6}),
        ("green", {"roof_share": 0.5}),
    ],
)
def test_faces_in_sun_and_shade_are_one_paint(
    classifier: ColourClassifier, name: str, kwargs: dict[str, float | bool]
) -> None:
    crop = _faceted_vehicle(DEFAULT_PALETTE[name][0], **kwargs)  # type: ignore[arg-type]
    assert classifier.classify(crop).name == name


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 120, 130]], [0.5, 0.5, 1.0]),
        ([[0, 0, 40, 40], [10, 10, 30, 30]], [0.75, 0.0]),  # a box inside another is all covered
        ([[0, 0, 10, 10]], [1.0]),
        (np.zeros((0, 4)), []),
    ],
)
def test_box_purity(boxes: list[list[float]], expected: list[float]) -> None:
    assert np.allclose(box_purity(np.asarray(boxes, dtype=np.float64)), expected, atol=0.02)


def test_custom_palette() -> None:
    classifier = ColourClassifier({"pink": (255, 105, 180), "teal": [(0, 128, 128), (20, 150, 150)]})
    crop = render_vehicle((128, 128, 0), np.random.default_rng(1), size=(200, 160))
    assert classifier.classify(crop.image).name == "teal"
    assert classifier.colour_names == ["pink", "teal"]


@pytest.mark.parametrize(
    ("palette", "message"),
    [
        ({"red": (255, 0, 0)}, "at least 2"),
        ({"red": (300, 0, 0), "blue": (0, 0, 255)}, "sRGB"),
        ({"x": (1, 2)}, "sRGB"),
    ],
)
def test_bad_palette(palette: dict[str, tuple[int, ...]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ColourClassifier(palette)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 0, 3), np.uint8), np.zeros((4, 30, 3), np.uint8), np.zeros((30, 30), np.uint8), None]
)
def test_bad_crops(classifier: ColourClassifier, bad: np.ndarray | None) -> None:
    with pytest.raises(InputError, match="crop"):
        classifier.classify(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([("red", 0.9), ("red", 0.8), ("orange", 0.5)], "red"),
        ([("white", 0.3), ("white", 0.3), ("silver", 0.9)], "silver"),  # confidence-weighted
        ([("blue", 0.0)], "blue"),
        ([], None),
    ],
)
def test_vote_colours(results: list[tuple[str, float]], expected: str | None) -> None:
    voted = vote_colours(ColourResult(n, c) for n, c in results)
    assert (voted.name if voted else None) == expected
    if voted:
        assert 0 < voted.confidence <= 1


def test_vote_confidence_reflects_agreement() -> None:
    agree = vote_colours([ColourResult("red", 0.8)] * 4)
    split = vote_colours([ColourResult("red", 0.8)] * 2 + [ColourResult("brown", 0.8)])
    assert agree is not None and split is not None
    assert split.confidence < agree.confidence


# ---------------------------------------------------------------- CLI (plate and colour)
def test_cli_colour_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["colour", str(DATA / "real_car_5AU5341.jpg"), "--box", "45,45,405,225", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["colour"] in {"silver", "white"}


def test_cli_plate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plate", str(DATA / "real_car_5AU5341.jpg"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] == "5AU5341" and 0.5 < out["confidence"] <= 1


def test_cli_plate_batch_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 200, 3), 128, np.uint8))
    batch = tmp_path / "batch.txt"
    batch.write_text(
        f"{DATA / 'real_plate_AD799KB.png'}\n"
        f"{blank}\n"
        f"{DATA / 'real_car_5AU5341.jpg'} 290 170 120 60\n"
        f"{tmp_path / 'missing.png'}\n"
    )
    assert main(["plate", "--batch", str(batch), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["AD799KB", None, "5AU5341", None]
    assert "cannot read image" in lines[3]["error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plate", "x.png", "--box", "1,2,3"], "x,y,w,h"),
        (["plate", "nope.png"], "cannot read image"),
        (["plate"], "either IMAGE or --batch"),
        (["colour", "nope.png"], "cannot read image"),
    ],
)
def test_cli_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
