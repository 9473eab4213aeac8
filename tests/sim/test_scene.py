"""Short rendered scenes: boxes, identities, movement counts, queues, determinism, site.yaml."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from trafficprn.config import load_site
from trafficprn.errors import DependencyError
from trafficprn.geometry.polygons import points_in_polygon
from trafficprn.sim import sumo as sim_sumo
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import SceneOptions, render_scene

SECONDS = 8.0
FPS = 5.0


def make_scene(out: Path, camera: str, size: tuple[int, int], *, video: bool = True, seed: int = 7,
               seconds: float = SECONDS) -> Path:
    opts = SceneOptions(seconds=seconds, fps=FPS, camera=camera, seed=seed, size_px=size, video=video)
    return render_scene(load_scenario("default"), out, opts)


@pytest.fixture(scope="module", params=[("fisheye", (480, 480)), ("pole", (480, 270))], ids=["fisheye", "pole"])
def scene(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    camera, size = request.param
    return make_scene(tmp_path_factory.mktemp(camera), camera, size)


def read_frames(scene: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (scene / "frames.jsonl").read_text().splitlines()]


def test_scene_folder_has_every_output(scene: Path) -> None:
    meta = json.loads((scene / "scene.json").read_text())
    assert meta["seconds"] == SECONDS and meta["fps"] == FPS and meta["seed"] == 7
    assert {"video.mp4", "frames.jsonl", "vehicles.json", "queues.jsonl", "site.yaml"} <= {p.name for p in scene.iterdir()}
    frames = read_frames(scene)
    assert [f["index"] for f in frames] == list(range(int(SECONDS * FPS)))
    cap = cv2.VideoCapture(str(scene / "video.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == len(frames)


def test_visible_boxes_lie_inside_the_image(scene: Path) -> None:
    w, h = json.loads((scene / "scene.json").read_text())["image_size"]
    objects = [o for f in read_frames(scene) for o in f["objects"]]
    assert len(objects) > 20
    for o in objects:
        x0, y0, x1, y1 = o["xyxy"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert 0 < o["visibility"] <= 1
        if o["plate_xyxy"] is not None:
            px0, py0, px1, py1 = o["plate_xyxy"]
            assert x0 - 1 <= px0 <= px1 <= x1 + 1 and y0 - 1 <= py0 <= py1 <= y1 + 1


def test_a_track_keeps_class_colour_and_plate(scene: Path) -> None:
    ident: dict[int, set[tuple[str, str, str | None]]] = defaultdict(set)
    for f in read_frames(scene):
        for o in f["objects"]:
            ident[o["track_id"]].add((o["class"], o["colour"], o["plate"]))
    assert all(len(v) == 1 for v in ident.values())
    for v in json.loads((scene / "vehicles.json").read_text()):
        assert ident[v["track_id"]] == {(v["class"], v["colour"], v["plate"])}


def test_movement_counts_match_tracks_through_leg_zones(scene: Path) -> None:
    cam = load_site(scene / "site.yaml").cameras[0]
    tracks: dict[int, list[np.ndarray]] = defaultdict(list)
    for f in read_frames(scene):
        for o in f["objects"]:
            tracks[o["track_id"]].append(np.array(o["anchor_px"]))
    observed: Counter[tuple[str, str]] = Counter()
    for anchors in tracks.values():
        pts = np.array(anchors)
        entries = [(int(np.argmax(m)), leg.name) for leg in cam.legs
                   if (m := points_in_polygon(pts, np.array(leg.entry))).any()]
        if not entries:
            continue
        k0, entry = min(entries)
        exits = [leg.name for leg in cam.legs if points_in_polygon(pts[k0:], np.array(leg.exit)).any()]
        if len(exits) == 1:
            observed[(entry, exits[0])] += 1
    truth = Counter((v["entry_leg"], v["exit_leg"]) for v in json.loads((scene / "vehicles.json").read_text()))
    assert sum(truth.values()) > 0
    assert observed == truth


def test_queues_are_non_negative_and_form_on_red(scene: Path) -> None:
    sc = load_scenario("default")
    rows = [json.loads(line) for line in (scene / "queues.jsonl").read_text().splitlines()]
    assert rows and all(r["length_m"] >= 0 and r["vehicles"] >= 0 for r in rows)
    assert all((r["length_m"] > 0) == (r["vehicles"] > 0) for r in rows)
    red_queued = 0
    for r in rows:
        t = np.array([r["ts"] - sc.start_ts + sc.warmup_s])
        leg = r["lane"].split("-")[0]
        if not sim_sumo.signal_is_green(sc, leg, t)[0] and r["vehicles"] > 0:
            red_queued += 1
    assert red_queued > 0


def test_site_yaml_loads_through_the_real_loader(scene: Path) -> None:
    site = load_site(scene / "site.yaml")
    cam = site.cameras[0]
    assert Path(cam.source) == (scene / "video.mp4").resolve()
    assert {leg.name for leg in cam.legs} >= {"N", "S"}
    assert len(cam.calibration.points) >= 4 and cam.lanes


def test_same_seed_gives_identical_ground_truth(tmp_path: Path) -> None:
    a = make_scene(tmp_path / "a", "fisheye", (256, 256), video=False, seconds=4)
    b = make_scene(tmp_path / "b", "fisheye", (256, 256), video=False, seconds=4)
    for name in ("frames.jsonl", "vehicles.json", "queues.jsonl", "site.yaml", "scene.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = make_scene(tmp_path / "c", "fisheye", (256, 256), video=False, seed=8, seconds=4)
    assert (a / "vehicles.json").read_bytes() != (c / "vehicles.json").read_bytes()


def test_missing_sumo_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "sumo", None)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DependencyError, match=r"pip install 'trafficprn\[sim\]'"):
        sim_sumo.sumo_binaries()


def test_dusk_renders_darker_frames_with_the_same_truth(tmp_path: Path) -> None:
    sc = load_scenario("default")
    day = render_scene(sc, tmp_path / "day", SceneOptions(seconds=2, fps=FPS, camera="pole", size_px=(320, 180)))
    dusk = render_scene(sc, tmp_path / "dusk", SceneOptions(seconds=2, fps=FPS, camera="pole", size_px=(320, 180),
                                                            dusk=True))
    means = []
    for folder in (day, dusk):
        cap = cv2.VideoCapture(str(folder / "video.mp4"))
        ok, frame = cap.read()
        assert ok
        means.append(float(frame.mean()))
    assert means[1] < 0.75 * means[0]
    assert (day / "vehicles.json").read_bytes() == (dusk / "vehicles.json").read_bytes()


def test_truth_boxes_through_the_real_pipeline_give_the_truth_counts(tmp_path: Path) -> None:
    """The sim's definitions agree with the analytics': ground-truth boxes fed through the
    pipeline (tracker, zones, passage time) reproduce vehicles.json for the fisheye."""
    opts = SceneOptions(seconds=15, fps=10, camera="fisheye", seed=7, size_px=(400, 400), video=False)
    scene = render_scene(load_scenario("default"), tmp_path / "s", opts)
    from trafficprn.events import ListSink, VehiclePassage
    from trafficprn.pipeline import Pipeline
    from trafficprn.types import Detections, FrameMeta, VehicleClass

    class NoDetector:
        class_names = ["car", "bus", "truck", "motorcycle", "bicycle"]

        def detect(self, image_bgr: np.ndarray) -> Detections:
            return Detections.empty()

    site = load_site(scene / "site.yaml")
    sink = ListSink()
    pipeline = Pipeline(site, site.cameras[0], NoDetector(), sinks=[sink])
    frames = read_frames(scene)
    for f in frames:
        objs = [o for o in f["objects"] if o["visibility"] >= 0.3]
        dets = Detections(xyxy=np.array([o["xyxy"] for o in objs]).reshape(-1, 4), confidence=np.ones(len(objs)),
                          class_id=np.array([VehicleClass.from_label(o["class"]) for o in objs], dtype=np.int64))
        pipeline.process_detections(dets, FrameMeta(site.cameras[0].name, f["ts"], f["index"]))
    pipeline.finish(frames[-1]["ts"])
    passages = [e for e in sink.events if isinstance(e, VehiclePassage) and e.entry_leg and e.exit_leg]
    truth = json.loads((scene / "vehicles.json").read_text())
    assert Counter((e.entry_leg, e.exit_leg, e.movement) for e in passages) == Counter(
        (v["entry_leg"], v["exit_leg"], v["movement"]) for v in truth)
    got = sorted(e.passage_ts for e in passages)
    want = sorted(v["passage_ts"] for v in truth if v["passage_ts"] is not None)
    assert len(got) == len(want) and np.allclose(got, want, atol=0.5)
