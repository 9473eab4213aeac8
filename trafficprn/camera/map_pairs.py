"""Map pairs: the manual calibration fallback when nothing is surveyed.

A person clicks a point on the camera image and the same point on an aerial image of
known scale (metres per aerial px, north up). The aerial point becomes a ground point:
x east, y north, metres from an origin on the aerial image (by default the first pair's
aerial point), so y grows up the aerial image while its px grow down. The pairs are then
fitted like surveyed points (`Calibration.from_points`: >= 4 pairs, RANSAC beyond 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trafficprn.camera.calibration import Calibration
from trafficprn.camera.lens import Lens
from trafficprn.errors import CalibrationError
from trafficprn.geometry.polygons import as_points

FloatArray = npt.NDArray[np.float64]

MIN_PAIRS = 4


def aerial_to_ground(
    aerial_px: npt.ArrayLike, metres_per_px: float, origin_px: npt.ArrayLike
) -> FloatArray:
    """(N, 2) aerial image px -> (N, 2) ground m (x east, y north) from `origin_px`."""
    if not np.isfinite(metres_per_px) or metres_per_px <= 0:
        raise CalibrationError(f"expected a positive metres_per_px, got {metres_per_px}")
    a = as_points(aerial_px, "aerial_px")
    o = np.asarray(origin_px, dtype=np.float64).reshape(2)
    return np.asarray(np.stack([(a[:, 0] - o[0]) * metres_per_px, (o[1] - a[:, 1]) * metres_per_px], 1),
                      dtype=np.float64)


@dataclass(frozen=True)
class MapFit:
    """The fitted calibration and the ground points it was fitted with (ground_m (N, 2),
    rounded to cm as they will be written to site.yaml)."""

    image_px: FloatArray
    ground_m: FloatArray
    calibration: Calibration


def fit_map_pairs(
    lens: Lens,
    image_px: npt.ArrayLike,
    aerial_px: npt.ArrayLike,
    metres_per_px: float,
    origin_px: npt.ArrayLike | None = None,
) -> MapFit:
    """Fit the camera's ground calibration from (N, 2) image px and (N, 2) aerial px pairs.

    Raises CalibrationError for fewer than 4 pairs, unequal counts, collinear points or
    image points outside the image circle (`Calibration.from_points`)."""
    px = as_points(image_px, "image_px")
    aerial = as_points(aerial_px, "aerial_px")
    if len(px) != len(aerial):
        raise CalibrationError(f"expected as many image points as aerial points, got {len(px)} and {len(aerial)}")
    if len(px) < MIN_PAIRS:
        raise CalibrationError(f"expected at least {MIN_PAIRS} map pairs, got {len(px)}")
    origin = aerial[0] if origin_px is None else origin_px
    ground = np.round(aerial_to_ground(aerial, metres_per_px, origin), 2)
    cal = Calibration.from_points(lens, px, ground)
    return MapFit(image_px=px, ground_m=ground, calibration=cal)
