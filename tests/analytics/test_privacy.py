"""Plate privacy modes, keyed hashes and plate blurring."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pytest

from trafficprn.analytics.plate_synth import render_plate, render_vehicle
from trafficprn.analytics.plates import PlateReader
from trafficprn.analytics.privacy import PlatePrivacy, blur_plates, plate_hash
from trafficprn.config import PrivacySection
from trafficprn.errors import ConfigError, GeometryError, InputError

SECRET = "a-deployment-secret-0123456789"


@pytest.mark.parametrize(
    ("mode", "secret", "text", "expected", "error"),
    [
        ("clear", None, "abc-1234", ("ABC1234", None), None),
        ("off", SECRET, "ABC1234", (None, None), None),
        ("hash", SECRET, None, (None, None), None),
        ("hash", SECRET, " - ", (None, None), None),
        ("clear", None, None, (None, None), None),
        ("hash", None, "ABC1234", None, ConfigError),
        ("hash", "", "ABC1234", None, ConfigError),
        ("hash", "   ", "ABC1234", None, ConfigError),
        ("blur", None, "ABC1234", None, ConfigError),
    ],
)
def test_apply(
    mode: str,
    secret: str | None,
    text: str | None,
    expected: tuple[str | None, str | None] | None,
    error: type[Exception] | None,
) -> None:
    if error:
        with pytest.raises(error):
            PlatePrivacy(mode, secret).apply(text)  # type: ignore[arg-type]
        return
    assert PlatePrivacy(mode, secret).apply(text) == expected  # type: ignore[arg-type]


def test_hash_mode_without_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="TRAFFICPRN_PLATE_SECRET"):
        PlatePrivacy.from_config(PrivacySection(plates="hash"), None)


def test_hash_is_hmac_sha256_of_normalised_text() -> None:
    text, digest = PlatePrivacy.from_config(PrivacySection(plates="hash"), SECRET).apply("abc 1234")
    reference = hmac.new(SECRET.encode(), b"ABC1234", hashlib.sha256).hexdigest()
    assert text is None
    assert digest == reference
    assert len(digest) == 64


def test_same_plate_same_hash_across_cameras_different_across_deployments() -> None:
    camera_a = PlatePrivacy("hash", SECRET)
    camera_b = PlatePrivacy.from_config(PrivacySection(plates="hash", plate_format="LL-DDDDD"), SECRET)
    assert camera_a.apply("ABC-1234")[1] == camera_b.apply("abc1234")[1]
    assert camera_a.apply("ABC1234")[1] != camera_a.apply("ABC1235")[1]
    assert plate_hash("ABC1234", SECRET) != plate_hash("ABC1234", SECRET + "x")


def test_from_config_ignores_secret_unless_hashing() -> None:
    assert PlatePrivacy.from_config(PrivacySection(plates="clear"), None).apply("ab1") == ("AB1", None)
    assert not PlatePrivacy.from_config(PrivacySection(plates="off"), None).reads_plates


# ---------------------------------------------------------------- blurring
def test_blur_makes_plate_unreadable_and_leaves_the_rest() -> None:
    rng = np.random.default_rng(0)
    crop = render_vehicle((160, 60, 30), rng, size=(300, 240), plate_text="KTV4827")
    assert crop.plate_xyxy is not None
    reader = PlateReader("LLL-DDDD")
    before = reader.read(crop.image)
    assert before is not None and before.text == "KTV4827"
    blurred = blur_plates(crop.image, np.array([crop.plate_xyxy], dtype=float))
    after = reader.read(blurred)
    assert after is None or after.text != "KTV4827"
    x1, y1, x2, y2 = crop.plate_xyxy
    outside = np.ones(crop.image.shape[:2], dtype=bool)
    outside[y1 - 10 : y2 + 10, x1 - 15 : x2 + 15] = False
    assert np.array_equal(blurred[outside], crop.image[outside])
    assert not np.array_equal(blurred[y1:y2, x1:x2], crop.image[y1:y2, x1:x2])
    assert blurred is not crop.image  # a copy; the input is untouched


def test_blur_vehicle_boxes_hides_the_lower_part() -> None:
    plate = render_plate("ABC1234", "hershey-duplex", 120)
    frame = np.full((300, 400, 3), 90, np.uint8)
    frame[200:230, 140:260] = plate
    out = blur_plates(frame, np.array([[100.0, 60.0, 300.0, 260.0]]), kind="vehicle")
    assert np.array_equal(out[:150], frame[:150])  # upper half of the box and above untouched
    assert not np.array_equal(out[200:230, 140:260], plate)


@pytest.mark.parametrize(
    ("boxes", "error"),
    [
        (np.zeros((0, 4)), None),
        (np.array([[-50.0, -50.0, 20.0, 20.0], [390.0, 290.0, 900.0, 900.0]]), None),  # clipped to the image
        (np.array([[500.0, 500.0, 600.0, 600.0]]), None),  # fully outside: nothing to do
        (np.array([1.0, 2.0, 3.0]), GeometryError),
        (np.zeros((2, 5)), GeometryError),
    ],
)
def test_blur_box_handling(boxes: np.ndarray, error: type[Exception] | None) -> None:
    frame = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    if error:
        with pytest.raises(error, match="shape"):
            blur_plates(frame, boxes)
        return
    out = blur_plates(frame, boxes)
    assert out.shape == frame.shape
    assert np.array_equal(out[40:160, 30:330], frame[40:160, 30:330])  # away from the (enlarged) boxes


def test_blur_rejects_empty_image() -> None:
    with pytest.raises(InputError):
        blur_plates(np.zeros((0, 0, 3), np.uint8), np.zeros((0, 4)))
