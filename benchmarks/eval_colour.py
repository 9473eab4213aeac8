"""Vehicle colour accuracy on sim scene folders (`trafficprn sim scene`) vs the sim's truth.

Each vehicle's true boxes (frames.jsonl) are cropped from the decoded video.mp4 with
`VehicleCropper` and picked with the pipeline's policy (PipelineParams: a crop when the
box has grown, at most every `crop_every` frames, up to `crops_per_track`, boxes >= 24 px
not touching the border; occlusion is not known to the pipeline, so it is not used here
either). Crops are classified, voted per track with `vote_colours`, and compared with the
vehicle's true colour (frames.jsonl objects). Vehicles whose box is never >= 24 px are not counted.

Usage: python benchmarks/eval_colour.py SCENE_DIR [SCENE_DIR ...]
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

from trafficprn.analytics.colour import ColourClassifier, ColourResult, vote_colours
from trafficprn.camera.crops import VehicleCropper
from trafficprn.config import load_site
from trafficprn.pipeline import PipelineParams


def _crop_plan(
    scene: Path, params: PipelineParams, size: tuple[int, int]
) -> tuple[dict[int, list[tuple[int, list[float]]]], dict[int, dict[str, Any]]]:
    """frame index -> [(track_id, xyxy)] of the crops the pipeline would take; and per
    track its true object record (class, colour)."""
    truth: dict[int, dict[str, Any]] = {}
    w, h = size
    best: dict[int, float] = {}
    last: dict[int, int] = {}
    count: Counter[int] = Counter()
    plan: dict[int, list[tuple[int, list[float]]]] = defaultdict(list)
    m = params.edge_margin_px
    for line in (scene / "frames.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for o in rec["objects"]:
            x1, y1, x2, y2 = o["xyxy"]
            tid = int(o["track_id"])
            truth.setdefault(tid, o)
            if not (x1 > m and y1 > m and x2 < w - m and y2 < h - m and min(x2 - x1, y2 - y1) >= params.min_crop_px):
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


def eval_scene(scene: Path, classifier: ColourClassifier) -> list[tuple[int, str, str, str]]:
    """Rows (track_id, class, true colour, voted colour) for one scene."""
    site = load_site(scene / "site.yaml")
    cropper = VehicleCropper(site.cameras[0].lens)
    cap = cv2.VideoCapture(str(scene / "video.mp4"))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    plan, vehicles = _crop_plan(scene, PipelineParams(), size)
    results: dict[int, list[ColourResult]] = defaultdict(list)
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        for tid, xyxy in plan.get(index, []):
            results[tid].append(classifier.classify(cropper.crop(frame, np.asarray(xyxy, dtype=np.float64))))
        index += 1
    cap.release()
    rows = []
    for tid, res in sorted(results.items()):
        voted = vote_colours(res)
        v = vehicles[tid]
        rows.append((tid, str(v["class"]), str(v["colour"]), voted.name if voted else "-"))
    return rows


def report(name: str, rows: list[tuple[int, str, str, str]]) -> None:
    ok = sum(t == g for _, _, t, g in rows)
    print(f"-- {name}: colour correct {ok}/{len(rows)} = {ok / max(1, len(rows)):.1%}")
    by_class: dict[str, list[bool]] = defaultdict(list)
    for _, cls, t, g in rows:
        by_class[cls].append(t == g)
    print("   per class: " + ", ".join(f"{c} {sum(v)}/{len(v)}" for c, v in sorted(by_class.items())))
    wrong = Counter((t, g) for _, _, t, g in rows if t != g)
    if wrong:
        print("   wrong (truth -> got): " + ", ".join(f"{t}->{g} x{n}" for (t, g), n in wrong.most_common()))


def confusion(rows: list[tuple[int, str, str, str]]) -> None:
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
    args = ap.parse_args(argv)
    classifier = ColourClassifier()
    all_rows: list[tuple[int, str, str, str]] = []
    for scene in args.scenes:
        info: dict[str, Any] = json.loads((scene / "scene.json").read_text())
        rows = eval_scene(scene, classifier)
        report(f"{scene.name} ({info.get('camera')}, seed {info.get('seed')}, {info.get('seconds')} s)", rows)
        all_rows += rows
    if len(args.scenes) > 1:
        report("all scenes", all_rows)
    confusion(all_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
