"""Plate reading: normalisation, format repair, reading synthetic and real plates, track fusion."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.analytics.ocr import TextBox, TextRead
from trafficprn.analytics.plate_synth import (
    Degradation,
    available_fonts,
    degrade,
    random_plate,
    render_plate,
    render_vehicle,
)
from trafficprn.analytics.plates import (
    PlateFormat,
    PlateReader,
    PlateResult,
    TrackPlateFuser,
    fuse_reads,
    normalise_plate,
    plate_crop_quality,
)
from trafficprn.errors import ConfigError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader("LLL-DDDD")


# ---------------------------------------------------------------- pure text handling
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("abc-1234", "ABC1234"), (" AB C·12 34 ", "ABC1234"), ("", ""), ("--", ""), ("ä1b", "1B")],
)
def test_normalise_plate(raw: str, expected: str) -> None:
    assert normalise_plate(raw) == expected


@pytest.mark.parametrize(
    ("template", "raw", "expected"),
    [
        ("LLL-DDDD", "ABC1234", ("ABC1234", 0)),
        ("LLL-DDDD", "0BC1234", ("OBC1234", 1)),  # O/0 at a letter slot
        ("LLL-DDDD", "ABCO234", ("ABC0234", 1)),  # O/0 at a digit slot
        ("LLL-DDDD", "A8C12S4", ("ABC1254", 2)),  # B/8 and S/5
        ("LLL-DDDD", "1BC1I34", ("IBC1134", 2)),  # I/1 both ways
        ("LLL-DDDD", "XABC1234", ("ABC1234", 1)),  # a stray character before the plate
        ("LLL-DDDD", "ABC123", None),  # too short
        ("LLL-DDDD", "ABC12X4", None),  # X has no digit look-alike
        ("DLLDDDD", "SAU5341", ("5AU5341", 1)),
        ("B-LL-DDD", "8XY123", ("BXY123", 1)),  # a literal slot
    ],
)
def test_format_fit(template: str, raw: str, expected: tuple[str, int] | None) -> None:
    fmt = PlateFormat.parse(template)
    assert fmt is not None
    assert fmt.fit(raw) == expected


def test_format_fit_prefers_recogniser_candidates() -> None:
    # at a digit slot 'A' would map to '4', but the recogniser's runner-up is '8'
    read = TextRead(
        "ABCA234",
        0.9,
        (0.9,) * 7,
        tuple(((c, 0.9),) for c in "ABC") + ((("A", 0.5), ("8", 0.4)),) + tuple(((c, 0.9),) for c in "234"),
    )
    fmt = PlateFormat.parse("LLLDDDD")
    assert fmt is not None
    assert fmt.fit(read) == ("ABC8234", 1)


@pytest.mark.parametrize(
    ("template", "expected", "error"),
    [("LLL-DDDD", 7, None), ("", None, None), (None, None, None), ("- -", None, ConfigError)],
)
def test_format_parse(template: str | None, expected: int | None, error: type[Exception] | None) -> None:
    if error:
        with pytest.raises(error, match="no L/D slots"):
            PlateFormat.parse(template)
        return
    fmt = PlateFormat.parse(template)
    assert (len(fmt) if fmt else None) == expected


def _result(text: str, conf: float = 0.9) -> PlateResult:
    return PlateResult(text, conf, (conf,) * len(text))


@pytest.mark.parametrize(
    ("reads", "length", "expected_text", "expected_reads"),
    [
        (["ABC1234"], 7, "ABC1234", 1),
        (["ABC1234", "ABC1284", "ABC1234"], 7, "ABC1234", 3),  # one bad character is outvoted
        (["ABC1234", "ABQ1234", "AEC1234"], 7, "ABC1234", 3),  # errors in different places
        (["ABC1234", "ABC12345", "ABC1234"], 7, "ABC1234", 2),  # wrong length does not vote
        (["ABC12345", "ABC12345", "ABC1234"], None, "ABC12345", 2),  # no template: heaviest length
        ([], 7, None, 0),
        (["", ""], 7, None, 0),
    ],
)
def test_fuse_reads(reads: list[str], length: int | None, expected_text: str | None, expected_reads: int) -> None:
    fused = fuse_reads([_result(t) for t in reads], length)
    if expected_text is None:
        assert fused is None
        return
    assert fused is not None
    assert (fused.text, fused.reads) == (expected_text, expected_reads)
    assert 0 < fused.confidence <= 0.9 + 1e-9


def test_fused_confidence_drops_with_disagreement() -> None:
    agree = fuse_reads([_result("ABC1234")] * 3, 7)
    split = fuse_reads([_result("ABC1234"), _result("ABC1234"), _result("XYZ9876")], 7)
    assert agree is not None and split is not None
    assert split.confidence < agree.confidence


# ---------------------------------------------------------------- reading images
@pytest.mark.parametrize(
    "bad",
    [
        None,
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((5, 5, 3), np.uint8),
        np.zeros((40, 3, 3), np.uint8),
        np.zeros((30, 90), np.uint8),  # blank grey plate-sized crop: nothing to read
        np.zeros((30, 90, 2), np.uint8),
        np.full((60, 200, 3), 255.0),  # float image, blank
    ],
)
def test_bad_or_empty_crops_give_no_plate(reader: PlateReader, bad: np.ndarray | None) -> None:
    assert reader.read(bad) is None


def _font(i: int) -> str:
    fonts = available_fonts()
    return fonts[i % len(fonts)]


@pytest.mark.parametrize(
    ("font_index", "width_px", "deg"),
    [
        (0, 100, Degradation()),
        (2, 90, Degradation(skew=0.1, noise=6, jpeg=70)),
        (4, 120, Degradation(skew=0.12, blur_px=0.8)),  # first TTF font where installed
        (7, 80, Degradation(blur_px=0.5, noise=8, jpeg=80)),
        (9, 140, Degradation(skew=0.15, noise=4)),
    ],
)
def test_reads_synthetic_plate_crops(reader: PlateReader, font_index: int, width_px: int, deg: Degradation) -> None:
    rng = np.random.default_rng(font_index)
    text = random_plate("LLL-DDDD", rng)
    image = degrade(render_plate(text, _font(font_index), width_px), rng, deg, pad_px=4)
    result = reader.read(image)
    assert result is not None
    assert result.text == normalise_plate(text)


@pytest.mark.parametrize(("font_index", "colour_bgr"), [(1, (30, 30, 170)), (6, (200, 200, 200)), (10, (20, 20, 20))])
def test_reads_plate_in_vehicle_crop(reader: PlateReader, font_index: int, colour_bgr: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(10 + font_index)
    text = random_plate("LLL-DDDD", rng)
    crop = render_vehicle(colour_bgr, rng, size=(280, 220), plate_text=text, plate_font=_font(font_index))
    image = degrade(crop.image, rng, Degradation(blur_px=0.6, noise=5, jpeg=85))
    result = reader.read(image)
    assert result is not None
    assert result.text == normalise_plate(text)
    assert result.quad_px is not None and crop.plate_xyxy is not None
    cx, cy = result.quad_px.mean(axis=0)
    x1, y1, x2, y2 = crop.plate_xyxy
    assert x1 <= cx <= x2 and y1 <= cy <= y2


@pytest.mark.parametrize(
    ("file", "plate_format", "expected"),
    [
        ("real_car_5AU5341.jpg", None, "5AU5341"),  # a whole car photo, plate ~70 px wide
        ("real_car_5AU5341.jpg", "DLLDDDD", "5AU5341"),
        ("real_plate_AD799KB.png", "LL-DDD-LL", "AD799KB"),
    ],
)
def test_reads_real_photographs(file: str, plate_format: str | None, expected: str) -> None:
    image = cv2.imread(str(DATA / file))
    result = PlateReader(plate_format).read(image)
    assert result is not None and result.text == expected


def test_worn_real_plate_is_close(reader: PlateReader) -> None:
    """KRW 301: a worn plate whose W reads as N; the read is one character off at most."""
    result = PlateReader("LLL-DDD").read(cv2.imread(str(DATA / "real_plate_KRW301.png")))
    assert result is not None
    assert sum(a != b for a, b in zip(result.text, "KRW301", strict=True)) <= 1


def test_crop_quality_prefers_large_and_sharp() -> None:
    plate = render_plate("ABC1234", "hershey-duplex", 160)
    small = cv2.resize(plate, (80, 20), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(plate, (0, 0), 3)
    assert plate_crop_quality(plate) > plate_crop_quality(small)
    assert plate_crop_quality(plate) > plate_crop_quality(blurred)
    assert plate_crop_quality(np.zeros((0, 0, 3), np.uint8)) == 0.0


# ---------------------------------------------------------------- fusion over a track
class ScriptedBackend:
    """An OCR backend that returns scripted reads (optionally slowly): it drives the
    fuser's threading and voting without the cost of a real model."""

    name = "scripted"

    def __init__(self, texts: list[str], delay_s: float = 0.0) -> None:
        self.texts = texts
        self.delay_s = delay_s
        self.calls = 0
        self.lock = threading.Lock()

    def detect(self, image_bgr: np.ndarray) -> list[TextBox]:
        return []

    def recognise(self, crop_bgr: np.ndarray, alphabet: str | None = None) -> TextRead:
        time.sleep(self.delay_s)
        with self.lock:
            text = self.texts[self.calls % len(self.texts)]
            self.calls += 1
        return TextRead(text, 0.9, (0.9,) * len(text), tuple(((c, 0.9),) for c in text))


