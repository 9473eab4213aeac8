"""`trafficprn sim scene` and `trafficprn sim dataset` (argparse only; heavy imports in handlers)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT or SIZE, got {text!r}") from None


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    sim = subparsers.add_parser("sim", help="synthetic intersections with ground truth (SUMO + renderer)")
    sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    scene = sub.add_parser("scene", help="simulate and render a scene folder (video + ground truth + site.yaml)")
    scene.add_argument("--scenario", default="default", help="shipped scenario name or a YAML path")
    scene.add_argument("--seconds", type=float, default=120.0, help="simulated seconds to render")
    scene.add_argument("--camera", choices=("fisheye", "pole"), default="fisheye")
    scene.add_argument("--seed", type=int, default=7)
    scene.add_argument("--fps", type=float, default=10.0)
    scene.add_argument("--size", type=_size, default=None, help="image size, e.g. 640 or 640x360 (default 1280)")
    scene.add_argument("--dusk", action="store_true", help="render at dusk")
    scene.add_argument("--out", type=Path, required=True)
    scene.set_defaults(func=_scene)
    ds = sub.add_parser("dataset", help="write a YOLO dataset of random sim renders")
    ds.add_argument("--out", type=Path, required=True)
    ds.add_argument("--images", type=int, default=1000)
    ds.add_argument("--size", type=int, default=416, help="square image size in px")
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--val-fraction", type=float, default=0.1)
    ds.add_argument("--fisheye-share", type=_share, default=0.6,
                    help="share of overhead fisheye views, the rest pole pinholes (0..1)")
    ds.set_defaults(func=_dataset)
    sim.set_defaults(func=lambda args: (sim.print_help(), 2)[1])


def _scene(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trafficprn.sim.scenario import load_scenario
    from trafficprn.sim.scene import SceneOptions, render_scene

    sc = load_scenario(args.scenario)
    size = args.size
    if size is not None and args.camera == "fisheye":
        size = (size[0], size[0])
    opts = SceneOptions(seconds=args.seconds, fps=args.fps, camera=args.camera, seed=args.seed, size_px=size,
                        dusk=args.dusk)
    total = int(round(args.seconds * args.fps))
    with tqdm(total=total, unit="frame", desc=f"sim {args.camera}") as bar:
        render_scene(sc, args.out, opts, progress=bar.update)
    print(f"wrote {args.out}")
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trafficprn.sim.dataset import DatasetOptions, write_dataset

    opts = DatasetOptions(images=args.images, size_px=args.size, seed=args.seed, val_fraction=args.val_fraction,
                          fisheye_share=args.fisheye_share)
    with tqdm(total=args.images, unit="image", desc="sim dataset") as bar:
        write_dataset(args.out, opts, progress=bar.update)
    print(f"wrote {args.out}")
    return 0
