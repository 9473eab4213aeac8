"""Bad footage is refused with exit status 2 and a message saying what is missing: one test
per case, on small generated videos (real files, really decoded; the detector runs where
the case needs it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from trafficprn.cli import main
from trafficprn.errors import SetupError
from trafficprn.setup.footage import check_background, is_moving, probe_video
from trafficprn.setup.suggest import SuggestRequest, suggest_site
from trafficprn.setup.tracks import ObservedTrack

W, H = 320, 240


def _site(path: Path) -> Path:
    site = {
        "site": {"name": "t"},
        "cameras": [{
            "name": "cam", "source": "video.mp4", "process_fps": 2,
            "lens": {"model": "pinhole", "image_size": [W, H], "fx": 300.0, "fy": 300.0, "cx": W / 2, "cy": H / 2},
            "calibration": {"pose": {"height_m": 7.0, "tilt_deg": 30.0}},
        }],
    }
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    return path


def _background(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """A road-like picture with texture for phase correlation to lock on."""
    base = rng.uniform(60, 200, (h // 4, w // 4)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _write(path: Path, frames: int, fps: float, make: Callable[[int], np.ndarray]) -> Path:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert out.isOpened()
    for k in range(frames):
        out.write(make(k))
    out.release()
    return path


def _noisy(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(bg.astype(np.int16) + rng.integers(-6, 7, bg.shape), 0, 255).astype(np.uint8)


def _exit_message(capsys: pytest.CaptureFixture[str], site: Path, video: Path, *extra: str) -> str:
    code = main(["setup", "suggest", str(video), "--site", str(site), "--camera", "cam", "--out",
                 str(site.parent / "out.yaml"), "--no-progress", *extra])
    assert code == 2
    assert not (site.parent / "out.yaml").exists()
    return capsys.readouterr().err


def test_shorter_than_five_minutes_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    bg = _background(rng)
    video = _write(tmp_path / "short.mp4", 4 * 60 * 2, 2.0, lambda k: _noisy(bg, rng))  # 4 min at 2 fps
    err = _exit_message(capsys, _site(tmp_path / "site.yaml"), video)
    assert "4.0 minutes of footage" in err and "at least 5 minutes" in err


def test_image_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "junction.png"
    cv2.imwrite(str(image), _background(np.random.default_rng(1)))
    err = _exit_message(capsys, _site(tmp_path / "site.yaml"), image)
    assert "still image" in err


def test_frames_that_never_change_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bg = _background(np.random.default_rng(2))
    video = _write(tmp_path / "still.mp4", 5 * 60 + 5, 1.0, lambda k: bg)  # a still picture as 5 min of video
    err = _exit_message(capsys, _site(tmp_path / "site.yaml"), video)
    assert "never changes" in err and "still image" in err


@pytest.mark.parametrize("motion", ["panning", "re-pointed once"])
def test_camera_that_moves_exits_2(motion: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    wide = _background(rng, W + 400, H + 100)
    frames = 5 * 60 * 2 + 10

    def moving(k: int) -> np.ndarray:
        if motion == "panning":  # the camera sweeps sideways and back, 2 px a frame
            x = (2 * k) % 800
            x = x if x <= 400 else 800 - x
            y = int(50 + 40 * np.sin(k / 30))
        else:  # someone turned it by 30 px a third of the way in
            x, y = (100, 50) if k < frames // 3 else (130, 50)
        return _noisy(wide[y:y + H, x:x + W], rng)

    video = _write(tmp_path / "moving.mp4", frames, 2.0, moving)
    err = _exit_message(capsys, _site(tmp_path / "site.yaml"), video)
    assert "camera moves" in err and "fixed camera" in err


def test_no_moving_traffic_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty road (sensor noise, nothing drives) through the real bundled detector; one
    minute of it, with the documented --min-minutes testing knob."""
    rng = np.random.default_rng(4)
    bg = _background(rng)
    video = _write(tmp_path / "empty.mp4", 60 * 2, 2.0, lambda k: _noisy(bg, rng))
    err = _exit_message(capsys, _site(tmp_path / "site.yaml"), video, "--min-minutes", "1")
    assert "moving vehicle tracks found" in err and "at least 10 vehicles" in err


def test_fixed_camera_with_traffic_passes_the_background_check(tmp_path: Path) -> None:
    """Traffic (blobs moving over a fixed background) is neither a still picture nor a moving camera."""
    rng = np.random.default_rng(5)
    bg = _background(rng)

    def traffic(k: int) -> np.ndarray:
        img = _noisy(bg, rng)
        for lane, speed in ((60, 7), (150, -5)):
            x = (speed * k) % (W + 60) - 30
            cv2.rectangle(img, (x, lane), (x + 30, lane + 16), (20, 20, 200), -1)
        return img

    video = probe_video(_write(tmp_path / "traffic.mp4", 300, 2.0, traffic))
    from trafficprn.setup.footage import background_samples

    check_background(video, background_samples(video))  # raises on failure


def test_suggest_refuses_video_of_the_wrong_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    bg = _background(rng)
    video = _write(tmp_path / "v.mp4", 5 * 60 * 2 + 4, 2.0, lambda k: _noisy(bg, rng))
    site = _site(tmp_path / "site.yaml")
    data = yaml.safe_load(site.read_text())
    data["cameras"][0]["lens"]["image_size"] = [640, 480]
    site.write_text(yaml.safe_dump(data))
    with pytest.raises(SetupError, match="frames are 320x240 px, the camera's lens says 640x480"):
        suggest_site(SuggestRequest(site, "cam", video, tmp_path / "out.yaml"))


@pytest.mark.parametrize(
    ("centres", "seconds", "moving"),
    [
        ([(10, 10), (60, 10)], 2.0, True),  # 50 px in 2 s
        ([(10, 10), (20, 10)], 2.0, False),  # 10 px: a jittering parked car
        ([(10, 10), (90, 10)], 0.5, False),  # too brief to be a vehicle
    ],
)
def test_is_moving(centres: list[tuple[float, float]], seconds: float, moving: bool) -> None:
    c = np.array(centres, dtype=np.float64)
    boxes = np.column_stack([c - 5, c + 5])
    assert is_moving(ObservedTrack(1, "car", np.array([0.0, seconds]), boxes)) is moving
