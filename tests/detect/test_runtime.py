"""ONNX export and the runtimes: ONNX Runtime agrees with PyTorch on the raw heads and on
the final detections; model JSON; `load_detector` resolution and its errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trafficprn.detect.runtime import OnnxDetector, TorchDetector, load_detector
from trafficprn.errors import ModelError
from trafficprn.resources import data_dir


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a - b) / np.maximum(1.0, np.abs(b))).max())


@pytest.mark.parametrize("size", [416, 320])
@pytest.mark.parametrize("name", ["yolov3-tiny-prn", "yolov3-tiny"])
def test_onnx_runtime_matches_torch(
    name: str, size: int, exported_model: Callable[[str, int], Path], rng: np.random.Generator
) -> None:
    onnx_path = exported_model(name, size)
    ort_det = load_detector(onnx_path, threads=1)
    torch_det = load_detector(onnx_path, runtime="torch", threads=1)
    assert isinstance(ort_det, OnnxDetector) and isinstance(torch_det, TorchDetector)
    assert ort_det.input_size == torch_det.input_size == (size, size)
    batch = rng.random((3, 3, size, size), dtype=np.float32)  # batch is dynamic
    ort_heads, torch_heads = ort_det.infer(batch), torch_det.infer(batch)
    assert [h.shape for h in ort_heads] == [(3, 255, size // 32, size // 32), (3, 255, size // 16, size // 16)]
    for a, b in zip(ort_heads, torch_heads, strict=True):
        assert np.abs(b).max() > 0.3
        assert rel_err(a, b) <= 1e-4


def test_detections_agree_across_runtimes(exported_model: Callable[[str, int], Path], rng: np.random.Generator) -> None:
    onnx_path = exported_model("yolov3-tiny-prn", 416)
    image = (rng.random((360, 640, 3)) * 255).astype(np.uint8)
    # Random weights fire everywhere with near-equal scores, where greedy NMS may break
    # ties differently; nms_iou=1 keeps every candidate, so both lists must be equal.
    a = load_detector(onnx_path, confidence=0.6, nms_iou=1.0).detect(image)
    b = load_detector(onnx_path, runtime="torch", confidence=0.6, nms_iou=1.0).detect(image)
    assert 0 < len(a) == len(b) < 300
    a, b = (d[np.lexsort((d.xyxy[:, 1], d.xyxy[:, 0]))] for d in (a, b))
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    assert a.class_id.tolist() == b.class_id.tolist()
    assert a.xyxy[:, [0, 2]].max() <= 640 and a.xyxy[:, [1, 3]].max() <= 360


def test_model_json(exported_model: Callable[[str, int], Path]) -> None:
    meta = json.loads(exported_model("yolov3-tiny-prn", 320).with_suffix(".json").read_text())
    assert meta["format"] == "trafficprn-model" and meta["input_size"] == [320, 320]
    assert len(meta["classes"]) == 80 and meta["classes"][2] == "car"
    assert [o["stride"] for o in meta["outputs"]] == [32, 16]
    assert meta["outputs"][1]["anchors_px"] == [[23, 27], [37, 58], [81, 82]]
    assert meta["source_cfg"]["name"] == "yolov3-tiny-prn.cfg" and "[shortcut]" in meta["source_cfg"]["text"]
    assert meta["letterbox"]["fill"] == 0.5 and meta["provenance"]["test"] is True


def test_session_threads_and_no_spinning(exported_model: Callable[[str, int], Path]) -> None:
    det = OnnxDetector(exported_model("yolov3-tiny-prn", 416), threads=2)
    options = det.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_bundled_model_resolution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exported_model: Callable[[str, int], Path]
) -> None:
    import trafficprn.detect.runtime as runtime

    assert runtime.bundled_model_path() == data_dir() / "models" / "trafficprn-prn.onnx"
    missing = tmp_path / "models" / "trafficprn-prn.onnx"
    monkeypatch.setattr(runtime, "bundled_model_path", lambda: missing)
    with pytest.raises(ModelError, match="bundled model not found"):
        load_detector("bundled")
    missing.parent.mkdir()
    source = exported_model("yolov3-tiny-prn", 320)
    shutil.copy(source, missing)
    shutil.copy(source.with_suffix(".json"), missing.with_suffix(".json"))
    assert load_detector("bundled").input_size == (320, 320)


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (lambda d: d / "none.onnx", {}, "model not found"),
        (lambda d: d / "m.onnx", {}, "model JSON not found"),
        (lambda d: d / "x.cfg", {}, "needs an .onnx model"),
        (lambda d: d / "m.onnx", {"runtime": "tensorrt"}, "runtime must be one of"),
        (lambda d: d / "ok.onnx", {"input_size": 416}, "fixed at 320x320 at export, got 416x416"),
    ],
)
def test_load_detector_errors(
    make: Callable[[Path], Path], kwargs: dict[str, str], message: str, tmp_path: Path,
    exported_model: Callable[[str, int], Path],
) -> None:  # fmt: skip
    source = exported_model("yolov3-tiny-prn", 320)
    shutil.copy(source, tmp_path / "ok.onnx")
    shutil.copy(source.with_suffix(".json"), tmp_path / "ok.json")
    (tmp_path / "m.onnx").write_bytes(b"not really")
    (tmp_path / "x.cfg").write_text("[net]\n")
    with pytest.raises(ModelError, match=message):
        load_detector(make(tmp_path), **kwargs)  # type: ignore[arg-type]


def test_corrupt_onnx(tmp_path: Path, exported_model: Callable[[str, int], Path]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    shutil.copy(exported_model("yolov3-tiny-prn", 320).with_suffix(".json"), bad.with_suffix(".json"))
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        load_detector(bad)


def test_onnx_path_does_not_import_torch(exported_model: Callable[[str, int], Path]) -> None:
    """The runtime path (worker, API, demo) must work without torch installed."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from trafficprn.detect.runtime import load_detector\n"
        f"det = load_detector({str(exported_model('yolov3-tiny-prn', 320))!r})\n"
        "det.detect(np.zeros((120, 160, 3), np.uint8))\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"
