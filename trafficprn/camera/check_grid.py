"""The calibration check grid as data: ground lines every few metres, projected to image px.

`trafficprn calibrate` draws the same grid into a frame (`overlay.draw_ground_grid`); the
setup page gets these polylines and draws them over the camera's snapshot, so that a
person sees at a glance whether the road's lanes, stop lines and kerbs follow the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trafficprn.camera.calibration import Calibration
from trafficprn.camera.overlay import grid_extent_m
from trafficprn.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]

MAX_LINES_PER_AXIS = 40
SAMPLES_PER_SPACING = 8
IMAGE_MARGIN = 0.05  # keep samples this share of the image size beyond its edges


@dataclass(frozen=True)
class GridLine:
    """One ground line: `axis` "x" (x = value_m, running along y) or "y"; `pieces_px` its
    visible runs in image px, each (K, 2) with K >= 2."""

    axis: str
    value_m: float
    pieces_px: list[FloatArray]


@dataclass(frozen=True)
class CheckGrid:
    spacing_m: float
    extent_m: tuple[float, float, float, float]  # (x_min, y_min, x_max, y_max)
    lines: list[GridLine]
    origin_px: tuple[float, float] | None  # the ground origin in image px, None where not seen


def _visible_runs(px: FloatArray, image_size: tuple[int, int]) -> list[FloatArray]:
    w, h = image_size
    mx, my = w * IMAGE_MARGIN, h * IMAGE_MARGIN
    ok = np.isfinite(px).all(axis=1)
    ok &= (px[:, 0] >= -mx) & (px[:, 0] <= w + mx) & (px[:, 1] >= -my) & (px[:, 1] <= h + my)
    runs: list[FloatArray] = []
    start: int | None = None
    for i in range(len(px) + 1):
        if i < len(px) and ok[i]:
            start = i if start is None else start
            continue
        if start is not None and i - start >= 2:
            runs.append(np.round(px[start:i], 1))
        start = None
    return runs


def check_grid(cal: Calibration, spacing_m: float = 5.0) -> CheckGrid:
    """Ground lines every `spacing_m` (widened so that at most MAX_LINES_PER_AXIS lines run
    each way) over the surveyed area plus a margin (`overlay.grid_extent_m`).

    Raises CalibrationError when no line of the grid lands on the image.
    """
    if not np.isfinite(spacing_m) or spacing_m <= 0:
        raise CalibrationError(f"expected a positive grid spacing in m, got {spacing_m}")
    x0, y0, x1, y1 = grid_extent_m(cal)
    widest = max(x1 - x0, y1 - y0)
    spacing = float(max(spacing_m, np.ceil(widest / MAX_LINES_PER_AXIS)))
    step = spacing / SAMPLES_PER_SPACING
    size = cal.lens.image_size
    lines: list[GridLine] = []
    for axis, (lo, hi), (olo, ohi) in (("x", (x0, x1), (y0, y1)), ("y", (y0, y1), (x0, x1))):
        along = np.arange(olo, ohi + step / 2, step)
        for value in np.arange(np.ceil(lo / spacing) * spacing, hi + 1e-9, spacing):
            fixed = np.full_like(along, value)
            ground = np.stack([fixed, along], 1) if axis == "x" else np.stack([along, fixed], 1)
            try:
                runs = _visible_runs(cal.ground_to_image(ground), size)
            except np.linalg.LinAlgError:
                raise CalibrationError("the calibration's ground plane is degenerate (a singular homography)") from None
            if runs:
                lines.append(GridLine(axis=axis, value_m=float(value), pieces_px=runs))
    if not lines:
        raise CalibrationError("no line of the ground grid lands on the image; the calibration does not "
                               "look at this camera's road")
    origin = cal.ground_to_image([[0.0, 0.0]])[0]
    origin_px = (float(origin[0]), float(origin[1])) if np.isfinite(origin).all() else None
    return CheckGrid(spacing_m=spacing, extent_m=(x0, y0, x1, y1), lines=lines, origin_px=origin_px)
