"""End-to-end frames/s of one 1280x1280 fisheye stream, next to the detector alone.

    python benchmarks/bench_pipeline.py [--scene DIR] [--model bundled] [--threads 1] [--frames N] [--rounds 2]

End to end covers: H.264 decode (ahead, on the frame source's own thread), the PRN
detector on ONNX Runtime on the whole frame (at the model's input size), SORT, the
analytics with per-vehicle perspective crops, colour, plate reading (OCR on a worker
thread) and batched SQLite writes through the DatabaseSink. The detector alone runs on
the same frames, decoded beforehand, in the same process. The two are interleaved
(detector, pipeline, detector, pipeline, ..., detector) so that both see the same load
from whatever else runs on the box; the load average is printed with the figures.
Targets (issue 8): >= 25 fps end to end, and pipeline time <= 1.35 x detector time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from trafficprn.camera.sources import open_source
    from trafficprn.config import load_site
    from trafficprn.demo import _detector, demo_scene_dir, make_pipeline_factory
    from trafficprn.evaluation import load_scene, run_scene
    from trafficprn.store.db import upgrade
    from trafficprn.store.sink import DatabaseSink

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", default=str(demo_scene_dir()), help="sim scene folder (default: the bundled demo)")
    ap.add_argument("--model", default=None, help="detector model (default: the scene camera's)")
    ap.add_argument("--threads", type=int, default=None, help="ORT threads (default: the site's)")
    ap.add_argument("--frames", type=int, default=None, help="frames to time (default: the whole clip)")
    ap.add_argument("--rounds", type=int, default=2, help="pipeline runs, each followed by a detector-alone run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    scene = load_scene(args.scene)
    site = load_site(scene.site_path)
    camera = site.cameras[0]
    load_before = os.getloadavg()

    # Decode only (on this thread), keeping the frames for the detector alone.
    frames = []
    source = open_source(str(scene.video_path), camera.name, start_ts=float(scene.info["start_ts"]), read_ahead=0)
    t0 = time.perf_counter()
    for frame, _ in source:
        frames.append(frame)
        if args.frames and len(frames) >= args.frames:
            break
    source.close()
    decode_s = time.perf_counter() - t0
    n = len(frames)

    def detector_alone() -> float:
        detector = _detector(scene, args.model, args.threads, record_confidence=None)
        detector.detect(frames[0])  # warm-up
        t0 = time.perf_counter()
        for frame in frames:
            detector.detect(frame)
        return (time.perf_counter() - t0) / n

    def pipeline() -> dict[str, Any]:
        """The whole pipeline, decoding again from the file, writing SQLite."""
        detector = _detector(scene, args.model, args.threads, record_confidence=None)
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
            upgrade(url)
            sink = DatabaseSink(url, Path(tmp) / "spool")
            cpu0, loop0 = time.process_time(), time.thread_time()
            run = run_scene(scene, make_pipeline_factory({}), detector, sinks=[sink], max_frames=n)
            t_close = time.perf_counter()
            sink.close()
            close_s = time.perf_counter() - t_close
            cpu_s, loop_s = time.process_time() - cpu0, time.thread_time() - loop0
        return {"s_per_frame": (run.seconds + close_s) / run.frames, "det_s_per_frame": run.detector_seconds / run.frames,
                "cpu_s_per_frame": cpu_s / run.frames, "loop_cpu_s_per_frame": loop_s / run.frames,
                "passages": len(run.passages), "input_size": list(detector.inner.input_size)}

    det_runs = [detector_alone()]
    pipe_runs = []
    for _ in range(max(1, args.rounds)):
        pipe_runs.append(pipeline())
        det_runs.append(detector_alone())
    frames.clear()
    det_s = sum(det_runs) / len(det_runs)
    pipe_s = sum(r["s_per_frame"] for r in pipe_runs) / len(pipe_runs)
    det_in_s = sum(r["det_s_per_frame"] for r in pipe_runs) / len(pipe_runs)
    cpu_s = sum(r["cpu_s_per_frame"] for r in pipe_runs) / len(pipe_runs)
    loop_s = sum(r["loop_cpu_s_per_frame"] for r in pipe_runs) / len(pipe_runs)

    result = {
        "scene": str(scene.root),
        "image_size": scene.info.get("image_size"),
        "model_input": pipe_runs[0]["input_size"],
        "threads": args.threads or camera.detector.threads,
        "frames": n,
        "rounds": len(pipe_runs),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "decode_only_fps": n / decode_s,
        "detector_alone_fps": 1.0 / det_s,
        "detector_alone_ms": 1000 * det_s,
        "detector_alone_ms_runs": [round(1000 * x, 2) for x in det_runs],
        "pipeline_fps": 1.0 / pipe_s,
        "pipeline_ms": 1000 * pipe_s,
        "pipeline_ms_runs": [round(1000 * r["s_per_frame"], 2) for r in pipe_runs],
        "detector_in_pipeline_ms": 1000 * det_in_s,
        "pipeline_over_detector": pipe_s / det_s,
        # CPU the pipeline used per frame: the whole process (all threads), and the frame loop's
        # thread alone (its critical path when decode, colour and OCR threads get a core of their own)
        "pipeline_cpu_ms": 1000 * cpu_s,
        "pipeline_cores_busy": cpu_s / pipe_s,
        "frame_loop_cpu_ms": 1000 * loop_s,
        "frame_loop_cpu_over_detector": loop_s / det_s,
        "passages": pipe_runs[0]["passages"],
        "targets": {"pipeline_fps": 25.0, "pipeline_over_detector": 1.35},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"scene {result['scene']}  {result['image_size']} px, {n} frames, model input {result['model_input']}, "
              f"{result['threads']} ORT thread(s)")
        print(f"{result['cpus']} CPUs, load average {result['load_average_before']} before, "
              f"{result['load_average_after']} after; {result['rounds']} pipeline runs interleaved with "
              f"{result['rounds'] + 1} detector-alone runs")
        print(f"decode only          {result['decode_only_fps']:7.1f} fps")
        print(f"detector alone       {result['detector_alone_fps']:7.1f} fps  ({result['detector_alone_ms']:.1f} ms/frame; "
              f"runs {result['detector_alone_ms_runs']})")
        print(f"pipeline end to end  {result['pipeline_fps']:7.1f} fps  ({result['pipeline_ms']:.1f} ms/frame; "
              f"detector inside {result['detector_in_pipeline_ms']:.1f} ms; runs {result['pipeline_ms_runs']})")
        print(f"pipeline / detector  {result['pipeline_over_detector']:7.2f} x   (targets: >= 25 fps, <= 1.35 x)")
        print(f"pipeline CPU         {result['pipeline_cpu_ms']:7.1f} ms/frame over all threads "
              f"({result['pipeline_cores_busy']:.2f} cores busy); frame-loop thread {result['frame_loop_cpu_ms']:.1f} "
              f"ms/frame = {result['frame_loop_cpu_over_detector']:.2f} x detector")
    return 0


if __name__ == "__main__":
    sys.exit(main())