PLATE_CROP = np.full((40, 160, 3), 200, np.uint8)


def test_fuser_votes_per_character() -> None:
    backend = ScriptedBackend(["ABC1234", "ABC1Z34", "A8C1234", "ABC1234"])
    with TrackPlateFuser(PlateReader("LLL-DDDD", backend), reads_per_track=3, warm_up=False) as fuser:
        for q in (1.0, 2.0, 4.0, 8.0):
            assert fuser.offer(7, PLATE_CROP, q)
            fuser.flush()
        result = fuser.result(7)
    assert result is not None
    assert result.text == "ABC1234"
    assert result.reads == 3  # the three best crops by quality vote


def test_fuser_never_blocks_and_drops_when_behind() -> None:
    backend = ScriptedBackend(["ABC1234"], delay_s=0.2)
    fuser = TrackPlateFuser(
        PlateReader("LLL-DDDD", backend), max_workers=1, max_pending=2, reads_per_track=2, warm_up=False
    )
    try:
        start = time.perf_counter()
        accepted = [fuser.offer(track, PLATE_CROP, 10.0) for track in range(6)]
        elapsed = time.perf_counter() - start
        assert elapsed < 0.1  # six offers while one read takes 0.2 s
        assert accepted == [True, True, False, False, False, False]
        assert fuser.stats.dropped == 4
        assert fuser.flush(timeout_s=5.0)
        assert fuser.result(0) == fuser.result(1)
        assert fuser.result(0) is not None
    finally:
        fuser.close()


