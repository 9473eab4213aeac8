"""Running a detector over an image or a video file: reading, JSON records, drawing.

Used by `trafficprn detect`; every failure to read or write a file is an `InputError`
naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trafficprn.errors import InputError
from trafficprn.types import Detections, Detector

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".ts", ".mpg", ".mpeg"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 (H, W, 3) from an image file."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path}: cannot read image (not a supported or intact image file)")
    return image


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # from the container; 0 when unknown
    width_px: int
    height_px: int


def iter_video(path: Path) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Frames of a video file. When the container announces N frames and fewer can be
    decoded, the iterator raises `InputError` ("ended early") after the last good one."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError(f"{path}: cannot open video (not a supported or intact video file)")
    info = VideoInfo(
        fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
        width_px=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height_px=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )

    def frames() -> Iterator[np.ndarray]:
        read = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                read += 1
                yield frame
        finally:
            cap.release()
        if read == 0:
            raise InputError(f"{path}: video has no decodable frames")
        if info.frame_count and read < info.frame_count:
            raise InputError(f"{path}: video ended early: decoded {read} of {info.frame_count} frames")

    return info, frames()


def detection_records(dets: Detections, class_names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "class": class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c)),
            "class_id": int(c),
            "confidence": round(float(p), 4),
            "xyxy": [round(float(v), 1) for v in box],
        }
        for box, p, c in zip(dets.xyxy, dets.confidence, dets.class_id, strict=True)
    ]


def _colour(class_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(class_id * 7919 + 17)
    r, g, b = (int(v) for v in rng.integers(64, 256, size=3))
    return b, g, r


def draw_detections(image_bgr: np.ndarray, dets: Detections, class_names: list[str]) -> np.ndarray:
    """A copy of the image with boxes and `class confidence` labels drawn."""
    out = image_bgr.copy()
    for box, p, c in zip(dets.xyxy, dets.confidence, dets.class_id, strict=True):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = _colour(int(c))
        name = class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        label = f"{name} {p:.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(out, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, max(th + 4, y1)), colour, -1)
        cv2.putText(out, label, (x1 + 1, max(th + 1, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    return out


def summary(dets: Detections, class_names: list[str]) -> str:
    counts: dict[str, int] = {}
    for c in dets.class_id:
        name = class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c))
        counts[name] = counts.get(name, 0) + 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{len(dets)} detections" + (f" ({parts})" if parts else "")


def run_on_image(
    detector: Detector, source: Path, *, as_json: bool, out: Path | None, emit: Callable[[str], None]
) -> int:
    image = read_image(source)
    dets = detector.detect(image)
    records = detection_records(dets, detector.class_names)
    if as_json:
        h, w = image.shape[:2]
        emit(json.dumps({"source": str(source), "width": w, "height": h, "detections": records}))
    else:
        emit(f"{source}: {summary(dets, detector.class_names)}")
        for r in records:
            emit(f"  {r['class']:<14} {r['confidence']:.3f}  xyxy={r['xyxy']}")
    if out is not None:
        annotated = draw_detections(image, dets, detector.class_names)
        ok, encoded = cv2.imencode(out.suffix or ".png", annotated)
        if not ok:
            raise InputError(f"{out}: cannot encode an image of this type")
        try:
            encoded.tofile(str(out))
        except OSError as exc:
            raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    return 0


def run_on_video(
    detector: Detector, source: Path, *, as_json: bool, out: Path | None, emit: Callable[[str], None]
) -> int:
    info, frames = iter_video(source)
    writer: cv2.VideoWriter | None = None
    total = 0
    try:
        for index, frame in enumerate(frames):
            dets = detector.detect(frame)
            total += len(dets)
            if as_json:
                emit(json.dumps({"frame": index, "detections": detection_records(dets, detector.class_names)}))
            else:
                emit(f"frame {index}: {summary(dets, detector.class_names)}")
            if out is not None:
                if writer is None:
                    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if out.suffix.lower() in (".mp4", ".m4v") else "MJPG"))
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(out), fourcc, info.fps or 25.0, (w, h))
                    if not writer.isOpened():
                        raise InputError(f"{out}: cannot open for writing a video")
                writer.write(draw_detections(frame, dets, detector.class_names))
    finally:
        if writer is not None:
            writer.release()
    if not as_json:
        emit(f"{source}: {total} detections in total")
    return 0
