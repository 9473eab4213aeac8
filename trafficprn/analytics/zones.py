"""Leg zones of one camera: which entry/exit zone each anchor is in, and the legs' ground
geometry that decides a movement (left, through, right, U-turn).

Ground m is taken as a right-handed map frame seen from above (x east, y north, as SUMO
and survey coordinates are): a counter-clockwise turn is a left turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from trafficprn.config import CameraConfig
from trafficprn.errors import CalibrationError, ConfigError
from trafficprn.events import Movement
from trafficprn.geometry.polygons import polygon_centroid
from trafficprn.types import FloatArray, IntArray


class GroundMapper(Protocol):
    """Image px -> ground m (`trafficprn.camera.calibration.Calibration` is one)."""

    def image_to_ground(self, px: FloatArray) -> FloatArray: ...


THROUGH_MAX_DEG = 45.0  # |turn angle| up to this is a through movement
U_TURN_MIN_DEG = 150.0  # a turn this sharp towards the U-turn side is a U-turn


def turn_angle_deg(inbound: FloatArray, outbound: FloatArray) -> float:
    """Signed angle (degrees, (-180, 180]) from the inbound to the outbound direction on the
    ground plane; positive is counter-clockwise (a left turn in a right-handed frame)."""
    cross = inbound[0] * outbound[1] - inbound[1] * outbound[0]
    dot = inbound[0] * outbound[0] + inbound[1] * outbound[1]
    return float(np.degrees(np.arctan2(cross, dot)))


def classify_turn(angle_deg: float, driving_side: Literal["right", "left"], same_leg: bool = False) -> Movement:
    """L/T/R/U from the signed turn angle. U-turns go round to the driver's far side: to the
    left (positive angles) where traffic drives on the right, to the right where it drives
    on the left; a movement back into the leg it came from is always a U-turn."""
    if same_leg:
        return "U"
    u_side = 1.0 if driving_side == "right" else -1.0
    if angle_deg * u_side >= U_TURN_MIN_DEG:
        return "U"
    if abs(angle_deg) <= THROUGH_MAX_DEG:
        return "T"
    return "L" if angle_deg > 0 else "R"


@dataclass(frozen=True)
class LegGeometry:
    """Per leg on the ground: inbound direction (towards the junction centre, unit vector)
    and outbound direction (away from it), along the leg's axis."""

    name: str
    inbound: FloatArray
    outbound: FloatArray


