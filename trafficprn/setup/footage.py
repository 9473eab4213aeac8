"""Footage for a setup suggestion: decode it, run the detector and SORT as the pipeline
does, and collect `ObservedTrack`s; refuse footage that cannot support a suggestion.

The checks raise `SetupError` saying what is missing:
- shorter than `min_minutes` (5 by default): too few signal cycles to see every leg queue;
- a still image (an image file, or frames that do not change);
- a camera that moves: the background shifts between samples (phase correlation of
  downscaled grey frames), so image-px zones would not stay on the road;
- no moving traffic: too few tracks that travel.

The still/moving checks look at `BACKGROUND_SAMPLES` frames spread over the footage before
the detector runs, so bad footage is refused in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from trafficprn.camera.lens import make_lens
from trafficprn.camera.sources import open_source
from trafficprn.config import DetectorConfig, LensConfig
from trafficprn.detect.runtime import load_detector
from trafficprn.errors import SetupError
from trafficprn.pipeline import PipelineParams, class_map
from trafficprn.setup.tracks import ObservedTrack
from trafficprn.track.sort import SortTracker
from trafficprn.types import Detections, Detector, VehicleClass
from trafficprn.view_detector import ViewDetector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MIN_MINUTES = 5.0
BACKGROUND_SAMPLES = 24
SAMPLE_WIDTH_PX = 320  # background samples are downscaled to this width
ALIGNED_SHARE = 0.6  # undoing a real camera shift leaves the typical pixel difference below this share
STILL_DIFF = 0.5  # mean abs grey difference (0-255) below which two samples are the same picture
MAX_SHIFT_PX = 1.0  # global shift (at SAMPLE_WIDTH_PX) beyond which the camera moved
MIN_MOVING_TRACKS = 10
MOVING_MIN_PX = 40.0  # a moving track's centre travels at least this far (source px) ...
MOVING_MIN_S = 1.0  # ... over at least this long


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int
    fps: float
    image_size: tuple[int, int]  # (width, height) px

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class Footage:
    """What the detector and tracker found: tracks over `seconds` of the video."""

    video: VideoInfo
    tracks: list[ObservedTrack]
    seconds: float
    frames: int


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video file. Raises SetupError for an image file or a
    file that is not a readable video."""
    p = Path(path)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        raise SetupError(f"{p}: a still image; a suggestion needs video of moving traffic (at least "
                         f"{MIN_MINUTES:g} minutes)")
    if not p.is_file():
        raise SetupError(f"{p}: no such video file")
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise SetupError(f"{p}: cannot be decoded as video")
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if frames <= 1 or fps <= 0:
        raise SetupError(f"{p}: a still image ({frames} frame{'s' if frames != 1 else ''}); a suggestion needs "
                         f"video of moving traffic (at least {MIN_MINUTES:g} minutes)")
    return VideoInfo(p, frames, fps, (w, h))


def check_duration(video: VideoInfo, min_minutes: float = MIN_MINUTES) -> None:
    if video.seconds < min_minutes * 60.0:
        raise SetupError(f"{video.path}: {video.seconds / 60:.1f} minutes of footage; a suggestion needs at least "
                         f"{min_minutes:g} minutes so that every leg is seen queuing and leaving")


def background_samples(video: VideoInfo, n: int = BACKGROUND_SAMPLES) -> list[np.ndarray]:
    """Up to n grey frames (float32, SAMPLE_WIDTH_PX wide) spread evenly over the video."""
    cap = cv2.VideoCapture(str(video.path))
    out: list[np.ndarray] = []
    try:
        for index in np.linspace(0, max(video.frames - 2, 0), n).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            if not ok:
                continue
            h, w = frame.shape[:2]
            small = cv2.resize(frame, (SAMPLE_WIDTH_PX, max(1, round(h * SAMPLE_WIDTH_PX / w))),
                               interpolation=cv2.INTER_AREA)
            out.append(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32))
    finally:
        cap.release()
    return out


def check_background(video: VideoInfo, samples: list[np.ndarray]) -> None:
    """Raises SetupError when the samples show a still picture or a camera that moves."""
    if len(samples) < 2:
        raise SetupError(f"{video.path}: fewer than two frames could be decoded; a suggestion needs video")
    diffs = [float(np.mean(np.abs(b - a))) for a, b in zip(samples, samples[1:], strict=False)]
    if float(np.median(diffs)) < STILL_DIFF:  # (the first frame may differ by its encoding alone)
        raise SetupError(f"{video.path}: the picture never changes (a still image); a suggestion needs video "
                         "of moving traffic")
    # between neighbouring samples (a camera that sways or pans) and against the first one (a
    # camera that was pointed elsewhere once, part-way through)
    for pairs, what in ((list(zip(samples, samples[1:], strict=False)), "between"),
                        ([(samples[0], b) for b in samples[1:]], "from the first sample to")):
        moved = [_camera_shift(a, b) for a, b in pairs]
        shifted = [m for m in moved if m is not None]
        if len(shifted) >= max(2, len(moved) // 4):
            worst = max(shifted) * 100 / SAMPLE_WIDTH_PX
            raise SetupError(f"{video.path}: the camera moves (the whole picture shifts, by up to {worst:.1f} % of "
                             f"its width, {what} {len(shifted)} of {len(moved)} samples); a suggestion needs a "
                             "fixed camera, since zones are drawn in image pixels")


def _camera_shift(a: np.ndarray, b: np.ndarray) -> float | None:
    """The shift (px) of the picture from sample a to b when the camera moved between them, else None.

    The global shift is found by phase correlation, then checked: had the camera moved, undoing
    the shift brings the two pictures together (the typical pixel differs much less); where the
    camera is fixed and only vehicles move, the typical pixel shows the same road in both and a
    spurious shift only pulls it apart."""
    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a.copy(), b.copy(), window)  # copies: OpenCV windows its inputs in place
    shift = float(np.hypot(dx, dy))
    if shift <= MAX_SHIFT_PX:
        return None
    h, w = a.shape
    m = int(np.ceil(max(abs(dx), abs(dy)))) + 1
    if 2 * m >= min(h, w):
        return shift  # more than half the picture: nothing stayed
    inner = (slice(m, h - m), slice(m, w - m))
    raw = float(np.median(np.abs(a[inner] - b[inner])))
    undone = float(np.median(np.abs(cv2.warpAffine(b, np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy]]), (w, h))[inner]
                                    - a[inner])))
    return shift if undone < ALIGNED_SHARE * raw else None


