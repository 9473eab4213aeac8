from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_calibrate_prints_residuals_and_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    args = ["calibrate", "--site", str(EXAMPLES / "site.yaml"), "--camera", "fisheye-1"]
    assert main([*args, "--image", str(EXAMPLES / "fisheye-1.jpg"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ray -> ground homography" in text and "RMS:" in text
    assert text.count(" yes") == 10  # one line per surveyed point
    rms_m = float(text.split("RMS:")[1].split(" m")[0])
    assert rms_m < 0.1
    image = cv2.imread(str(out))
    assert image.shape == (1280, 1280, 3)
    # without a frame it draws on a blank image circle
    blank = tmp_path / "blank.png"
    assert main([*args, "--out", str(blank)]) == 0
    assert cv2.imread(str(blank)).shape == (1280, 1280, 3)


def test_dewarp_writes_views_and_contact_sheet(tmp_path: Path) -> None:
    site, frame = str(EXAMPLES / "site.yaml"), str(EXAMPLES / "fisheye-1.jpg")
    assert main(["dewarp", frame, "--site", site, "--camera", "fisheye-1", "--out-dir", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["E.png", "N.png", "S.png", "W.png", "contact_sheet.png", "panorama.png"]
    assert cv2.imread(str(tmp_path / "N.png")).shape == (480, 640, 3)
    assert cv2.imread(str(tmp_path / "panorama.png")).shape == (480, 1920, 3)
    one = tmp_path / "one"
    assert main(["dewarp", frame, "--site", site, "--camera", "fisheye-1", "--view", "E", "--out-dir", str(one)]) == 0
    assert sorted(p.name for p in one.glob("*.png")) == ["E.png", "contact_sheet.png"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calibrate", "--camera", "nope"], "no camera named 'nope'"),
        (["dewarp", "missing.png", "--camera", "fisheye-1", "--out-dir", "x"], "cannot read image"),
        (["dewarp", "FRAME", "--camera", "fisheye-1", "--view", "Q", "--out-dir", "x"], "has no view 'Q'"),
    ],
)
def test_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    argv = [str(EXAMPLES / "fisheye-1.jpg") if a == "FRAME" else a for a in argv]
    argv = [str(tmp_path / a) if a in ("x", "missing.png") else a for a in argv]
    assert main([*argv, "--site", str(EXAMPLES / "site.yaml")]) == 2
    assert message in capsys.readouterr().err


def test_dewarp_pinhole_gives_an_undistorted_view(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load((EXAMPLES / "site.yaml").read_text(encoding="utf-8"))
    data["cameras"][0]["lens"] = {
        "model": "pinhole",
        "image_size": [1280, 720],
        "fx": 900,
        "fy": 900,
        "cx": 640,
        "cy": 360,
        "dist": [-0.25, 0.05, 0, 0, 0],
    }
    data["cameras"][0]["calibration"] = {"pose": {"height_m": 6, "tilt_deg": 30}}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    frame = tmp_path / "frame.png"
    noise = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    cv2.imwrite(str(frame), cv2.GaussianBlur(noise, (0, 0), 2))
    args = ["--site", str(tmp_path / "site.yaml"), "--camera", "fisheye-1"]
    assert main(["dewarp", str(frame), *args, "--out-dir", str(tmp_path / "out")]) == 0
    view = cv2.imread(str(tmp_path / "out" / "undistorted.png"))
    assert view.shape == (720, 1280, 3)
    assert (view.sum(axis=2) == 0).mean() < 0.2  # the view covers the frame, not a sliver of it
    assert main(["calibrate", *args, "--out", str(tmp_path / "grid.png")]) == 0
