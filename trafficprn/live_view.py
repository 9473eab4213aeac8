"""The worker's live view: what a person watching a camera sees.

`LiveFrames` holds the latest frame, its tracks and a `LiveScene` (the state the drawing
needs beyond one frame: short trails, per-movement counters, the last queue of each lane),
fed by the worker's frame loop. Drawing and JPEG encoding happen in the HTTP threads, only
while someone watches. Every frame that leaves the worker has its legible plates blurred
(`privacy_blur`): where a plate can be read, never whole vehicles.

Drawn over the frame (`annotate`): leg zones and stop lines, the queue along each lane,
boxes with class and track id, trails, and a panel of per-movement counters that light up
when they tick (plus a banner, e.g. "simulated scene", when given). Sizes follow the frame
so that the view stays legible when the browser shows it 600-1300 px wide.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from trafficprn.analytics.privacy import blur_plates, plate_bands, plate_scale
from trafficprn.analytics.queue import Lane, build_lanes
from trafficprn.camera.calibration import Calibration
from trafficprn.config import CameraConfig
from trafficprn.errors import CalibrationError, ConfigError
from trafficprn.events import Event, QueueSample, VehiclePassage
from trafficprn.types import Detections

LEG_COLOURS_BGR = [(178, 114, 0), (0, 159, 230), (115, 158, 0), (167, 121, 204), (233, 180, 86), (0, 94, 213)]
QUEUE_BGR = (0, 140, 255)
TICK_BGR = (80, 230, 80)
MOVEMENT_ORDER = ("L", "T", "R", "U")
TRAIL_POINTS = 12  # ~1.2 s at 10 fps: a car at 50 km/h leaves 17 m
TRAIL_FORGET_FRAMES = 15  # a track unseen this long loses its trail
TICK_S = 1.5  # how long a counter stays lit after it ticked


@dataclass
class SceneState:
    """A copy of what `LiveScene` knows, for one drawing."""

    trails: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    ticked: dict[tuple[str, str], float] = field(default_factory=dict)
    queues: dict[str, tuple[float, int]] = field(default_factory=dict)
    passages: int = 0


class LiveScene:
    """Per-camera state of the live view, bounded: trails of live tracks only (at most
    TRAIL_POINTS points each), one counter per (entry leg, movement), one queue per lane."""

    def __init__(self, camera: CameraConfig, *, calibration: Calibration | None = None):
        self.camera = camera
        self.calibration = calibration if calibration is not None else _calibration(camera)
        self.lanes: list[Lane] = []
        if self.calibration is not None:
            try:
                self.lanes = build_lanes(camera, self.calibration)
            except ConfigError:
                self.lanes = []
        self._trails: dict[int, deque[tuple[float, float]]] = {}
        self._seen: dict[int, int] = {}
        self._frame = 0
        self._state = SceneState()
        self._lock = threading.Lock()

    def observe(self, dets: Detections | None, events: Iterable[Event] = ()) -> None:
        """One processed frame: its tracks and the events it emitted."""
        with self._lock:
            self._frame += 1
            if dets is not None and dets.track_id is not None and len(dets):
                centres = (dets.xyxy[:, :2] + dets.xyxy[:, 2:]) / 2
                for tid, (x, y) in zip(dets.track_id.tolist(), centres.tolist(), strict=True):
                    self._trails.setdefault(int(tid), deque(maxlen=TRAIL_POINTS)).append((x, y))
                    self._seen[int(tid)] = self._frame
            for tid in [t for t, last in self._seen.items() if self._frame - last > TRAIL_FORGET_FRAMES]:
                self._seen.pop(tid)
                self._trails.pop(tid, None)
            for ev in events:
                self._count(ev)

    def _count(self, ev: Event) -> None:
        st = self._state
        if isinstance(ev, VehiclePassage):
            st.passages += 1
            if ev.entry_leg and ev.movement:
                key = (ev.entry_leg, ev.movement)
                st.counts[key] += 1
                st.ticked[key] = time.monotonic()
        elif isinstance(ev, QueueSample):
            st.queues[ev.lane] = (float(ev.length_m), int(ev.vehicles))

    def state(self) -> SceneState:
        with self._lock:
            st = self._state
            return SceneState({t: list(p) for t, p in self._trails.items()}, Counter(st.counts), dict(st.ticked),
                              dict(st.queues), st.passages)


def _calibration(camera: CameraConfig) -> Calibration | None:
    try:
        return Calibration.from_camera(camera)
    except CalibrationError:
        return None


# ---------------------------------------------------------------- privacy
def privacy_blur(image_bgr: np.ndarray, dets: Detections | None, calibration: Calibration | None = None,
                 also: Detections | None = None) -> np.ndarray:
    """A copy of the frame with every plate that could be read made unreadable: the
    pipeline's plate boxes where it gives them (data["plate_xyxy"], NaN where unknown);
    elsewhere, with a ground calibration, the plate band of each vehicle whose plate spans
    enough pixels to be legible (`analytics.privacy.plate_bands`) and nothing of the others;
    without one (legibility unknown), the lower half of each vehicle box. `also`: more
    vehicle boxes (the detector's, before tracking confirms them)."""
    boxes = np.zeros((0, 4))
    classes = np.zeros(0, dtype=np.int64)
    plates = None if dets is None else dets.data.get("plate_xyxy")
    known = np.zeros(0 if dets is None else len(dets), dtype=bool)
    if dets is not None and plates is not None:
        plates = np.asarray(plates, dtype=np.float64).reshape(len(dets), -1)
        if plates.shape[1] == 4:
            known = np.all(np.isfinite(plates), axis=1)
    if dets is not None and len(dets):
        boxes, classes = dets.xyxy[~known], dets.class_id[~known]
    if also is not None and len(also):
        boxes, classes = np.concatenate([boxes, also.xyxy]), np.concatenate([classes, also.class_id])
    # one pass over every vehicle box, tracked or not yet (their plate bands may overlap)
    out = _blur_vehicles(image_bgr, boxes, classes, calibration) if len(boxes) else image_bgr.copy()
    if np.any(known) and plates is not None:
        out = blur_plates(out, plates[known], kind="plate")
    return np.asarray(out)


def _blur_vehicles(image_bgr: np.ndarray, xyxy: np.ndarray, class_id: np.ndarray,
                   calibration: Calibration | None) -> np.ndarray:
    if calibration is None:
        return np.asarray(blur_plates(image_bgr, xyxy, kind="vehicle"))
    bands = plate_bands(xyxy, plate_scale(calibration, xyxy, class_id))
    return np.asarray(blur_plates(image_bgr, bands.xyxy, margin=(0.0, 0.0), cell_px=bands.cell_px))


# ---------------------------------------------------------------- drawing
def _poly(points: Iterable[tuple[float, float]] | np.ndarray) -> np.ndarray:
    return np.round(np.asarray(list(points), dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int],
          thick: int, bg: tuple[int, int, int] | None = (20, 20, 20)) -> tuple[int, int]:
    """Text at org (bottom-left) on a filled box for contrast; its (w, h) px."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = org
    if bg is not None:
        pad = max(2, thick)
        cv2.rectangle(img, (x - pad, y - th - pad), (x + tw + pad, y + base + pad), bg, -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return tw, th + base


def _unit(image: np.ndarray) -> float:
    """Drawing unit: 1 at 640 px, 2 at 1280 px (lines and text scale with it)."""
    return max(1.0, float(max(image.shape[:2])) / 640.0)


def _draw_zones(out: np.ndarray, camera: CameraConfig, u: float) -> None:
    layer = out.copy()
    for i, leg in enumerate(camera.legs):
        colour = LEG_COLOURS_BGR[i % len(LEG_COLOURS_BGR)]
        cv2.fillPoly(layer, [_poly(leg.entry)], colour, cv2.LINE_AA)
    cv2.addWeighted(layer, 0.18, out, 0.82, 0, dst=out)
    for i, leg in enumerate(camera.legs):
        colour = LEG_COLOURS_BGR[i % len(LEG_COLOURS_BGR)]
        cv2.polylines(out, [_poly(leg.entry)], True, colour, max(1, round(1.5 * u)), cv2.LINE_AA)
        cv2.polylines(out, [_poly(leg.exit)], True, colour, max(1, round(0.75 * u)), cv2.LINE_AA)
    for lane in camera.lanes:
        cv2.polylines(out, [_poly(lane.polygon)], True, (200, 200, 200), max(1, round(0.5 * u)), cv2.LINE_AA)
        (ax, ay), (bx, by) = lane.stop_line
        cv2.line(out, (int(ax), int(ay)), (int(bx), int(by)), (255, 255, 255), max(2, round(2 * u)), cv2.LINE_AA)
    for i, leg in enumerate(camera.legs):
        x, y = np.asarray(leg.entry, dtype=np.float64).mean(axis=0)
        _text(out, leg.name, (int(x), int(y)), 0.6 * u, LEG_COLOURS_BGR[i % len(LEG_COLOURS_BGR)], max(1, round(u)))


def _draw_queues(out: np.ndarray, scene: LiveScene, st: SceneState, u: float) -> None:
    """Each lane's queue as a thick band from its stop line upstream, `length_m` long."""
    cal = scene.calibration
    if cal is None:
        return
    for lane in scene.lanes:
        length_m, vehicles = st.queues.get(lane.name, (0.0, 0))
        if length_m <= 0.5:
            continue
        mid = (lane.stop_a_m + lane.stop_b_m) / 2
        ground = mid + np.outer(np.linspace(0.0, length_m, 16), lane.upstream)
        px = cal.ground_to_image(ground)
        px = px[np.all(np.isfinite(px), axis=1)]
        if len(px) < 2:
            continue
        layer = out.copy()
        cv2.polylines(layer, [_poly(px)], False, QUEUE_BGR, max(4, round(7 * u)), cv2.LINE_AA)
        cv2.addWeighted(layer, 0.65, out, 0.35, 0, dst=out)
        end = px[-1]
        _text(out, f"{lane.name} {length_m:.0f} m", (int(end[0]) + 4, int(end[1])), 0.5 * u, QUEUE_BGR,
              max(1, round(u)))


def _draw_tracks(out: np.ndarray, dets: Detections | None, st: SceneState, class_names: list[str] | None,
                 u: float) -> None:
    if dets is None:
        return
    shown = set(dets.track_id.tolist()) if dets.track_id is not None else set()
    for tid, trail in st.trails.items():
        if tid in shown and len(trail) >= 2:  # a coasting (unreported) track leaves no trail behind
            colour = LEG_COLOURS_BGR[tid % len(LEG_COLOURS_BGR)]
            cv2.polylines(out, [_poly(trail)], False, colour, max(1, round(u)), cv2.LINE_AA)
    for j, (x1, y1, x2, y2) in enumerate(np.round(dets.xyxy).astype(int)):
        tid = int(dets.track_id[j]) if dets.track_id is not None else -1
        colour = LEG_COLOURS_BGR[tid % len(LEG_COLOURS_BGR)] if tid >= 0 else (255, 255, 255)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, max(1, round(u)))
        cls = int(dets.class_id[j])
        name = class_names[cls] if class_names and 0 <= cls < len(class_names) else str(cls)
        label = f"{name} #{tid}" if tid >= 0 else name
        _text(out, label, (x1, max(int(14 * u), y1 - int(4 * u))), 0.42 * u, (255, 255, 255), max(1, round(u)),
              bg=tuple(int(c * 0.55) for c in colour))  # type: ignore[arg-type]


