"""End-to-end evaluation of the pipeline on a sim scene folder against its ground truth.

    summary = evaluate_scene("scenes/s1", model="bundled")
    print(format_summary(summary))

A scene folder (`trafficprn sim scene`) holds video.mp4, site.yaml, scene.json,
frames.jsonl (boxes per frame), vehicles.json (one row per vehicle that crossed the
junction) and queues.jsonl (queue per lane per second). The pipeline runs exactly as a
worker does (detector, SORT, analytics with crops, colour, plates); the detector is
wrapped so that its low-threshold output is also kept for mAP, while the pipeline only
sees boxes above the camera's confidence threshold.

Scores:
- detection AP@0.5 per class and mAP over every frame; ground truth smaller than 8 px at
  the detector's input (25 px on a 1280 px frame at 416) or less than half visible is
  ignored, COCO-style (matched detections are not false positives); the same with only
  an 8 px rule on the source image is reported beside it;
- MOTA and IDF1 (py-motmetrics) of the reported tracks against the same ground truth;
- turning-movement counts over the scene per (entry leg, movement), and per interval,
  with the acceptance rule |error| <= max(1, 5 %);
- passages are matched to true vehicles through the tracks (each track id votes for the
  true vehicle its boxes overlap most); on matched passages: speed MAE (km/h), colour
  accuracy, plate exact-read rate;
- queue length MAE (m) per lane and second;
- frames/s of the whole pipeline (decode included) and of the detector alone.

`TruthDetector` stands in for the detector with the true boxes, spoiled by seeded noise,
dropouts and false positives: the same scores then measure tracking and analytics alone.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trafficprn.errors import DependencyError, InputError
from trafficprn.evaluation_match import passage_to_truth
from trafficprn.evaluation_speeds import format_passage_speeds, score_passage_speeds
from trafficprn.events import HEARTBEAT_S, CameraStatus, Heartbeat, ListSink, QueueSample, VehiclePassage
from trafficprn.track.motscore import spoil_boxes
from trafficprn.types import Detections, Detector, VehicleClass

VEHICLE_CLASSES = [c.label for c in VehicleClass if c != VehicleClass.PERSON]


@dataclass(frozen=True)
class Scene:
    root: Path
    info: dict[str, Any]
    frames: list[dict[str, Any]]
    vehicles: list[dict[str, Any]]
    queues: list[dict[str, Any]]

    @property
    def site_path(self) -> Path:
        return self.root / "site.yaml"

    @property
    def video_path(self) -> Path:
        return self.root / "video.mp4"

    def shifted(self, shift_s: float) -> Scene:
        """The same scene `shift_s` seconds later (every timestamp of the truth moved)."""
        if shift_s == 0:
            return self

        def move(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
            return {k: (v + shift_s if k in keys and v is not None else v) for k, v in row.items()}

        return Scene(
            self.root,
            move(self.info, ("start_ts",)),
            [move(f, ("ts",)) for f in self.frames],
            [move(v, ("passage_ts", "first_ts", "last_ts")) for v in self.vehicles],
            [move(q, ("ts",)) for q in self.queues],
        )


def _read_text(path: Path) -> str:
    """A file's text; `NAME.gz` is read when only the gzipped copy exists (the bundled demo)."""
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        return gzip.decompress(path.with_name(path.name + ".gz").read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def load_scene(path: str | Path) -> Scene:
    """Read a sim scene folder's ground truth (frames.jsonl may be gzipped)."""
    root = Path(path)
    needed = ("scene.json", "frames.jsonl", "vehicles.json", "queues.jsonl", "site.yaml", "video.mp4")
    missing = [n for n in needed if not (root / n).is_file() and not (root / (n + ".gz")).is_file()]
    if missing:
        raise InputError(f"{root}: not a sim scene folder, missing {', '.join(missing)}")
    try:
        info = json.loads((root / "scene.json").read_text(encoding="utf-8"))
        frames = [json.loads(line) for line in _read_text(root / "frames.jsonl").splitlines() if line]
        vehicles = json.loads((root / "vehicles.json").read_text(encoding="utf-8"))
        queues = [json.loads(line) for line in (root / "queues.jsonl").read_text(encoding="utf-8").splitlines() if line]
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{root}: cannot read the scene's ground truth: {exc}") from None
    return Scene(root, info, frames, vehicles, queues)


class RecordingDetector:
    """Wraps a detector run at a low threshold: keeps each frame's full output (for mAP)
    and its time, and hands the pipeline only boxes >= `confidence`."""

    def __init__(self, inner: Detector, confidence: float):
        self.inner = inner
        self.class_names = inner.class_names
        self.confidence = confidence
        self.outputs: list[Detections] = []
        self.seconds = 0.0

    def detect(self, image_bgr: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        dets = self.inner.detect(image_bgr)
        self.seconds += time.perf_counter() - t0
        self.outputs.append(dets)
        return dets[dets.confidence >= self.confidence]


@dataclass(frozen=True)
class TruthNoise:
    """How `TruthDetector` spoils the true boxes: corner jitter (sd, a fraction of the box
    size), the share of boxes missed, false positives per true box (Poisson), and the seed."""

    noise: float = 0.03
    dropout: float = 0.05
    fp: float = 0.05
    seed: int = 0
    min_visibility: float = 0.2  # a detector is not expected to see less of a vehicle than this


class TruthDetector:
    """A stand-in detector that reports the scene's true boxes of each frame, spoiled as
    `TruthNoise` says (seeded, so runs repeat). It isolates tracking and analytics from the
    detector: `trafficprn eval --truth` scores everything after detection. Frames must be
    passed in order, one `detect` call each (as `run_scene` does); the image is not looked at."""

    def __init__(self, scene: Scene, noise: TruthNoise | None = None):
        self.frames = scene.frames
        self.noise = noise or TruthNoise()
        self.class_names = list(VEHICLE_CLASSES)
        self.index = 0
        self.rng = np.random.default_rng(self.noise.seed)
        sizes = [np.subtract(o["xyxy"][2:], o["xyxy"][:2]) for f in self.frames[:200] for o in f["objects"]]
        self.typical_wh = np.median(np.array(sizes), axis=0) if sizes else np.array([60.0, 60.0])
        w, h = scene.info.get("image_size", (1280, 1280))
        self.image_size = np.array([float(w), float(h)])

    def detect(self, image_bgr: np.ndarray) -> Detections:
        if self.index >= len(self.frames):
            raise InputError(f"TruthDetector: the scene has {len(self.frames)} frames of truth, asked for more")
        objects = [o for o in self.frames[self.index]["objects"]
                   if o["class"] in VEHICLE_CLASSES and o.get("visibility", 1.0) >= self.noise.min_visibility]
        self.index += 1
        n, rng = self.noise, self.rng
        boxes = np.array([o["xyxy"] for o in objects], dtype=np.float64).reshape(-1, 4)
        cls = np.array([VEHICLE_CLASSES.index(o["class"]) for o in objects], dtype=np.int64)
        b, keep = spoil_boxes(boxes, rng, n.noise, n.dropout)
        c = cls[keep]
        conf = rng.uniform(0.4, 1.0, len(b))
        n_fp = int(rng.poisson(n.fp * len(boxes)))
        if n_fp:
            size = self.typical_wh * rng.uniform(0.6, 1.4, (n_fp, 2))
            xy = rng.uniform(0, 1, (n_fp, 2)) * np.maximum(self.image_size - size, 1.0)
            b = np.concatenate([b, np.concatenate([xy, xy + size], axis=1)])
            conf = np.concatenate([conf, rng.uniform(0.25, 0.6, n_fp)])
            c = np.concatenate([c, rng.integers(0, len(VEHICLE_CLASSES), n_fp)])
        return Detections(b, conf, c)


@dataclass
class SceneRun:
    passages: list[VehiclePassage]
    queues: list[QueueSample]
    tracks: list[Detections]  # reported tracks per frame (class_id: VehicleClass values)
    detections: list[Detections]  # raw detector output per frame (model class ids)
    class_names: list[str]
    frames: int
    seconds: float
    detector_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


class _SceneHeartbeats:
    """Camera status and a heartbeat every `HEARTBEAT_S` of footage time, into `sinks`."""

    def __init__(self, site: str, camera: str, sinks: list[Any]):
        self.site, self.camera, self.sinks = site, camera, sinks
        self.last: float | None = None

    def _emit(self, event: Any) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def frame(self, ts: float, frames: int) -> None:
        if not self.sinks:
            return
        if self.last is None:
            self._emit(CameraStatus(self.camera, ts, True, "scene started", site=self.site))
        if self.last is None or ts - self.last >= HEARTBEAT_S:
            self._emit(Heartbeat(self.camera, ts, True, frames, frames, site=self.site))
            self.last = ts

    def end(self, ts: float, frames: int) -> None:
        if self.sinks and self.last is not None:
            self._emit(Heartbeat(self.camera, ts, True, frames, frames, site=self.site))
            self._emit(CameraStatus(self.camera, ts, False, "scene ended", site=self.site))


def run_scene(
    scene: Scene,
    pipeline_factory: Callable[[Any, Any, Detector, list[Any]], Any],
    detector: RecordingDetector,
    *,
    sinks: list[Any] | None = None,
    max_frames: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SceneRun:
    """Decode the scene's video (ahead, on the source's own thread) and run
    `pipeline_factory(site, camera, detector, sinks)` on every frame; events also go to `sinks`."""
    from trafficprn.camera.sources import open_source
    from trafficprn.config import load_site
    from trafficprn.pipeline import stream_results

    site = load_site(scene.site_path)
    camera = site.cameras[0]
    memory = ListSink()
    pipeline = pipeline_factory(site, camera, detector, [memory, *(sinks or [])])
    source = open_source(str(scene.video_path), camera.name, start_ts=float(scene.info["start_ts"]))
    tracks: list[Detections] = []
    last_ts = float(scene.info["start_ts"])
    t0 = time.perf_counter()
    frames = source if max_frames is None else itertools.islice(source, max_frames)
    # Liveness for a store among `sinks`: status and heartbeats in footage time, as a
    # worker processing recorded video writes them, so the scene's intervals count as watched.
    beats = _SceneHeartbeats(site.site.name, camera.name, sinks or [])
    try:
        for _, meta, result in stream_results(pipeline, frames):
            tracks.append(result.detections)
            last_ts = meta.ts
            beats.frame(meta.ts, len(tracks))
            if progress is not None:
                progress(1)
    finally:
        source.close()
    end_ts = last_ts + 1.0 / float(scene.info.get("fps", 10))
    pipeline.finish(end_ts)
    beats.end(end_ts, len(tracks))
    seconds = time.perf_counter() - t0
    for close in (getattr(pipeline, "close", None), getattr(getattr(pipeline, "plates", None), "close", None)):
        if close is not None:
            close()
    return SceneRun(
        passages=memory.of_type(VehiclePassage),
        queues=memory.of_type(QueueSample),
        tracks=tracks,
        detections=detector.outputs,
        class_names=list(detector.class_names),
        frames=len(tracks),
        seconds=seconds,
        detector_seconds=detector.seconds,
        extra={"input_size": getattr(detector.inner, "input_size", None)},
    )


# ---------------------------------------------------------------- scoring
def _truth_boxes(frame: dict[str, Any], min_box_px: float, min_visibility: float) -> tuple[np.ndarray, ...]:
    objects = [o for o in frame["objects"] if o["class"] in VEHICLE_CLASSES]
    xyxy = np.array([o["xyxy"] for o in objects], dtype=np.float64).reshape(-1, 4)
    cls = np.array([VEHICLE_CLASSES.index(o["class"]) for o in objects], dtype=np.int64)
    ids = np.array([o["track_id"] for o in objects], dtype=np.int64)
    side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    vis = np.array([o.get("visibility", 1.0) for o in objects], dtype=np.float64)
    ignore = (side < min_box_px) | (vis < min_visibility)
    return xyxy, cls, ids, ignore


def score_detection(scene: Scene, run: SceneRun, min_box_px: float, min_visibility: float) -> dict[str, Any]:
    from trafficprn.detect.classes import to_vehicle_class
    from trafficprn.detect.metrics import MapAccumulator

    def ours(name: str) -> int:
        v = to_vehicle_class(name)  # an IntEnum: CAR is 0, so test for None
        return VEHICLE_CLASSES.index(v.label) if v is not None and v.label in VEHICLE_CLASSES else -1

    to_ours = np.array([ours(n) for n in run.class_names] or [-1], dtype=np.int64)
    acc = MapAccumulator(num_classes=len(VEHICLE_CLASSES), class_names=VEHICLE_CLASSES, iou_thresholds=np.array([0.5]))
    for frame, dets in zip(scene.frames, run.detections, strict=False):
        xyxy, cls, _, ignore = _truth_boxes(frame, min_box_px, min_visibility)
        mapped = to_ours[dets.class_id] if len(dets) else np.zeros(0, dtype=np.int64)
        keep = mapped >= 0
        acc.add(dets.xyxy[keep], dets.confidence[keep], mapped[keep], xyxy, cls, gt_ignore=ignore)
    m = acc.compute()
    return {"map50": m.map50, "ap50": {k: v["ap50"] for k, v in m.as_dict()["per_class"].items()},  # type: ignore[attr-defined]
            "min_box_px": min_box_px, "min_visibility": min_visibility}


def _track_rows(run: SceneRun, scene: Scene, min_box_px: float, min_visibility: float) -> tuple[np.ndarray, np.ndarray]:
    """MOT rows of the counted ground truth and of the tracks; tracks on ignored ground
    truth (and on no counted box) are left out, as MOT benchmarks do with distractors."""
    from trafficprn.geometry.boxes import iou_matrix

    gt_rows, tr_rows = [], []
    for k, (frame, dets) in enumerate(zip(scene.frames, run.tracks, strict=False)):
        xyxy, _, ids, ignore = _truth_boxes(frame, min_box_px, min_visibility)
        keep = ~ignore
        for b, i in zip(xyxy[keep], ids[keep], strict=True):
            gt_rows.append([k, i, b[0], b[1], b[2] - b[0], b[3] - b[1]])
        if dets.track_id is None or not len(dets):
            continue
        iou = iou_matrix(dets.xyxy, xyxy)
        on_counted = (iou[:, keep] >= 0.5).any(axis=1)
        on_ignored = (iou[:, ignore] >= 0.5).any(axis=1)
        for b, i in zip(dets.xyxy[on_counted | ~on_ignored], dets.track_id[on_counted | ~on_ignored], strict=True):
            tr_rows.append([k, i, b[0], b[1], b[2] - b[0], b[3] - b[1]])
    return np.array(gt_rows, dtype=np.float64).reshape(-1, 6), np.array(tr_rows, dtype=np.float64).reshape(-1, 6)


def score_counts(scene: Scene, run: SceneRun, tz: str, minutes: int) -> dict[str, Any]:
    from trafficprn.timebins import interval_start

    truth = Counter((v["entry_leg"], v["movement"]) for v in scene.vehicles if v.get("passage_ts") is not None)
    found = Counter((p.entry_leg, p.movement) for p in run.passages if p.entry_leg and p.movement)
    rows = []
    for key in sorted(set(truth) | set(found), key=lambda k: (str(k[0]), str(k[1]))):
        t, f = truth.get(key, 0), found.get(key, 0)
        rows.append({"entry_leg": key[0], "movement": key[1], "true": t, "found": f,
                     "ok": abs(f - t) <= max(1.0, 0.05 * t)})
    t_int = Counter((interval_start(v["passage_ts"], tz, minutes), v["entry_leg"], v["movement"])
                    for v in scene.vehicles if v.get("passage_ts") is not None)
    f_int = Counter((interval_start(p.passage_ts, tz, minutes), p.entry_leg, p.movement)
                    for p in run.passages if p.entry_leg and p.movement)
    keys = set(t_int) | set(f_int)
    abs_err = sum(abs(t_int.get(k, 0) - f_int.get(k, 0)) for k in keys)
    total = sum(t_int.values())
    return {
        "per_movement": rows,
        "all_within_tolerance": all(r["ok"] for r in rows),
        "true_total": sum(truth.values()),
        "found_total": sum(found.values()),
        "interval_minutes": minutes,
        "interval_cells": len(keys),
        "interval_accuracy": None if total == 0 else max(0.0, 1.0 - abs_err / total),
    }


def score_passages(scene: Scene, run: SceneRun, mapping: dict[int, int], privacy: Any = None) -> dict[str, Any]:
    """Speed, colour and plates of passages matched to true vehicles. With `privacy`
    (a PlatePrivacy), true plates go through it too, so hashed reads are compared by hash."""
    truth = {int(v["track_id"]): v for v in scene.vehicles}
    speed_err, colour_ok, plate_ok = [], [], []
    matched = 0
    for p in run.passages:
        t = truth.get(mapping.get(p.track_id, -1))
        if t is None:
            continue
        matched += 1
        if p.speed_median_kmh is not None and t.get("speed_kmh") is not None:
            speed_err.append(abs(p.speed_median_kmh - float(t["speed_kmh"])))
        if p.colour is not None and t.get("colour"):
            colour_ok.append(p.colour == t["colour"])
        if t.get("plate"):
            text, digest = privacy.apply(t["plate"]) if privacy is not None else (t["plate"], None)
            plate_ok.append((p.plate_text is not None and p.plate_text == text)
                            or (p.plate_hash is not None and p.plate_hash == digest))
    return {
        "matched_passages": matched,
        "speed_mae_kmh": float(np.mean(speed_err)) if speed_err else None,
        "speed_n": len(speed_err),
        "colour_accuracy": float(np.mean(colour_ok)) if colour_ok else None,
        "colour_n": len(colour_ok),
        "plate_exact_rate": float(np.mean(plate_ok)) if plate_ok else None,
        "plate_n": len(plate_ok),
    }


def score_queues(scene: Scene, run: SceneRun) -> dict[str, Any]:
    found = {(q.lane, round(q.ts)): q.length_m for q in run.queues}
    errors = [abs(found[(q["lane"], round(q["ts"]))] - float(q["length_m"]))
              for q in scene.queues if (q["lane"], round(q["ts"])) in found]
    return {"queue_mae_m": float(np.mean(errors)) if errors else None, "queue_n": len(errors),
            "queue_true_samples": len(scene.queues)}


MIN_BOX_PX = 8.0  # ground truth smaller than this (shorter side, px) is ignored


def min_box_at_input(scene: Scene, run: SceneRun, min_input_px: float = MIN_BOX_PX) -> float:
    """The source-image size (px) of a box `min_input_px` tall at the detector's input: a
    1280 px frame letterboxed to 416 shrinks 8 px boxes to 2.6 px, which no detector at
    that input can be asked to find. MIN_BOX_PX when the run had no model input."""
    size = run.extra.get("input_size")
    image = scene.info.get("image_size")
    if not size or not image:
        return MIN_BOX_PX
    scale = min(float(size[0]) / float(image[0]), float(size[1]) / float(image[1]))
    return max(MIN_BOX_PX, min_input_px / scale) if scale < 1.0 else MIN_BOX_PX


def score_scene(
    scene: Scene, run: SceneRun, *, min_box_px: float | None = None, min_visibility: float = 0.5,
    privacy: Any = None,
) -> dict[str, Any]:
    """The whole accuracy summary (a JSON-able dict). Ground truth with a shorter side under
    `min_box_px` (default: 8 px at the detector's input, see `min_box_at_input`) or less than
    `min_visibility` visible is ignored for detection and tracking; "detection_all" scores
    detection again with only the 8 px (source) rule."""
    from trafficprn.config import load_site
    from trafficprn.track.motscore import score_tracks

    site = load_site(scene.site_path)
    if min_box_px is None:
        min_box_px = min_box_at_input(scene, run)
    gt_rows, tr_rows = _track_rows(run, scene, min_box_px, min_visibility)
    try:
        mot = score_tracks(gt_rows, tr_rows) if len(gt_rows) else None
    except DependencyError:  # py-motmetrics is a dev extra; the demo runs without it
        mot = None
    mapping = passage_to_truth(scene, run)
    return {
        "scene": {"path": str(scene.root), **{k: scene.info.get(k) for k in ("scenario", "seed", "camera", "seconds")}},
        "frames": run.frames,
        "detection": score_detection(scene, run, min_box_px, min_visibility),
        "detection_all": (score_detection(scene, run, MIN_BOX_PX, min_visibility)
                          if min_box_px != MIN_BOX_PX else None),
        "tracking": None if mot is None else {"mota": mot.mota, "idf1": mot.idf1, "id_switches": mot.id_switches},
        "counts": score_counts(scene, run, site.site.timezone, site.site.interval_minutes),
        "passages": score_passages(scene, run, mapping, privacy),
        "passage_speeds": score_passage_speeds(scene.vehicles, run.passages, mapping),
        "queues": score_queues(scene, run),
        "speed": {
            "pipeline_fps": run.frames / run.seconds if run.seconds > 0 else None,
            "detector_fps": run.frames / run.detector_seconds if run.detector_seconds > 0 else None,
        },
    }


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def format_summary(s: dict[str, Any]) -> str:
    """A plain-text table of `score_scene`'s summary."""
    det, pas, cnt = s["detection"], s["passages"], s["counts"]
    lines = [
        f"scene {s['scene']['path']} ({s['scene'].get('scenario')}, seed {s['scene'].get('seed')}, {s['frames']} frames)",
        f"detection mAP@0.5          {_fmt(det['map50'])}   "
        + "  ".join(f"{k} {_fmt(v, '.2f')}" for k, v in det["ap50"].items())
        + f"   (ground truth >= {det['min_box_px']:.1f} px)",
    ]
    if s.get("detection_all"):
        dall = s["detection_all"]
        lines.append(f"  all boxes >= {dall['min_box_px']:.0f} px        {_fmt(dall['map50'])}   "
                     + "  ".join(f"{k} {_fmt(v, '.2f')}" for k, v in dall["ap50"].items()))
    lines += [
        f"tracking MOTA / IDF1       {_fmt((s['tracking'] or {}).get('mota'))} / {_fmt((s['tracking'] or {}).get('idf1'))}",
        f"counts found / true        {cnt['found_total']} / {cnt['true_total']}   "
        f"per interval accuracy {_fmt(cnt['interval_accuracy'])}",
    ]
    for r in cnt["per_movement"]:
        lines.append(f"  {r['entry_leg']}-{r['movement']}  true {r['true']:4d}  found {r['found']:4d}  "
                     f"{'ok' if r['ok'] else 'OFF'}")
    lines += [
        f"speed MAE                  {_fmt(pas['speed_mae_kmh'], '.2f')} km/h over {pas['speed_n']} vehicles",
        *format_passage_speeds(s.get("passage_speeds")),
        f"queue MAE                  {_fmt(s['queues']['queue_mae_m'], '.2f')} m over {s['queues']['queue_n']} lane-seconds",
        f"colour accuracy            {_fmt(pas['colour_accuracy'])} over {pas['colour_n']}",
        f"plate exact-read rate      {_fmt(pas['plate_exact_rate'])} over {pas['plate_n']}",
        f"pipeline / detector fps    {_fmt(s['speed']['pipeline_fps'], '.1f')} / {_fmt(s['speed']['detector_fps'], '.1f')}",
    ]
    return "\n".join(lines)
