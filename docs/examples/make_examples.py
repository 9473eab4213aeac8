"""Render the committed example frames of the default scenario (seed 7):
docs/examples/sim_pole.png (1280x720 pinhole) and sim_fisheye.png (1280x1280 fisheye, saved at 960x960).
Sensor noise is off so the PNGs stay small; everything else is as in `trafficprn sim scene`.

    .venv/bin/python docs/examples/make_examples.py
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import cv2

from trafficprn.sim.cameras import make_camera
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import build_renderer
from trafficprn.sim.sumo import simulate

HERE = Path(__file__).resolve().parent
FRAMES = {"pole": 540, "fisheye": 250}  # frame index at 10 fps: a queue, a truck or bus, a close plate


def main() -> None:
    sc = load_scenario("default")
    with tempfile.TemporaryDirectory() as tmp:
        traffic = simulate(sc, 60, 10.0, 7, Path(tmp))
    for camera, k in FRAMES.items():
        cam = make_camera(camera)
        renderer = build_renderer(traffic, cam, 7, False)
        renderer.light = dataclasses.replace(renderer.light, noise_sd=0.0)
        s = traffic.frame(k)
        img, _ = renderer.render(k, traffic.vid[s], traffic.xy_m[s], traffic.heading_rad[s])
        if camera == "fisheye":  # keep the PNG small; the pole frame stays full size for the plates
            img = cv2.resize(img, (960, 960), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(HERE / f"sim_{camera}.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])


if __name__ == "__main__":
    main()
