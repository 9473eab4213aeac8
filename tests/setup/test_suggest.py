"""The lenient reading of the site file that `setup suggest` starts from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trafficprn.config import EquidistantLens
from trafficprn.errors import ConfigError
from trafficprn.setup.suggest import read_site_leniently


def _write(tmp_path: Path, camera: dict[str, object]) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site": {"name": "t", "driving_side": "left"},
                                    "cameras": [{"name": "other", "source": "x.mp4"}, camera]}))
    return path


def test_a_pole_camera_may_lack_lens_and_calibration(tmp_path: Path) -> None:
    raw = read_site_leniently(_write(tmp_path, {"name": "pole", "source": "v.mp4", "process_fps": 12}), "pole")
    assert raw.lens is None and raw.calibration is None
    assert raw.index == 1 and raw.process_fps == 12 and raw.driving_side == "left"
    assert raw.queue.stopped_kmh == 5.0 and raw.detector.model == "bundled"


def test_a_fisheye_with_a_pose_is_read_as_given(tmp_path: Path) -> None:
    lens = {"model": "equidistant", "image_size": [1280, 1280], "center_px": [640, 640], "radius_px": 630,
            "fov_deg": 185}
    raw = read_site_leniently(_write(tmp_path, {"name": "fe", "source": "v.mp4", "lens": lens,
                                                "calibration": {"pose": {"height_m": 10, "tilt_deg": 90}},
                                                "legs": [{"name": "old"}]}), "fe")
    assert isinstance(raw.lens, EquidistantLens)
    assert raw.calibration is not None and raw.calibration.pose is not None
    assert raw.calibration.pose.height_m == 10


@pytest.mark.parametrize(
    ("camera", "name", "message"),
    [
        ({"name": "c", "source": "v", "calibration": {"pose": {"height_m": 7, "tilt_deg": 30}}}, "c",
         "cameras[1].lens: a camera with a calibration needs its lens"),
        ({"name": "c", "source": "v", "calibration": {"points": []}}, "c", "cameras[1].calibration"),
        ({"name": "c", "source": "v"}, "nope", "no camera named 'nope'"),
    ],
)
def test_what_cannot_be_read_names_the_field(tmp_path: Path, camera: dict[str, object], name: str,
                                             message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_site_leniently(_write(tmp_path, camera), name)
