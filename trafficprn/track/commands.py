"""`trafficprn track`: SORT over MOTChallenge detections (argparse only at import)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "track",
        help="run SORT on MOTChallenge detections",
        description="Read detections in MOTChallenge CSV, track them with SORT, write tracks in the same format.",
    )
    p.add_argument("--mot-det", required=True, metavar="DET_TXT", help="detections: frame,-1,left,top,w,h,conf,...")
    p.add_argument("--out", required=True, metavar="TRACKS_TXT", help="where to write frame,id,left,top,w,h,1,-1,-1,-1")
    p.add_argument("--max-age", type=int, default=1, help="frames a track survives unmatched (default 1)")
    p.add_argument("--min-hits", type=int, default=3, help="consecutive matches before a track is reported (default 3)")
    p.add_argument("--iou", type=float, default=0.3, help="minimum IoU of a match (default 0.3)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trafficprn.errors import InputError
    from trafficprn.track.mot import read_mot, track_rows, write_mot
    from trafficprn.track.sort import SortTracker

    rows = read_mot(args.mot_det)
    tracker = SortTracker(max_age=args.max_age, min_hits=args.min_hits, iou_threshold=args.iou)
    out = track_rows(rows, tracker)
    try:
        with Path(args.out).open("w", encoding="utf-8") as fh:
            write_mot(out, fh)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"{len(out)} track rows, {len(set(out[:, 1].astype(int).tolist()))} tracks -> {args.out}")
    return 0
