"""The per-camera Pipeline end to end on rendered frames: COCO class mapping, tracking,
analytics, and the real colour classifier, crop maker, plate fuser and privacy hashing
fed from a few crops per track."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "analytics"))

from junction_factory import constant_speed, make_site, vehicle_boxes  # noqa: E402

from trafficprn.analytics.colour import ColourClassifier  # noqa: E402
from trafficprn.analytics.plates import PlateResult, TrackPlateFuser  # noqa: E402
from trafficprn.analytics.privacy import PlatePrivacy  # noqa: E402
from trafficprn.config import PrivacySection  # noqa: E402
from trafficprn.detect.classes import COCO_CLASSES  # noqa: E402
from trafficprn.events import ListSink, PlateRead, QueueSample, VehiclePassage  # noqa: E402
from trafficprn.pipeline import Pipeline, PipelineParams, class_map  # noqa: E402
from trafficprn.types import Detections, FrameMeta, VehicleClass  # noqa: E402

T0 = 1_780_000_000.0
COCO = list(COCO_CLASSES)


def test_class_map_keeps_vehicles_only() -> None:
    m = class_map(COCO)
    assert m[COCO.index("car")] == VehicleClass.CAR and m[COCO.index("motorbike")] == VehicleClass.MOTORCYCLE
    assert m[COCO.index("truck")] == VehicleClass.TRUCK and m[COCO.index("bicycle")] == VehicleClass.BICYCLE
    assert m[COCO.index("person")] == -1 and m[COCO.index("traffic light")] == -1
    assert class_map(["Car", "bus", "tree"]).tolist() == [0, 1, -1]


class RenderedDetector:
    """Detector protocol over frames this test renders: returns the true boxes (COCO class
    ids) it was told, plus a pedestrian, which the pipeline must drop."""

    class_names = COCO

    def __init__(self) -> None:
        self.next = Detections.empty()

    def detect(self, image_bgr: np.ndarray) -> Detections:
        person = Detections(np.array([[100.0, 100.0, 120.0, 160.0]]), np.array([0.8]), np.array([0]))
        return Detections.concat([self.next, person])


class FixedPlateReader:
    """A plate reader that reads one fixed text: the OCR itself is tested in test_plates;
    here the fuser, the privacy hash and the pipeline's wiring are under test."""

    fused_length = None  # no single plate length: fusion votes on the heaviest

    def __init__(self) -> None:
        self.crops = 0

    def warm_up(self) -> None:
        pass

    def read(self, crop_bgr: np.ndarray) -> PlateResult:
        self.crops += 1
        return PlateResult("ABC1234", 0.9)


