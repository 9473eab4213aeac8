"""Source options of the data build that undo what an export did to its images:
`resize_aspect` (Roboflow's "Resize: Stretch" to a square) and `one_per_group` (an
export's augmented copies of one photograph). Built from a tiny bare git mirror."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from trafficprn.datasets.build import build
from trafficprn.datasets.formats import read_yolo_folder
from trafficprn.errors import ConfigError

NAMES = ["car", "bus", "truck", "motorcycle", "bicycle"]


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env={**env, "PATH": "/usr/bin:/bin"}
    )
    return done.stdout.strip()


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, str]:
    """640 x 640 frames (a 16:9 scene squashed square) with one car each; photo `a` has three
    augmented copies, `b` one."""
    work = tmp_path / "work"
    (work / "set/train/images").mkdir(parents=True)
    (work / "set/train/labels").mkdir(parents=True)
    for name in ("a_jpg.rf.01", "a_jpg.rf.02", "a_jpg.rf.03", "b_jpg.rf.01"):
        cv2.imwrite(str(work / "set/train/images" / f"{name}.jpg"), np.full((640, 640, 3), 90, dtype=np.uint8))
        # a car 10 % wide and 20 % high, centred
        (work / "set/train/labels" / f"{name}.txt").write_text("0 0.5 0.5 0.1 0.2\n")
    _git(work.parent, "init", "-q", str(work))
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "data")
    commit = _git(work, "rev-parse", "HEAD")
    root = tmp_path / "mirrors"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(root / "someone+stretched" / "repo"))
    return root, commit


def _manifest(tmp_path: Path, commit: str, **options: object) -> Path:
    source = {
        "id": "stretched",
        "repo": "someone/stretched",
        "commit": commit,
        "path": "set",
        "format": "yolo",
        "names": ["car"],
        "class_map": {"car": "car"},
        "split": "train",
        "val_percent": 0,
        "camera": "highway-cctv",
        "licence": "CC BY 4.0",
        "machine_labels": "none",
        "origin": "a test set",
    } | options
    doc = {
        "version": 1,
        "classes": NAMES,
        "max_side_px": {"train": 832, "negatives": 832, "eval": 1280, "frames": 1280},
        "jpeg_quality": {"train": 90, "negatives": 90, "eval": 85, "frames": 90},
        "sources": [source],
    }
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_resize_aspect_restores_the_frame_shape_and_scales_the_boxes(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    [report] = build(root, tmp_path / "out", "train", _manifest(tmp_path, commit, resize_aspect=16 / 9))
    assert report.images == 4 and report.boxes == {"car": 4}
    items = read_yolo_folder(tmp_path / "out/train/stretched", NAMES)
    assert len(items) == 4
    for item in items:
        # 640 high, 1138 wide, then the long side cut to 832: 832 x 468
        assert (item.width, item.height) == (832, 468)
        np.testing.assert_allclose(item.boxes_xyxy[0], [374.4, 187.2, 457.6, 280.8], atol=0.6)


def test_without_resize_aspect_the_square_export_is_kept(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    build(root, tmp_path / "out", "train", _manifest(tmp_path, commit))
    items = read_yolo_folder(tmp_path / "out/train/stretched", NAMES)
    assert {(i.width, i.height) for i in items} == {(640, 640)}


def test_one_per_group_keeps_one_copy_of_each_photograph(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    manifest = _manifest(tmp_path, commit, one_per_group=True)
    [report] = build(root, tmp_path / "out", "train", manifest)
    assert report.images == 2
    first = sorted(p.name for p in (tmp_path / "out/train/stretched/images/train").glob("*.jpg"))
    build(root, tmp_path / "again", "train", manifest)
    assert sorted(p.name for p in (tmp_path / "again/train/stretched/images/train").glob("*.jpg")) == first


def test_a_non_positive_aspect_is_a_config_error(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    with pytest.raises(ConfigError):
        build(root, tmp_path / "out", "train", _manifest(tmp_path, commit, resize_aspect=0))
