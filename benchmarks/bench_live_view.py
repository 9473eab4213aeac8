"""What the live view costs per frame on the demo's fisheye: the plate blur, the drawing and
the JPEG encoding an HTTP thread does for each frame it sends (after the real pipeline ran
the first frames, so there are tracks, trails, counters and queues to draw).

    python benchmarks/bench_live_view.py [--frames 150]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trafficprn.camera.sources import open_source
from trafficprn.config import load_site
from trafficprn.demo import demo_scene_dir
from trafficprn.detect.runtime import load_detector
from trafficprn.evaluation import load_scene
from trafficprn.live_view import LiveFrames
from trafficprn.pipeline import Pipeline
from trafficprn.view_detector import ViewDetector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args()
    scene = load_scene(demo_scene_dir())
    site = load_site(scene.site_path)
    camera = site.cameras[0]
    cfg = camera.detector
    detector = ViewDetector.for_camera(load_detector("bundled", confidence=cfg.confidence, nms_iou=cfg.nms_iou), camera)
    pipeline = Pipeline(site, camera, detector, sinks=[])
    live = LiveFrames(camera, list(detector.class_names), banner="SIMULATED SCENE")
    blur_s, draw_s, jpeg_s = [], [], []
    with open_source(str(scene.video_path), camera.name, start_ts=float(scene.info["start_ts"])) as src:
        for (frame, meta), _ in zip(src, range(args.frames), strict=False):
            result = pipeline.process(frame, meta)
            live.update(frame, result.detections, result.events, result.raw)
            t0 = time.perf_counter()
            live.image(annotated=False)
            t1 = time.perf_counter()
            live.image(annotated=True)
            t2 = time.perf_counter()
            live.jpeg(annotated=True)
            t3 = time.perf_counter()
            blur_s.append(t1 - t0)
            draw_s.append(t2 - t1)
            jpeg_s.append(t3 - t2)
    pipeline.close()
    ms = {k: 1000 * float(np.median(v)) for k, v in (("blur", blur_s), ("blur+draw", draw_s), ("blur+draw+jpeg", jpeg_s))}
    print(f"live view on {camera.lens.image_size[0]}x{camera.lens.image_size[1]} ({len(blur_s)} frames), median per frame: "
          + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()))


if __name__ == "__main__":
    main()
