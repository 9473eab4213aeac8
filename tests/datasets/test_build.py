"""`trafficprn data build` rebuilds YOLO folders from a manifest and bare git mirrors:
classes mapped, boxes scaled with the resize, the same split on every build, and a clear
error (naming what to fetch) when a mirror is missing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from trafficprn.cli import main
from trafficprn.datasets.build import build, load_manifest
from trafficprn.datasets.formats import read_yolo_folder
from trafficprn.errors import ConfigError, InputError

REPO = "someone/traffic-set"


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env={**env, "PATH": "/usr/bin:/bin"}
    )
    return done.stdout.strip()


def _image(path: Path, w: int, h: int, value: int = 80) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, dtype=np.uint8))


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, str]:
    """A bare mirror of a small repository with a YOLO, a VOC, a COCO and a negatives folder."""
    work = tmp_path / "work"
    # YOLO (Roboflow layout): 1600 x 800 frames, names bus, car, person
    for i in range(20):
        _image(work / "yolo/train/images" / f"f{i:02d}_jpg.rf.{i:04x}.jpg", 1600, 800)
        (work / "yolo/train/labels").mkdir(parents=True, exist_ok=True)
        # a car 160 x 80 px centred at (400, 200), a person, a bus
        label = "1 0.25 0.25 0.1 0.1\n2 0.5 0.5 0.05 0.2\n0 0.75 0.5 0.2 0.3\n"
        (work / "yolo/train/labels" / f"f{i:02d}_jpg.rf.{i:04x}.txt").write_text(label)
    _image(work / "yolo/train/images/unlabelled.jpg", 640, 480)
    # VOC: one image with a van and a lorry
    _image(work / "voc/JPEGImages/a.jpg", 300, 200)
    (work / "voc/Annotations").mkdir(parents=True)
    (work / "voc/Annotations/a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>300</width><height>200</height></size>"
        "<object><name>van</name><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>60</xmax><ymax>70</ymax></bndbox></object>"
        "<object><name>lorry</name><bndbox><xmin>101</xmin><ymin>51</ymin><xmax>200</xmax><ymax>150</ymax></bndbox></object>"
        "</annotation>"
    )
    # COCO: two images, one empty
    _image(work / "coco/valid/x.jpg", 400, 300)
    _image(work / "coco/valid/y.jpg", 400, 300)
    doc = {
        "images": [
            {"id": 1, "file_name": "x.jpg", "width": 400, "height": 300},
            {"id": 2, "file_name": "y.jpg", "width": 400, "height": 300},
        ],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 100, 50], "iscrowd": 0}],
        "categories": [{"id": 7, "name": "motorbike"}],
    }
    (work / "coco/valid/_annotations.coco.json").write_text(json.dumps(doc))
    for i in range(3):
        _image(work / "neg" / f"wall{i}.jpg", 500, 400, 30 + i)
    _git(work.parent, "init", "-q", str(work))
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "data")
    commit = _git(work, "rev-parse", "HEAD")
    root = tmp_path / "mirrors"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(root / "someone+traffic-set" / "repo"))
    return root, commit


def _source(commit: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "repo": REPO,
        "commit": commit,
        "camera": "street-cctv",
        "licence": "CC BY 4.0",
        "machine_labels": "none",
        "origin": "a test set",
    }
    return base | fields


def _manifest(tmp_path: Path, commit: str, sources: list[dict[str, object]]) -> Path:
    doc = {
        "version": 1,
        "classes": ["car", "bus", "truck", "motorcycle", "bicycle"],
        "max_side_px": {"train": 832, "negatives": 832, "eval": 1280, "frames": 1280},
        "jpeg_quality": {"train": 90, "negatives": 90, "eval": 85, "frames": 90},
        "sources": sources,
    }
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _yolo_source(commit: str, **extra: object) -> dict[str, object]:
    return _source(
        commit,
        id="yolo-set",
        path="yolo",
        format="yolo",
        names=["bus", "car", "person"],
        class_map={"bus": "bus", "car": "car"},
        drop=["person"],
        split="train",
        val_percent=20,
        **extra,
    )


def test_yolo_source_is_resized_mapped_and_split_reproducibly(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    manifest = _manifest(tmp_path, commit, [_yolo_source(commit)])
    out = tmp_path / "out"
    [report] = build(root, out, "train", manifest)
    assert report.images == 20 and report.skipped["no label file"] == 1
    assert report.boxes == {"car": 20, "bus": 20} and report.dropped_boxes["person"] == 20
    items = read_yolo_folder(out / "train" / "yolo-set", ["car", "bus", "truck", "motorcycle", "bicycle"])
    assert len(items) == 20
    for item in items:
        assert (item.width, item.height) == (832, 416)  # long side 1600 -> 832
        car = item.boxes_xyxy[list(item.class_names).index("car")]
        np.testing.assert_allclose(car, np.array([320, 160, 480, 240]) * 832 / 1600, atol=0.01)
    val = sorted(p.name for p in (out / "train/yolo-set/images/val").glob("*.jpg"))
    assert 0 < len(val) < 20
    data = yaml.safe_load((out / "train/data.yaml").read_text())
    assert data["train"] == ["yolo-set/images/train"] and data["val"] == ["yolo-set/images/val"]
    assert data["names"] == ["car", "bus", "truck", "motorcycle", "bicycle"]
    # a rebuild writes the same images to the same split
    build(root, tmp_path / "again", "train", manifest)
    assert sorted(p.name for p in (tmp_path / "again/train/yolo-set/images/val").glob("*.jpg")) == val


def test_voc_coco_eval_and_negatives(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    sources = [
        _source(
            commit,
            id="voc-set",
            path="voc",
            format="voc",
            class_map={"van": "car", "lorry": "truck"},
            split="eval",
            eval_set="street-cctv",
        ),
        _source(
            commit,
            id="coco-set",
            path="coco",
            format="coco",
            class_map={"motorbike": "motorcycle"},
            split="eval",
            eval_set="street-cctv",
        ),
        _source(commit, id="walls", path="neg", format="images", split="negatives", camera="background"),
    ]
    out = tmp_path / "out"
    reports = {r.id: r for r in build(root, out, "all", _manifest(tmp_path, commit, sources))}
    assert reports["walls"].images == 3 and sum(reports["walls"].boxes.values()) == 0
    items = {i.path.name: i for i in read_yolo_folder(out / "eval" / "street-cctv")}
    assert len(items) == 3
    voc = next(i for i in items.values() if "voc-set" in i.path.name)
    assert voc.class_names == ("car", "truck")
    np.testing.assert_allclose(voc.boxes_xyxy, [[10, 20, 60, 70], [100, 50, 200, 150]], atol=0.01)
    coco = [i for i in items.values() if "coco-set" in i.path.name]
    assert sorted(len(i.boxes_xyxy) for i in coco) == [0, 1]
    negatives = list((out / "train/walls/labels/train").glob("*.txt"))
    assert len(negatives) == 3 and all(p.read_text() == "" for p in negatives)
    assert "walls/images/train" in yaml.safe_load((out / "train/data.yaml").read_text())["train"]


def test_files_list_and_max_images_choose_fixed_subsets(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/walls.txt").write_text("# chosen by hand\nwall0.jpg\nwall2.jpg\n")
    sources = [
        _source(commit, id="walls", path="neg", format="images", split="negatives", files_list="lists/walls.txt"),
        _yolo_source(commit, max_images=7),
    ]
    manifest = _manifest(tmp_path, commit, sources)
    reports = {r.id: r for r in build(root, tmp_path / "a", "train", manifest)}
    assert reports["walls"].images == 2 and reports["yolo-set"].images == 7
    first = sorted(p.name for p in (tmp_path / "a/train/yolo-set").rglob("*.jpg"))
    build(root, tmp_path / "b", "train", manifest)
    assert sorted(p.name for p in (tmp_path / "b/train/yolo-set").rglob("*.jpg")) == first


def test_missing_mirror_names_the_repository_to_fetch(mirror: tuple[Path, str], tmp_path: Path) -> None:
    _, commit = mirror
    manifest = _manifest(tmp_path, commit, [_yolo_source(commit)])
    with pytest.raises(InputError, match=r"no mirror of someone/traffic-set .*fetch github:someone/traffic-set"):
        build(tmp_path / "empty", tmp_path / "out", "train", manifest)
    # the command says the same on one line and exits 2
    code = main(
        [
            "data",
            "build",
            "--mirror",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "out"),
            "--manifest",
            str(manifest),
        ]
    )
    assert code == 2


def test_unknown_commit_and_unmapped_class_are_errors(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    with pytest.raises(InputError, match="lacks commit"):
        build(root, tmp_path / "out", "train", _manifest(tmp_path, commit, [_yolo_source("0" * 40)]))
    unmapped = _yolo_source(commit) | {"drop": []}
    with pytest.raises(ConfigError, match="'person' is neither in class_map nor in drop"):
        build(root, tmp_path / "out", "train", _manifest(tmp_path, commit, [unmapped]))


def test_command_builds_and_reports(
    mirror: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, commit = mirror
    manifest = _manifest(tmp_path, commit, [_yolo_source(commit)])
    args = [
        "data",
        "build",
        "--mirror",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--manifest",
        str(manifest),
        "--json",
    ]
    assert main(args) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == "yolo-set" and row["images"] == 20 and row["boxes"] == {"car": 20, "bus": 20}


def test_packaged_manifest_is_valid_and_keeps_eval_sources_out_of_training() -> None:
    manifest = load_manifest()
    train_origins = {s.origin.split(",")[0] for s in manifest.sources if s.split in ("train", "negatives")}
    train_repos = {s.repo for s in manifest.sources if s.split in ("train", "negatives")}
    for s in manifest.sources:
        if s.split == "eval":
            assert s.repo not in train_repos, s.id
            assert s.origin.split(",")[0] not in train_origins, s.id
    assert {s.eval_set for s in manifest.sources if s.split == "eval"} <= {
        "street-cctv",
        "highway",
        "street-photo",
        "backgrounds",
    }
