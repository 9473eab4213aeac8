"""A synthetic 4-leg junction for analytics tests, built through the real config models.

A pinhole camera looks straight down at the junction centre: ground (x east, y north, m)
maps to image px as u = 640 + 10 x, v = 640 - 10 y. Right-hand traffic, one inbound and
one outbound lane per leg (3.5 m wide), stop lines 8 m from the centre. Vehicles follow
polylines on the ground with arc length s(t); seen from straight above, their boxes are
centred on the vehicle's ground middle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trafficprn.config import SiteConfig, parse_site
from trafficprn.types import Detections, FloatArray, VehicleClass

PX_PER_M = 10.0
CENTRE_PX = 640.0
LANE_W = 3.5
STOP_M = 8.0
ZONE_END_M = 20.0
ROAD_END_M = 60.0
OUTWARD = {"N": (0.0, 1.0), "E": (1.0, 0.0), "S": (0.0, -1.0), "W": (-1.0, 0.0)}
LENGTH_M = {VehicleClass.CAR: 4.5, VehicleClass.BUS: 12.0, VehicleClass.TRUCK: 10.0, VehicleClass.MOTORCYCLE: 2.2}
WIDTH_M = {VehicleClass.CAR: 1.8, VehicleClass.BUS: 2.5, VehicleClass.TRUCK: 2.5, VehicleClass.MOTORCYCLE: 0.8}


def to_px(ground_m: FloatArray) -> FloatArray:
    g = np.asarray(ground_m, dtype=np.float64).reshape(-1, 2)
    return np.stack([CENTRE_PX + PX_PER_M * g[:, 0], CENTRE_PX - PX_PER_M * g[:, 1]], axis=1)


def _frame(leg: str) -> tuple[FloatArray, FloatArray]:
    d = np.array(OUTWARD[leg])
    n = np.array([-d[1], d[0]])  # inbound lane side (driver's right when heading inwards)
    return d, n


def lane_point(leg: str, inbound: bool, dist_m: float, offset: float = 0.5) -> FloatArray:
    """Ground point `dist_m` from the centre along a leg, across the lane at `offset` (0..1)."""
    d, n = _frame(leg)
    side = 1.0 if inbound else -1.0
    return dist_m * d + side * offset * LANE_W * n


def _rect(leg: str, inbound: bool, d0: float, d1: float) -> list[tuple[float, float]]:
    corners = [lane_point(leg, inbound, d, o) for d, o in ((d0, 0.0), (d1, 0.0), (d1, 1.0), (d0, 1.0))]
    return [tuple(p) for p in to_px(np.array(corners)).tolist()]  # type: ignore[misc]


def make_site(driving_side: str = "right", max_gap_m: float = 8.0, legs: tuple[str, ...] = ("N", "E", "S", "W")) -> SiteConfig:
    ground_pts = [(-30.0, -30.0), (30.0, -30.0), (30.0, 30.0), (-30.0, 30.0), (0.0, 10.0)]
    calib = [{"image_px": to_px(np.array(g))[0].tolist(), "ground_m": list(g)} for g in ground_pts]
    return parse_site(
        {
            "site": {"name": "test-junction", "timezone": "Europe/Berlin", "driving_side": driving_side},
            "cameras": [
                {
                    "name": "cam-1",
                    "source": "video.mp4",
                    "lens": {"model": "pinhole", "image_size": [1280, 1280], "fx": 500.0, "fy": 500.0,
                             "cx": 640.0, "cy": 640.0},
                    "calibration": {"points": calib},
                    "legs": [
                        {"name": leg, "entry": _rect(leg, True, STOP_M, ZONE_END_M),
                         "exit": _rect(leg, False, STOP_M, ZONE_END_M)}
                        for leg in legs
                    ],
                    "lanes": [
                        {"name": f"{leg}-1", "leg": leg, "polygon": _rect(leg, True, STOP_M - 1.0, ROAD_END_M),
                         "stop_line": [tuple(p) for p in to_px(np.array([lane_point(leg, True, STOP_M, 0.0),
                                                                        lane_point(leg, True, STOP_M, 1.0)])).tolist()]}
                        for leg in legs
                    ],
                    "queue": {"stopped_kmh": 5.0, "dwell_s": 2.0, "max_gap_m": max_gap_m},
                }
            ],
        }
    )


def route(entry: str, exit_leg: str) -> FloatArray:
    """Ground polyline (K, 2) from the far end of `entry`'s inbound lane to the far end of
    `exit_leg`'s outbound lane."""
    pts = [lane_point(entry, True, ROAD_END_M), lane_point(entry, True, STOP_M)]
    if entry == exit_leg:  # U-turn through the centre
        pts.append(lane_point(entry, True, 2.0, 1.0))
    pts += [lane_point(exit_leg, False, STOP_M), lane_point(exit_leg, False, ROAD_END_M)]
    return np.array(pts)


