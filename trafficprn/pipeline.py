"""One camera's stages: detector -> SORT -> traffic analytics -> sinks.

The pipeline gets frames from its caller (a worker loop, `process`, a test), its sinks
and optional colour / plate / privacy components injected, and does no I/O of its own.
Per frame it runs the detector once, maps the model's classes onto `VehicleClass`
(other objects are dropped), tracks in image px, updates the per-track analytics and
emits `VehiclePassage` (track ended) and `QueueSample` (every second) events. Colour and
plates read a few perspective crops per track (largest box so far, at most every
`crop_every` frames), so their cost per frame stays small; colour is classified on a
background thread (`colour_workers`), plates on the fuser's, so that on a box with a
spare core neither holds up the frame loop.

`process_stream(frames)` is `process` over a stream with the detector one frame ahead on
its own thread: while frame k is tracked, analysed and cropped, frame k+1 is already being
detected (ONNX Runtime releases the GIL). On a 2-core box the detector's core then never
waits for the Python stages. Results come in frame order, the same as `process` gives.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from trafficprn.analytics.tracks import AnalyticsParams, TrafficAnalytics
from trafficprn.config import CameraConfig, SiteConfig
from trafficprn.events import (
    CameraStatus,
    Event,
    EventSink,
    PlateRead,
    QueueSample,
    VehiclePassage,
    event_uuid,
    source_identity,
)
from trafficprn.track.sort import SortTracker
from trafficprn.types import Detections, Detector, FloatArray, FrameMeta, IntArray, VehicleClass


class ColourClassifier(Protocol):
    def classify(self, crop_bgr: np.ndarray) -> Any: ...


class TrackPlateFuser(Protocol):
    def offer(self, track_id: int, crop_bgr: np.ndarray, quality: float) -> Any: ...

    def result(self, track_id: int, *, wait_s: float = 0.0) -> Any: ...

    def forget(self, track_id: int) -> None: ...


class PlatePrivacy(Protocol):
    def apply(self, text: str) -> tuple[str | None, str | None]: ...


@dataclass(frozen=True)
class PipelineParams:
    """Tracker and crop settings. max_age_s is turned into frames at the camera's process_fps."""

    max_age_s: float = 1.0
    min_hits: int = 3
    iou_threshold: float = 0.3
    crop_every: int = 5  # frames between two crops of one track
    crops_per_track: int = 6
    min_crop_px: float = 24.0  # smaller boxes are not cropped
    edge_margin_px: float = 2.0  # boxes touching the image border are not cropped
    plate_wait_s: float = 0.0  # at a track's end, wait this long for its plate reads in flight (offline: > 0)
    # colour is read from crops whose box other boxes cover by at most 1 - this share (an overlapped
    # box shows the other vehicle); a track with only overlapped crops falls back to those
    min_colour_purity: float = 0.8
    colour_workers: int = 1  # threads classifying colour crops (0: on the frame loop's thread)
    # plates are only read where one can be: where a plate this wide (m) spans at least
    # min_plate_width_px of the source image at the vehicle (the camera's finer ground axis).
    # On an overhead 1280 px fisheye plates span 2-20 px and OCR there only burns CPU.
    plate_width_m: float = 0.52
    min_plate_width_px: float = 40.0
    detect_ahead: int = 1  # process_stream: frames detected ahead of the analytics (0: in turn)
    analytics: AnalyticsParams = field(default_factory=AnalyticsParams)


@dataclass(frozen=True)
class FrameResult:
    """detections: this frame's reported tracks (class_id = VehicleClass values); events: emitted;
    raw: the detector's vehicles before tracking (a track is reported from its min_hits-th
    frame on, so the live view blurs plates on these too)."""

    detections: Detections
    events: list[Event]
    raw: Detections | None = None


@dataclass
class _CropState:
    last_frame: int = -(10**9)
    best_area: float = 0.0
    crops: int = 0
    colours: list[Any] = field(default_factory=list)
    overlapped_colours: list[Any] = field(default_factory=list)