def check_moving_traffic(video: VideoInfo, tracks: list[ObservedTrack], min_tracks: int = MIN_MOVING_TRACKS) -> None:
    moving = sum(is_moving(t) for t in tracks)
    if moving < min_tracks:
        raise SetupError(f"{video.path}: {moving} moving vehicle track{'s' if moving != 1 else ''} found "
                         f"({len(tracks)} in all); a suggestion needs at least {min_tracks} vehicles that drive "
                         "through the junction")


def is_moving(track: ObservedTrack) -> bool:
    c = track.centres_px
    if len(c) < 2 or track.duration_s < MOVING_MIN_S:
        return False
    return float(np.hypot(*(c.max(axis=0) - c.min(axis=0)))) >= MOVING_MIN_PX


def camera_detector(cfg: DetectorConfig, lens: LensConfig | None, model_dir: Path | None = None) -> Detector:
    """The camera's detector as the worker builds it (model, thresholds, and its dewarped
    detection views when it has any and a lens to make them with)."""
    model = cfg.model
    if model != "bundled" and not Path(model).is_absolute() and model_dir is not None and (model_dir / model).exists():
        model = str(model_dir / model)
    inner = load_detector(model, confidence=cfg.confidence, nms_iou=cfg.nms_iou, threads=cfg.threads)
    if cfg.views and lens is not None:
        return ViewDetector.with_views(inner, make_lens(lens), cfg.views, nms_iou=cfg.nms_iou)
    return inner


class _TrackCollector:
    """Per-track rows while the tracker holds the track (bounded by the footage length)."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[float, np.ndarray]]] = {}
        self.classes: dict[int, list[int]] = {}

    def add(self, ts: float, tracks: Detections) -> None:
        if tracks.track_id is None:
            return
        for i, tid in enumerate(tracks.track_id.tolist()):
            self.rows.setdefault(tid, []).append((ts, tracks.xyxy[i]))
            self.classes.setdefault(tid, []).append(int(tracks.class_id[i]))

    def tracks(self, min_points: int = 3) -> list[ObservedTrack]:
        out = []
        for tid, rows in sorted(self.rows.items()):
            if len(rows) < min_points:
                continue
            votes = np.bincount(np.asarray(self.classes[tid]), minlength=len(VehicleClass))
            name = VehicleClass(int(np.argmax(votes))).label
            ts = np.array([t for t, _ in rows], dtype=np.float64)
            boxes = np.array([b for _, b in rows], dtype=np.float64).reshape(-1, 4)
            out.append(ObservedTrack(tid, name, ts, boxes))
        return out


def collect_tracks(
    camera_name: str,
    process_fps: float,
    lens: LensConfig | None,
    video: VideoInfo,
    detector: Detector,
    *,
    minutes: float | None = None,
    progress: Callable[[int], None] | None = None,
    params: PipelineParams | None = None,
) -> Footage:
    """Run `detector` and SORT (the pipeline's settings) over the first `minutes` of the
    video (all of it: None) at `process_fps`, the camera's. Boxes centred outside the lens'
    image circle (false detections on a fisheye's black border) are dropped."""
    p = params or PipelineParams()
    classes = class_map(detector.class_names)
    tracker = SortTracker(max_age=max(1, round(p.max_age_s * process_fps)), min_hits=p.min_hits,
                          iou_threshold=p.iou_threshold)
    valid = make_lens(lens).valid if lens is not None else None
    collector = _TrackCollector()
    limit_s = None if minutes is None else minutes * 60.0
    source = open_source(str(video.path), camera_name, process_fps=process_fps, start_ts=0.0)
    frames, last_ts = 0, 0.0
    try:
        for frame, meta in source:
            if limit_s is not None and meta.ts >= limit_s:
                break
            raw = detector.detect(frame)
            vc = classes[raw.class_id] if len(raw) else np.zeros(0, dtype=np.int64)
            keep = vc >= 0
            if valid is not None and keep.any():
                xyxy = raw.xyxy
                centre = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2])
                keep &= valid(centre)
            dets = Detections(xyxy=raw.xyxy[keep], confidence=raw.confidence[keep], class_id=vc[keep])
            collector.add(meta.ts, tracker.update(dets))
            frames, last_ts = frames + 1, meta.ts
            if progress is not None:
                progress(1)
    finally:
        source.close()
    if frames == 0:
        raise SetupError(f"{video.path}: no frame could be decoded")
    return Footage(video, collector.tracks(), last_ts, frames)
