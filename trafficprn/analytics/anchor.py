"""Where a vehicle's box touches the road: the image point whose ground position is the
vehicle's middle.

SORT boxes are in image px; speed, queues and zones need one point per box on the road.
The bottom-centre of the box is right only for a level camera. This module walks from
the box centre towards the box edge in the direction that is "down" in the world at that
point of the image (found from the calibration's ground plane and the lens, so it holds
for fisheyes looking straight down as for pole cameras), by a fraction of the way that
grows as the view gets more oblique: looking straight down the box centre is the middle;
looking nearly horizontally the middle is most of the way to the bottom edge.

The fraction table was fitted on sim renders of both the fisheye and the pole camera
(median ground error 0.1-0.6 m per viewing angle, against 1.9-5 m for the bottom-centre).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trafficprn.types import FloatArray

# off-nadir angle of the ray through the box centre (deg) -> fraction of the way to the edge
OFF_NADIR_DEG = np.array([0.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0])
EDGE_FRACTION = np.array([0.05, 0.1, 0.15, 0.27, 0.47, 0.78, 0.9])


def bottom_centre_px(xyxy: FloatArray) -> FloatArray:
    """(N, 2) bottom-centre points of (N, 4) boxes."""
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2.0, xyxy[:, 3]], axis=1)


class GroundAnchor:
    """Maps boxes (N, 4) image px to anchor points (N, 2) image px.

    calibration: needs `lens` (unproject/project) and `ray_to_ground` (3, 3), as
    `trafficprn.camera.calibration.Calibration` has; without them (or with mode="bottom")
    the bottom-centre is used.
    """

    def __init__(self, calibration: Any, mode: str = "down"):
        self.lens = getattr(calibration, "lens", None)
        g = getattr(calibration, "ray_to_ground", None)
        self.nadir: FloatArray | None = None
        if mode == "down" and self.lens is not None and g is not None:
            row = np.asarray(g, dtype=np.float64)[2]
            self.nadir = row / np.linalg.norm(row)  # rays that meet the road have ray . nadir > 0

    def __call__(self, xyxy: FloatArray) -> FloatArray:
        if self.nadir is None or self.lens is None or not len(xyxy):
            return bottom_centre_px(xyxy)
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2.0
        half = (xyxy[:, 2:] - xyxy[:, :2]) / 2.0
        rays = np.asarray(self.lens.unproject(centre), dtype=np.float64)
        stepped = rays + 0.01 * self.nadir
        stepped /= np.linalg.norm(stepped, axis=1, keepdims=True)
        down = np.asarray(self.lens.project(stepped), dtype=np.float64) - centre
        norm = np.linalg.norm(down, axis=1)
        seen = np.isfinite(rays).all(axis=1) & np.isfinite(norm)  # the lens sees the box centre
        at_nadir = seen & (norm <= 1e-9)  # looking straight down at it: the centre itself
        unit = np.zeros_like(down)
        turn = seen & ~at_nadir
        unit[turn] = down[turn] / norm[turn, None]
        unit[~seen] = (0.0, 1.0)  # outside the lens model: fall back to the bottom-centre
        with np.errstate(divide="ignore", invalid="ignore"):
            to_edge = np.minimum(half[:, 0] / np.abs(unit[:, 0]), half[:, 1] / np.abs(unit[:, 1]))
        to_edge = np.where(np.isfinite(to_edge), to_edge, 0.0)
        off_nadir = np.degrees(np.arccos(np.clip(np.nan_to_num(rays) @ self.nadir, -1.0, 1.0)))
        fraction = np.where(seen, np.interp(off_nadir, OFF_NADIR_DEG, EDGE_FRACTION), 1.0)
        down = unit
        return np.asarray(centre + (fraction * to_edge)[:, None] * down, dtype=np.float64)
