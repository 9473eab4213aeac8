"""`trafficprn setup suggest VIDEO --site site.yaml --camera NAME [--minutes 10] --out suggested.yaml`.

Exits with status 2 and a message saying what is missing when the footage cannot support
a suggestion (the CLI prints every `SetupError` so)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    setup = subparsers.add_parser("setup", help="set a camera up from its own footage")
    sub = setup.add_subparsers(dest="setup_command", metavar="SETUP_COMMAND")
    p = sub.add_parser("suggest", help="suggest legs, lanes (and a pole camera's calibration) from footage",
                       description="Run the detector and tracker over the footage and write a complete site.yaml "
                       "with legs, lanes and stop lines from where the traffic enters, queues and leaves.")
    p.add_argument("video", help="video file of the camera (at least 5 minutes of traffic)")
    p.add_argument("--site", required=True, help="site.yaml with the camera (it may lack calibration, and a pinhole "
                   "camera its lens)")
    p.add_argument("--camera", required=True, help="name of the camera in the site file")
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of footage to use (default 10; 0: all)")
    p.add_argument("--out", required=True, help="where to write the suggested site.yaml")
    p.add_argument("--lane-width", dest="lane_width_m", type=float, default=None, metavar="M",
                   help="lane width in metres: scales a calibration fitted from traffic, and the lanes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # Testing knob (documented in docs/setup-suggest.md): accept footage shorter than 5 minutes.
    p.add_argument("--min-minutes", type=float, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_suggest)
    setup.set_defaults(func=lambda args: (setup.print_help(), 2)[1])


def cmd_suggest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trafficprn.setup.footage import MIN_MINUTES, probe_video
    from trafficprn.setup.suggest import SuggestRequest, suggest_site

    minutes = args.minutes if args.minutes and args.minutes > 0 else None
    req = SuggestRequest(
        site=Path(args.site), camera=args.camera, video=Path(args.video), out=Path(args.out), minutes=minutes,
        lane_width_m=args.lane_width_m, min_minutes=MIN_MINUTES if args.min_minutes is None else args.min_minutes,
    )
    video = probe_video(req.video)
    fps = min(video.fps, _process_fps(req.site, req.camera))
    total = round(min(video.seconds, (minutes or 1e9) * 60.0) * fps)
    with tqdm(total=total, unit="frame", desc="suggest", disable=args.no_progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        result = suggest_site(req, progress=bar.update)
    cam = result.camera
    lanes = ", ".join(f"{z.name} ({z.tracks})" for z in (cam.suggestion.lanes if cam.suggestion else []))
    legs = ", ".join(f"{z.name} ({z.tracks})" for z in (cam.suggestion.legs if cam.suggestion else []))
    print(f"{req.out}: {len(cam.legs)} legs [{legs}], {len(cam.lanes)} lanes [{lanes}] from "
          f"{len(result.footage.tracks)} tracks over {result.footage.seconds / 60:.1f} min")
    return 0


def _process_fps(site: Path, camera: str) -> float:
    from trafficprn.setup.suggest import read_site_leniently

    return read_site_leniently(site, camera).process_fps