def _draw_panel(out: np.ndarray, camera: CameraConfig, st: SceneState, banner: str | None, u: float) -> None:
    """Top-left: the passages so far and a row of counters per entry leg; bottom-left: the banner."""
    now = time.monotonic()
    scale, thick, line = 0.45 * u, max(1, round(u)), int(19 * u)
    gap = cv2.getTextSize("  ", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0]
    rows: list[list[tuple[str, tuple[int, int, int]]]] = [[(f"passages {st.passages}", (255, 255, 255))]]
    for leg in camera.legs:
        row = [(f"{leg.name:<2}", (255, 255, 255))]
        for m in MOVEMENT_ORDER:
            key = (leg.name, m)
            lit = now - st.ticked.get(key, -1e9) < TICK_S
            row.append((f"{m} {st.counts.get(key, 0)}", TICK_BGR if lit else (210, 210, 210)))
        rows.append(row)
    width = int(max(sum(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] + gap for t, _ in r)
                    for r in rows)) + int(10 * u)
    layer = out.copy()
    cv2.rectangle(layer, (0, 0), (width, line * len(rows) + int(8 * u)), (15, 15, 15), -1)
    cv2.addWeighted(layer, 0.7, out, 0.3, 0, dst=out)
    for i, r in enumerate(rows):
        x = int(6 * u)
        for text, colour in r:
            w, _ = _text(out, text, (x, line * (i + 1)), scale, colour, thick, bg=None)
            x += w + gap
    if banner:
        _text(out, banner, (int(6 * u), out.shape[0] - int(8 * u)), scale, (60, 220, 255), thick)


