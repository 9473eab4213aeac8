"""Detection on real camera images: our model beside the public NanoDet-m anchor, in one run.

The evaluation sets are real, labelled and held out from training (see
trafficprn/datasets/manifest.yaml, split `eval`); they are rebuilt, not committed:

    trafficprn data build --mirror /work/.mirror --out /work/data/real --split eval

Each set is scored with `trafficprn.datasets.evaluate` (the same code as `trafficprn model
eval`), with every vehicle box as one class for AP and the pipeline's operating confidence
for recall, precision and boxes per image. The anchor runs in the same process on the
same images, so load on the machine affects both alike; detector time per image is
printed for both (letterbox + network + decode, 1 thread each by default).

    .venv/bin/python benchmarks/bench_real_detect.py [--eval-root /work/data/real/eval]
        [--model bundled|PATH.onnx] [--anchor PATH/nanodet_m.onnx] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trafficprn.datasets.evaluate import (
    AP_CONFIDENCE,
    ImageDetector,
    LoadedSet,
    RealEvalResult,
    load_set,
    operating_confidence,
    read_image,
    score_set,
)
from trafficprn.detect.runtime import load_detector
from trafficprn.types import Detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nanodet_anchor import NanoDetM, find_model  # noqa: E402  (a sibling benchmark module)

CAMERA_SETS = ("street-cctv", "highway", "street-photo")
BACKGROUNDS = "backgrounds"
DEFAULT_ROOT = Path(os.environ.get("TRAFFICPRN_REAL_EVAL", "/work/data/real/eval"))


@dataclass
class Timed:
    """Wraps a detector and adds up the wall time of its `detect` calls."""

    inner: ImageDetector
    seconds: float = 0.0
    calls: int = 0

    @property
    def class_names(self) -> list[str]:
        return self.inner.class_names

    def detect(self, image_bgr: np.ndarray) -> Detections:
        start = time.perf_counter()
        dets = self.inner.detect(image_bgr)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return dets

    @property
    def ms_per_image(self) -> float:
        return 1000.0 * self.seconds / max(1, self.calls)


def _f(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--model", default="bundled", help="ours: 'bundled' or PATH.onnx")
    parser.add_argument("--anchor", type=Path, default=None, help="NanoDet-m ONNX (default: see nanodet_anchor.py)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    args = parser.parse_args()

    sets = [s for s in (*CAMERA_SETS, BACKGROUNDS) if (args.eval_root / s).is_dir()]
    if not sets:
        print(
            f"no evaluation sets under {args.eval_root}; build them with\n"
            "  trafficprn data build --mirror /work/.mirror --out /work/data/real --split eval",
            file=sys.stderr,
        )
        return 2
    anchor_path = find_model(args.anchor)
    if anchor_path is None:
        print("NanoDet-m ONNX not found; see benchmarks/nanodet_anchor.py for how to bring it", file=sys.stderr)
        return 2
    confidence = operating_confidence()
    ours = Timed(load_detector(args.model, confidence=AP_CONFIDENCE, threads=args.threads))
    anchor = Timed(NanoDetM(anchor_path, confidence=AP_CONFIDENCE, threads=args.threads))
    print(f"eval root {args.eval_root}; ours {args.model}; anchor NanoDet-m {anchor_path.name}")
    print(f"operating confidence {confidence:g} (detector.confidence); {os.cpu_count()} CPUs, {args.threads} thread(s)")
    load_before = os.getloadavg()

    figures: dict[str, dict[str, object]] = {}
    header = f"{'set':<13} {'model':<8} {'imgs':>5} {'boxes':>6} {'AP50':>6} {'rec':>6} {'prec':>6} {'box/im':>6}"
    header += f" {'AP<16':>6} {'16-32':>6} {'32-64':>6} {'64-128':>6} {'>=128':>6} {'R>64':>6}"
    print(header)
    results: dict[tuple[str, str], RealEvalResult] = {}
    for name in sets:
        data: LoadedSet = load_set(args.eval_root / name)
        # warm the page cache and decoders once so neither model pays for the first read
        for im in data.images[:2]:
            read_image(im.path)
        for label, det in (("ours", ours), ("nanodet", anchor)):
            r = score_set(det, data, confidence)
            results[(name, label)] = r
            figures.setdefault(name, {})[label] = r.as_json()
            big = _recall_over_64(r)
            by = r.ap50_by_size
            print(
                f"{name:<13} {label:<8} {r.images:>5} {r.boxes:>6} {_f(r.ap50_vehicle)} {_f(r.recall)} "
                f"{_f(r.precision)} {r.boxes_per_image:6.2f} {_f(by['<16'])} {_f(by['16-32'])} {_f(by['32-64'])} "
                f"{_f(by['64-128'])} {_f(by['>=128'])} {_f(big)}"
            )
    print(f"detector time per image: ours {ours.ms_per_image:.1f} ms, NanoDet-m {anchor.ms_per_image:.1f} ms")
    print(f"load average {list(load_before)} before, {list(os.getloadavg())} after")

    print("targets (issue 12):")
    for name in (s for s in CAMERA_SETS if s in sets):
        o, a = results[(name, "ours")], results[(name, "nanodet")]
        ratio = (o.ap50_vehicle or 0.0) / max(a.ap50_vehicle or 0.0, 1e-9)
        print(
            f"  {name:<13} AP50 ours/NanoDet-m = {ratio:.2f} "
            f"({'met' if ratio >= 1.0 else 'not met'}; needs >= 1.00, {o.images} images)"
        )
    if "street-cctv" in sets:
        ap = results[("street-cctv", "ours")].ap50_vehicle or 0.0
        print(f"  street-cctv AP50 {ap:.3f} ({'met' if ap >= 0.75 else 'not met'}; needs >= 0.75)")
    cams = [results[(s, "ours")] for s in CAMERA_SETS if s in sets]
    if cams:
        big_hits = sum((_recall_over_64(r) or 0.0) * _boxes_over_64(r) for r in cams)
        big_total = sum(_boxes_over_64(r) for r in cams)
        shown = sum((r.precision or 0.0) * r.boxes_per_image * r.images for r in cams)
        total = sum(r.boxes_per_image * r.images for r in cams)
        rec64 = big_hits / big_total if big_total else 0.0
        prec = shown / total if total else 0.0
        print(f"  recall of vehicles > 64 px {rec64:.3f} ({'met' if rec64 >= 0.80 else 'not met'}; needs >= 0.80)")
        print(f"  precision overall {prec:.3f} ({'met' if prec >= 0.70 else 'not met'}; needs >= 0.70)")
    if BACKGROUNDS in sets:
        bg = results[(BACKGROUNDS, "ours")]
        print(
            f"  backgrounds: {bg.boxes_per_image:.3f} boxes/image on {bg.images} images "
            f"({'met' if bg.boxes_per_image <= 0.05 else 'not met'}; needs <= 0.05, >= 100 images)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def _boxes_over_64(r: RealEvalResult) -> int:
    return r.boxes_by_size["64-128"] + r.boxes_by_size[">=128"]


def _recall_over_64(r: RealEvalResult) -> float | None:
    """Recall at the operating confidence of boxes of 64 px and more (two size buckets)."""
    n = _boxes_over_64(r)
    if n == 0:
        return None
    hits = sum((r.recall_by_size[k] or 0.0) * r.boxes_by_size[k] for k in ("64-128", ">=128"))
    return hits / n


if __name__ == "__main__":
    sys.exit(main())
