"""Vehicle colour accuracy on sim scene folders (`trafficprn sim scene`) vs the sim's truth.

Each vehicle's true boxes (frames.jsonl) are cropped from the decoded video.mp4 with
`VehicleCropper` and classified; results are voted per track with `vote_colours` and
compared with the vehicle's true colour (frames.jsonl objects). Vehicles whose box is
never >= 24 px (off the border) are not counted. Two crop policies, same vehicles:
- all-crops: every crop `Pipeline` takes (PipelineParams: a crop when the box has grown, at
  most every `crop_every` frames, up to `crops_per_track`, boxes >= `min_crop_px` px not
  touching the border). True boxes are whole silhouettes, so an occluded vehicle's box
  holds much of the vehicle in front of it.
- pipeline: what `Pipeline` votes on (PipelineParams.min_colour_purity): the same crops,
  only from boxes that other boxes of the frame cover by less than 1 - min_purity
  (`box_purity`); a vehicle without such a box falls back to all its crops.

Usage: python benchmarks/eval_colour.py SCENE_DIR [SCENE_DIR ...] [--min-purity 0.8]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trafficprn.analytics.colour import ColourClassifier, ColourResult, box_purity, vote_colours
from trafficprn.camera.crops import VehicleCropper
from trafficprn.config import load_site
from trafficprn.pipeline import PipelineParams

Row = tuple[int, str, str, str]  # track_id, class, true colour, voted colour
Plan = dict[int, list[tuple[int, list[float]]]]  # frame index -> [(track_id, xyxy)]


def _crop_plan(
    scene: Path, params: PipelineParams, size: tuple[int, int], min_purity: float = 0.0
) -> tuple[Plan, dict[int, dict[str, Any]]]:
    """The crops the pipeline would take, only from boxes with `box_purity` >= min_purity;
    and per track its true object record (class, colour)."""
    truth: dict[int, dict[str, Any]] = {}
    w, h = size
    best: dict[int, float] = {}
    last: dict[int, int] = {}
    count: Counter[int] = Counter()
    plan: dict[int, list[tuple[int, list[float]]]] = defaultdict(list)
    m = params.edge_margin_px
    for line in (scene / "frames.jsonl").read_text().splitlines():
        rec = json.loads(line)
        purity = box_purity(np.array([o["xyxy"] for o in rec["objects"]]).reshape(-1, 4))
        for o, pure in zip(rec["objects"], purity, strict=True):
            x1, y1, x2, y2 = o["xyxy"]
            tid = int(o["track_id"])
            truth.setdefault(tid, o)
            if not (x1 > m and y1 > m and x2 < w - m and y2 < h - m and min(x2 - x1, y2 - y1) >= params.min_crop_px):
                continue
            if pure < min_purity:
                continue
            area = (x2 - x1) * (y2 - y1)
            if count[tid] >= params.crops_per_track or rec["index"] - last.get(tid, -10**9) < params.crop_every:
                continue
            if area < best.get(tid, 0.0):
                continue
            best[tid], last[tid] = area, rec["index"]
            count[tid] += 1
            plan[rec["index"]].append((tid, o["xyxy"]))
    return plan, truth


def eval_scene(scene: Path, classifier: ColourClassifier, min_purity: float) -> dict[str, list[Row]]:
    """Rows (track_id, class, true colour, voted colour) for one scene, per crop policy:
    "all-crops" (as PipelineParams picks crops) and "pipeline" (the same, only from boxes
    with box_purity >= min_purity; a vehicle without such a box falls back to "all-crops")."""
    site = load_site(scene / "site.yaml")
    cropper = VehicleCropper(site.cameras[0].lens)
    cap = cv2.VideoCapture(str(scene / "video.mp4"))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    plan, vehicles = _crop_plan(scene, PipelineParams(), size)
    pure_plan, _ = _crop_plan(scene, PipelineParams(), size, min_purity)
    results: dict[tuple[int, int], ColourResult] = {}  # (frame, track) -> result
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        for tid, xyxy in plan.get(index, []) + pure_plan.get(index, []):
            if (index, tid) not in results:
                crop = cropper.crop(frame, np.asarray(xyxy, dtype=np.float64))
                results[(index, tid)] = classifier.classify(crop)
        index += 1
    cap.release()
    out: dict[str, list[Row]] = {}
    for name, p in (("all-crops", plan), ("pipeline", pure_plan)):
        per_track: dict[int, list[ColourResult]] = defaultdict(list)
        for idx, jobs in p.items():
            for tid, _ in jobs:
                per_track[tid].append(results[(idx, tid)])
        if name == "pipeline":
            fallback = {tid for jobs in plan.values() for tid, _ in jobs} - set(per_track)
            for idx, jobs in plan.items():
                for tid, _ in jobs:
                    if tid in fallback:
                        per_track[tid].append(results[(idx, tid)])
        rows = []
        for tid, res in sorted(per_track.items()):
            voted = vote_colours(res)
            v = vehicles[tid]
            rows.append((tid, str(v["class"]), str(v["colour"]), voted.name if voted else "-"))
        out[name] = rows
    return out


def report(name: str, rows: list[Row]) -> None:
    ok = sum(t == g for _, _, t, g in rows)
    print(f"-- {name}: colour correct {ok}/{len(rows)} = {ok / max(1, len(rows)):.1%}")
    by_class: dict[str, list[bool]] = defaultdict(list)
    for _, cls, t, g in rows:
        by_class[cls].append(t == g)
    print("   per class: " + ", ".join(f"{c} {sum(v)}/{len(v)}" for c, v in sorted(by_class.items())))
    wrong = Counter((t, g) for _, _, t, g in rows if t != g)
    if wrong:
        print("   wrong (truth -> got): " + ", ".join(f"{t}->{g} x{n}" for (t, g), n in wrong.most_common()))


def confusion(rows: list[Row]) -> None:
    names = sorted({t for *_, t, _ in rows} | {g for *_, g in rows})
    table = Counter((t, g) for _, _, t, g in rows)
    print("confusion (rows: truth, columns: got)")
    print(" " * 8 + "".join(f"{n[:6]:>7}" for n in names))
    for t in names:
        if any(table[(t, g)] for g in names):
            print(f"{t[:7]:<8}" + "".join(f"{table[(t, g)] or '.':>7}" for g in names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes", nargs="+", type=Path)
    ap.add_argument("--min-purity", type=float, default=PipelineParams().min_colour_purity, help="the pipeline policy's box purity (PipelineParams.min_colour_purity)")
    args = ap.parse_args(argv)
    classifier = ColourClassifier()
    all_rows: dict[str, list[Row]] = defaultdict(list)
    for scene in args.scenes:
        info: dict[str, Any] = json.loads((scene / "scene.json").read_text())
        label = f"{scene.name} ({info.get('camera')}, seed {info.get('seed')}, {info.get('seconds')} s)"
        for policy, rows in eval_scene(scene, classifier, args.min_purity).items():
            report(f"{label} [{policy}]", rows)
            all_rows[policy] += rows
    for policy, rows in all_rows.items():
        if len(args.scenes) > 1:
            report(f"all scenes [{policy}]", rows)
        print(f"[{policy}] ", end="")
        confusion(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