def test_fuser_submits_only_better_crops_and_bounded_reads() -> None:
    backend = ScriptedBackend(["ABC1234"])
    with TrackPlateFuser(PlateReader("LLL-DDDD", backend), reads_per_track=2, warm_up=False) as fuser:
        for q in [1.0, 1.05, 0.5, 2.0, 2.1, 3.0, 9.0, 9.5, 20.0, 40.0, 80.0]:
            fuser.offer(1, PLATE_CROP, q)
            fuser.flush()
        assert fuser.stats.submitted <= 4  # at most 2 x reads_per_track per track
        assert fuser.stats.offered == 11


def test_fuser_forget_and_eviction() -> None:
    backend = ScriptedBackend(["ABC1234"], delay_s=0.05)
    with TrackPlateFuser(PlateReader("LLL-DDDD", backend), max_tracks=2, warm_up=False) as fuser:
        fuser.offer(1, PLATE_CROP, 1.0)
        fuser.forget(1)  # the read in flight is discarded
        fuser.flush()
        assert fuser.result(1) is None
        for track in (2, 3, 4):
            fuser.offer(track, PLATE_CROP, 1.0)
        fuser.flush()
        assert fuser.result(2) is None  # evicted: least recently offered
        assert fuser.result(4) is not None


def test_fuser_with_real_ocr_over_a_track(reader: PlateReader) -> None:
    """A car approaching: crops grow and sharpen; the fused read is exact."""
    rng = np.random.default_rng(42)
    text = random_plate("LLL-DDDD", rng)
    with TrackPlateFuser(reader, reads_per_track=3) as fuser:
        assert fuser.flush(timeout_s=30)  # the models are loaded in the background first
        for width in (120, 160, 200, 240, 280, 320):
            crop = render_vehicle((60, 120, 60), rng, size=(width, int(width * 0.8)), plate_text=text).image
            crop = degrade(crop, rng, Degradation(blur_px=0.7, noise=6))
            fuser.offer(5, crop, plate_crop_quality(crop))
            fuser.flush(timeout_s=30)  # frames come slower than reads here (deterministic)
        result = fuser.result(5, wait_s=10.0)
        assert fuser.stats.submitted <= 6
    assert result is not None and result.text == normalise_plate(text)


def test_plate_cli_batch_with_a_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`trafficprn plate --batch FILE --format SPEC --json`: one JSON line per image."""
    import json

    from trafficprn.cli import main

    batch = tmp_path / "plates.txt"
    batch.write_text(f"{DATA / 'real_plate_AD799KB.png'}\n# a comment\n{DATA / 'real_car_5AU5341.jpg'}\n")
    assert main(["plate", "--batch", str(batch), "--format", "LL-DDD-LL, cz", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["AD799KB", "5AU5341"]
