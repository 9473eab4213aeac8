"""CLI: `trafficprn data build`: rebuild the real-image training and evaluation sets from
the manifest and local mirrors of the source repositories. argparse only at import; the
handler imports the build (numpy, OpenCV) when it runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="real labelled images: rebuild the train/eval sets from the manifest")
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    build = sub.add_parser(
        "build",
        help="rebuild the sets from mirrored repository snapshots (downloads nothing)",
        description=(
            "Read every source of trafficprn/datasets/manifest.yaml out of its git mirror under "
            "--mirror (<owner>+<name>/repo, at the manifest's commit), resize, map the classes "
            "and write YOLO folders: OUT/train/<source>/, OUT/train/data.yaml, OUT/eval/<camera type>/, "
            "OUT/fisheye-frames/. A missing mirror is an error naming the repository to fetch."
        ),
    )
    build.add_argument("--mirror", type=Path, required=True, help="folder of mirrors (<owner>+<name>/repo)")
    build.add_argument("--out", type=Path, required=True, help="output folder")
    build.add_argument("--split", choices=("train", "eval", "all"), default="all")
    build.add_argument("--manifest", type=Path, default=None, help="manifest (default: the packaged one)")
    build.add_argument("--only", action="append", default=[], help="rebuild only this source id (repeatable)")
    build.add_argument("--json", action="store_true", help="print the per-source report as JSON")
    build.set_defaults(func=_build)
    data.set_defaults(func=lambda args: _missing(data))


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _build(args: argparse.Namespace) -> int:
    from trafficprn.datasets.build import MANIFEST, build, load_manifest, mismatches

    manifest_path = args.manifest or MANIFEST
    reports = build(args.mirror, args.out, args.split, manifest_path, args.only)
    if args.json:
        print(
            json.dumps([r.counts().model_dump() | {"id": r.id, "skipped": dict(r.skipped)} for r in reports], indent=1)
        )
    else:
        for r in reports:
            boxes = ", ".join(f"{k} {v}" for k, v in sorted(r.boxes.items()))
            skipped = f"; skipped {dict(r.skipped)}" if r.skipped else ""
            print(f"{r.id:28s} {r.split:9s} {r.images:6d} images  {boxes}{skipped}")
    differ = mismatches(load_manifest(manifest_path), reports)
    for line in differ:
        print(f"trafficprn: warning: {line}")
    return 1 if differ else 0
