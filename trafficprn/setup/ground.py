"""Tracks on the ground plane: the pipeline's calibrated anchor of each box, smoothed, with
speed and heading; and the queued stops of a track under the camera's queue rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trafficprn.analytics.anchor import GroundAnchor
from trafficprn.camera.calibration import Calibration
from trafficprn.config import QueueConfig
from trafficprn.setup.tracks import ObservedTrack
from trafficprn.types import FloatArray

SMOOTH_S = 0.6
MOVING_KMH = 12.0  # slower than this a track has no heading


@dataclass(frozen=True)
class GroundTrack:
    """A track on the ground: smoothed anchor positions (n, 2) m, speed (n,) km/h and unit
    heading (n, 2) (nan while slower than MOVING_KMH)."""

    track_id: int
    class_name: str
    ts: FloatArray
    xy_m: FloatArray
    speed_kmh: FloatArray
    heading: FloatArray

    @property
    def travel_m(self) -> float:
        return float(np.hypot(*np.diff(self.xy_m, axis=0).T).sum()) if len(self.xy_m) > 1 else 0.0


@dataclass(frozen=True)
class Stop:
    """One queued stop of a track: where (m) and from when to when (s)."""

    track_id: int
    xy_m: FloatArray
    start_ts: float
    end_ts: float


def ground_tracks(tracks: Sequence[ObservedTrack], calibration: Calibration) -> list[GroundTrack]:
    """Tracks on the ground, through the pipeline's calibrated ground anchor. Samples that
    see no road are dropped; tracks with fewer than 3 left are left out."""
    anchor = GroundAnchor(calibration)
    out = []
    for t in tracks:
        xy = calibration.image_to_ground(anchor(t.boxes_px))
        ok = np.isfinite(xy).all(axis=1)
        if ok.sum() < 3:
            continue
        ts, xy = t.ts[ok], xy[ok]
        xy = _smooth(ts, xy, SMOOTH_S)
        speed, heading = _velocity(ts, xy)
        out.append(GroundTrack(t.track_id, t.class_name, ts, xy, speed, heading))
    return out


def _smooth(ts: FloatArray, xy: FloatArray, window_s: float) -> FloatArray:
    """Moving mean over `window_s` (by time, so dropped frames do not widen it)."""
    c = np.vstack([np.zeros((1, 2)), np.cumsum(xy, axis=0)])
    lo = np.searchsorted(ts, ts - window_s / 2, side="left")
    hi = np.searchsorted(ts, ts + window_s / 2, side="right")
    return np.asarray((c[hi] - c[lo]) / (hi - lo)[:, None], dtype=np.float64)


def _velocity(ts: FloatArray, xy: FloatArray, span_s: float = 1.0) -> tuple[FloatArray, FloatArray]:
    lo = np.searchsorted(ts, ts - span_s / 2, side="left")
    hi = np.clip(np.searchsorted(ts, ts + span_s / 2, side="right") - 1, 0, len(ts) - 1)
    dt = ts[hi] - ts[lo]
    d = xy[hi] - xy[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = d / dt[:, None]
        speed = np.hypot(v[:, 0], v[:, 1]) * 3.6
        heading = v / np.hypot(v[:, 0], v[:, 1])[:, None]
    speed = np.where(dt > 0, speed, np.nan)
    heading[~(speed >= MOVING_KMH)] = np.nan
    return np.asarray(speed, dtype=np.float64), np.asarray(heading, dtype=np.float64)


def queued_stops(track: GroundTrack, queue: QueueConfig) -> list[Stop]:
    """Stops of a track under the camera's queue rule: slower than stopped_kmh for >= dwell_s."""
    slow = np.nan_to_num(track.speed_kmh, nan=np.inf) < queue.stopped_kmh
    out = []
    i, n = 0, len(slow)
    while i < n:
        if not slow[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and slow[j + 1]:
            j += 1
        if track.ts[j] - track.ts[i] >= max(queue.dwell_s, 0.5):
            out.append(Stop(track.track_id, np.median(track.xy_m[i:j + 1], axis=0), float(track.ts[i]),
                            float(track.ts[j])))
        i = j + 1
    return out
