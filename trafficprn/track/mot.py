"""MOTChallenge CSV I/O so the tracker can be scored with standard tools (py-motmetrics).

Detections: ``frame, id, bb_left, bb_top, bb_width, bb_height, conf[, x, y, z]`` per row,
frames counted from 1, boxes in image px (id is -1 for detections). Tracker output uses
the same layout with the track id and ``-1, -1, -1`` for the world coordinates.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from trafficprn.errors import InputError, TrackingError
from trafficprn.track.sort import SortTracker
from trafficprn.types import Detections, FloatArray


def parse_mot_rows(lines: Iterator[str] | list[str], source: str = "<mot>") -> FloatArray:
    """Parse MOT rows into an (N, 7) array: frame, id, left, top, width, height, conf.

    Blank lines and ``#`` comments are skipped. A row with fewer than 6 numbers, a
    non-number, a frame < 1 or a negative width/height raises TrackingError naming
    ``source:line``.
    """
    rows: list[list[float]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")] if "," in line else line.split()
        where = f"{source}:{number}"
        if len(parts) < 6:
            raise TrackingError(f"{where}: expected at least 6 comma-separated values, got {len(parts)}: {line!r}")
        try:
            values = [float(p) for p in parts[:7]]
        except ValueError:
            raise TrackingError(f"{where}: expected numbers, got {line!r}") from None
        if not all(np.isfinite(values)):
            raise TrackingError(f"{where}: expected finite numbers, got {line!r}")
        if values[0] < 1 or values[0] != int(values[0]):
            raise TrackingError(f"{where}: frame must be an integer >= 1, got {parts[0]!r}")
        if values[4] < 0 or values[5] < 0:
            raise TrackingError(f"{where}: box width and height must be >= 0, got {parts[4]}, {parts[5]}")
        if len(values) < 7:
            values.append(1.0)
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def read_mot(path: str | Path) -> FloatArray:
    """Read a MOTChallenge file; see `parse_mot_rows`."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            return parse_mot_rows(fh, source=str(path))
    except OSError as exc:
        raise InputError(f"cannot read MOT file {path}: {exc.strerror}") from None


def frames_of(rows: FloatArray, last_frame: int | None = None) -> Iterator[tuple[int, Detections]]:
    """Group MOT rows (N, 7) by frame: yields (frame, Detections) for every frame from 1 to
    the last one, empty frames included (the tracker must age its tracks on them)."""
    frame_col = rows[:, 0].astype(np.int64)
    last = int(frame_col.max()) if len(rows) else 0
    if last_frame is not None:
        last = max(last, last_frame)
    order = np.argsort(frame_col, kind="stable")
    rows, frame_col = rows[order], frame_col[order]
    bounds = np.searchsorted(frame_col, np.arange(1, last + 2))
    for frame in range(1, last + 1):
        chunk = rows[bounds[frame - 1] : bounds[frame]]
        xyxy = np.concatenate([chunk[:, 2:4], chunk[:, 2:4] + chunk[:, 4:6]], axis=1)
        conf = np.clip(chunk[:, 6], 0.0, 1.0)
        yield frame, Detections(xyxy=xyxy, confidence=conf, class_id=np.zeros(len(chunk), dtype=np.int64))


def track_rows(rows: FloatArray, tracker: SortTracker) -> FloatArray:
    """Run `tracker` over MOT detection rows; returns MOT track rows (K, 6): frame, id,
    left, top, width, height."""
    out: list[FloatArray] = []
    for frame, dets in frames_of(rows):
        tracks = tracker.update(dets)
        if len(tracks) and tracks.track_id is not None:
            xywh = np.concatenate([tracks.xyxy[:, :2], tracks.xyxy[:, 2:] - tracks.xyxy[:, :2]], axis=1)
            block = np.column_stack([np.full(len(tracks), frame), tracks.track_id, xywh])
            out.append(block)
    return np.concatenate(out) if out else np.zeros((0, 6))


def write_mot(rows: FloatArray, fh: TextIO) -> None:
    """Write MOT track rows (K, 6) as ``frame,id,left,top,w,h,1,-1,-1,-1``."""
    for r in rows:
        fh.write(f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},1,-1,-1,-1\n")