@pytest.fixture(scope="module", params=[0, 1], ids=["colour-inline", "colour-thread"])
def run(request):
    fps = 10.0
    site = make_site()
    cam = site.cameras[0]
    vehicles = [
        constant_speed(1, "W", "E", 30.0, T0, fps),  # red car, through
        constant_speed(2, "N", "W", 25.0, T0 + 1.0, fps, VehicleClass.TRUCK),  # blue truck, right turn
    ]
    colours_bgr = {1: (30, 25, 190), 2: (170, 80, 20)}
    coco_id = {VehicleClass.CAR: COCO.index("car"), VehicleClass.TRUCK: COCO.index("truck")}
    reader = FixedPlateReader()
    fuser = TrackPlateFuser(reader, reads_per_track=2)  # type: ignore[arg-type]
    sink = ListSink()
    detector = RenderedDetector()
    pipe = Pipeline(
        site, cam, detector, sinks=[sink], colour=ColourClassifier(), plates=fuser,
        privacy=PlatePrivacy.from_config(PrivacySection(plates="hash"), "test-secret"),
        # min_plate_width_px=0: this overhead fisheye shows plates too small to read (see the gate test)
        params=PipelineParams(plate_wait_s=2.0, min_crop_px=12.0, colour_workers=request.param, min_plate_width_px=0.0),
    )
    t_end = max(float(v.ts[-1]) for v in vehicles) + 2.0
    results = []
    for i in range(int((t_end - T0) * fps)):
        ts = T0 + i / fps
        image = np.full((1280, 1280, 3), 90, np.uint8)
        rows = []
        for v in vehicles:
            k = int(round((ts - v.ts[0]) * fps))
            if 0 <= k < len(v.ts):
                box = vehicle_boxes(v)[k]
                x1, y1, x2, y2 = np.round(box).astype(int)
                image[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = colours_bgr[v.vid]
                rows.append((box, coco_id[v.cls]))
        detector.next = Detections(
            np.array([r[0] for r in rows]).reshape(-1, 4), np.full(len(rows), 0.9), np.array([r[1] for r in rows])
        )
        results.append(pipe.process(image, FrameMeta(cam.name, ts, i)))
    pipe.finish(t_end)
    pipe.close()
    pipe.close()  # twice is fine
    fuser.close()
    return pipe, sink, results, reader


def test_passages_carry_movement_class_colour_and_hashed_plate(run) -> None:
    pipe, sink, results, reader = run
    passages = sorted(sink.of_type(VehiclePassage), key=lambda p: p.first_seen_ts)
    assert [(p.entry_leg, p.exit_leg, p.movement, p.vehicle_class) for p in passages] == [
        ("W", "E", "T", "car"),
        ("N", "W", "R", "truck"),
    ]
    assert [p.colour for p in passages] == ["red", "blue"]
    for p in passages:
        assert p.plate_text is None and p.plate_hash is not None and len(p.plate_hash) == 64
        assert p.plate_confidence == pytest.approx(0.9)
    assert len(sink.of_type(PlateRead)) == 2
    assert sink.of_type(QueueSample)


def test_only_vehicles_are_tracked_and_crops_stay_few(run) -> None:
    pipe, sink, results, reader = run
    tracked = [r.detections for r in results if len(r.detections)]
    assert tracked and all(set(d.class_id.tolist()) <= {VehicleClass.CAR, VehicleClass.TRUCK} for d in tracked)
    frames_with_vehicles = len(tracked)
    assert reader.crops <= 2 * 2 * 2  # reads_per_track bound of the fuser
    assert pipe._crops == {}  # per-track crop state dropped with the tracks
    assert frames_with_vehicles > 50


def test_plates_are_only_read_where_a_plate_spans_enough_pixels() -> None:
    """The plate gate: the px a 0.52 m plate spans come from the ground calibration, and
    crops of vehicles where that is under min_plate_width_px never reach the OCR."""
    fps = 10.0
    site = make_site()
    cam = site.cameras[0]
    v = constant_speed(1, "W", "E", 30.0, T0, fps)
    boxes = vehicle_boxes(v)
    for min_px, expect_reads in ((1e6, False), (0.0, True)):
        reader = FixedPlateReader()
        fuser = TrackPlateFuser(reader, reads_per_track=2)  # type: ignore[arg-type]
        detector = RenderedDetector()
        pipe = Pipeline(site, cam, detector, sinks=[ListSink()], plates=fuser,
                        params=PipelineParams(plate_wait_s=2.0, min_crop_px=12.0, min_plate_width_px=min_px))
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        width = pipe._plate_width_px(centre)
        coarse = pipe.calibration.metres_per_px(centre)  # geometric mean of the two axes
        ok = np.isfinite(coarse)
        assert ok.any() and np.all(width[ok] >= 0.52 / coarse[ok] * 0.999)  # the finer axis: no fewer px
        assert np.all(width[ok] < 200)
        for i, box in enumerate(boxes):
            detector.next = Detections(box[None], np.array([0.9]), np.array([COCO.index("car")]))
            pipe.process(np.full((1280, 1280, 3), 90, np.uint8), FrameMeta(cam.name, T0 + i / fps, i))
        pipe.finish(T0 + len(boxes) / fps + 2)
        fuser.close()
        assert (reader.crops > 0) == expect_reads


def test_a_box_outside_the_fisheye_circle_is_tracked_but_not_cropped() -> None:
    """A detector's false box in the corner of a square fisheye frame (outside the image
    circle) has no perspective view; the pipeline must go on, not stop with a GeometryError."""
    from trafficprn.config import load_site
    from trafficprn.demo import demo_scene_dir

    site = load_site(demo_scene_dir() / "site.yaml")
    cam = site.cameras[0]
    detector = RenderedDetector()
    pipe = Pipeline(site, cam, detector, sinks=[ListSink()], colour=ColourClassifier(),
                    params=PipelineParams(colour_workers=0))
    corner = np.array([[1176.0, 118.0, 1202.0, 146.0]])  # centre ~(1189, 132): outside the 630 px circle
    image = np.full((1280, 1280, 3), 90, np.uint8)
    for i in range(6):
        detector.next = Detections(corner, np.array([0.9]), np.array([COCO.index("car")]))
        result = pipe.process(image, FrameMeta(cam.name, T0 + i / 10, i))
    assert len(result.detections) == 1  # tracked (SORT confirms it) ...
    assert pipe._crops == {}  # ... but never cropped
    pipe.close()


def _stream_run(detect_ahead: int, stop_after: int | None = None):
    """The W->E car of the junction factory through process_stream; returns the per-frame
    results, the events, the detector's thread idents and its call count at each yield."""
    import threading

    fps = 10.0
    site = make_site()
    cam = site.cameras[0]
    v = constant_speed(1, "W", "E", 30.0, T0, fps)
    boxes = vehicle_boxes(v)

    class ThreadNotingDetector:
        class_names = COCO

        def __init__(self) -> None:
            self.threads: set[int] = set()
            self.calls = 0

        def detect(self, image_bgr: np.ndarray) -> Detections:
            self.threads.add(threading.get_ident())
            self.calls += 1
            k = int(image_bgr[0, 0, 0])  # the frame number, painted into the frame
            if k >= len(boxes):
                return Detections.empty()
            return Detections(boxes[k][None], np.array([0.9]), np.array([COCO.index("car")]))

    detector = ThreadNotingDetector()
    sink = ListSink()
    pipe = Pipeline(site, cam, detector, sinks=[sink], params=PipelineParams(detect_ahead=detect_ahead))

    def frames():
        for k in range(len(boxes) + 20):
            image = np.zeros((8, 8, 3), np.uint8)
            image[0, 0, 0] = k
            yield image, FrameMeta(cam.name, T0 + k / fps, k)

    results, calls_at_yield = [], []
    stream = pipe.process_stream(frames())
    for frame, meta, result in stream:
        assert int(frame[0, 0, 0]) == meta.index == len(results)  # in order, frame and meta together
        results.append(result)
        # the detector may be about to take the next frame: give it a moment
        deadline = time.monotonic() + 2.0
        while detect_ahead and detector.calls < len(results) + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        calls_at_yield.append(detector.calls)
        if stop_after is not None and len(results) == stop_after:
            stream.close()
            break
    else:
        pipe.finish(T0 + (len(boxes) + 21) / fps)
    pipe.close()
    return results, sink.events, detector.threads, calls_at_yield


def test_process_stream_detects_ahead_on_its_own_thread_with_the_same_results() -> None:
    import threading

    ahead, events_ahead, threads_ahead, calls = _stream_run(1)
    in_turn, events_in_turn, threads_in_turn, calls_in_turn = _stream_run(0)
    assert threads_in_turn == {threading.get_ident()}
    assert threading.get_ident() not in threads_ahead and len(threads_ahead) == 1
    # when frame k's result comes out, frame k+1 has already gone to the detector
    assert all(c == k + 2 for k, c in enumerate(calls[:-1]))
    assert calls_in_turn == list(range(1, len(in_turn) + 1))
    assert len(ahead) == len(in_turn)
    for a, b in zip(ahead, in_turn, strict=True):
        np.testing.assert_array_equal(a.detections.xyxy, b.detections.xyxy)
        np.testing.assert_array_equal(a.detections.track_id, b.detections.track_id)
    passages = [e for e in events_ahead if isinstance(e, VehiclePassage)]
    assert len(passages) == 1 and passages[0].movement == "T"
    assert [type(e).__name__ for e in events_ahead] == [type(e).__name__ for e in events_in_turn]


def test_process_stream_can_stop_early() -> None:
    results, _, _, _ = _stream_run(1, stop_after=5)
    assert len(results) == 5