def along(poly: FloatArray, s: FloatArray) -> FloatArray:
    """Points at arc lengths s (T,) along polyline poly (K, 2)."""
    seg = np.diff(poly, axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    s = np.clip(s, 0.0, cum[-1])
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = (s - cum[i]) / seg_len[i]
    return np.asarray(poly[i] + frac[:, None] * seg[i], dtype=np.float64)


def stop_line_s(entry: str) -> float:
    return ROAD_END_M - STOP_M


@dataclass
class Vehicle:
    vid: int
    entry: str
    exit: str
    cls: VehicleClass = VehicleClass.CAR
    ts: FloatArray = field(default_factory=lambda: np.zeros(0))  # capture times it is on the road
    s_m: FloatArray = field(default_factory=lambda: np.zeros(0))  # arc length at those times

    @property
    def path(self) -> FloatArray:
        return route(self.entry, self.exit)

    def ground(self) -> FloatArray:
        return along(self.path, self.s_m)

    def passage_ts(self) -> float:
        """When its middle crossed the stop line (the end of the entry zone)."""
        i = int(np.searchsorted(self.s_m, stop_line_s(self.entry), side="right"))
        return float(self.ts[min(i, len(self.ts) - 1)])


def constant_speed(vid: int, entry: str, exit_leg: str, speed_kmh: float, t0: float, fps: float,
                   cls: VehicleClass = VehicleClass.CAR) -> Vehicle:
    v = Vehicle(vid, entry, exit_leg, cls)
    total = float(np.hypot(*np.diff(v.path, axis=0).T).sum())
    n = int(total / (speed_kmh / 3.6) * fps)
    v.ts = t0 + np.arange(n) / fps
    v.s_m = np.arange(n) / fps * speed_kmh / 3.6
    return v


def vehicle_boxes(v: Vehicle) -> FloatArray:
    """(T, 4) image px boxes of a vehicle at each of its times (cached on the vehicle):
    centred on its ground middle, extent from its heading smoothed over +-3 m of
    path, so the box turns gradually through a corner."""
    cached = getattr(v, "_boxes", None)
    if cached is not None and len(cached) == len(v.ts):
        return np.asarray(cached)
    p = to_px(along(v.path, v.s_m))
    heading = along(v.path, v.s_m + 3.0) - along(v.path, v.s_m - 3.0)
    norm = np.maximum(np.hypot(heading[:, 0], heading[:, 1]), 1e-9)
    c, s_ = np.abs(heading[:, 0]) / norm, np.abs(heading[:, 1]) / norm
    length, width = LENGTH_M[v.cls] * PX_PER_M, WIDTH_M[v.cls] * PX_PER_M
    w, h = c * length + s_ * width, s_ * length + c * width
    boxes = np.stack([p[:, 0] - w / 2, p[:, 1] - h / 2, p[:, 0] + w / 2, p[:, 1] + h / 2], axis=1)
    object.__setattr__(v, "_boxes", boxes)
    return boxes


def boxes_at(vehicles: list[Vehicle], ts: float, fps: float) -> tuple[FloatArray, list[int], list[int]]:
    """Boxes (N, 4) px, vehicle ids and classes of the vehicles on the road at `ts`."""
    boxes, ids, classes = [], [], []
    for v in vehicles:
        if not len(v.ts) or ts < v.ts[0] - 0.5 / fps or ts > v.ts[-1] + 0.5 / fps:
            continue
        k = int(np.clip(np.round((ts - v.ts[0]) * fps), 0, len(v.ts) - 1))
        boxes.append(vehicle_boxes(v)[k])
        ids.append(v.vid)
        classes.append(int(v.cls))
    return np.array(boxes).reshape(-1, 4), ids, classes


def detections_at(vehicles: list[Vehicle], ts: float, fps: float, rng: np.random.Generator | None = None,
                  noise_px: float = 0.0, hidden: set[int] | None = None) -> Detections:
    boxes, ids, classes = boxes_at(vehicles, ts, fps)
    keep = [i for i, vid in enumerate(ids) if not hidden or vid not in hidden]
    boxes = boxes[keep]
    if rng is not None and noise_px > 0:
        boxes = boxes + rng.normal(0.0, noise_px, boxes.shape)
    return Detections(xyxy=boxes, confidence=np.full(len(boxes), 0.9),
                      class_id=np.array([classes[i] for i in keep], dtype=np.int64))


def signal_queue(entry: str, exits: list[str], arrivals_s: list[float], *, fps: float, cycle_s: float,
                 green_s: float, v_max_kmh: float = 40.0, accel: float = 2.0, decel: float = 4.0,
                 gap_m: float = 2.0, horizon_s: float = 200.0, t0: float = 0.0) -> list[Vehicle]:
    """Vehicles from one leg behind a traffic light (green for the first `green_s` of each
    `cycle_s`), following each other with a simple car-following rule: stop-and-go."""
    vmax = v_max_kmh / 3.6
    stop_s = stop_line_s(entry) - 0.5  # the middle stops this far along its route
    dt = 1.0 / fps
    vehicles = [Vehicle(i + 1, entry, exits[i % len(exits)]) for i in range(len(arrivals_s))]
    total = [float(np.hypot(*np.diff(v.path, axis=0).T).sum()) for v in vehicles]
    s = np.full(len(vehicles), np.nan)
    vel = np.zeros(len(vehicles))
    ts_l: list[list[float]] = [[] for _ in vehicles]
    s_l: list[list[float]] = [[] for _ in vehicles]
    for k in range(int(horizon_s * fps)):
        t = k * dt
        green = (t % cycle_s) < green_s
        for i, v in enumerate(vehicles):
            if np.isnan(s[i]):
                if t >= arrivals_s[i] and (i == 0 or (not np.isnan(s[i - 1]) and s[i - 1] > 10.0)):
                    s[i], vel[i] = 0.0, vmax
                else:
                    continue
            if s[i] >= total[i]:
                continue
            limit = np.inf
            if not green and s[i] <= stop_s + 0.3:
                limit = stop_s
            if i > 0 and s[i - 1] < total[i - 1]:
                limit = min(limit, s[i - 1] - LENGTH_M[v.cls] - gap_m)
            room = max(0.0, limit - s[i])
            vel[i] = max(0.0, min(vmax, vel[i] + accel * dt, np.sqrt(2 * decel * room)))
            s[i] = min(s[i] + vel[i] * dt, limit) if np.isfinite(limit) else s[i] + vel[i] * dt
            ts_l[i].append(t0 + t)
            s_l[i].append(s[i])
    for i, v in enumerate(vehicles):
        v.ts, v.s_m = np.array(ts_l[i]), np.array(s_l[i])
    return vehicles
