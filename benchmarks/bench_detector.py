"""Detector speed: YOLOv3-tiny-PRN vs YOLOv3-tiny, ONNX Runtime vs PyTorch, 416 and 320,
batch 1 and 4, on this machine's CPU.

One interleaved run: every round times each configuration once, in a shuffled order, so
load from other processes spreads over all of them alike. Reports network inference time
per frame (median, p10, p90) and the tiny/PRN ratio; letterbox and decode are timed
separately. The machine load (os.getloadavg) is printed before and after.

    .venv/bin/python benchmarks/bench_detector.py [--threads 2] [--rounds 40] [--wait-load 1.0]

Weights are random (seeded): speed does not depend on their values. "onnx-int8" is the
opt-in INT8 model (`trafficprn model quantize`), calibrated here on random images.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Before torch is imported: idle OpenMP threads sleep rather than spin (ORT: spinning off).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from trafficprn.detect.darknet import build_model, randomize_weights
from trafficprn.detect.export import export_onnx
from trafficprn.detect.postprocess import letterbox
from trafficprn.detect.quantize import quantize_onnx
from trafficprn.detect.runtime import OnnxDetector, TorchDetector, _YoloDetector
from trafficprn.resources import data_dir

MODELS = ("yolov3-tiny-prn", "yolov3-tiny")
SIZES = (416, 320)
BATCHES = (1, 4)
RUNTIMES = ("onnx", "onnx-int8", "torch")


def wait_for_low_load(limit: float, max_wait_s: float) -> None:
    start = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - start < max_wait_s:
        time.sleep(5)


def make_detectors(tmp: Path, threads: int, graph_optimization: str) -> dict[tuple[str, str, int], _YoloDetector]:
    detectors: dict[tuple[str, str, int], _YoloDetector] = {}
    rng = np.random.default_rng(1)
    for name in MODELS:
        model = build_model(data_dir() / "cfg" / f"{name}.cfg")
        randomize_weights(model, seed=1)
        for size in SIZES:
            onnx_path = tmp / f"{name}-{size}.onnx"
            export_onnx(model, onnx_path, input_size=(size, size))
            detectors[(name, "onnx", size)] = OnnxDetector(
                onnx_path, threads=threads, graph_optimization=graph_optimization
            )
            int8_path = tmp / f"{name}-{size}-int8.onnx"
            calibration = [(rng.random((size, size, 3)) * 255).astype(np.uint8) for _ in range(4)]
            quantize_onnx(onnx_path, int8_path, calibration)
            detectors[(name, "onnx-int8", size)] = OnnxDetector(
                int8_path, threads=threads, graph_optimization=graph_optimization
            )
            detectors[(name, "torch", size)] = TorchDetector(model, input_size=(size, size), threads=threads)
    return detectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--graph-optimization", default="all", choices=["all", "extended", "basic", "disable"])
    parser.add_argument("--wait-load", type=float, default=None, help="wait (up to 10 min) until load1 <= this")
    args = parser.parse_args()

    import onnxruntime
    import torch

    if args.wait_load is not None:
        wait_for_low_load(args.wait_load, 600)
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        detectors = make_detectors(Path(tmp), args.threads, args.graph_optimization)
        configs = [(m, r, s, b) for m in MODELS for r in RUNTIMES for s in SIZES for b in BATCHES]
        inputs = {(s, b): rng.random((b, 3, s, s), dtype=np.float32) for s in SIZES for b in BATCHES}
        for _ in range(args.warmup):
            for m, r, s, b in configs:
                detectors[(m, r, s)].infer(inputs[(s, b)])
        times: dict[tuple[str, str, int, int], list[float]] = {c: [] for c in configs}
        cpu: dict[tuple[str, str, int, int], list[float]] = {c: [] for c in configs}
        order = list(configs)
        shuffler = random.Random(0)
        t_start = time.monotonic()
        for _ in range(args.rounds):
            shuffler.shuffle(order)
            for m, r, s, b in order:
                det, x = detectors[(m, r, s)], inputs[(s, b)]
                c0, t0 = time.process_time(), time.perf_counter()
                det.infer(x)
                times[(m, r, s, b)].append((time.perf_counter() - t0) * 1000 / b)
                cpu[(m, r, s, b)].append((time.process_time() - c0) * 1000 / b)
        wall_s = time.monotonic() - t_start
        frame = (rng.random((720, 1280, 3)) * 255).astype(np.uint8)
        lb = []
        for _ in range(50):
            t0 = time.perf_counter()
            letterbox(frame, (416, 416))
            lb.append((time.perf_counter() - t0) * 1000)
    load_after = os.getloadavg()

    print(f"# bench_detector  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"# cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; threads={args.threads}")
    print(f"# onnxruntime {onnxruntime.__version__} (graph optimisation {args.graph_optimization}, no spinning); "
          f"torch {torch.__version__}")
    print(f"# load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"# {args.rounds} interleaved rounds over {len(configs)} configurations in {wall_s:.0f} s; "
          "network inference only, ms per frame")
    print("# cpu = CPU time of all threads per frame (what the frame costs on an idle machine, summed over cores)")
    print(f"{'model':<16} {'runtime':<9} {'size':>4} {'batch':>5} {'median':>8} {'p10':>8} {'p90':>8} {'cpu':>8}")
    medians: dict[tuple[str, str, int, int], float] = {}
    for c in configs:
        v = np.asarray(times[c])
        medians[c] = float(np.median(v))
        m, r, s, b = c
        print(f"{m:<16} {r:<9} {s:>4} {b:>5} {medians[c]:8.1f} {np.percentile(v, 10):8.1f} {np.percentile(v, 90):8.1f} {np.median(cpu[c]):8.1f}")
    print()
    print("tiny/PRN ratio of medians (paper, i7 CPU: 125/78 = 1.60)")
    for r in RUNTIMES:
        for s in SIZES:
            for b in BATCHES:
                ratio = medians[("yolov3-tiny", r, s, b)] / medians[("yolov3-tiny-prn", r, s, b)]
                print(f"  {r:<9} {s:>4} batch {b}: {ratio:.2f}")
    print(f"letterbox 1280x720 -> 416: median {np.median(lb):.2f} ms")
    prn = medians[("yolov3-tiny-prn", "onnx", 416, 1)]
    ratio = medians[("yolov3-tiny", "onnx", 416, 1)] / prn
    print(f"target PRN onnx batch 1 @416 <= 20 ms: {prn:.1f} ms -> {'MET' if prn <= 20 else 'MISSED'}")
    print(f"target tiny/PRN ratio @416 >= 1.4 (onnx, batch 1): {ratio:.2f} -> {'MET' if ratio >= 1.4 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
