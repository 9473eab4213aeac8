"""`trafficprn eval` scoring and `trafficprn demo --headless` on the bundled demo scene.

The scoring is checked on a perfect run built from the ground truth itself (every score
at its best) and on a damaged one (known errors); the headless demo runs the real
pipeline with the bundled model on the first frames of the bundled scene."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trafficprn.demo import demo_scene_dir
from trafficprn.evaluation import VEHICLE_CLASSES, SceneRun, load_scene, score_scene
from trafficprn.evaluation_match import passage_to_truth, track_to_truth
from trafficprn.events import QueueSample, VehiclePassage
from trafficprn.types import Detections, VehicleClass


def perfect_run(scene, *, drop_passages: int = 0, speed_bias_kmh: float = 0.0, queue_bias_m: float = 0.0) -> SceneRun:
    tracks, dets = [], []
    for frame in scene.frames:
        objs = [o for o in frame["objects"] if o["class"] in VEHICLE_CLASSES]
        xyxy = np.array([o["xyxy"] for o in objs], dtype=np.float64).reshape(-1, 4)
        cls = np.array([VEHICLE_CLASSES.index(o["class"]) for o in objs], dtype=np.int64)
        ids = np.array([o["track_id"] for o in objs], dtype=np.int64)
        vc = np.array([VehicleClass.from_label(o["class"]).value for o in objs], dtype=np.int64)
        dets.append(Detections(xyxy, np.full(len(objs), 0.9), cls))
        tracks.append(Detections(xyxy, np.full(len(objs), 0.9), vc, track_id=ids))
    passages = [
        VehiclePassage(camera="c", track_id=v["track_id"], passage_ts=v["passage_ts"], first_seen_ts=v["first_ts"],
                       last_seen_ts=v["last_ts"], vehicle_class=v["class"], class_confidence=1.0,
                       entry_leg=v["entry_leg"], exit_leg=v["exit_leg"], movement=v["movement"],
                       speed_median_kmh=None if v["speed_kmh"] is None else v["speed_kmh"] + speed_bias_kmh,
                       colour=v["colour"], plate_text=v["plate"])
        for v in scene.vehicles if v["passage_ts"] is not None
    ][drop_passages:]
    queues = [QueueSample("c", q["lane"], q["ts"], q["length_m"] + queue_bias_m, q["vehicles"]) for q in scene.queues]
    return SceneRun(passages, queues, tracks, dets, list(VEHICLE_CLASSES), len(tracks), 1.0, 0.5)


def test_perfect_run_scores_perfectly():
    scene = load_scene(demo_scene_dir())
    s = score_scene(scene, perfect_run(scene))
    assert s["detection"]["map50"] == pytest.approx(1.0)
    assert s["tracking"]["mota"] == pytest.approx(1.0) and s["tracking"]["idf1"] == pytest.approx(1.0)
    assert s["counts"]["all_within_tolerance"] and s["counts"]["interval_accuracy"] == pytest.approx(1.0)
    assert s["passages"]["speed_mae_kmh"] == pytest.approx(0.0)
    assert s["passages"]["colour_accuracy"] == 1.0 and s["passages"]["plate_exact_rate"] == 1.0
    assert s["queues"]["queue_mae_m"] == pytest.approx(0.0)
    assert s["speed"]["pipeline_fps"] == len(scene.frames)


def test_known_errors_show_up():
    scene = load_scene(demo_scene_dir())
    n = sum(v["passage_ts"] is not None for v in scene.vehicles)
    s = score_scene(scene, perfect_run(scene, drop_passages=3, speed_bias_kmh=2.5, queue_bias_m=1.5))
    assert s["counts"]["found_total"] == n - 3
    assert s["counts"]["interval_accuracy"] == pytest.approx(1 - 3 / n)
    assert s["passages"]["speed_mae_kmh"] == pytest.approx(2.5)
    assert s["queues"]["queue_mae_m"] == pytest.approx(1.5)


def test_a_joined_passage_is_scored_against_the_vehicle_most_of_its_fragments_were():
    """A passage that took over an earlier fragment (`merged_track_ids`) is measured over
    both, so it is matched to the vehicle most of their boxes were, not to the vehicle
    its last fragment ended on (an identity switch at the join)."""
    scene = load_scene(demo_scene_dir())
    run = perfect_run(scene)
    frames = {}
    for dets in run.tracks:
        for tid in dets.track_id.tolist():
            frames[tid] = frames.get(tid, 0) + 1
    counted = [p.track_id for p in run.passages]
    long_id, short_id = max(frames, key=frames.get), min(counted, key=frames.get)
    assert frames[long_id] > frames[short_id]
    joined = next(p for p in run.passages if p.track_id == short_id)
    joined.extras["merged_track_ids"] = [long_id]
    run.passages[:] = [joined]
    assert track_to_truth(scene, run)[short_id] == short_id
    assert passage_to_truth(scene, run) == {short_id: long_id}


def test_shift_moves_every_timestamp():
    scene = load_scene(demo_scene_dir())
    moved = scene.shifted(100.0)
    assert moved.frames[0]["ts"] == scene.frames[0]["ts"] + 100
    assert moved.info["start_ts"] == scene.info["start_ts"] + 100
    v = next(i for i, v in enumerate(scene.vehicles) if v["passage_ts"] is not None)
    assert moved.vehicles[v]["passage_ts"] == scene.vehicles[v]["passage_ts"] + 100


def test_eval_rejects_a_folder_that_is_not_a_scene(tmp_path: Path):
    from trafficprn.cli import main

    assert main(["eval", str(tmp_path), "--no-progress"]) == 2


@pytest.mark.skipif(not (demo_scene_dir().parent / "models" / "trafficprn-prn.onnx").is_file(), reason="no bundled model")
def test_headless_eval_runs_the_real_pipeline(capsys):
    from trafficprn.cli import main

    assert main(["eval", str(demo_scene_dir()), "--json", "--no-progress", "--max-frames", "20"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 20
    assert summary["speed"]["pipeline_fps"] > 0
    assert 0.0 <= summary["detection"]["map50"] <= 1.0


@pytest.mark.skipif(not (demo_scene_dir().parent / "models" / "trafficprn-prn.onnx").is_file(), reason="no bundled model")
def test_headless_demo_writes_sqlite(tmp_path: Path, capsys):
    import sqlalchemy as sa

    from trafficprn.cli import main

    code = main(["demo", "--headless", "--json", "--no-progress", "--workdir", str(tmp_path), "--max-frames", "25"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 25
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    with engine.connect() as conn:
        queue_rows = conn.execute(sa.text("select count(*) from queue_samples")).scalar_one()
    assert queue_rows > 0


@pytest.mark.skipif(not (demo_scene_dir().parent / "models" / "trafficprn-prn.onnx").is_file(), reason="no bundled model")
def test_demo_serves_the_dashboard_and_stops_on_ctrl_c(tmp_path: Path):
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trafficprn", "demo", "--no-progress", "--workdir", str(tmp_path), "--max-frames", "30",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.time() + 120
        assert proc.stdout is not None
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if f"http://127.0.0.1:{port}/ui/" in line or proc.poll() is not None:
                break
        assert any(f"http://127.0.0.1:{port}/ui/" in line for line in lines), "".join(lines)
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras", timeout=5) as r:
            assert json.loads(r.read())[0]["name"] == "fisheye-1"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_truth_detector_without_noise_reports_the_truth():
    from trafficprn.errors import InputError
    from trafficprn.evaluation import TruthDetector, TruthNoise

    scene = load_scene(demo_scene_dir())
    det = TruthDetector(scene, TruthNoise(noise=0.0, dropout=0.0, fp=0.0))
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    for frame in scene.frames[:30]:
        out = det.detect(image)
        objs = [o for o in frame["objects"] if o["class"] in VEHICLE_CLASSES and o["visibility"] >= 0.2]
        np.testing.assert_allclose(out.xyxy, np.array([o["xyxy"] for o in objs]).reshape(-1, 4))
        assert [det.class_names[c] for c in out.class_id] == [o["class"] for o in objs]
    det.index = len(scene.frames)
    with pytest.raises(InputError, match="frames of truth"):
        det.detect(image)


def test_truth_detector_spoils_as_asked():
    from trafficprn.evaluation import TruthDetector, TruthNoise

    scene = load_scene(demo_scene_dir())
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    n_true = sum(sum(o["class"] in VEHICLE_CLASSES and o["visibility"] >= 0.2 for o in f["objects"])
                 for f in scene.frames)
    det = TruthDetector(scene, TruthNoise(noise=0.0, dropout=0.5, fp=0.0, seed=3))
    kept = sum(len(det.detect(image)) for _ in scene.frames)
    assert 0.45 < kept / n_true < 0.55
    det = TruthDetector(scene, TruthNoise(noise=0.0, dropout=0.0, fp=0.2, seed=3))
    extra = sum(len(det.detect(image)) for _ in scene.frames) - n_true
    assert 0.15 < extra / n_true < 0.25


def test_eval_on_spoiled_truth_scores_tracking_and_analytics(capsys):
    """`eval --truth`: the real pipeline (decode, SORT, analytics, colour) on true boxes with
    3 % jitter, 5 % dropouts and 5 % false positives; tracking must hold up."""
    from trafficprn.cli import main

    assert main(["eval", str(demo_scene_dir()), "--truth", "--json", "--no-progress", "--max-frames", "200"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 200
    assert summary["tracking"]["mota"] > 0.7
    assert summary["queues"]["queue_mae_m"] < 3.0


def test_ground_truth_below_the_models_resolution_is_ignored():
    """8 px at a 416 input is 24.6 px on the 1280 px demo frame; without a model input (a
    truth run) the rule is 8 px on the frame. Both detection scores are reported."""
    from trafficprn.evaluation import min_box_at_input

    scene = load_scene(demo_scene_dir())
    run = perfect_run(scene)
    assert min_box_at_input(scene, run) == 8.0
    run.extra["input_size"] = (416, 416)
    assert min_box_at_input(scene, run) == pytest.approx(8 * 1280 / 416)
    s = score_scene(scene, run)
    assert s["detection"]["min_box_px"] == pytest.approx(8 * 1280 / 416)
    assert s["detection_all"]["min_box_px"] == 8.0
    assert s["detection"]["map50"] == pytest.approx(1.0) and s["detection_all"]["map50"] == pytest.approx(1.0)
    run.extra["input_size"] = (1280, 1280)  # no shrinking: the plain rule
    assert min_box_at_input(scene, run) == 8.0 and score_scene(scene, run)["detection_all"] is None