def class_map(class_names: list[str]) -> IntArray:
    """(C,) VehicleClass value per model class, -1 for classes that are not vehicles."""
    try:
        from trafficprn.detect.classes import to_vehicle_class
    except ImportError:  # pragma: no cover - the detect package ships it

        def to_vehicle_class(name: str) -> VehicleClass | None:
            try:
                return VehicleClass.from_label(name.strip().lower())
            except ValueError:
                return None

    out = np.full(len(class_names), -1, dtype=np.int64)
    for i, name in enumerate(class_names):
        vc = to_vehicle_class(name)
        if vc is not None and vc != VehicleClass.PERSON:
            out[i] = int(vc)
    return out


def calibrated_area_px(camera: CameraConfig) -> FloatArray | None:
    """Convex hull (K, 2) in image px of the surveyed calibration points, or None (pose only)."""
    pts = np.array([p.image_px for p in camera.calibration.points], dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return None
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(pts)
    except QhullError:
        return None
    return np.asarray(pts[hull.vertices], dtype=np.float64)


class Pipeline:
    """Per-camera processing. `process(frame_bgr, meta)` per frame; `finish(ts)` at the end."""

    def __init__(
        self,
        site: SiteConfig,
        camera: CameraConfig,
        detector: Detector,
        *,
        sinks: list[EventSink],
        colour: ColourClassifier | None = None,
        plates: TrackPlateFuser | None = None,
        privacy: PlatePrivacy | None = None,
        params: PipelineParams | None = None,
        calibration: Any = None,
        source: str | None = None,
    ):
        from trafficprn.camera.calibration import Calibration

        self.site = site
        # What the derived event ids name as the footage: `source` (process: the video
        # file), else the camera's configured source.
        self.source_id = source_identity(source if source is not None else camera.source)
        self.camera = camera
        self.detector = detector
        self.sinks = sinks
        self.colour = colour
        self.plates = plates
        self.privacy = privacy
        self.params = params or PipelineParams()
        p = self.params
        self.classes = class_map(detector.class_names)
        self.tracker = SortTracker(
            max_age=max(1, round(p.max_age_s * camera.process_fps)), min_hits=p.min_hits, iou_threshold=p.iou_threshold
        )
        self.calibration = calibration if calibration is not None else Calibration.from_camera(camera)
        self.analytics = TrafficAnalytics(
            site, camera, self.calibration, calibrated_area_px=calibrated_area_px(camera), params=p.analytics
        )
        self.cropper: Any = None
        if colour is not None or plates is not None:
            from trafficprn.camera.crops import VehicleCropper

            self.cropper = VehicleCropper(camera.lens)
        self._detect_pool: ThreadPoolExecutor | None = None
        self._colour_pool: ThreadPoolExecutor | None = None
        if colour is not None and p.colour_workers > 0:
            self._colour_pool = ThreadPoolExecutor(max_workers=p.colour_workers, thread_name_prefix="colour")
        self._crops: dict[int, _CropState] = {}
        self._ended: OrderedDict[int, tuple[list[Any], Any]] = OrderedDict()  # colours, plate of ended tracks
        self.frames = 0

    # ------------------------------------------------------------------ per frame
    def process(self, frame_bgr: np.ndarray, meta: FrameMeta) -> FrameResult:
        return self.process_detections(self.detect(frame_bgr), meta, frame_bgr)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """The detector's vehicles in the frame (class_id: VehicleClass values)."""
        raw = self.detector.detect(frame_bgr)
        vehicle_class = self.classes[raw.class_id] if len(raw) else np.zeros(0, dtype=np.int64)
        keep = vehicle_class >= 0
        return Detections(xyxy=raw.xyxy[keep], confidence=raw.confidence[keep], class_id=vehicle_class[keep])

    def process_stream(
        self, frames: Iterable[tuple[np.ndarray, FrameMeta]]
    ) -> Iterator[tuple[np.ndarray, FrameMeta, FrameResult]]:
        """(frame, meta, result) for each frame, in order, with the detector running
        `params.detect_ahead` frames ahead on its own thread. Stopping early (close the
        generator) waits for the detections in flight and drops them."""
        ahead = self.params.detect_ahead
        if ahead <= 0:
            for frame, meta in frames:
                yield frame, meta, self.process(frame, meta)
            return
        if self._detect_pool is None:
            self._detect_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")
        pending: deque[tuple[np.ndarray, FrameMeta, Future[Detections]]] = deque()
        try:
            for frame, meta in frames:
                pending.append((frame, meta, self._detect_pool.submit(self.detect, frame)))
                if len(pending) > ahead:
                    f, m, fut = pending.popleft()
                    yield f, m, self.process_detections(fut.result(), m, f)
            while pending:
                f, m, fut = pending.popleft()
                yield f, m, self.process_detections(fut.result(), m, f)
        finally:
            for _, _, fut in pending:
                fut.cancel()
            for _, _, fut in pending:
                if not fut.cancelled():
                    fut.exception()  # wait; a failure of a dropped frame is not raised

    def process_detections(self, dets: Detections, meta: FrameMeta, frame_bgr: np.ndarray | None = None) -> FrameResult:
        """The stages after the detector: dets carry VehicleClass values as class_id."""
        self.frames += 1
        tracks = self.tracker.update(dets)
        if frame_bgr is not None and self.cropper is not None and len(tracks):
            self._take_crops(frame_bgr, tracks, meta.index)
        live = self.tracker.live_ids
        events = self.analytics.update(meta.ts, tracks, live)
        out = self._deliver(events, live)
        return FrameResult(tracks, out, dets)

    def finish(self, ts: float) -> list[Event]:
        """End all live tracks (end of video / shutdown), emit their passages."""
        return self._deliver(self.analytics.finish(ts), np.zeros(0, dtype=np.int64))

    def close(self) -> None:
        """Stop the detector and colour threads (the injected sinks and plate fuser belong
        to the caller)."""
        if self._detect_pool is not None:
            self._detect_pool.shutdown(wait=True, cancel_futures=True)
            self._detect_pool = None
        if self._colour_pool is not None:
            self._colour_pool.shutdown(wait=True, cancel_futures=True)
            self._colour_pool = None

    # ------------------------------------------------------------------ events
    def _deliver(self, events: list[Event], live: IntArray) -> list[Event]:
        self._retire(live)
        out: list[Event] = []
        for ev in map(self._stamp, events):
            if isinstance(ev, VehiclePassage):
                ev = self._enrich(ev)
                if ev.plate_confidence is not None and (ev.plate_text or ev.plate_hash):
                    out.append(ev)
                    out.append(
                        self._stamp(
                            PlateRead(self.camera.name, ev.track_id, ev.passage_ts, ev.plate_confidence,
                                      ev.plate_text, ev.plate_hash)
                        )
                    )
                    continue
            out.append(ev)
        for ev in out:
            for sink in self.sinks:
                sink.emit(ev)
        return out

    def _stamp(self, ev: Event) -> Event:
        """The event with this site's name and, for passages and plate reads, the id
        derived from what it describes (`events.event_uuid`)."""
        site = self.site.site.name
        if isinstance(ev, VehiclePassage):
            uid = event_uuid("passage", site, ev.camera, self.source_id, ev.first_seen_ts, ev.track_id)
            return replace(ev, site=site, uuid=uid)
        if isinstance(ev, PlateRead):
            uid = event_uuid("plate_read", site, ev.camera, self.source_id, ev.ts, ev.track_id)
            return replace(ev, site=site, uuid=uid)
        if isinstance(ev, QueueSample | CameraStatus):
            return replace(ev, site=site)
        return ev

    def _retire(self, live: IntArray) -> None:
        """Move crop results of tracks the tracker dropped into a small bounded store."""
        if not self._crops:
            return
        alive = set(live.tolist())
        for tid in [t for t in self._crops if t not in alive]:
            state = self._crops.pop(tid)
            plate = None
            if self.plates is not None:
                plate = self.plates.result(tid, wait_s=self.params.plate_wait_s)
                self.plates.forget(tid)
            colours = [c.result() if isinstance(c, Future) else c for c in state.colours or state.overlapped_colours]
            self._ended[tid] = (colours, plate)
            while len(self._ended) > 512:
                self._ended.popitem(last=False)

    def _enrich(self, ev: VehiclePassage) -> VehiclePassage:
        ids = [*ev.extras.get("merged_track_ids", []), ev.track_id]
        colours: list[Any] = []
        plates: list[Any] = []
        for tid in ids:
            colours_t, plate = self._ended.pop(tid, ([], None))
            colours += colours_t
            if plate is not None:
                plates.append(plate)
        update: dict[str, Any] = {}
        if self.colour is not None and colours:
            from trafficprn.analytics.colour import vote_colours

            best = vote_colours(colours)
            if best is not None:
                update.update(colour=best.name, colour_confidence=float(best.confidence))
        if plates:
            plate = max(plates, key=lambda r: r.confidence)
            text, digest = (plate.text, None) if self.privacy is None else self.privacy.apply(plate.text)
            if text is not None or digest is not None:
                update.update(plate_text=text, plate_hash=digest, plate_confidence=float(plate.confidence))
        return replace(ev, **update) if update else ev

    # ------------------------------------------------------------------ crops
    def _take_crops(self, frame_bgr: np.ndarray, tracks: Detections, frame_index: int) -> None:
        p = self.params
        h, w = frame_bgr.shape[:2]
        xyxy = tracks.xyxy
        bw, bh = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        inside = (
            (xyxy[:, 0] > p.edge_margin_px) & (xyxy[:, 1] > p.edge_margin_px)
            & (xyxy[:, 2] < w - p.edge_margin_px) & (xyxy[:, 3] < h - p.edge_margin_px)
            & (np.minimum(bw, bh) >= p.min_crop_px)
        )
        if tracks.track_id is None:
            return
        # a (false) box centred outside a fisheye's image circle has no view to crop
        centre = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2])
        inside &= self.cropper.lens.valid(centre)
        purity: FloatArray | None = None
        plate_px: FloatArray | None = None
        for i in np.flatnonzero(inside):
            tid = int(tracks.track_id[i])
            st = self._crops.setdefault(tid, _CropState())
            area = float(bw[i] * bh[i])
            if st.crops >= p.crops_per_track or frame_index - st.last_frame < p.crop_every or area < st.best_area:
                continue
            crop = self.cropper.crop(frame_bgr, xyxy[i])
            st.last_frame, st.best_area, st.crops = frame_index, area, st.crops + 1
            if self.colour is not None:
                if purity is None:
                    from trafficprn.analytics.colour import box_purity

                    purity = box_purity(xyxy)
                clean = purity[i] >= p.min_colour_purity
                if clean:
                    st.colours.append(self._classify_colour(self.colour, crop))
                elif not st.colours:  # overlapped crops only count while the track has no clean one
                    st.overlapped_colours.append(self._classify_colour(self.colour, crop))
            if self.plates is not None:
                if plate_px is None:
                    plate_px = self._plate_width_px(centre)
                if plate_px[i] >= p.min_plate_width_px:
                    self.plates.offer(tid, crop, area)

    def _plate_width_px(self, centre_px: FloatArray) -> FloatArray:
        """(N,) px that a plate `plate_width_m` wide spans at each box centre (N, 2), from the
        ground calibration's finer axis there (0 where the centre sees no ground)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            width = self.params.plate_width_m / self.calibration.finest_metres_per_px(centre_px)
        return np.asarray(np.where(np.isfinite(width), width, 0.0), dtype=np.float64)

    def _classify_colour(self, colour: ColourClassifier, crop: np.ndarray) -> Any:
        """A ColourResult, or a Future of one when colour runs on its own thread."""
        if self._colour_pool is not None:
            return self._colour_pool.submit(colour.classify, crop)
        return colour.classify(crop)


def stream_results(pipeline: Any, frames: Iterable[tuple[np.ndarray, FrameMeta]]) -> Iterator[tuple[np.ndarray, FrameMeta, Any]]:
    """(frame, meta, result) per frame: the pipeline's `process_stream` (detector ahead) where
    it has one, else its `process` in turn (any object with `process(frame, meta)`)."""
    stream = getattr(pipeline, "process_stream", None)
    if stream is not None:
        return iter(stream(frames))
    return ((frame, meta, pipeline.process(frame, meta)) for frame, meta in frames)
