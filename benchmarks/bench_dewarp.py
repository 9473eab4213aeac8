"""Dewarping speed: a 1280x1280 fisheye frame -> four 640x480 views, -> a 1920x480
panorama, and 20 per-vehicle crops. Prints ms/frame (median of repeated runs).

    python benchmarks/bench_dewarp.py [--threads 2] [--repeat 50]

Target on 2 cores: <= 5 ms for the four views.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from trafficprn.camera.crops import VehicleCropper
from trafficprn.camera.dewarp import Dewarper
from trafficprn.camera.lens import make_lens
from trafficprn.config import EquidistantLens, ViewConfig

FRAME = Path(__file__).resolve().parents[1] / "examples" / "fisheye-1.jpg"


def timed(fn: Callable[[], object], repeat: int) -> str:
    """'wall ms (cpu ms)' per call, medians. On a busy machine the CPU time (all threads of
    this process) shows what the work costs when the wall clock is inflated by other load."""
    fn()  # warm up (and build cached tables)
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return f"{statistics.median(wall):6.2f} ms (cpu {statistics.median(cpu):6.2f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads (cv2.setNumThreads)")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    lens_cfg = EquidistantLens(
        model="equidistant", image_size=(1280, 1280), center_px=(640, 640), radius_px=630, fov_deg=185
    )
    lens = make_lens(lens_cfg)
    frame = cv2.imread(str(FRAME)) if FRAME.exists() else None
    if frame is None or frame.shape[:2] != (1280, 1280):
        frame = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (1280, 1280, 3), np.uint8), (0, 0), 2)
    views = [
        ViewConfig(name=n, yaw_deg=y, pitch_deg=55, fov_deg=90, size=(640, 480))
        for n, y in zip("NESW", (0, 90, 180, 270), strict=True)
    ]

    print(f"OpenCV {cv2.__version__}, {args.threads} thread(s), frame 1280x1280, median of {args.repeat}")
    for fixed in (True, False):
        d = Dewarper(lens, views, fixed_point=fixed)
        t_build = time.perf_counter()
        for v in d.view_names:
            d.table(v)
        build_ms = (time.perf_counter() - t_build) * 1000
        kind = "fixed-point maps" if fixed else "float maps     "
        four = timed(lambda d=d: d.views(frame), args.repeat)
        pano = timed(lambda d=d: d.panorama(frame, (1920, 480)), args.repeat)
        print(
            f"{kind}: four 640x480 views {four}/frame | 1920x480 panorama {pano}/frame | tables built once in {build_ms:.0f} ms"
        )

    rng = np.random.default_rng(1)
    centres = rng.uniform(200, 1080, (200, 2))
    centres = centres[lens.valid(centres)][:20]
    sizes = rng.uniform(40, 120, (20, 2))
    boxes = np.hstack([centres - sizes / 2, centres + sizes / 2])
    cropper = VehicleCropper(lens_cfg)
    natural = timed(lambda: [cropper.crop(frame, b) for b in boxes], args.repeat)
    fixed_size = timed(lambda: [cropper.crop(frame, b, (128, 96)) for b in boxes], args.repeat)
    print(f"20 per-vehicle crops: {natural}/frame (natural size, <= 256 px) | {fixed_size}/frame (128x96)")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
