"""Sim render speed: frames/s of render + H.264 encode, for the pole pinhole (1280x720) and
the overhead fisheye (1280x1280), on the default scenario. Setup (SUMO, background) is
reported separately. Target: >= 10 frames/s on 2 cores.

    .venv/bin/python benchmarks/bench_sim.py [--frames 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from trafficprn.sim.cameras import make_camera
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import build_renderer
from trafficprn.sim.sumo import simulate
from trafficprn.sim.video import VideoWriter


def bench(camera: str, frames: int) -> None:
    sc = load_scenario("default")
    fps = 10.0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        traffic = simulate(sc, frames / fps, fps, 7, Path(tmp) / "sumo")
        t1 = time.perf_counter()
        cam = make_camera(camera)
        renderer = build_renderer(traffic, cam, 7, False)
        t2 = time.perf_counter()
        n_objects = 0
        with VideoWriter(Path(tmp) / "video.mp4", cam.image_size, fps) as writer:
            for k in range(traffic.n_frames):
                s = traffic.frame(k)
                img, objs = renderer.render(k, traffic.vid[s], traffic.xy_m[s], traffic.heading_rad[s])
                n_objects += len(objs)
                writer.write(img)
        t3 = time.perf_counter()
    w, h = cam.image_size
    print(f"{camera:8s} {w}x{h}: {traffic.n_frames / (t3 - t2):6.1f} frames/s render+encode "
          f"({n_objects / traffic.n_frames:.1f} vehicles/frame; setup: sumo {t1 - t0:.1f} s, background {t2 - t1:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    for camera in ("pole", "fisheye"):
        bench(camera, args.frames)


if __name__ == "__main__":
    main()
