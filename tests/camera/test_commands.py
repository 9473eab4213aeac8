from __future__ import annotations

from pathlib import Path

import cv2
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
