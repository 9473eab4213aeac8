"""The plate-number line among several: state names and slogans are smaller and sit above
or below the number, so geometry (character height, aspect, position) picks the number,
not the longest or most confident text."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trafficprn.analytics.ocr import TextBox
from trafficprn.analytics.plate_lines import find_char_rows, rank_plate_lines
from trafficprn.analytics.plates import PlateReader


def _quad(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


FONTS = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX]


def _centred(plate: np.ndarray, text: str, y_base: int, font: int, scale: float, thick: int) -> None:
    (w, _), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(plate, text, ((plate.shape[1] - w) // 2, y_base), font, scale, (25, 25, 25), thick, cv2.LINE_AA)


def us_style_plate(number: str, top: str, bottom: str, font: int) -> np.ndarray:
    """A 2:1 plate: a small state name on top, the number large in the middle, a slogan
    below (the number's characters ~60 px tall, the others ~12 px)."""
    plate = np.full((160, 320, 3), 230, np.uint8)
    cv2.rectangle(plate, (3, 3), (316, 156), (60, 60, 60), 2)
    _centred(plate, top, 24, font, 0.6, 1)
    _centred(plate, number, 112, font, 2.0, 5)
    _centred(plate, bottom, 146, font, 0.5, 1)
    return plate


def test_rank_prefers_tall_centred_number_over_long_confident_state_name() -> None:
    state = TextBox(_quad(20, 4, 280, 22), 0.99)  # long, most confident, small, at the top
    number = TextBox(_quad(30, 45, 250, 70), 0.80)
    slogan = TextBox(_quad(60, 130, 200, 18), 0.95)
    ranked = rank_plate_lines([state, slogan, number], (160, 320))
    assert ranked[0].box is number
    assert ranked[0].height_rel > max(r.height_rel for r in ranked[1:])


@pytest.mark.parametrize("font", FONTS)
def test_char_rows_put_the_number_first(font: int) -> None:
    plate = us_style_plate("KTR4821", "NEW JERSEY", "GARDEN STATE", font)
    rows = find_char_rows(plate)
    assert rows, "no character row found"
    x, y, w, h = rows[0].box
    assert y < 90 < y + h and h < 100  # the number's band (baseline at y 112)
    assert rows[0].char_height_px > 35


@pytest.mark.parametrize(("number", "top", "bottom"), [("KTR4821", "NEW JERSEY", "GARDEN STATE"),
                                                      ("ADW7730", "ARIZONA", "GRAND CANYON STATE")])  # fmt: skip
def test_reader_reads_the_number_not_the_state(number: str, top: str, bottom: str) -> None:
    plate = us_style_plate(number, top, bottom, cv2.FONT_HERSHEY_SIMPLEX)
    for spec in ("auto", "us"):
        result = PlateReader(spec).read(plate)
        assert result is not None
        assert result.text == number
