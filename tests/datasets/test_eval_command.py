"""`trafficprn model eval` end to end: the bundled model on rendered images, the same
figures whether the labels come as YOLO or as VOC."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from trafficprn.cli import main
from trafficprn.datasets.formats import read_yolo_folder
from trafficprn.sim.dataset import DatasetOptions, write_dataset

KEYS = {"images", "ap50_vehicle", "ap50", "recall", "precision", "confidence", "ap50_by_size"}


@pytest.fixture(scope="module")
def yolo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simset")
    write_dataset(out, DatasetOptions(images=6, size_px=640, seed=5, val_fraction=0.0))
    return out


def _to_voc(yolo: Path, out: Path) -> Path:
    out.mkdir()
    for im in read_yolo_folder(yolo):
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = str(im.path)
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(im.width)
        ET.SubElement(size, "height").text = str(im.height)
        for (x1, y1, x2, y2), name in zip(im.boxes_xyxy, im.class_names, strict=True):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = name
            box = ET.SubElement(obj, "bndbox")
            for key, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
                ET.SubElement(box, key).text = f"{value:.6f}"
        (out / f"{im.path.stem}.xml").write_text(ET.tostring(root, encoding="unicode"))
        (out / im.path.name).symlink_to(im.path)
    return out


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["model", "eval", *args, "--json", "--threads", "1"]) == 0
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def test_eval_json_has_the_documented_keys_and_scores_the_bundled_model(
    yolo_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _eval_json(capsys, str(yolo_set))
    assert result.keys() >= KEYS
    assert result["images"] == 6
    assert result["confidence"] == 0.25  # the pipeline's detector.confidence
    assert set(result["ap50_by_size"]) == {"<16", "16-32", "32-64", "64-128", ">=128"}  # type: ignore[arg-type]
    # the bundled model was trained on such renders: it finds most of their vehicles
    assert isinstance(result["ap50_vehicle"], float) and result["ap50_vehicle"] > 0.4
    assert isinstance(result["precision"], float) and result["precision"] > 0.5


def test_voc_labels_give_the_same_figures(
    yolo_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_yolo = _eval_json(capsys, str(yolo_set))
    from_voc = _eval_json(capsys, str(_to_voc(yolo_set, tmp_path / "voc")))
    assert from_voc["images"] == from_yolo["images"]
    assert from_voc["ap50_vehicle"] == pytest.approx(from_yolo["ap50_vehicle"], abs=1e-3)
    assert from_voc["recall"] == pytest.approx(from_yolo["recall"], abs=1e-3)


def test_pictures_are_written_and_a_missing_folder_is_a_clear_error(
    yolo_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "eval", str(yolo_set), "--pictures", str(tmp_path / "pics"), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "AP@0.5 all vehicles" in out and "recall" in out
    assert len(list((tmp_path / "pics").glob("*.jpg"))) == 6
    assert main(["model", "eval", str(tmp_path / "nothing")]) == 2
    assert "expected a folder of labelled images" in capsys.readouterr().err
