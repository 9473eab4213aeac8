"""SORT speed: ms per frame at 50 and 200 objects, the batched tracker against the
filterpy reference (one KalmanFilter object per track), plus the whole per-frame cost
after the detector (tracker + traffic analytics) on the synthetic junction.

Usage: python benchmarks/bench_track.py [--frames 400]
Target: <= 0.5 ms/frame at 50 objects for the batched tracker (>= 2,000 Hz).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from trafficprn.track.reference import FilterpySortTracker
from trafficprn.track.sort import SortTracker
from trafficprn.types import Detections


def scene(n: int, frames: int, seed: int = 0) -> list[Detections]:
    """n objects moving on straight lines with 1 px jitter, 10 % dropouts, 2 false positives a frame."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1920, (n, 2))
    vel = rng.normal(0, 3, (n, 2))
    size = rng.uniform(20, 80, (n, 2))
    out = []
    for f in range(frames):
        p = pos + vel * f + rng.normal(0, 1.0, (n, 2))
        xyxy = np.concatenate([p - size / 2, p + size / 2], axis=1)[rng.random(n) > 0.1]
        fp = rng.uniform(0, 1920, (2, 2))
        xyxy = np.concatenate([xyxy, np.concatenate([fp, fp + 30], axis=1)])
        out.append(Detections(xyxy, rng.uniform(0.3, 1.0, len(xyxy)), rng.integers(0, 5, len(xyxy))))
    return out


def time_tracker(factory: type, frames: list[Detections], repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        tracker = factory(max_age=5, min_hits=3, iou_threshold=0.3)
        t0 = time.perf_counter()
        for dets in frames:
            tracker.update(dets)
        best = min(best, (time.perf_counter() - t0) / len(frames) * 1e3)
    return float(best)


def time_pipeline(n_vehicles: int, frames: int) -> float:
    """ms per frame for tracker + analytics (no detector) with ~n vehicles on the junction."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analytics"))
    from junction_factory import constant_speed, detections_at, make_site

    from trafficprn.events import ListSink
    from trafficprn.pipeline import Pipeline
    from trafficprn.types import FrameMeta

    fps = 15.0
    legs = "NESW"
    vehicles = [
        constant_speed(k + 1, legs[k % 4], legs[(k // 4 + k) % 4], 20.0 + (k % 7) * 3, k * 8.0 / n_vehicles, fps)
        for k in range(4 * n_vehicles)
    ]
    site = make_site()
    dets = [detections_at(vehicles, 8.0 + i / fps, fps) for i in range(frames)]

    class Replay:
        class_names = ["car", "bus", "truck", "motorcycle", "bicycle", "person"]
        next = Detections.empty()

        def detect(self, image: np.ndarray) -> Detections:
            return self.next

    det = Replay()
    pipe = Pipeline(site, site.cameras[0], det, sinks=[ListSink()])
    image = np.zeros((4, 4, 3), np.uint8)
    t0 = time.perf_counter()
    for i, d in enumerate(dets):
        det.next = d
        pipe.process(image, FrameMeta("cam-1", 8.0 + i / fps, i))
    ms = (time.perf_counter() - t0) / len(dets) * 1e3
    print(f"  (mean objects per frame: {np.mean([len(d) for d in dets]):.1f})")
    return ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=400)
    args = ap.parse_args()
    print(f"SORT ms/frame over {args.frames} frames (best of 3), max_age 5, min_hits 3, iou 0.3")
    print(f"{'objects':>8} {'batched':>10} {'filterpy':>10} {'speed-up':>9} {'batched Hz':>11}")
    for n in (50, 200):
        frames = scene(n, args.frames)
        fast = time_tracker(SortTracker, frames)
        ref = time_tracker(FilterpySortTracker, frames, repeats=1)
        print(f"{n:>8} {fast:>10.3f} {ref:>10.3f} {ref / fast:>8.1f}x {1000 / fast:>11.0f}")
    print("tracker + analytics (pipeline after the detector) on the synthetic junction:")
    ms = time_pipeline(20, 300)
    print(f"  {ms:.3f} ms/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
