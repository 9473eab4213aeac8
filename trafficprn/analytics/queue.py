"""Queue length per lane, from the stop line upstream, in ground m.

A queue is the contiguous run of stopped vehicles starting at the stop line: the first
must be within `max_gap_m` of the line, each next one within `max_gap_m` of the one
before (bumper to bumper). A moving vehicle ends the run. The length reaches the back of
the last queued vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trafficprn.analytics.zones import GroundMapper
from trafficprn.config import CameraConfig, LaneConfig
from trafficprn.errors import CalibrationError, ConfigError
from trafficprn.geometry.polygons import points_in_polygon
from trafficprn.types import FloatArray, IntArray, VehicleClass

# Typical lengths, m: the anchor is taken as the vehicle's middle on the ground.
VEHICLE_LENGTH_M = {
    VehicleClass.CAR: 4.5,
    VehicleClass.BUS: 12.0,
    VehicleClass.TRUCK: 10.0,
    VehicleClass.MOTORCYCLE: 2.2,
    VehicleClass.BICYCLE: 1.8,
    VehicleClass.PERSON: 0.6,
}
LENGTH_BY_CLASS_M = np.array([VEHICLE_LENGTH_M[c] for c in VehicleClass])


def queue_from_stop_line(
    distance_m: FloatArray, length_m: FloatArray, stopped: np.ndarray, max_gap_m: float
) -> tuple[float, int]:
    """Queue (length m, vehicles) of one lane.

    distance_m: (K,) distance of each vehicle's middle upstream of the stop line.
    length_m: (K,) vehicle lengths. stopped: (K,) bool.
    """
    order = np.argsort(distance_m)
    end_m = 0.0
    count = 0
    for k in order:
        front = distance_m[k] - length_m[k] / 2.0
        if not stopped[k] or front - end_m > max_gap_m:
            break
        end_m = max(end_m, distance_m[k] + length_m[k] / 2.0)
        count += 1
    return (end_m if count else 0.0), count


@dataclass(frozen=True)
class Lane:
    """A lane's polygon (image px) and stop line on the ground (two points, m), with the
    unit normal pointing upstream."""

    name: str
    polygon_px: FloatArray
    stop_a_m: FloatArray
    stop_b_m: FloatArray
    upstream: FloatArray

    def distance_m(self, ground_m: FloatArray) -> FloatArray:
        """(K,) distance of ground points (K, 2) upstream of the stop line (perpendicular)."""
        return np.asarray((ground_m - self.stop_a_m) @ self.upstream, dtype=np.float64)


def build_lanes(camera: CameraConfig, ground: GroundMapper) -> list[Lane]:
    """Lanes of a camera with ground stop lines. Raises ConfigError naming the lane field
    when the stop line is degenerate or cannot be mapped."""
    lanes = []
    for i, lane in enumerate(camera.lanes):
        lanes.append(_lane(lane, f"lanes[{i}]", camera.name, ground))
    return lanes


def _lane(lane: LaneConfig, field: str, source: str, ground: GroundMapper) -> Lane:
    line_px = np.asarray(lane.stop_line, dtype=np.float64)
    poly_px = np.asarray(lane.polygon, dtype=np.float64)
    if np.linalg.norm(line_px[1] - line_px[0]) < 1e-6:
        raise ConfigError("stop line needs two distinct points", field=f"{field}.stop_line", source=source)
    try:
        a, b = ground.image_to_ground(line_px)
        centre = ground.image_to_ground(poly_px.mean(axis=0, keepdims=True))[0]
    except CalibrationError as exc:
        raise ConfigError(f"cannot map the lane to the ground: {exc}", field=f"{field}.stop_line", source=source) from None
    along = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-along[1], along[0]])
    if (centre - a) @ normal < 0:
        normal = -normal
    return Lane(lane.name, poly_px, a, b, normal)


def lanes_of(lanes: list[Lane], anchor_px: FloatArray) -> IntArray:
    """(N,) index of the lane holding each anchor (N, 2) image px, or -1 (see LabelMap for
    the fast version the analytics use)."""
    out = np.full(len(anchor_px), -1, dtype=np.int64)
    if not len(anchor_px):
        return out
    for i, lane in enumerate(lanes):
        out[points_in_polygon(anchor_px, lane.polygon_px) & (out < 0)] = i
    return out
