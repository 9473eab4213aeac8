"""`write_dataset`: a YOLO dataset of sim renders across random scenarios, camera poses,
lens models (fisheye equidistant/equisolid/stereographic/Kannala-Brandt and pinhole with
distortion) and lighting.

Layout: images/{train,val}/*.jpg, labels/{train,val}/*.txt (``class cx cy w h``,
normalised), data.yaml (path, train, val, nc, names). Classes: car, bus, truck,
motorcycle, bicycle (0..4). Whole scenes go to train or val, so the split does not leak.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from trafficprn.config import (
    EquidistantLens,
    EquisolidLens,
    KannalaBrandtLens,
    LensConfig,
    PinholeLens,
    StereographicLens,
)
from trafficprn.sim.cameras import SimCamera, look_rotation
from trafficprn.sim.ground import GroundStyle, render_background, road_texture
from trafficprn.sim.render import Lighting, Renderer
from trafficprn.sim.scenario import CLASSES, LEG_NAMES, Scenario, parse_scenario
from trafficprn.sim.scene import dusk_background
from trafficprn.sim.sumo import Traffic, simulate

MIN_BOX_PX = 3.0
MIN_VISIBILITY = 0.3


@dataclass(frozen=True)
class DatasetOptions:
    images: int = 1000
    size_px: int = 416
    seed: int = 0
    val_fraction: float = 0.1
    frames_per_view: int = 12
    views_per_scenario: int = 3
    render_scale: float = 2.0  # render at size * scale (long side), then area-downsample
    fisheye_share: float = 0.6  # overhead fisheye views; the rest are pole pinholes


def random_scenario(rng: np.random.Generator, index: int) -> Scenario:
    """A random but valid 4-leg junction with a class mix rich in heavy and two-wheel vehicles."""
    legs = []
    for name in LEG_NAMES:
        n_in = int(rng.integers(1, 4))
        lanes = ["RT", "LTU"] if n_in == 2 else ["RTL"] if n_in == 1 else ["R", "T", "LU"]
        turns = rng.dirichlet([2, 5, 2])
        legs.append({"name": name, "length_m": 150, "lanes_in": lanes, "lanes_out": int(rng.integers(1, 4)),
                     "demand_vph": float(rng.uniform(250, 330) * n_in),
                     "turns": {"L": float(turns[0]), "T": float(turns[1]), "R": float(1 - turns[0] - turns[1]),
                               "U": 0.0}})
    green = rng.uniform(20, 35, 2).round()
    data: dict[str, Any] = {
        "name": f"random-{index}", "lane_width_m": float(rng.uniform(3.0, 3.7)), "warmup_s": 60,
        "plate_format": str(rng.choice(["LLL-DDDD", "LL-DDDD", "DLLL-DDD", "LLDD LLL"])),
        "legs": legs,
        "signal": {"cycle_s": float(green.sum() + 10), "yellow_s": 3, "all_red_s": 2,
                   "phases": [{"legs": ["N", "S"], "green_s": float(green[0])},
                              {"legs": ["E", "W"], "green_s": float(green[1])}]},
        "vehicle_types": {"car": {"share": 0.55, "max_speed_kmh": 60}, "bus": {"share": 0.1, "max_speed_kmh": 50},
                          "truck": {"share": 0.14, "max_speed_kmh": 50},
                          "motorcycle": {"share": 0.11, "max_speed_kmh": 60},
                          "bicycle": {"share": 0.1, "max_speed_kmh": 22, "speed_sd": 0.2}},
        "colours": {c: float(w) for c, w in zip(
            ["white", "black", "grey", "silver", "red", "blue", "green", "yellow", "orange", "brown", "beige"],
            rng.uniform(0.3, 1.0, 11), strict=True)},
    }
    return parse_scenario(data, source=f"random-{index}")


def random_camera(rng: np.random.Generator, fisheye_share: float = DatasetOptions.fisheye_share) -> SimCamera:
    """A random overhead fisheye (`fisheye_share` of the draws) or pole pinhole."""
    if rng.random() < fisheye_share:
        w = 1280
        h = int(rng.choice([1280, 960]))
        fov = float(rng.uniform(180, 200))
        radius = min(w, h) / 2 * float(rng.uniform(0.93, 1.0)) if h == w else w / 2 * 0.98
        centre = (w / 2 + float(rng.normal(0, 4)), h / 2 + float(rng.normal(0, 4)))
        kind = rng.choice(["equidistant", "equidistant", "equisolid", "stereographic", "kannala_brandt"])
        lens: LensConfig
        if kind == "kannala_brandt":
            f = radius / np.radians(fov / 2)
            lens = KannalaBrandtLens(model="kannala_brandt", image_size=(w, h), fx=f, fy=f, cx=centre[0], cy=centre[1],
                                     k=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.01, 0.01)), 0.0, 0.0),
                                     fov_deg=fov)
        elif kind == "equisolid":
            lens = EquisolidLens(model="equisolid", image_size=(w, h), center_px=centre, radius_px=radius,
                                 fov_deg=min(fov, 190.0))
        elif kind == "stereographic":
            lens = StereographicLens(model="stereographic", image_size=(w, h), center_px=centre, radius_px=radius,
                                     fov_deg=min(fov, 190.0))
        else:
            lens = EquidistantLens(model="equidistant", image_size=(w, h), center_px=centre, radius_px=radius,
                                   fov_deg=fov)
        height = float(rng.uniform(6, 14))
        pos = np.array([rng.uniform(-6, 6), rng.uniform(-6, 6), height])
        tilt = np.radians(rng.uniform(0, 15))
        az = rng.uniform(0, 2 * np.pi)
        fwd = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
        rot = look_rotation(fwd, north_up=True)
        yaw = rng.uniform(0, 2 * np.pi)  # spin about the optical axis
        c, s = np.cos(yaw), np.sin(yaw)
        rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) @ rot
        return SimCamera("fisheye-1", lens, rot, pos)
    w, h = 1280, 720
    hfov = float(rng.uniform(45, 95))
    f = (w / 2) / np.tan(np.radians(hfov / 2))
    lens = PinholeLens(model="pinhole", image_size=(w, h), fx=f, fy=f, cx=w / 2, cy=h / 2,
                       dist=(float(rng.uniform(-0.25, 0.03)), float(rng.uniform(0, 0.05)), 0.0, 0.0, 0.0))
    leg = rng.integers(4)
    ang = np.pi / 2 - leg * np.pi / 2  # N, E, S, W
    along = np.array([np.cos(ang), np.sin(ang)])
    side = np.array([along[1], -along[0]])
    d = rng.uniform(18, 55)
    pos2 = along * d + side * rng.uniform(-14, 14)
    pos = np.array([pos2[0], pos2[1], rng.uniform(4.5, 12)])
    target = np.array([*(rng.normal(0, 6, 2) + along * rng.uniform(-5, 10)), 0.0])
    return SimCamera("pole-1", lens, look_rotation(target - pos), pos)


def random_style(rng: np.random.Generator) -> GroundStyle:
    a = int(rng.integers(60, 110))
    grass = rng.choice([0, 1, 2])
    ground = [(60, 110, 85), (95, 120, 120), (135, 140, 145)][grass]
    return GroundStyle(asphalt_bgr=(a, a + 2, a + 3), grass_bgr=tuple(int(g) for g in ground),  # type: ignore[arg-type]
                       sidewalk_bgr=tuple(int(v) for v in rng.integers(130, 175, 3)))  # type: ignore[arg-type]


def random_lighting(rng: np.random.Generator, dusk: bool) -> Lighting:
    az = rng.uniform(0, 2 * np.pi)
    el = np.radians(rng.uniform(12, 20) if dusk else rng.uniform(25, 75))
    sun = np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
    if dusk:
        return Lighting(sun, ambient=0.35, diffuse=0.25, gain=float(rng.uniform(0.55, 0.8)),
                        tint_bgr=(1.15, 0.95, 0.85), noise_sd=5.0, dusk=True)
    return Lighting(sun, ambient=float(rng.uniform(0.45, 0.65)), diffuse=float(rng.uniform(0.35, 0.65)),
                    gain=float(rng.uniform(0.8, 1.15)), noise_sd=float(rng.uniform(1, 5)))


def _labels(objects: list[dict[str, Any]], traffic: Traffic, scale: float, size: tuple[int, int]) -> list[str]:
    w, h = size
    lines = []
    for o in objects:
        if o["visibility"] < MIN_VISIBILITY:
            continue
        x0, y0, x1, y1 = (np.array(o["xyxy"]) * scale).tolist()
        if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
            continue
        cls = CLASSES.index(traffic.vehicles[o["vid"]].cls)
        lines.append(f"{cls} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
    return lines


def write_dataset(out: Path, opts: DatasetOptions, progress: Callable[[int], None] | None = None) -> Path:
    """Render `opts.images` labelled images into a YOLO dataset folder; returns `out`."""
    rng = np.random.default_rng(opts.seed)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    written = 0
    scenario_index = 0
    while written < opts.images:
        sc = random_scenario(rng, scenario_index)
        seconds = 60.0
        with tempfile.TemporaryDirectory(prefix="trafficprn-ds-") as tmp:
            traffic = simulate(sc, seconds, 5.0, int(rng.integers(1 << 30)), Path(tmp))
        for _view in range(opts.views_per_scenario):
            if written >= opts.images:
                break
            split = "val" if rng.random() < opts.val_fraction else "train"
            cam = random_camera(rng, opts.fisheye_share)
            scale = opts.size_px * opts.render_scale / max(cam.image_size)
            cam = _scaled(cam, scale)
            style = random_style(rng)
            dusk = bool(rng.random() < 0.2)
            tex = road_texture(traffic.network, 90.0, style, rng)
            bg = render_background(cam, tex, style)
            if dusk:
                bg = dusk_background(bg)
            renderer = Renderer(cam, bg, traffic.vehicles, random_lighting(rng, dusk), int(rng.integers(1 << 30)))
            frames = np.sort(rng.choice(traffic.n_frames, size=min(opts.frames_per_view, traffic.n_frames),
                                        replace=False))
            for k in frames:
                if written >= opts.images:
                    break
                s = traffic.frame(int(k))
                img, objs = renderer.render(int(k), traffic.vid[s], traffic.xy_m[s], traffic.heading_rad[s])
                w, h = cam.image_size
                down = opts.size_px / max(w, h)
                small = cv2.resize(img, (round(w * down), round(h * down)), interpolation=cv2.INTER_AREA)
                if rng.random() < 0.3:
                    small = cv2.GaussianBlur(small, (0, 0), float(rng.uniform(0.4, 0.9)))
                name = f"sim_{opts.seed:04d}_{written:06d}"
                quality = int(rng.integers(70, 96))
                cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, quality])
                lines = _labels(objs, traffic, down, (small.shape[1], small.shape[0]))
                (out / "labels" / split / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
                written += 1
                if progress is not None:
                    progress(1)
        scenario_index += 1
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "nc": len(CLASSES),
            "names": list(CLASSES)}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


def _scaled(cam: SimCamera, scale: float) -> SimCamera:
    """The same camera with its image scaled by `scale` (intrinsics and size)."""
    cfg = cam.lens_cfg
    w, h = cfg.image_size
    size = (max(32, round(w * scale)), max(32, round(h * scale)))
    upd: dict[str, Any] = {"image_size": size}
    if isinstance(cfg, (PinholeLens, KannalaBrandtLens)):
        upd.update(fx=cfg.fx * scale, fy=cfg.fy * scale, cx=cfg.cx * scale, cy=cfg.cy * scale)
    else:
        upd.update(center_px=(cfg.center_px[0] * scale, cfg.center_px[1] * scale), radius_px=cfg.radius_px * scale)
    return SimCamera(cam.name, cfg.model_copy(update=upd), cam.rotation, cam.position_m)