class LabelMap:
    """Polygons (image px) rasterised once into a label image, so that finding the polygon
    under each of N points is one array lookup per frame instead of one point-in-polygon
    test per polygon. Labels are polygon indices; -1 outside all (first polygon wins)."""

    def __init__(self, polygons_px: list[FloatArray], image_size: tuple[int, int]):
        import cv2

        w, h = int(image_size[0]), int(image_size[1])
        self.labels = np.full((h, w), -1, dtype=np.int16)
        for i in reversed(range(len(polygons_px))):
            pts = np.round(np.asarray(polygons_px[i], dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(self.labels, [pts], color=int(i))

    def lookup(self, points_px: FloatArray) -> IntArray:
        """(N,) label under each point (N, 2) in image px; -1 outside the image or all polygons."""
        out = np.full(len(points_px), -1, dtype=np.int64)
        if not len(points_px):
            return out
        h, w = self.labels.shape
        finite = np.isfinite(points_px).all(axis=1)
        xy = np.zeros((len(points_px), 2), dtype=np.int64)
        xy[finite] = np.floor(points_px[finite] + 0.5).astype(np.int64)
        ok = finite & (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        out[ok] = self.labels[xy[ok, 1], xy[ok, 0]]
        return out


class Zones:
    """Entry and exit zones of a camera's legs (image px polygons), with their ground geometry.

    `entry_of(anchor_px)` / `exit_of(anchor_px)` give per anchor the index of the leg whose
    zone holds it, or -1. `movement(entry, exit)` classifies a leg pair. Zones of different
    legs must not overlap: `trafficprn.config.check_camera` rejects that when the site loads.
    """

    def __init__(self, camera: CameraConfig, ground: GroundMapper, driving_side: Literal["right", "left"] = "right"):
        self.names = [leg.name for leg in camera.legs]
        self.driving_side = driving_side
        self._entry = [np.asarray(leg.entry, dtype=np.float64) for leg in camera.legs]
        self._exit = [np.asarray(leg.exit, dtype=np.float64) for leg in camera.legs]
        self.legs = self._leg_geometry(ground)
        size = camera.lens.image_size
        self._entry_map = LabelMap(self._entry, size)
        self._exit_map = LabelMap(self._exit, size)

    def _leg_geometry(self, ground: GroundMapper) -> list[LegGeometry]:
        self.entry_centre_m: FloatArray = np.zeros((0, 2))
        self.exit_centre_m: FloatArray = np.zeros((0, 2))
        self.centre_m: FloatArray = np.zeros(2)
        self.u_turn_reach_m = 0.0
        if not self.names:
            return []
        try:
            entry_g = ground.image_to_ground(np.array([polygon_centroid(p) for p in self._entry]))
            exit_g = ground.image_to_ground(np.array([polygon_centroid(p) for p in self._exit]))
        except CalibrationError as exc:
            raise ConfigError(f"leg zones cannot be mapped to the ground: {exc}", field="legs") from None
        # a leg's axis runs from the junction centre to the middle of its two zones, which
        # lies on the road's centre line whatever the lane offsets
        self.entry_centre_m = np.asarray(entry_g, dtype=np.float64)
        self.exit_centre_m = np.asarray(exit_g, dtype=np.float64)
        leg_mid = (entry_g + exit_g) / 2.0
        centre = leg_mid.mean(axis=0)
        self.centre_m = centre
        # how close to the centre a U-turn must come: well inside the ring of entry zones
        self.u_turn_reach_m = 0.85 * float(np.hypot(*(self.entry_centre_m - centre).T).min())
        out = []
        for i, name in enumerate(self.names):
            outward = leg_mid[i] - centre
            norm = float(np.linalg.norm(outward))
            if not np.isfinite(norm) or norm < 1e-6:
                raise ConfigError("leg zones sit on the junction centre; cannot tell the leg's direction",
                                  field=f"legs[{i}]")
            out.append(LegGeometry(name, -outward / norm, outward / norm))
        return out

    def entry_of(self, anchor_px: FloatArray) -> IntArray:
        """(N,) leg index of the entry zone holding each anchor (N, 2) in image px, or -1."""
        return self._entry_map.lookup(anchor_px)

    def exit_of(self, anchor_px: FloatArray) -> IntArray:
        """(N,) leg index of the exit zone holding each anchor (N, 2) in image px, or -1."""
        return self._exit_map.lookup(anchor_px)

    def exit_along(self, a_px: FloatArray, b_px: FloatArray, step_px: float = 4.0) -> int:
        """The last exit zone (leg index) that the image segment a -> b passes through, or -1:
        a vehicle that moved too fast to be seen inside a zone (or while its new track was
        unconfirmed) still crossed it."""
        length = float(np.hypot(*(b_px - a_px)))
        if not np.isfinite(length):
            return -1
        n = int(min(max(2, length / step_px), 256))
        pts = a_px + np.linspace(0.0, 1.0, n)[:, None] * (b_px - a_px)
        hits = self._exit_map.lookup(pts)
        hit = hits[hits >= 0]
        return int(hit[-1]) if len(hit) else -1

    def entry_behind(self, first_m: FloatArray, velocity_mps: FloatArray, max_m: float) -> int:
        """The leg a vehicle most likely came from when its track started past the entry
        zones (it was hidden there): the nearest entry zone (ground centre) within max_m
        that lies behind the vehicle's first position, seen along its first velocity, and
        whose inbound direction agrees with that velocity. -1 when none fits."""
        speed = float(np.hypot(*velocity_mps))
        if not len(self.names) or speed < 1.0 or not np.isfinite(first_m).all():
            return -1
        heading = velocity_mps / speed
        back = first_m - self.entry_centre_m  # (L, 2) from each entry zone to the vehicle
        dist = np.hypot(back[:, 0], back[:, 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            ahead = (back @ heading) / dist
        inbound = np.array([leg.inbound @ heading for leg in self.legs])
        ok = (dist <= max_m) & (ahead > 0.5) & (inbound > 0.0)
        if not ok.any():
            return -1
        return int(np.argmin(np.where(ok, dist, np.inf)))

    def exit_ahead(self, last_m: FloatArray, velocity_mps: FloatArray, max_m: float) -> int:
        """The leg a vehicle most likely left by when its track ended before an exit zone
        saw it (lost while crossing it): the nearest exit zone (ground centre) within max_m
        whose outbound direction the vehicle's last velocity follows. -1 when none fits."""
        speed = float(np.hypot(*velocity_mps))
        if not len(self.names) or speed < 1.0 or not np.isfinite(last_m).all():
            return -1
        heading = velocity_mps / speed
        dist = np.hypot(*(self.exit_centre_m - last_m).T)
        outbound = np.array([leg.outbound @ heading for leg in self.legs])
        ok = (dist <= max_m) & (outbound > 0.8)
        if not ok.any():
            return -1
        return int(np.argmin(np.where(ok, dist, np.inf)))

    def movement(self, entry: int, exit: int) -> Movement:
        """Movement from leg `entry` to leg `exit` (indices into `names`)."""
        angle = turn_angle_deg(self.legs[entry].inbound, self.legs[exit].outbound)
        return classify_turn(angle, self.driving_side, same_leg=entry == exit)
