"""`trafficprn model info|export` and `trafficprn detect` through the real CLI entry
point, including the bad inputs that must end in one line naming the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.cli import main
from trafficprn.resources import data_dir

PRN_CFG = data_dir() / "cfg" / "yolov3-tiny-prn.cfg"


def write_video(path: Path, frames: int, rng: np.random.Generator) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (160, 120))
    for _ in range(frames):
        writer.write((rng.random((120, 160, 3)) * 255).astype(np.uint8))
    writer.release()
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("cfg", "size", "expected"),
    [
        ("yolov3-tiny-prn", None, ["416x416", "4,939,758", "4,935,182", "3.46"]),
        ("yolov3-tiny", None, ["8,858,734", "5.56"]),
        ("yolov3-tiny-prn", 320, ["320x320", "2.05"]),
    ],
)
def test_model_info(cfg: str, size: int | None, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["model", "info", str(data_dir() / "cfg" / f"{cfg}.cfg")] + (["--size", str(size)] if size else [])
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    for text in expected:
        assert text in out


def test_model_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["model", "info", str(PRN_CFG), "--json"], capsys)
    info = json.loads(out)
    assert code == 0
    assert (info["weights_values"], info["trainable_params"], info["bflops"]) == (4_939_758, 4_935_182, 3.4609)


def test_model_export_round_trip(
    tmp_path: Path, random_weights: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    weights = random_weights("yolov3-tiny-prn")
    names = tmp_path / "my.names"
    names.write_text("\n".join(f"thing{i}" for i in range(80)) + "\n")
    argv = ["model", "export", str(PRN_CFG), "--weights", str(weights), "--size", "320", "--names", str(names)]
    argv += ["--onnx", str(tmp_path / "m.onnx"), "--weights-out", str(tmp_path / "again.weights")]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "m.json" in out
    assert (tmp_path / "again.weights").read_bytes() == weights.read_bytes()
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["input_size"] == [320, 320] and meta["classes"][5] == "thing5"
    assert meta["provenance"]["weights"] == weights.name


def test_detect_image(
    tmp_path: Path, exported_model: Callable[[str, int], Path], random_weights: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str], rng: np.random.Generator,
) -> None:  # fmt: skip
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), (rng.random((240, 320, 3)) * 255).astype(np.uint8))
    out_png = tmp_path / "annotated.png"
    onnx_path = exported_model("yolov3-tiny-prn", 416)
    argv = ["detect", str(image), "--model", str(onnx_path), "--json", "--confidence", "0.55", "--out", str(out_png)]
    code, out, _ = run_cli(argv, capsys)
    record = json.loads(out)
    assert code == 0 and (record["width"], record["height"]) == (320, 240)
    assert len(record["detections"]) > 0
    assert set(record["detections"][0]) == {"class", "class_id", "confidence", "xyxy"}
    annotated = cv2.imread(str(out_png))
    assert annotated is not None and annotated.shape == (240, 320, 3)
    # the PyTorch runtime from cfg + weights gives the same boxes
    argv = ["detect", str(image), "--cfg", str(PRN_CFG), "--weights", str(random_weights("yolov3-tiny-prn"))]
    code, out_torch, _ = run_cli(argv + ["--json", "--confidence", "0.55"], capsys)
    assert code == 0
    assert len(json.loads(out_torch)["detections"]) == len(record["detections"])


def test_detect_video(
    tmp_path: Path, exported_model: Callable[[str, int], Path], capsys: pytest.CaptureFixture[str],
    rng: np.random.Generator,
) -> None:  # fmt: skip
    video = write_video(tmp_path / "clip.avi", 6, rng)
    out_mp4 = tmp_path / "annotated.mp4"
    argv = ["detect", str(video), "--model", str(exported_model("yolov3-tiny-prn", 320)), "--json"]
    code, out, _ = run_cli(argv + ["--out", str(out_mp4)], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["frame"] for r in lines] == list(range(6))
    cap = cv2.VideoCapture(str(out_mp4))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()


def _truncated_weights(tmp: Path, weights: Path) -> Path:
    bad = tmp / "short.weights"
    bad.write_bytes(weights.read_bytes()[:-1000])
    return bad


def _typo_cfg(tmp: Path) -> Path:
    bad = tmp / "typo.cfg"
    bad.write_text(PRN_CFG.read_text().replace("activation=leaky", "activaton=leaky", 1))
    return bad


def _broken_image(tmp: Path) -> Path:
    bad = tmp / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    return bad


def _short_video(tmp: Path) -> Path:
    full = write_video(tmp / "full.avi", 20, np.random.default_rng(3))
    bad = tmp / "short.avi"
    bad.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return bad


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("truncated-weights-export", ["short.weights", "truncated", "expected 19759052 bytes", "got 19758052"]),
        ("truncated-weights-detect", ["short.weights", "truncated"]),
        ("cfg-typo", ["typo.cfg:31", "unknown key 'activaton'"]),
        ("cfg-typo-detect", ["typo.cfg:31", "unknown key 'activaton'"]),
        ("unreadable-image", ["broken.png", "cannot read image"]),
        ("missing-image", ["nowhere.png", "file not found"]),
        ("video-ends-early", ["short.avi", "ended early", "of 20 frames"]),
        ("missing-model", ["absent.onnx", "not found"]),
    ],
)
def test_bad_input_is_one_line(
    case: str, expected: list[str], tmp_path: Path, exported_model: Callable[[str, int], Path],
    random_weights: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    weights = random_weights("yolov3-tiny-prn")
    image = tmp_path / "ok.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    onnx_path = str(exported_model("yolov3-tiny-prn", 320))
    argv = {
        "truncated-weights-export": lambda: ["model", "export", str(PRN_CFG), "--weights",
                                             str(_truncated_weights(tmp_path, weights)), "--onnx", str(tmp_path / "x.onnx")],
        "truncated-weights-detect": lambda: ["detect", str(image), "--cfg", str(PRN_CFG), "--weights",
                                             str(_truncated_weights(tmp_path, weights))],
        "cfg-typo": lambda: ["model", "info", str(_typo_cfg(tmp_path))],
        "cfg-typo-detect": lambda: ["detect", str(image), "--cfg", str(_typo_cfg(tmp_path)), "--weights", str(weights)],
        "unreadable-image": lambda: ["detect", str(_broken_image(tmp_path)), "--model", onnx_path],
        "missing-image": lambda: ["detect", str(tmp_path / "nowhere.png"), "--model", onnx_path],
        "video-ends-early": lambda: ["detect", str(_short_video(tmp_path)), "--model", onnx_path, "--json"],
        "missing-model": lambda: ["detect", str(image), "--model", str(tmp_path / "absent.onnx")],
    }[case]()  # fmt: skip
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trafficprn: error: ")
    for text in expected:
        assert text in lines[0]
    if case == "video-ends-early":
        assert len(out.splitlines()) == 10  # the frames that could be decoded were reported


def test_model_quantize(
    tmp_path: Path, exported_model: Callable[[str, int], Path], capsys: pytest.CaptureFixture[str],
    rng: np.random.Generator,
) -> None:  # fmt: skip
    from trafficprn.detect.runtime import load_detector

    images = tmp_path / "calib"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), (rng.random((240, 320, 3)) * 255).astype(np.uint8))
    source = exported_model("yolov3-tiny-prn", 320)
    out = tmp_path / "int8.onnx"
    code, text, _ = run_cli(["model", "quantize", str(source), "--images", str(images), "--out", str(out)], capsys)
    assert code == 0 and "calibrated on 3 images" in text
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["quantization"]["calibration_images"] == 3 and meta["input_size"] == [320, 320]
    x = rng.random((1, 3, 320, 320), dtype=np.float32)
    fp32, int8 = load_detector(source).infer(x), load_detector(out).infer(x)
    for a, b in zip(fp32, int8, strict=True):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
        assert np.abs(a - b).max() < 0.1 * np.abs(a).max()
