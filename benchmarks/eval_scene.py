"""Tracking + traffic analytics on a sim scene folder, in detail.

`trafficprn eval SCENE [--truth]` prints the summary; this script runs the same code
(`trafficprn.evaluation`, the worker's pipeline) and adds the tables behind it:
- turning movements per (entry leg -> exit leg) x interval, true / ours, and the share of
  cells that are exact;
- the vehicles with the worst speed errors, and the signed mean error;
- queue length per lane (true / ours means and maxima, MAE in m and vehicles).

By default the detector is replaced by the true boxes spoiled with seeded noise, dropouts
and false positives (`TruthDetector`), which isolates tracking and analytics;
`--detector bundled` (or an .onnx) runs the model on the video instead, end to end.

Usage: python benchmarks/eval_scene.py SCENE_DIR [--noise 0.03] [--dropout 0.05] [--fp 0.05] [--seed 0]
           [--detector MODEL] [--minutes 5] [--min-hits N] [--max-age-s S] [--no-infer]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from trafficprn.config import load_site
from trafficprn.demo import run_scene_cli
from trafficprn.evaluation import Scene, SceneRun, TruthNoise, format_summary, score_scene
from trafficprn.evaluation_match import passage_to_truth
from trafficprn.pipeline import PipelineParams
from trafficprn.timebins import interval_label, interval_start


def tmc_tables(scene: Scene, run: SceneRun, tz: str, minutes: int) -> None:
    frames = scene.frames
    t_first, t_last = frames[0]["ts"], frames[min(run.frames, len(frames)) - 1]["ts"]

    def cell(ts: float, entry: str, exit_leg: str) -> tuple[float, str, str]:
        return (interval_start(ts, tz, minutes), entry, exit_leg)

    true_counts = Counter(cell(v["passage_ts"], v["entry_leg"], v["exit_leg"]) for v in scene.vehicles
                          if v.get("passage_ts") is not None and t_first <= v["passage_ts"] <= t_last)
    our_counts = Counter(cell(p.passage_ts, p.entry_leg, p.exit_leg) for p in run.passages
                         if p.entry_leg and p.exit_leg and t_first <= p.passage_ts <= t_last)
    movement_of = {(v["entry_leg"], v["exit_leg"]): v["movement"] for v in scene.vehicles if v.get("entry_leg")}
    movement_of.update({(p.entry_leg, p.exit_leg): p.movement for p in run.passages if p.entry_leg})
    legs = sorted({c[1] for c in true_counts} | {c[2] for c in true_counts}
                  | {c[1] for c in our_counts} | {c[2] for c in our_counts})
    starts = sorted({interval_start(t, tz, minutes) for t in np.arange(t_first, t_last + 1e-9, 60.0)})
    cells = [(s, a, b) for s in starts for a in legs for b in legs]
    active = [c for c in cells if true_counts[c] or our_counts[c]]
    pairs = [(a, b) for a in legs for b in legs if any(true_counts[(s, a, b)] or our_counts[(s, a, b)] for s in starts)]
    print(f"\nTurning movements per {minutes}-minute interval: true / ours (entry->exit, movement)")
    print(f"{'interval':<26}" + "".join(f"{a}->{b} {movement_of.get((a, b), '?')}".rjust(10) for a, b in pairs))
    for s in starts:
        row = "".join(f"{true_counts[(s, a, b)]:>4}/{our_counts[(s, a, b)]:<4}".rjust(10) for a, b in pairs)
        print(f"{interval_label(s, tz):<26}{row}")
    print(f"{'total':<26}" + "".join(
        f"{sum(true_counts[(s, a, b)] for s in starts):>4}/{sum(our_counts[(s, a, b)] for s in starts):<4}".rjust(10)
        for a, b in pairs))
    if cells:
        exact = np.mean([true_counts[c] == our_counts[c] for c in cells])
        exact_active = np.mean([true_counts[c] == our_counts[c] for c in active]) if active else float("nan")
        print(f"TMC cells exact: {exact:.1%} of {len(cells)} (entry->exit x interval); "
              f"{exact_active:.1%} of the {len(active)} cells with any count")
    print(f"vehicles: true {sum(true_counts.values())}, counted {sum(our_counts.values())}")


def speed_table(scene: Scene, run: SceneRun, mapping: dict[int, int]) -> None:
    truth = {int(v["track_id"]): v for v in scene.vehicles}
    rows, used, flagged = [], set(), 0
    for p in run.passages:
        vote: Counter[int] = Counter(mapping[i] for i in [*p.extras.get("merged_track_ids", []), p.track_id]
                                     if i in mapping)
        if not vote:
            continue
        true_id = vote.most_common(1)[0][0]
        v = truth.get(true_id)
        flagged += int(p.speed_flagged)
        if v is None or true_id in used or p.speed_median_kmh is None or v.get("speed_kmh") is None:
            continue
        used.add(true_id)
        rows.append((true_id, float(v["speed_kmh"]), p.speed_median_kmh, p.speed_max_kmh))
    print(f"\nSpeed per vehicle (median over its time in the calibrated area), {len(rows)} vehicles matched")
    if not rows:
        return
    err = np.array([abs(r[2] - r[1]) for r in rows])
    signed = np.array([r[2] - r[1] for r in rows])
    print(f"  MAE {err.mean():.2f} km/h, median {np.median(err):.2f}, p95 {np.percentile(err, 95):.2f}; "
          f"mean signed error {signed.mean():+.2f}; flagged implausible: {flagged}")
    for true_id, t, ours, top in sorted(rows, key=lambda r: -abs(r[2] - r[1]))[:8]:
        print(f"  vehicle {true_id:>5}: true {t:6.2f}  ours {ours:6.2f}  (max {top or float('nan'):6.2f})")


def queue_table(scene: Scene, run: SceneRun) -> None:
    ours = {(round(q.ts), q.lane): q for q in run.queues}
    by_lane: dict[str, list[tuple[float, float, int, int]]] = defaultdict(list)
    for q in scene.queues:
        o = ours.get((round(q["ts"]), q["lane"]))
        if o is not None:
            by_lane[q["lane"]].append((float(q["length_m"]), o.length_m, int(q["vehicles"]), o.vehicles))
    print(f"\nQueue length per lane-second ({sum(len(v) for v in by_lane.values())} samples)")
    print(f"  {'lane':<6}{'true mean m':>12}{'ours mean m':>12}{'true max':>10}{'ours max':>10}{'MAE m':>8}{'veh MAE':>9}")
    for lane, vals in sorted(by_lane.items()):
        a = np.array(vals)
        print(f"  {lane:<6}{a[:, 0].mean():>12.2f}{a[:, 1].mean():>12.2f}{a[:, 0].max():>10.1f}{a[:, 1].max():>10.1f}"
              f"{np.abs(a[:, 0] - a[:, 1]).mean():>8.2f}{np.abs(a[:, 2] - a[:, 3]).mean():>9.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene", type=Path)
    ap.add_argument("--noise", type=float, default=0.03, help="box corner noise, fraction of box size (sd)")
    ap.add_argument("--dropout", type=float, default=0.05, help="share of true boxes missed")
    ap.add_argument("--fp", type=float, default=0.05, help="false positives per true box")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=int, default=5, help="count interval for the TMC tables")
    ap.add_argument("--min-hits", type=int, default=None, help="override the pipeline's SORT min_hits")
    ap.add_argument("--max-age-s", type=float, default=None, help="override the pipeline's SORT max age, seconds")
    ap.add_argument("--no-infer", action="store_true", help="never infer entry/exit legs of hidden vehicles")
    ap.add_argument("--detector", default=None, help="instead of true boxes: run this model ('bundled' or an "
                    ".onnx) on the scene's video, end to end")
    args = ap.parse_args()

    params = PipelineParams()
    if args.min_hits is not None:
        params = replace(params, min_hits=args.min_hits)
    if args.max_age_s is not None:
        params = replace(params, max_age_s=args.max_age_s)
    if args.no_infer:
        params = replace(params, analytics=replace(params.analytics, infer_entry_m=0.0, infer_exit_m=0.0))
    truth = None if args.detector else TruthNoise(args.noise, args.dropout, args.fp, args.seed)
    scene, run, holder = run_scene_cli(args.scene, model=args.detector, truth=truth, params=params)
    source = (f"detector {args.detector} on the video" if truth is None else
              f"true boxes, noise {args.noise:.0%} of box size, dropout {args.dropout:.0%}, "
              f"false positives {args.fp:.0%}, seed {args.seed}")
    print(f"detections: {source}")
    print(format_summary(score_scene(scene, run, privacy=holder.get("privacy"))))
    site = load_site(scene.site_path)
    tmc_tables(scene, run, site.site.timezone, args.minutes)
    speed_table(scene, run, passage_to_truth(scene, run))
    queue_table(scene, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
