"""OCR backends: offline model loading, alphabet-restricted recognition, text detection."""

from __future__ import annotations

import importlib.util
import socket

import numpy as np
import pytest

from trafficprn.analytics.ocr import PLATE_ALPHABET, PaddleOcrBackend, RapidOcrBackend, make_backend
from trafficprn.analytics.plate_synth import available_fonts, render_plate, render_vehicle
from trafficprn.errors import ConfigError, DependencyError, InputError


@pytest.fixture(scope="module")
def backend() -> RapidOcrBackend:
    return RapidOcrBackend(threads=1)


def test_models_load_and_run_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    fresh = RapidOcrBackend(threads=1)
    read = fresh.recognise(render_plate("KLM4821", "hershey-duplex", 160))
    assert read.text == "KLM4821"


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        ("tesseract", {}, ConfigError, "unknown OCR backend"),
        ("rapidocr", {"model_dir": "/nonexistent/models"}, DependencyError, "pip install"),
    ],
)
def test_make_backend_errors(name: str, options: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make_backend(name, **options)


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddleocr is installed here")
def test_paddleocr_missing_says_how_to_install() -> None:
    with pytest.raises(DependencyError, match="pip install paddleocr"):
        PaddleOcrBackend(det_model_dir="/x", rec_model_dir="/y")


@pytest.mark.parametrize("font_index", [0, 5])
def test_recognise_clean_plate(backend: RapidOcrBackend, font_index: int) -> None:
    fonts = available_fonts()
    font = fonts[font_index % len(fonts)]
    read = backend.recognise(render_plate("XRT-5093", font, 180))
    assert read.text == "XRT5093"  # the separator is outside the plate alphabet
    assert read.confidence > 0.8
    assert len(read.char_confidences) == len(read.candidates) == len(read.text)
    for ch, cands in zip(read.text, read.candidates, strict=True):
        assert cands[0][0] == ch
        assert all(c in PLATE_ALPHABET for c, _ in cands)
        probs = [p for _, p in cands]
        assert probs == sorted(probs, reverse=True)


def test_unrestricted_alphabet_keeps_separator(backend: RapidOcrBackend) -> None:
    read = backend.recognise(render_plate("XRT-5093", "hershey-duplex", 180), alphabet=None)
    assert read.text.replace(" ", "") == "XRT-5093"


def test_detect_finds_plate_in_vehicle_crop(backend: RapidOcrBackend) -> None:
    crop = render_vehicle((40, 40, 160), np.random.default_rng(3), size=(300, 240), plate_text="HGV2071")
    boxes = backend.detect(crop.image)
    assert crop.plate_xyxy is not None
    px1, py1, px2, py2 = crop.plate_xyxy
    best_iou = 0.0
    for box in boxes:
        x1, y1 = box.quad_px.min(axis=0)
        x2, y2 = box.quad_px.max(axis=0)
        inter = max(0.0, min(x2, px2) - max(x1, px1)) * max(0.0, min(y2, py2) - max(y1, py1))
        union = (x2 - x1) * (y2 - y1) + (px2 - px1) * (py2 - py1) - inter
        best_iou = max(best_iou, inter / union)
    assert best_iou > 0.5


@pytest.mark.parametrize("bad", [np.zeros((0, 0, 3), np.uint8), np.zeros(5), "image.png"])
def test_recognise_rejects_non_images(backend: RapidOcrBackend, bad: object) -> None:
    with pytest.raises(InputError, match="non-empty"):
        backend.recognise(bad)  # type: ignore[arg-type]
