"""`render_scene`: SUMO traffic -> ground truth -> rendered video, written as a scene folder.

Folder (contract 5): video.mp4, scene.json, frames.jsonl, vehicles.json, queues.jsonl,
site.yaml. Ground-truth files depend only on (scenario, seconds, fps, camera, seed, size)
and are byte-identical for the same inputs.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trafficprn.config import dump_site
from trafficprn.sim.cameras import SimCamera, make_camera
from trafficprn.sim.ground import GroundStyle, render_background, road_texture
from trafficprn.sim.render import Lighting, Renderer
from trafficprn.sim.scenario import Scenario
from trafficprn.sim.sumo import Traffic, simulate
from trafficprn.sim.truth import queue_truth, scene_geometry, site_config, vehicle_truth
from trafficprn.sim.video import VideoWriter


@dataclass(frozen=True)
class SceneOptions:
    seconds: float = 120.0
    fps: float = 10.0
    camera: str = "fisheye"
    seed: int = 7
    size_px: tuple[int, int] | None = None  # None: 1280x1280 fisheye, 1280x720 pole
    dusk: bool = False
    video: bool = True


def scene_lighting(seed: int, dusk: bool) -> Lighting:
    rng = np.random.default_rng([seed, 1])
    az = rng.uniform(0, 2 * np.pi)
    el = rng.uniform(np.radians(35), np.radians(65)) if not dusk else np.radians(12)
    sun = np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
    if dusk:
        return Lighting(sun, ambient=0.35, diffuse=0.25, gain=0.55, tint_bgr=(1.15, 0.95, 0.85), noise_sd=5.0, dusk=True)
    return Lighting(sun, gain=float(rng.uniform(0.92, 1.06)), noise_sd=2.5)


def dusk_background(bg: np.ndarray) -> np.ndarray:
    out = bg.astype(np.float32) * np.array([0.62, 0.5, 0.45], np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def build_renderer(traffic: Traffic, cam: SimCamera, seed: int, dusk: bool) -> Renderer:
    style = GroundStyle()
    tex = road_texture(traffic.network, 90.0, style, np.random.default_rng([seed, 2]))
    bg = render_background(cam, tex, style)
    if dusk:
        bg = dusk_background(bg)
    return Renderer(cam, bg, traffic.vehicles, scene_lighting(seed, dusk), seed)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


def render_scene(sc: Scenario, out: Path, opts: SceneOptions, progress: Callable[[int], None] | None = None) -> Path:
    """Simulate, render and write a scene folder; returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    cam = make_camera(opts.camera, opts.size_px)
    with tempfile.TemporaryDirectory(prefix="trafficprn-sumo-") as tmp:
        traffic = simulate(sc, opts.seconds, opts.fps, opts.seed, Path(tmp))
    geo = scene_geometry(cam, traffic.network, sc)
    site = site_config(sc, cam, geo, opts.fps)
    renderer = build_renderer(traffic, cam, opts.seed, opts.dusk)
    start_ts = sc.start_ts
    seen: dict[int, tuple[float, float]] = {}
    writer = VideoWriter(out / "video.mp4", cam.image_size, opts.fps) if opts.video else None
    try:
        with open(out / "frames.jsonl", "w", encoding="utf-8") as frames_f:
            for k in range(traffic.n_frames):
                s = traffic.frame(k)
                ts = round(start_ts + k / opts.fps, 3)
                img, objs = renderer.render(k, traffic.vid[s], traffic.xy_m[s], traffic.heading_rad[s])
                anchors, _ = cam.project(np.column_stack([traffic.xy_m[s], np.zeros(s.stop - s.start)]))
                row_of = {int(v): i for i, v in enumerate(traffic.vid[s])}
                objects = []
                for o in objs:
                    vid = o["vid"]
                    first, _ = seen.get(vid, (ts, ts))
                    seen[vid] = (first, ts)
                    a = anchors[row_of[vid]]
                    v = traffic.vehicles[vid]
                    objects.append({"track_id": vid + 1, "class": v.cls, "xyxy": o["xyxy"],
                                    "visibility": o["visibility"], "plate_xyxy": o["plate_xyxy"],
                                    "colour": v.colour, "plate": v.plate,
                                    "anchor_px": [round(float(a[0]), 1), round(float(a[1]), 1)]})
                frames_f.write(_dumps({"index": k, "ts": ts, "objects": objects}) + "\n")
                if writer is not None:
                    writer.write(img)
                if progress is not None:
                    progress(1)
    finally:
        if writer is not None:
            writer.close()
    vehicles = vehicle_truth(traffic, geo, start_ts, seen)
    (out / "vehicles.json").write_text(json.dumps(vehicles, indent=1) + "\n", encoding="utf-8")
    queues = queue_truth(traffic, geo, site.cameras[0].queue, start_ts)
    (out / "queues.jsonl").write_text("".join(_dumps(q) + "\n" for q in queues), encoding="utf-8")
    dump_site(site, out / "site.yaml")
    scene = {"start_ts": start_ts, "fps": opts.fps, "seconds": opts.seconds, "camera": cam.name,
             "scenario": sc.name, "seed": opts.seed, "image_size": list(cam.image_size), "dusk": opts.dusk}
    (out / "scene.json").write_text(json.dumps(scene, indent=1) + "\n", encoding="utf-8")
    return out
