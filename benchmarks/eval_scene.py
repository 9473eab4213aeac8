"""Evaluate tracking + traffic analytics on a sim scene folder (`trafficprn sim scene`).

The sim's true boxes become detections (box noise, dropouts, 5 % false positives, all
seeded); they run through the real Pipeline (SORT + analytics, no detector). Printed,
side by side with the ground truth:
- turning-movement counts per (entry leg -> exit leg) x 5-minute interval, and the share
  of cells that are exact (target >= 98 %);
- speed mean absolute error per vehicle (target <= 2 km/h);
- queue length MAE per lane-second (target <= 5 m);
- MOTA / IDF1 of the tracker via py-motmetrics.

Usage: python benchmarks/eval_scene.py SCENE_DIR [--noise 0.03] [--dropout 0.05] [--fp 0.05] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from trafficprn.config import load_site
from trafficprn.events import ListSink, QueueSample, VehiclePassage
from trafficprn.pipeline import Pipeline, PipelineParams
from trafficprn.timebins import interval_label, interval_start
from trafficprn.track.motscore import score_tracks
from trafficprn.track.sort import iou_matrix
from trafficprn.types import Detections, FrameMeta, VehicleClass

MIN_VISIBILITY = 0.2  # a detector is not expected to see less of a vehicle than this


class NoDetector:
    class_names = [c.label for c in VehicleClass]

    def detect(self, image_bgr: np.ndarray) -> Detections:  # pragma: no cover - not called
        raise RuntimeError("eval feeds detections directly")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists() and path.with_suffix(path.suffix + ".gz").exists():
        with gzip.open(path.with_suffix(path.suffix + ".gz"), "rt", encoding="utf-8") as gz:
            return [json.loads(line) for line in gz if line.strip()]
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def make_detections(objects: list[dict], rng: np.random.Generator, args: argparse.Namespace,
                    image_size: tuple[int, int], typical_wh: np.ndarray) -> tuple[Detections, np.ndarray]:
    """Noisy detections of the visible true boxes plus false positives; returns them and the
    true boxes used for scoring (N, 5: id, x1, y1, x2, y2)."""
    gt = [o for o in objects if o["visibility"] >= MIN_VISIBILITY]
    boxes = np.array([o["xyxy"] for o in gt], dtype=np.float64).reshape(-1, 4)
    cls = np.array([int(VehicleClass.from_label(o["class"])) for o in gt], dtype=np.int64)
    truth = np.column_stack([np.array([o["track_id"] for o in gt]), boxes]) if gt else np.zeros((0, 5))
    keep = rng.random(len(boxes)) >= args.dropout
    b = boxes[keep]
    wh = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
    b = b + rng.normal(0.0, 1.0, b.shape) * args.noise * wh
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1.0)
    conf = rng.uniform(0.4, 1.0, len(b))
    c = cls[keep]
    n_fp = rng.poisson(args.fp * len(boxes))
    if n_fp:
        size = typical_wh * rng.uniform(0.6, 1.4, (n_fp, 2))
        xy = rng.uniform(0, 1, (n_fp, 2)) * (np.array(image_size) - size)
        b = np.concatenate([b, np.concatenate([xy, xy + size], axis=1)])
        conf = np.concatenate([conf, rng.uniform(0.25, 0.6, n_fp)])
        c = np.concatenate([c, rng.integers(0, 4, n_fp)])
    return Detections(b, conf, c), truth


def match_ids(tracked: Detections, truth: np.ndarray) -> list[tuple[int, int]]:
    """(our track id, true id) pairs of this frame with IoU >= 0.5 (Hungarian)."""
    if not len(tracked) or not len(truth) or tracked.track_id is None:
        return []
    iou = iou_matrix(tracked.xyxy, truth[:, 1:5])
    r, c = linear_sum_assignment(-iou)
    ok = iou[r, c] >= 0.5
    return [(int(tracked.track_id[i]), int(truth[j, 0])) for i, j in zip(r[ok], c[ok], strict=True)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene", type=Path)
    ap.add_argument("--noise", type=float, default=0.03, help="box corner noise, fraction of box size (sd)")
    ap.add_argument("--dropout", type=float, default=0.05, help="share of true boxes missed")
    ap.add_argument("--fp", type=float, default=0.05, help="false positives per true box")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=int, default=5, help="count interval for the TMC comparison")
    ap.add_argument("--min-hits", type=int, default=None, help="override the pipeline's SORT min_hits")
    ap.add_argument("--max-age-s", type=float, default=None, help="override the pipeline's SORT max age, seconds")
    ap.add_argument("--no-infer", action="store_true", help="never infer entry/exit legs of hidden vehicles")
    ap.add_argument("--detector", default=None, help="instead of true boxes: run this model ('bundled' or an "
                    ".onnx) on the scene's video.mp4, end to end (decode + detect + track + analytics)")
    args = ap.parse_args()

    scene = json.loads((args.scene / "scene.json").read_text())
    site = load_site(args.scene / "site.yaml")
    cam = site.cameras[0]
    frames = read_jsonl(args.scene / "frames.jsonl")
    truth_vehicles = json.loads((args.scene / "vehicles.json").read_text())
    truth_queues = read_jsonl(args.scene / "queues.jsonl")
    image_size = tuple(scene.get("image_size", cam.lens.image_size))
    all_wh = np.array([np.subtract(o["xyxy"][2:], o["xyxy"][:2]) for f in frames[:200] for o in f["objects"]])
    typical_wh = np.median(all_wh, axis=0) if len(all_wh) else np.array([60.0, 60.0])

    rng = np.random.default_rng(args.seed)
    sink = ListSink()
    detector: Any = NoDetector()
    capture = None
    if args.detector:
        import cv2

        from trafficprn.detect.runtime import load_detector

        detector = load_detector(args.detector, confidence=cam.detector.confidence, nms_iou=cam.detector.nms_iou)
        capture = cv2.VideoCapture(str(args.scene / "video.mp4"))
    params = PipelineParams()
    if args.min_hits is not None:
        params = replace(params, min_hits=args.min_hits)
    if args.max_age_s is not None:
        params = replace(params, max_age_s=args.max_age_s)
    if args.no_infer:
        params = replace(params, analytics=replace(params.analytics, infer_entry_m=0.0, infer_exit_m=0.0))
    pipe = Pipeline(site, cam, detector, sinks=[sink], params=params)
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    gt_rows, trk_rows = [], []
    t0 = time.perf_counter()
    for k, f in enumerate(frames):
        dets, truth = make_detections(f["objects"], rng, args, image_size, typical_wh)
        if capture is not None:
            ok, image = capture.read()
            if not ok:
                break
            res = pipe.process(image, FrameMeta(cam.name, f["ts"], f["index"]))
        else:
            res = pipe.process_detections(dets, FrameMeta(cam.name, f["ts"], f["index"]))
        for ours, true_id in match_ids(res.detections, truth):
            votes[ours][true_id] += 1
        gt_rows += [[k + 1, t[0], t[1], t[2], t[3] - t[1], t[4] - t[2]] for t in truth]
        if len(res.detections) and res.detections.track_id is not None:
            x = res.detections.xyxy
            trk_rows += [[k + 1, i, *b[:2], *(b[2:] - b[:2])] for i, b in zip(res.detections.track_id, x, strict=True)]
    pipe.finish(frames[-1]["ts"] + 1.0 / scene["fps"])
    elapsed = time.perf_counter() - t0
    passages: list[VehiclePassage] = sink.of_type(VehiclePassage)
    queues: list[QueueSample] = sink.of_type(QueueSample)
    source = (f"detector {args.detector} on video.mp4" if args.detector else
              f"true boxes with noise {args.noise:.0%} of box size, dropout {args.dropout:.0%}, false positives {args.fp:.0%}")
    print(f"scene {args.scene} ({scene['camera']}, {scene['seconds']:.0f} s at {scene['fps']} fps, seed {scene['seed']}); "
          f"detections: {source}")
    stage = "decode + detect + track + analytics" if args.detector else "pipeline after the detector"
    print(f"{stage}: {elapsed / pipe.frames * 1e3:.2f} ms/frame ({pipe.frames / elapsed:.1f} fps); "
          f"analytics stats {pipe.analytics.stats}")

    # ---------------------------------------------------------------- TMC
    tz, minutes = site.site.timezone, args.minutes
    t_first, t_last = frames[0]["ts"], frames[-1]["ts"]

    def cell(ts: float, entry: str, exit_leg: str) -> tuple[float, str, str]:
        return (interval_start(ts, tz, minutes), entry, exit_leg)

    true_counts = Counter(cell(v["passage_ts"], v["entry_leg"], v["exit_leg"]) for v in truth_vehicles
                          if t_first <= v["passage_ts"] <= t_last)
    our_counts = Counter(cell(p.passage_ts, p.entry_leg, p.exit_leg) for p in passages
                         if p.entry_leg and p.exit_leg and t_first <= p.passage_ts <= t_last)
    movement_of = {(v["entry_leg"], v["exit_leg"]): v["movement"] for v in truth_vehicles}
    movement_of.update({(p.entry_leg, p.exit_leg): p.movement for p in passages if p.entry_leg})
    legs = sorted({c[1] for c in true_counts} | {c[2] for c in true_counts})
    starts = sorted({interval_start(t, tz, minutes) for t in np.arange(t_first, t_last, 60.0)})
    cells = [(s, a, b) for s in starts for a in legs for b in legs]
    exact = [true_counts[c] == our_counts[c] for c in cells]
    active = [c for c in cells if true_counts[c] or our_counts[c]]
    exact_active = [true_counts[c] == our_counts[c] for c in active]
    mov_true = Counter((c[0], movement_of.get(c[1:], "?")) for c in true_counts.elements())
    mov_ours = Counter((c[0], movement_of.get(c[1:], "?")) for c in our_counts.elements())
    print(f"\nTurning movements per {minutes}-minute interval: true / ours (entry->exit, movement)")
    pairs = [(a, b) for a in legs for b in legs if any(true_counts[(s, a, b)] or our_counts[(s, a, b)] for s in starts)]
    print(f"{'interval':<26}" + "".join(f"{a}->{b} {movement_of.get((a, b), '?')}".rjust(10) for a, b in pairs))
    for s in starts:
        row = "".join(f"{true_counts[(s, a, b)]:>4}/{our_counts[(s, a, b)]:<4}".rjust(10) for a, b in pairs)
        print(f"{interval_label(s, tz):<26}{row}")
    print(f"{'total':<26}" + "".join(
        f"{sum(true_counts[(s, a, b)] for s in starts):>4}/{sum(our_counts[(s, a, b)] for s in starts):<4}".rjust(10)
        for a, b in pairs))
    print("per movement L/T/R/U and interval, true / ours:")
    for s in starts:
        print(f"  {interval_label(s, tz):<26}" + "  ".join(f"{m} {mov_true[(s, m)]}/{mov_ours[(s, m)]}" for m in "LTRU"))
    print(f"TMC cells exact: {np.mean(exact):.1%} of {len(cells)} (entry->exit x interval, all pairs); "
          f"{np.mean(exact_active):.1%} of the {len(active)} cells with any count (target >= 98 %)")
    print(f"vehicles: true {sum(true_counts.values())}, counted {sum(our_counts.values())}")

    # ---------------------------------------------------------------- speed
    truth_by_id = {v["track_id"]: v for v in truth_vehicles}
    errors, rows, flagged = [], [], 0
    used: set[int] = set()
    for p in passages:
        ids = [*p.extras.get("merged_track_ids", []), p.track_id]
        vote: Counter[int] = Counter()
        for i in ids:
            vote.update(votes.get(i, Counter()))
        if not vote:
            continue
        true_id = vote.most_common(1)[0][0]
        v = truth_by_id.get(true_id)
        flagged += int(p.speed_flagged)
        if v is None or true_id in used or p.speed_median_kmh is None or v["speed_kmh"] is None:
            continue
        used.add(true_id)
        errors.append(abs(p.speed_median_kmh - v["speed_kmh"]))
        rows.append((true_id, v["speed_kmh"], p.speed_median_kmh, p.speed_max_kmh))
    err = np.array(errors)
    signed = np.array([r[2] - r[1] for r in rows])
    print(f"\nSpeed per vehicle (median over its time in the calibrated area), {len(err)} vehicles matched"
          " (worst 8 listed):")
    if len(err):
        print(f"  MAE {err.mean():.2f} km/h, median error {np.median(err):.2f}, p95 {np.percentile(err, 95):.2f} "
              f"(target MAE <= 2 km/h); mean signed error {signed.mean():+.2f}; flagged implausible: {flagged}")
    worst = sorted(rows, key=lambda r: -abs(r[2] - r[1]))
    for true_id, t, ours, top in worst[:8]:
        print(f"  vehicle {true_id:>5}: true {t:6.2f}  ours {ours:6.2f}  (max {top:6.2f})")

    # ---------------------------------------------------------------- queues
    ours_q = {(round(q.ts), q.lane): q for q in queues}
    q_err, by_lane = [], defaultdict(list)
    for q in truth_queues:
        o = ours_q.get((round(q["ts"]), q["lane"]))
        if o is None:
            continue
        q_err.append(abs(o.length_m - q["length_m"]))
        by_lane[q["lane"]].append((q["length_m"], o.length_m, q["vehicles"], o.vehicles))
    q_err_a = np.array(q_err)
    q_mae = f"{q_err_a.mean():.2f}" if len(q_err_a) else "n/a"
    print(f"\nQueue length per lane-second, {len(q_err_a)} samples: MAE {q_mae} m (target <= 5 m)")
    print(f"  {'lane':<6}{'true mean m':>12}{'ours mean m':>12}{'true max':>10}{'ours max':>10}{'MAE m':>8}{'veh MAE':>9}")
    for lane, vals in sorted(by_lane.items()):
        a = np.array(vals)
        print(f"  {lane:<6}{a[:, 0].mean():>12.2f}{a[:, 1].mean():>12.2f}{a[:, 0].max():>10.1f}{a[:, 1].max():>10.1f}"
              f"{np.abs(a[:, 0] - a[:, 1]).mean():>8.2f}{np.abs(a[:, 2] - a[:, 3]).mean():>9.2f}")

    # ---------------------------------------------------------------- MOT
    scores = score_tracks(np.array(gt_rows, dtype=np.float64), np.array(trk_rows, dtype=np.float64).reshape(-1, 6))
    print(f"\nTracker (SORT, max_age {pipe.tracker.max_age} frames, min_hits {pipe.tracker.min_hits}) vs true boxes "
          f"with visibility >= {MIN_VISIBILITY}: MOTA {scores.mota:.3f}, IDF1 {scores.idf1:.3f}, "
          f"ID switches {scores.id_switches}, misses {scores.misses}, false positives {scores.false_positives}, "
          f"objects {scores.gt_objects}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
