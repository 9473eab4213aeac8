"""A suggested.yaml for tests: a site.yaml's camera with its zones moved and the support
and fit that `trafficprn setup suggest` would add (the real command is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trafficprn.config import load_site


def _moved(points: list[list[float]], dx: float) -> list[list[float]]:
    return [[round(x + dx, 1), y] for x, y in points]


def suggested_site(site_path: Path, out: Path, camera: str, dx_px: float = 4.0,
                   ground_scale: float = 1.02) -> dict[str, Any]:
    """Write `out` from `site_path`: camera `camera` with legs and lanes moved `dx_px` to the
    right, calibration ground points scaled by `ground_scale`, and a `suggestion` with
    support 40, 30, ... per leg and 12, 11, ... per lane. Returns the camera's dict."""
    data = yaml.safe_load(site_path.read_text())
    cam = next(c for c in data["cameras"] if c["name"] == camera)
    for leg in cam["legs"]:
        leg["entry"], leg["exit"] = _moved(leg["entry"], dx_px), _moved(leg["exit"], dx_px)
    for lane in cam["lanes"]:
        lane["polygon"], lane["stop_line"] = _moved(lane["polygon"], dx_px), _moved(lane["stop_line"], dx_px)
    for point in cam["calibration"].get("points", []):
        point["ground_m"] = [round(v * ground_scale, 3) for v in point["ground_m"]]
    cam["suggestion"] = {
        "source": "footage.mp4", "minutes": 20.0, "tracks": 214, "naming": "compass: legs by the bearing of their arm",
        "legs": [{"name": leg["name"], "tracks": 40 - 10 * i} for i, leg in enumerate(cam["legs"])],
        "lanes": [{"name": lane["name"], "tracks": 12 - i} for i, lane in enumerate(cam["lanes"])],
        "calibration": {"method": "traffic", "values": {"focal_px": 903.5, "height_m": 8.1},
                        "uncertainty": {"focal_px": 12.0, "height_m": 0.3},
                        "scale_source": "vehicle-size prior (car length 4.5 m)"},
    }
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    load_site(out)  # a complete, valid site.yaml, as the real command writes
    return dict(cam)