def annotate(image_bgr: np.ndarray, dets: Detections | None, camera: CameraConfig,
             class_names: list[str] | None = None, *, scene: LiveScene | None = None,
             banner: str | None = None, raw: Detections | None = None) -> np.ndarray:
    """A copy of the frame with legible plates blurred (on the tracks and on `raw`, the
    detector's boxes), then legs, lanes, stop lines, queues, tracks (boxes, class, id,
    trails) and the counter panel drawn."""
    scene = scene if scene is not None else LiveScene(camera)
    st = scene.state()
    out = privacy_blur(image_bgr, dets, scene.calibration, also=raw)
    u = _unit(out)
    _draw_zones(out, camera, u)
    _draw_queues(out, scene, st, u)
    _draw_tracks(out, dets, st, class_names, u)
    _draw_panel(out, camera, st, banner, u)
    return out


class LiveFrames:
    """The latest frame and its detections, and the camera's `LiveScene`; HTTP threads
    wait on `changed`. `banner`: a line shown on every annotated frame (e.g. the demo's
    "simulated scene")."""

    def __init__(self, camera: CameraConfig, class_names: list[str] | None = None, *, banner: str | None = None):
        self.camera = camera
        self.class_names = class_names
        self.banner = banner
        self.scene = LiveScene(camera)
        self._frame: np.ndarray | None = None
        self._dets: Detections | None = None
        self._raw: Detections | None = None
        self._seq = 0
        self.changed = threading.Condition()

    def update(self, frame_bgr: np.ndarray, dets: Detections | None, events: Iterable[Event] = (),
               raw: Detections | None = None) -> None:
        """A processed frame: its tracks, the events it emitted and the detector's boxes
        before tracking (blurred too)."""
        self.scene.observe(dets, events)
        with self.changed:
            self._frame, self._dets, self._raw = frame_bgr, dets, raw
            self._seq += 1
            self.changed.notify_all()

    def wait(self, after_seq: int, timeout_s: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self._seq != after_seq, timeout=timeout_s)
            return self._seq

    def image(self, *, annotated: bool) -> np.ndarray | None:
        """The latest frame as it leaves the worker: plates blurred, annotated or not."""
        with self.changed:
            frame, dets, raw = self._frame, self._dets, self._raw
        if frame is None:
            return None
        if annotated:
            return annotate(frame, dets, self.camera, self.class_names, scene=self.scene, banner=self.banner, raw=raw)
        return privacy_blur(frame, dets, self.scene.calibration, also=raw)

    def jpeg(self, *, annotated: bool, quality: int = 75) -> bytes | None:
        image = self.image(annotated=annotated)
        if image is None:
            return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return bytes(buf) if ok else None
