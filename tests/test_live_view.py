"""The live view's privacy blur on rendered scenes with their ground truth, and its state.

The frames are the worker's own: a real `Worker` decodes the video (`open_source`), runs
the real `Pipeline` and feeds `LiveFrames`; what the HTTP endpoint would encode is
`LiveFrames.image`. On the pole camera the boxes come from the scene's truth
(`evaluation.TruthDetector`, no noise): the test is about where the blur goes once a
vehicle is found, not about the detector's recall. On the demo's fisheye the bundled model
detects, as in `trafficprn demo`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trafficprn.camera.calibration import Calibration
from trafficprn.camera.sources import open_source
from trafficprn.config import load_site
from trafficprn.demo import demo_scene_dir
from trafficprn.detect.runtime import load_detector
from trafficprn.errors import DependencyError
from trafficprn.evaluation import VEHICLE_CLASSES, TruthDetector, TruthNoise, load_scene
from trafficprn.events import ListSink, QueueSample, VehiclePassage
from trafficprn.live_view import LiveFrames, LiveScene, annotate
from trafficprn.pipeline import Pipeline
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import SceneOptions, render_scene
from trafficprn.types import Detections
from trafficprn.view_detector import ViewDetector
from trafficprn.worker import Worker, WorkerMetrics


def _live_frames(scene_dir: Path, detector: object, max_frames: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """(decoded frame, frame as the live view serves it without drawings) by frame index."""
    scene = load_scene(scene_dir)
    site = load_site(scene.site_path)
    camera = site.cameras[0]
    start = float(scene.info["start_ts"])
    with open_source(str(scene.video_path), camera.name, start_ts=start) as src:
        decoded = {meta.index: frame for (frame, meta), _ in zip(src, range(max_frames), strict=False)}
    pipeline = Pipeline(site, camera, detector, sinks=[])  # type: ignore[arg-type]
    live = LiveFrames(camera, list(VEHICLE_CLASSES))
    served: dict[int, np.ndarray] = {}
    metrics = WorkerMetrics(camera.name)
    source = open_source(str(scene.video_path), camera.name, start_ts=start)
    worker = Worker(camera, source, pipeline, ListSink(), metrics, live, clock="footage")

    def on_frame(meta: object) -> None:
        image = live.image(annotated=False)
        assert image is not None
        served[meta.index] = image  # type: ignore[attr-defined]
        if len(served) >= max_frames:
            worker.stop.set()

    worker.run(on_frame)
    pipeline.close()
    return decoded, served


@pytest.fixture(scope="module")
def pole_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pole")
    try:
        return render_scene(load_scenario("default"), out,
                            SceneOptions(seconds=8, fps=5, camera="pole", seed=3, size_px=(1280, 720)))
    except DependencyError as exc:
        pytest.skip(f"the sim needs SUMO: {exc}")


def test_pole_camera_plates_are_blurred_in_the_live_frames(pole_scene: Path) -> None:
    scene = load_scene(pole_scene)
    decoded, served = _live_frames(pole_scene, TruthDetector(scene, TruthNoise(0.0, 0.0, 0.0)), len(scene.frames))
    checked = 0
    for frame in scene.frames:
        i = frame["index"]
        changed = np.any(served[i] != decoded[i], axis=2)
        for obj in frame["objects"]:
            plate = obj.get("plate_xyxy")
            if not plate or plate[2] - plate[0] < 20 or obj["visibility"] < 0.2:
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in plate)
            share = float(changed[y1:y2, x1:x2].mean())
            assert share >= 0.75, f"frame {i}: plate {plate} of a {obj['class']} is readable ({share:.0%} blurred)"
            checked += 1
    assert checked >= 10  # the scene does show plates this large
    # never whole vehicles: the upper part of a box no other box overlaps stays as it is (the
    # band reaches at most half way up the tracked box, which the tracker smooths a little)
    alone = 0
    for frame in scene.frames:
        changed = np.any(served[frame["index"]] != decoded[frame["index"]], axis=2)
        boxes = [o["xyxy"] for o in frame["objects"]]
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            if any(j != k and b[0] < x2 and x1 < b[2] and b[1] < y2 and y1 < b[3] for j, b in enumerate(boxes)):
                continue
            a, b, c, d = (int(round(v)) for v in (x1, y1, x2, y1 + 0.4 * (y2 - y1)))
            if c > a and d > b:
                assert changed[b:d, a:c].mean() < 0.05
                alone += 1
    assert alone > 20


@pytest.mark.skipif(not (demo_scene_dir().parent / "models" / "trafficprn-prn.onnx").is_file(), reason="no bundled model")
def test_demo_fisheye_vehicles_stay_unblurred() -> None:
    """On the overhead fisheye a plate's upright face is never seen large enough to read,
    so the vehicles are shown as they are."""
    scene = load_scene(demo_scene_dir())
    camera = load_site(scene.site_path).cameras[0]
    cfg = camera.detector
    detector = ViewDetector.for_camera(load_detector("bundled", confidence=cfg.confidence, nms_iou=cfg.nms_iou,
                                                     threads=cfg.threads), camera)
    n = 50
    decoded, served = _live_frames(demo_scene_dir(), detector, n)
    boxes = 0
    for frame in scene.frames[:n]:
        unchanged = np.all(served[frame["index"]] == decoded[frame["index"]], axis=2)
        for obj in frame["objects"]:
            x1, y1, x2, y2 = (int(round(v)) for v in obj["xyxy"])
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            assert unchanged[y1:y2, x1:x2].mean() >= 0.9, f"frame {frame['index']}: {obj['class']} box blurred"
            boxes += 1
    assert boxes > 100


def test_view_sine_is_zero_below_a_fisheye_and_high_on_a_pole_camera(pole_scene: Path) -> None:
    fisheye = Calibration.from_camera(load_site(demo_scene_dir() / "site.yaml").cameras[0])
    sine = fisheye.view_sine([[640.0, 640.0], [640.0, 100.0]])
    assert sine[0] == pytest.approx(0.0, abs=1e-6) and sine[1] > 0.9
    pole = Calibration.from_camera(load_site(pole_scene / "site.yaml").cameras[0])
    assert np.all(pole.view_sine([[640.0, 360.0], [640.0, 700.0], [100.0, 400.0]]) > 0.8)


def test_scene_state_counts_ticks_and_forgets_old_trails() -> None:
    camera = load_site(demo_scene_dir() / "site.yaml").cameras[0]
    scene = LiveScene(camera)
    box = Detections(xyxy=np.array([[600.0, 600.0, 640.0, 660.0]]), confidence=np.array([0.9]),
                     class_id=np.array([0]), track_id=np.array([7]))
    passage = VehiclePassage(camera=camera.name, track_id=7, passage_ts=1.0, first_seen_ts=0.0, last_seen_ts=2.0,
                             vehicle_class="car", class_confidence=0.9, entry_leg="N", exit_leg="S", movement="T")
    for k in range(30):
        moved = Detections(xyxy=box.xyxy + [0, 5 * k, 0, 5 * k], confidence=box.confidence, class_id=box.class_id,
                           track_id=box.track_id)
        scene.observe(moved, [QueueSample(camera.name, "N-1", float(k), 12.5, 3)] if k == 3 else [])
    scene.observe(None, [passage])
    st = scene.state()
    assert len(st.trails[7]) == 12 and st.trails[7][-1][1] == pytest.approx(630 + 5 * 29)
    assert st.counts[("N", "T")] == 1 and ("N", "T") in st.ticked and st.passages == 1
    assert st.queues["N-1"] == (12.5, 3)
    for _ in range(16):
        scene.observe(None)
    assert 7 not in scene.state().trails  # bounded: a track gone this long loses its trail
    frame = np.zeros((1280, 1280, 3), np.uint8)
    drawn = annotate(frame, None, camera, scene=scene, banner="SIMULATED SCENE")
    lane = next(lane for lane in scene.lanes if lane.name == "N-1")
    along = scene.calibration.ground_to_image([(lane.stop_a_m + lane.stop_b_m) / 2 + 6.0 * lane.upstream])[0]  # type: ignore[union-attr]
    x, y = (int(round(v)) for v in along)
    assert drawn[y, x].any()  # the queue is drawn 6 m up the lane (12.5 m long)
    assert json.dumps(drawn.shape) == "[1280, 1280, 3]"
