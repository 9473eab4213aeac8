"""Ground truth of a scene, with the analytics' definitions, and the scene's site config.

- Zones (ground m): a leg's entry zone covers its inbound lanes from the stop line
  `ZONE_M` upstream; its exit zone the outbound lanes from the junction `ZONE_M` out.
  They are projected to image px (densely sampled edges, so fisheye curves are kept).
- Passage time: the first frame whose vehicle middle is past its entry stop line.
- Speed: median SUMO speed over the frames whose middle is inside the calibrated area
  (the convex hull of the calibration points).
- Approach / through speed, stopped time, stops: `truth_speeds` (docs/speeds.md).
- Queue per lane per second: contiguous stopped vehicles (below stopped_kmh for dwell_s)
  from the stop line upstream, gaps up to max_gap_m, length to the back of the last one;
  vehicles count while their middle lies inside the lane polygon.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trafficprn.config import (
    CalibrationConfig,
    CalibrationPoint,
    CameraConfig,
    LaneConfig,
    LegConfig,
    PrivacySection,
    QueueConfig,
    SiteConfig,
    SiteSection,
)
from trafficprn.errors import ScenarioError
from trafficprn.geometry.polygons import points_in_polygon
from trafficprn.sim.cameras import SimCamera
from trafficprn.sim.scenario import Scenario
from trafficprn.sim.sumo import Lane, Network, Traffic
from trafficprn.sim.truth_speeds import trajectory_speeds
from trafficprn.types import FloatArray

ZONE_M = 12.0
MIN_ZONE_M = 4.0
EDGE_STEP_M = 0.5


@dataclass(frozen=True)
class GroundZone:
    """A rectangle on the ground along a lane group: origin on the stop line / junction edge."""

    origin_m: FloatArray  # (2,) middle of the line at the junction end
    along: FloatArray  # (2,) unit vector away from the junction (upstream for entries)
    half_width_m: float
    length_m: float

    def polygon_m(self, step_m: float = EDGE_STEP_M) -> FloatArray:
        side = np.array([-self.along[1], self.along[0]])
        n = max(2, int(np.ceil(self.length_m / step_m)) + 1)
        m = max(2, int(np.ceil(2 * self.half_width_m / step_m)) + 1)
        s = np.linspace(0, self.length_m, n)
        w = np.linspace(-self.half_width_m, self.half_width_m, m)
        o, a = self.origin_m, self.along
        edges = [o + side * w[0] + a * s[:, None], o + a * self.length_m + side * w[1:, None],
                 o + side * w[-1] + a * s[::-1, None][1:], o + a * 0 + side * w[::-1, None][1:-1]]
        return np.concatenate(edges)

    def distance_m(self, xy_m: FloatArray) -> FloatArray:
        return np.asarray((xy_m - self.origin_m) @ self.along)

    def contains(self, xy_m: FloatArray) -> np.ndarray:
        side = np.array([-self.along[1], self.along[0]])
        d = self.distance_m(xy_m)
        lat = (xy_m - self.origin_m) @ side
        return np.asarray((d >= 0) & (d <= self.length_m) & (np.abs(lat) <= self.half_width_m))


def _group_zone(lanes: list[Lane], inbound: bool, length_m: float) -> GroundZone:
    ends = np.array([ln.shape_m[-1] if inbound else ln.shape_m[0] for ln in lanes])
    far = np.array([ln.shape_m[0] if inbound else ln.shape_m[-1] for ln in lanes])
    along = far[0] - ends[0]
    along = along / np.linalg.norm(along)
    half = (np.ptp(ends @ np.array([-along[1], along[0]])) + lanes[0].width_m) / 2
    return GroundZone(ends.mean(axis=0), along, float(half), length_m)


def _visible_length(cam: SimCamera, zone: GroundZone) -> float:
    """Longest zone length (<= zone.length_m) whose polygon projects inside the image."""
    w, h = cam.image_size
    best = 0.0
    for length in np.arange(MIN_ZONE_M, zone.length_m + 1e-6, 1.0):
        z = GroundZone(zone.origin_m, zone.along, zone.half_width_m, float(length))
        poly = z.polygon_m()
        px, ok = cam.project(np.column_stack([poly, np.zeros(len(poly))]))
        inside = ok & (px[:, 0] >= 0) & (px[:, 0] <= w - 1) & (px[:, 1] >= 0) & (px[:, 1] <= h - 1)
        if cam.is_fisheye:
            inside &= cam.lens.valid(np.nan_to_num(px))
        if not inside.all():
            break
        best = float(length)
    return best


def _project_polygon(cam: SimCamera, poly_m: FloatArray) -> list[tuple[float, float]]:
    px, _ = cam.project(np.column_stack([poly_m, np.zeros(len(poly_m))]))
    approx = cv2.approxPolyDP(px.astype(np.float32).reshape(-1, 1, 2), 0.7, True).reshape(-1, 2)
    return [(round(float(x), 1), round(float(y), 1)) for x, y in approx]


@dataclass
class SceneGeometry:
    """Legs and lanes of one camera: ground zones and their image polygons."""

    entry: dict[str, GroundZone]
    exit: dict[str, GroundZone]
    lanes: dict[str, tuple[Lane, GroundZone]]  # site lane name -> (SUMO lane, lane zone)
    calib_ground_m: FloatArray
    calib_px: FloatArray


def scene_geometry(cam: SimCamera, network: Network, sc: Scenario) -> SceneGeometry:
    entry: dict[str, GroundZone] = {}
    exit_: dict[str, GroundZone] = {}
    lanes: dict[str, tuple[Lane, GroundZone]] = {}
    for leg in sorted({ln.leg for ln in network.lanes}):
        ez = _group_zone(network.inbound(leg), True, ZONE_M)
        xz = _group_zone(network.outbound(leg), False, ZONE_M)
        le, lx = _visible_length(cam, ez), _visible_length(cam, xz)
        if le < MIN_ZONE_M or lx < MIN_ZONE_M:
            continue
        entry[leg] = GroundZone(ez.origin_m, ez.along, ez.half_width_m, le)
        exit_[leg] = GroundZone(xz.origin_m, xz.along, xz.half_width_m, lx)
        for ln in network.inbound(leg):
            lz = _group_zone([ln], True, sc.queue_zone_m)
            length = _visible_length(cam, lz)
            if length >= MIN_ZONE_M * 2:
                lanes[ln.name] = (ln, GroundZone(lz.origin_m, lz.along, lz.half_width_m, length))
    if len(entry) < 2:
        raise ScenarioError(f"camera {cam.name} sees fewer than 2 legs of the junction", field="camera")
    g, px = _calibration_points(cam)
    return SceneGeometry(entry, exit_, lanes, g, px)


def _calibration_points(cam: SimCamera) -> tuple[FloatArray, FloatArray]:
    """Surveyed ground points (a grid on the road area) that the camera sees well."""
    grid = np.array([(x, y) for x in np.arange(-24, 25, 6.0) for y in np.arange(-24, 25, 6.0)])
    px, ok = cam.project(np.column_stack([grid, np.zeros(len(grid))]))
    w, h = cam.image_size
    ok &= (px[:, 0] > 8) & (px[:, 0] < w - 8) & (px[:, 1] > 8) & (px[:, 1] < h - 8)
    if cam.is_fisheye:
        ok &= np.linalg.norm(grid, axis=1) <= 22.0  # well inside the image circle
    else:
        dist = np.linalg.norm(grid - cam.position_m[:2], axis=1)
        ok &= dist < 60.0
    if ok.sum() < 4:
        raise ScenarioError(f"camera {cam.name} sees fewer than 4 calibration points", field="camera")
    return grid[ok], px[ok]


def site_config(sc: Scenario, cam: SimCamera, geo: SceneGeometry, fps: float) -> SiteConfig:
    legs = [LegConfig(name=name, entry=_project_polygon(cam, geo.entry[name].polygon_m()),
                      exit=_project_polygon(cam, geo.exit[name].polygon_m())) for name in geo.entry]
    lanes = []
    for name, (ln, zone) in geo.lanes.items():
        if ln.leg not in geo.entry:
            continue
        side = np.array([-zone.along[1], zone.along[0]]) * zone.half_width_m
        stop = np.array([zone.origin_m - side, zone.origin_m + side])
        spx, _ = cam.project(np.column_stack([stop, np.zeros(2)]))
        stop_line = ((round(float(spx[0, 0]), 1), round(float(spx[0, 1]), 1)),
                     (round(float(spx[1, 0]), 1), round(float(spx[1, 1]), 1)))
        lanes.append(LaneConfig(name=name, leg=ln.leg, polygon=_project_polygon(cam, zone.polygon_m()),
                                stop_line=stop_line))
    points = [CalibrationPoint(image_px=(round(float(p[0]), 2), round(float(p[1]), 2)),
                               ground_m=(float(g[0]), float(g[1]))) for p, g in zip(geo.calib_px, geo.calib_ground_m, strict=True)]
    camera = CameraConfig(name=cam.name, source="video.mp4", process_fps=fps, lens=cam.lens_cfg,
                          calibration=CalibrationConfig(points=points), legs=legs, lanes=lanes, queue=QueueConfig())
    return SiteConfig(site=SiteSection(name=sc.site_name, timezone=sc.timezone, driving_side="right"),
                      privacy=PrivacySection(plates="clear", plate_format=sc.plate_format), cameras=[camera])


def _hull(points_m: FloatArray) -> FloatArray:
    return np.asarray(cv2.convexHull(points_m.astype(np.float32)).reshape(-1, 2), dtype=np.float64)


def vehicle_truth(traffic: Traffic, geo: SceneGeometry, start_ts: float, seen: dict[int, tuple[float, float]]
                  ) -> list[dict[str, object]]:
    """vehicles.json rows: vehicles seen in their entry zone and later in their exit zone.

    seen: vid -> (first_ts, last_ts) of frames where the vehicle is visible in the image.
    """
    hull = _hull(geo.calib_ground_m)
    order = np.argsort(traffic.vid, kind="stable")
    vids, starts = np.unique(traffic.vid[order], return_index=True)
    frame_of = np.repeat(np.arange(traffic.n_frames), np.diff(traffic.offsets))[order]
    ends = np.append(starts[1:], len(order))
    rows: list[dict[str, object]] = []
    for vid, a, b in zip(vids, starts, ends, strict=True):
        v = traffic.vehicles[int(vid)]
        if v.entry_leg not in geo.entry or v.exit_leg not in geo.exit or int(vid) not in seen:
            continue
        rows_k = order[a:b]
        xy = traffic.xy_m[rows_k]
        frames = frame_of[a:b]
        in_entry = geo.entry[v.entry_leg].contains(xy)
        in_exit = geo.exit[v.exit_leg].contains(xy)
        if not in_entry.any() or not in_exit[np.argmax(in_entry):].any():
            continue
        past = geo.entry[v.entry_leg].distance_m(xy) < 0
        k_pass = int(np.argmax(past)) if past.any() else None
        inside = points_in_polygon(xy, hull)
        speeds = traffic.speed_mps[rows_k][inside]
        first_ts, last_ts = seen[int(vid)]
        ts = start_ts + frames / traffic.fps
        k_in = int(np.argmax(in_entry))
        after = np.flatnonzero(in_exit & (np.arange(len(xy)) > (k_pass if k_pass is not None else k_in)))
        engineer = trajectory_speeds(ts, xy, traffic.speed_mps[rows_k], k_in, k_pass,
                                     int(after[0]) if len(after) else None,
                                     (ts >= first_ts - 1e-6) & (ts <= last_ts + 1e-6), traffic.fps)
        rows.append({
            "track_id": int(vid) + 1, "class": v.cls, "colour": v.colour, "plate": v.plate,
            "entry_leg": v.entry_leg, "exit_leg": v.exit_leg, "movement": v.movement,
            "passage_ts": None if k_pass is None else round(start_ts + frames[k_pass] / traffic.fps, 3),
            "speed_kmh": round(float(np.median(speeds)) * 3.6, 2) if len(speeds) else None,
            **engineer, "first_ts": round(first_ts, 3), "last_ts": round(last_ts, 3),
        })
    return rows


def queue_truth(traffic: Traffic, geo: SceneGeometry, queue: QueueConfig, start_ts: float) -> list[dict[str, object]]:
    """queues.jsonl rows: per second and lane, queue length (m) and vehicles."""
    fps = traffic.fps
    stopped_since: dict[int, float] = {}
    rows: list[dict[str, object]] = []
    lane_index = {lid: i for i, lid in enumerate(traffic.lane_ids)}
    lanes = [(name, lane_index[ln.sumo_id], zone) for name, (ln, zone) in geo.lanes.items() if ln.leg in geo.entry]
    for k in range(traffic.n_frames):
        s = traffic.frame(k)
        t = k / fps
        vid, spd = traffic.vid[s], traffic.speed_mps[s]
        slow = spd < queue.stopped_kmh / 3.6
        for i, v in enumerate(vid):
            if slow[i]:
                stopped_since.setdefault(int(v), t)
            else:
                stopped_since.pop(int(v), None)
        if k % int(round(fps)):
            continue
        xy, lane = traffic.xy_m[s], traffic.lane[s]
        for name, li, zone in lanes:
            on = lane == li
            d = zone.distance_m(xy[on])
            keep = (d >= 0) & (d <= zone.length_m)
            ids = vid[on][keep]
            d = d[keep]
            lengths = np.array([traffic.vehicles[int(v)].length_m for v in ids])
            stopped = np.array([t - stopped_since.get(int(v), t + 1) >= queue.dwell_s for v in ids], dtype=bool)
            length_m, count = _queue(d, lengths, stopped, queue.max_gap_m)
            rows.append({"ts": round(start_ts + t, 3), "lane": name, "length_m": round(length_m, 2), "vehicles": count})
        for gone in set(stopped_since) - {int(v) for v in vid}:
            del stopped_since[gone]
    return rows


def _queue(distance_m: FloatArray, length_m: FloatArray, stopped: np.ndarray, max_gap_m: float) -> tuple[float, int]:
    """Same rule as the analytics: contiguous stopped run from the stop line, middles given."""
    end_m, count = 0.0, 0
    for k in np.argsort(distance_m, kind="stable"):
        front = distance_m[k] - length_m[k] / 2.0
        if not stopped[k] or front - end_m > max_gap_m:
            break
        end_m = max(end_m, distance_m[k] + length_m[k] / 2.0)
        count += 1
    return (float(end_m) if count else 0.0), count
