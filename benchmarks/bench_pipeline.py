"""End-to-end frames/s of one 1280x1280 fisheye stream, next to the detector alone.

    python benchmarks/bench_pipeline.py [--scene DIR] [--model bundled] [--threads 1] [--frames 300]

End to end covers: H.264 decode, the PRN detector on ONNX Runtime on the whole frame
(at the model's input size), SORT, the analytics with per-vehicle perspective crops,
colour, plate reading (OCR on a worker thread) and batched SQLite writes through the
DatabaseSink. The detector alone runs on the same decoded frames in the same process,
before the pipeline, so both see the same machine state. Targets (issue 8): >= 25 fps
end to end, and pipeline time <= 1.35 x detector time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    scene = load_scene(args.scene)
    site = load_site(scene.site_path)
    camera = site.cameras[0]

    # Detector alone, on frames decoded beforehand.
    frames = []
    source = open_source(str(scene.video_path), camera.name, start_ts=float(scene.info["start_ts"]))
    t0 = time.perf_counter()
    for frame, _ in source:
        frames.append(frame)
        if args.frames and len(frames) >= args.frames:
            break
    source.close()
    decode_s = time.perf_counter() - t0
    detector = _detector(scene, args.model, args.threads, record_confidence=None)
    detector.detect(frames[0])  # warm-up
    detector.seconds = 0.0
    detector.outputs.clear()
    t0 = time.perf_counter()
    for frame in frames:
        detector.detect(frame)
    det_s = time.perf_counter() - t0
    n = len(frames)
    del frames

    # The whole pipeline, decoding again from the file, writing SQLite.
    detector = _detector(scene, args.model, args.threads, record_confidence=None)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        upgrade(url)
        sink = DatabaseSink(url, Path(tmp) / "spool")
        run = run_scene(scene, make_pipeline_factory({}), detector, sinks=[sink], max_frames=n)
        t_close = time.perf_counter()
        sink.close()
        close_s = time.perf_counter() - t_close
    pipe_s = run.seconds + close_s

    result = {
        "scene": str(scene.root),
        "image_size": scene.info.get("image_size"),
        "model_input": list(detector.inner.input_size),
        "threads": args.threads or camera.detector.threads,
        "frames": n,
        "decode_only_fps": n / decode_s,
        "detector_alone_fps": n / det_s,
        "detector_alone_ms": 1000 * det_s / n,
        "pipeline_fps": run.frames / pipe_s,
        "pipeline_ms": 1000 * pipe_s / run.frames,
        "detector_in_pipeline_ms": 1000 * run.detector_seconds / run.frames,
        "pipeline_over_detector": (pipe_s / run.frames) / (det_s / n),
        "passages": len(run.passages),
        "targets": {"pipeline_fps": 25.0, "pipeline_over_detector": 1.35},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"scene {result['scene']}  {result['image_size']} px, {n} frames, model input {result['model_input']}, "
              f"{result['threads']} ORT thread(s)")
        print(f"decode only          {result['decode_only_fps']:7.1f} fps")
        print(f"detector alone       {result['detector_alone_fps']:7.1f} fps  ({result['detector_alone_ms']:.1f} ms/frame)")
        print(f"pipeline end to end  {result['pipeline_fps']:7.1f} fps  ({result['pipeline_ms']:.1f} ms/frame; "
              f"detector inside {result['detector_in_pipeline_ms']:.1f} ms)")
        print(f"pipeline / detector  {result['pipeline_over_detector']:7.2f} x   (targets: >= 25 fps, <= 1.35 x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
