"""Plate reading and colour: speed, accuracy curves and the cost to the frame loop.

    .venv/bin/python benchmarks/bench_plates.py                 # everything (~3-5 min on 2 cores)
    .venv/bin/python benchmarks/bench_plates.py --sections speed,curve
    .venv/bin/python benchmarks/bench_plates.py --scene DIR     # evaluate on an existing sim scene

Sections:
- speed: ms per plate read, recognition only (plate crop) and detection + recognition
  (vehicle crop), OCR on 1 ONNX Runtime thread. Target <= 60 ms per recognition.
- curve: exact-read rate against plate width on synthetic plates (12 fonts, skew, blur,
  noise, JPEG), as plate crops and inside vehicle crops.
- loop: frame rate of a frame loop with and without plate reading at 1 vehicle/s: the
  main thread runs a fixed per-frame workload (the PRN detector's ONNX graph at 416 px on
  1 thread, random weights, plus frame preprocessing) and offers each live vehicle's
  crop to the TrackPlateFuser. Target <= 5 % drop.
- pipeline: trafficprn.pipeline.Pipeline on a sim scene with ~1 vehicle/s, ground-truth
  boxes as detections plus the PRN graph's compute per frame, with and without plates.
- sim: colour accuracy and plate exact-read rate per vehicle on sim scenes (pole and
  fisheye cameras), against the vehicle's largest plate width in the frame.
- real (not in the default set; needs the openalpr/benchmarks mirror, --mirror): exact
  reads on real photographs with the plate box given (trafficprn/datasets/plates.yaml
  eval sets, never tuned on), per region with `auto` and with the region's format, pooled,
  ms per read (median, p95), and the raw OCR engine on the same crops in the same run.
- tune: the decoder's parameter grid on the tune set (seg_and_ocr/usimages) only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from trafficprn.analytics.colour import ColourClassifier, ColourResult, vote_colours  # noqa: E402
from trafficprn.analytics.ocr import RapidOcrBackend  # noqa: E402
from trafficprn.analytics.plate_synth import (  # noqa: E402
    Degradation,
    available_fonts,
    degrade,
    random_plate,
    render_plate,
    render_vehicle,
)
from trafficprn.analytics.plates import (  # noqa: E402
    PlateReader,
    PlateResult,
    TrackPlateFuser,
    fuse_reads,
    normalise_plate,
    plate_crop_quality,
)
from trafficprn.evaluation_plates import real_report, tune_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WIDTHS_PX = (40, 60, 80, 100, 140)
cv2.setNumThreads(1)


def _ms(times_s: list[float]) -> str:
    arr = np.array(times_s) * 1000
    return f"median {np.median(arr):6.1f} ms  min {arr.min():6.1f} ms  p90 {np.percentile(arr, 90):6.1f} ms  (n={len(arr)})"


# ---------------------------------------------------------------- speed
def bench_speed(reader: PlateReader, n: int = 30) -> None:
    rng = np.random.default_rng(0)
    fonts = available_fonts()
    plates = [render_plate(random_plate("LLL-DDDD", rng), fonts[i % len(fonts)], 120) for i in range(n)]
    cars = [
        degrade(
            render_vehicle(tuple(int(x) for x in rng.integers(0, 255, 3)), rng, size=(256, 205),  # type: ignore[arg-type]
                           plate_text=random_plate("LLL-DDDD", rng), plate_font=fonts[i % len(fonts)]).image,
            rng, Degradation(blur_px=0.5, noise=4, jpeg=85),
        )
        for i in range(n)
    ]  # fmt: skip
    reader.warm_up()
    rec, full, rec_cpu, full_cpu = [], [], [], []
    for img in plates:
        t, c = time.perf_counter(), time.thread_time()
        reader.backend.recognise(img)
        rec.append(time.perf_counter() - t)
        rec_cpu.append(time.thread_time() - c)
    for img in cars:
        t, c = time.perf_counter(), time.thread_time()
        reader.read(img)
        full.append(time.perf_counter() - t)
        full_cpu.append(time.thread_time() - c)
    print("== speed (ONNX Runtime, 1 thread); wall clock, then CPU time of the reading thread")
    print(f"recognition only, 120x30 plate crop:        {_ms(rec)}")
    print(f"                                      CPU:  {_ms(rec_cpu)}")
    print(f"detection + recognition, 256x205 vehicle:   {_ms(full)}")
    print(f"                                      CPU:  {_ms(full_cpu)}")


# ---------------------------------------------------------------- synthetic curve
def bench_curve(reader: PlateReader, per_width: int = 24) -> None:
    fonts = available_fonts()
    print(f"== exact-read rate vs plate width, synthetic ({len(fonts)} fonts, skew <= 0.12, blur, noise, JPEG)")
    print("width_px  plate_crop  in_vehicle_crop")
    for width in WIDTHS_PX:
        rng = np.random.default_rng(width)
        hits = {"plate": 0, "vehicle": 0}
        for i in range(per_width):
            font = fonts[i % len(fonts)]
            text = random_plate("LLL-DDDD", rng)
            deg = Degradation(
                skew=float(rng.uniform(0, 0.12)),
                blur_px=float(rng.uniform(0, 0.6) * width / 100),
                noise=float(rng.uniform(0, 8)),
                jpeg=int(rng.integers(60, 95)),
            )
            img = degrade(render_plate(text, font, width), rng, deg, pad_px=max(2, width // 20))
            res = reader.read(img)
            hits["plate"] += res is not None and res.text == normalise_plate(text)
            colour = tuple(int(x) for x in rng.integers(0, 255, 3))
            car = render_vehicle(colour, rng, size=(int(width / 0.34), int(width / 0.34 * 0.8)),  # type: ignore[arg-type]
                                 plate_text=text, plate_font=font, light=float(rng.uniform(0.6, 1.2)))  # fmt: skip
            img = degrade(car.image, rng, Degradation(blur_px=deg.blur_px, noise=deg.noise, jpeg=deg.jpeg))
            res = reader.read(img)
            hits["vehicle"] += res is not None and res.text == normalise_plate(text)
        print(f"{width:8d}  {hits['plate'] / per_width:10.2f}  {hits['vehicle'] / per_width:15.2f}")


# ---------------------------------------------------------------- frame loop
def prn_workload(tmp: Path) -> Any:
    """The PRN detector's ONNX graph (random weights) on 1 thread, or None without torch."""
    try:
        from trafficprn.detect.darknet import build_model, randomize_weights
        from trafficprn.detect.export import export_onnx
        from trafficprn.detect.runtime import load_detector
        from trafficprn.resources import data_dir
    except ImportError as exc:
        print(f"(no PRN workload: {exc})")
        return None
    model = build_model(data_dir() / "cfg" / "yolov3-tiny-prn.cfg")
    randomize_weights(model, seed=0)
    path = tmp / "prn-random.onnx"
    export_onnx(model, path, class_names=None,
                input_size=(416, 416))  # fmt: skip
    return load_detector(path, threads=1, confidence=0.99)


def bench_loop(reader: PlateReader, detector: Any, seconds: float = 25.0) -> None:
    """Main thread: the detector on a 1280x720 frame per iteration. A vehicle arrives
    every wall-clock second and stays 4 s; its crop grows from 90 to 300 px wide and is
    offered every 5th frame, as the pipeline crops (with quality = sharpness x size)."""
    rng = np.random.default_rng(1)
    frame = np.full((720, 1280, 3), 100, np.uint8)
    cars = []
    for k in range(12):
        text = random_plate("LLL-DDDD", rng)
        sizes = np.linspace(90, 300, 8).astype(int)
        crops = [render_vehicle((40.0 + 15 * k, 90.0, 160.0), rng, size=(int(s), int(s * 0.8)), plate_text=text).image
                 for s in sizes]  # fmt: skip
        cars.append((text, crops))

    timed = TimedReader(reader)

    def run(with_plates: bool, seconds: float) -> tuple[float, float, dict[str, Any]]:
        """(fps, main-thread CPU ms per frame, fuser stats)."""
        fuser = TrackPlateFuser(timed, max_workers=1, max_pending=8, reads_per_track=3) if with_plates else None  # type: ignore[arg-type]
        if fuser is not None:
            fuser.flush(60)
        frames, start, cpu0 = 0, time.perf_counter(), time.thread_time()
        read_ok, tracks = 0, 0
        live: dict[int, float] = {}
        next_arrival, tid = start, 0
        while (now := time.perf_counter()) - start < seconds:
            if now >= next_arrival:
                live[tid], tid, next_arrival = now, tid + 1, next_arrival + 1.0
            if detector is not None:
                detector.detect(frame)
            else:
                cv2.GaussianBlur(frame, (0, 0), 3)
            for t, born in list(live.items()):
                age = now - born
                if age > 4.0:
                    del live[t]
                    if fuser is not None:
                        res = fuser.result(t)
                        tracks += 1
                        read_ok += res is not None and res.text == normalise_plate(cars[t % len(cars)][0])
                        fuser.forget(t)
                    continue
                if fuser is not None and frames % 5 == 0:  # the pipeline crops every 5th frame
                    crop = cars[t % len(cars)][1][min(7, int(age / 0.5))]
                    fuser.offer(t, crop, plate_crop_quality(crop))
            frames += 1
        wall = time.perf_counter() - start
        cpu_ms = (time.thread_time() - cpu0) / frames * 1000
        stats: dict[str, Any] = {}
        if fuser is not None:
            s = fuser.stats
            stats = {"offered": s.offered, "submitted": s.submitted, "dropped": s.dropped, "read": s.read,
                     "tracks": tracks, "exact": read_ok}  # fmt: skip
            fuser.close()
        return frames / wall, cpu_ms, stats

    print(f"== frame loop, 1 vehicle/s ({'PRN 416 ONNX, 1 thread' if detector else 'blur'} per frame),"
          f" plates off/on alternating in {seconds / 4:.0f} s segments")  # fmt: skip
    off, on, cpu_off, cpu_on, totals = [], [], [], [], defaultdict(int)
    ocr_cpu0, wall_on = timed.cpu_s, 0.0
    for _ in range(2):
        fps, cpu, _ = run(False, seconds / 4)
        off.append(fps), cpu_off.append(cpu)
        t0 = time.perf_counter()
        fps, cpu, stats = run(True, seconds / 4)
        wall_on += time.perf_counter() - t0
        on.append(fps), cpu_on.append(cpu)
        for k, v in stats.items():
            totals[k] += v
    base, with_p = float(np.mean(off)), float(np.mean(on))
    ocr_share = (timed.cpu_s - ocr_cpu0) / wall_on
    print(f"without plates: {base:6.2f} fps  (main thread {np.mean(cpu_off):.1f} CPU ms/frame)")
    print(f"with plates:    {with_p:6.2f} fps  (main thread {np.mean(cpu_on):.1f} CPU ms/frame)"
          f"   wall-clock drop {100 * (1 - with_p / base):5.1f} %")  # fmt: skip
    print(
        f"OCR worker: {100 * ocr_share:.0f} % of one core, {timed.ms_per_read():.0f} CPU ms per read; fuser {dict(totals)}"
    )
    print("   (on a box with 2 free cores the worker uses the core the frame loop does not: the drop that")
    print("    remains is the main thread's own extra CPU per frame, offer() and crop copies, shown above)")


class TimedReader:
    """Wraps a PlateReader, adding up the CPU time its reads take on the worker thread."""

    def __init__(self, reader: PlateReader) -> None:
        self.reader = reader
        self.format = reader.format
        self.cpu_s = 0.0
        self.reads = 0

    def warm_up(self) -> None:
        self.reader.warm_up()

    def read(self, crop: np.ndarray) -> PlateResult | None:
        t = time.thread_time()
        try:
            return self.reader.read(crop)
        finally:
            self.cpu_s += time.thread_time() - t
            self.reads += 1

    def ms_per_read(self) -> float:
        return 1000 * self.cpu_s / max(1, self.reads)


# ---------------------------------------------------------------- sim scenes
def make_scene(tmp: Path, camera: str, seconds: int, seed: int, demand_scale: float = 1.0) -> Path:
    out = tmp / f"scene-{camera}-{seed}"
    scenario = "default"
    if demand_scale != 1.0:
        import yaml

        data = yaml.safe_load((ROOT / "trafficprn/sim/scenarios/default.yaml").read_text())
        for leg in data["legs"]:
            leg["demand_vph"] = int(leg["demand_vph"] * demand_scale)
        data["name"] = "busy"
        scenario = str(tmp / "busy.yaml")
        Path(scenario).write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-m", "trafficprn", "sim", "scene", "--scenario", scenario, "--seconds", str(seconds),
           "--camera", camera, "--seed", str(seed), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def _frames(scene: Path) -> Any:
    cap = cv2.VideoCapture(str(scene / "video.mp4"))
    lines = (scene / "frames.jsonl").read_text().splitlines()
    for line in lines:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame, json.loads(line)
    cap.release()


def eval_scene(
    scene: Path, reader: PlateReader, classifier: ColourClassifier, crop_max_px: int = 256
) -> dict[str, Any]:
    """Per vehicle: colour voted over its 5 largest visible crops; plate fused over the 3
    frames where its plate is widest, read from the vehicle crop (as the pipeline does)
    and, for reference, from the true plate box."""
    from trafficprn.camera.crops import VehicleCropper
    from trafficprn.config import load_site

    site = load_site(scene / "site.yaml")
    cropper = VehicleCropper(site.cameras[0].lens, max_side_px=crop_max_px)
    truth: dict[int, dict[str, Any]] = {}  # per track: class, colour, plate (from frames.jsonl)
    areas: dict[int, list[tuple[float, int]]] = defaultdict(list)
    plate_w: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for line in (scene / "frames.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for o in rec["objects"]:
            truth.setdefault(o["track_id"], o)
            if o["visibility"] < 0.7:
                continue
            x1, y1, x2, y2 = o["xyxy"]
            if min(x2 - x1, y2 - y1) >= 24:  # the pipeline's smallest crop (min_crop_px)
                areas[o["track_id"]].append(((x2 - x1) * (y2 - y1), rec["index"]))
            if o.get("plate_xyxy"):
                p = o["plate_xyxy"]
                plate_w[o["track_id"]].append((p[2] - p[0], rec["index"]))
    want: dict[int, set[tuple[int, str]]] = defaultdict(set)
    for tid, lst in areas.items():
        for _, idx in sorted(lst, reverse=True)[:5]:
            want[idx].add((tid, "colour"))
    for tid, lst in plate_w.items():
        for _, idx in sorted(lst, reverse=True)[:3]:
            want[idx].add((tid, "plate"))
    colours: dict[int, list[ColourResult]] = defaultdict(list)
    reads: dict[int, list[PlateResult]] = defaultdict(list)
    direct: dict[int, list[PlateResult]] = defaultdict(list)
    for frame, rec in _frames(scene):
        jobs = want.get(rec["index"])
        if not jobs:
            continue
        objs = {o["track_id"]: o for o in rec["objects"]}
        for tid, kind in jobs:
            o = objs[tid]
            crop = cropper.crop(frame, np.array(o["xyxy"]))
            if kind == "colour":
                colours[tid].append(classifier.classify(crop))
                continue
            res = reader.read(crop)
            if res is not None:
                reads[tid].append(res)
            x1, y1, x2, y2 = o["plate_xyxy"]
            pad_x, pad_y = 0.15 * (x2 - x1) + 2, 0.4 * (y2 - y1) + 2
            patch = frame[max(0, int(y1 - pad_y)) : int(y2 + pad_y) + 1, max(0, int(x1 - pad_x)) : int(x2 + pad_x) + 1]
            res = reader.read(patch)
            if res is not None:
                direct[tid].append(res)
    colour_rows = []
    for tid, res in colours.items():
        voted = vote_colours(res)
        colour_rows.append((truth[tid]["colour"], voted.name if voted else None, truth[tid]["class"]))
    plate_rows = []
    for tid, lst in plate_w.items():
        text = normalise_plate(truth[tid]["plate"])
        fused = fuse_reads(reads.get(tid, []), len(reader.format) if reader.format else None)
        fused_direct = fuse_reads(direct.get(tid, []), len(reader.format) if reader.format else None)
        plate_rows.append((max(w for w, _ in lst), fused is not None and fused.text == text,
                           fused_direct is not None and fused_direct.text == text))  # fmt: skip
    return {"colour": colour_rows, "plate": plate_rows}


def report_sim(name: str, result: dict[str, Any]) -> None:
    rows = result["colour"]
    ok = sum(t == g for t, g, _ in rows)
    print(f"-- {name}: colour correct {ok}/{len(rows)} = {ok / max(1, len(rows)):.1%} (vehicles with a box >= 24 px)")
    cars = [r for r in rows if r[2] in ("car", "motorcycle", "bicycle")]
    ok_cars = sum(t == g for t, g, _ in cars)
    print(f"   cars and two-wheelers: {ok_cars}/{len(cars)} = {ok_cars / max(1, len(cars)):.1%};"
          f" buses and trucks: {ok - ok_cars}/{len(rows) - len(cars)}")  # fmt: skip
    wrong: dict[tuple[str, str | None], int] = defaultdict(int)
    for t, g, _ in rows:
        if t != g:
            wrong[(t, g)] += 1
    if wrong:
        print("   confusions (truth -> got):", dict(sorted(wrong.items(), key=lambda kv: -kv[1])[:8]))
    bins = [(0, 20), (20, 40), (40, 60), (60, 80), (80, 100), (100, 140), (140, 10_000)]
    print("   plate width px (max over frames)  vehicles  exact (vehicle crop)  exact (true plate box)")
    for lo, hi in bins:
        sel = [r for r in result["plate"] if lo <= r[0] < hi]
        if sel:
            a = sum(r[1] for r in sel) / len(sel)
            b = sum(r[2] for r in sel) / len(sel)
            print(
                f"   {lo:4d}-{hi if hi < 10_000 else '':<5}                       {len(sel):8d}  {a:20.2f}  {b:22.2f}"
            )
    big = [r for r in result["plate"] if r[0] >= 80]
    if big:
        print(
            f"   plates >= 80 px: exact {sum(r[1] for r in big)}/{len(big)} = {sum(r[1] for r in big) / len(big):.1%}"
        )


def bench_pipeline(reader: PlateReader, detector: Any, scene: Path) -> None:
    """The real Pipeline on a sim scene: GT boxes replayed as detections, the PRN graph's
    compute per frame, colour on; plates off vs on."""
    from trafficprn.config import load_site
    from trafficprn.events import ListSink
    from trafficprn.pipeline import Pipeline
    from trafficprn.types import Detections, FrameMeta, VehicleClass

    site = load_site(scene / "site.yaml")
    camera = site.cameras[0]
    frames = list(_frames(scene))
    meta = json.loads((scene / "scene.json").read_text())
    n_vehicles = len(json.loads((scene / "vehicles.json").read_text()))

    class Replay:
        class_names = [c.label for c in VehicleClass]

        def __init__(self) -> None:
            self.i = 0

        def detect(self, image_bgr: np.ndarray) -> Detections:
            if detector is not None:
                detector.detect(image_bgr)
            objs = [o for o in frames[self.i][1]["objects"] if o["visibility"] > 0.3]
            self.i += 1
            if not objs:
                return Detections.empty()
            return Detections(
                xyxy=np.array([o["xyxy"] for o in objs]),
                confidence=np.full(len(objs), 0.9),
                class_id=np.array([int(VehicleClass.from_label(o["class"])) for o in objs]),
            )

    def run(with_plates: bool) -> tuple[float, float, int]:
        """(fps, main-thread CPU ms per frame, passages with a plate)."""
        fuser = TrackPlateFuser(reader) if with_plates else None
        if fuser is not None:
            fuser.flush(60)
        sink = ListSink()
        pipe = Pipeline(site, camera, Replay(), sinks=[sink], colour=ColourClassifier(), plates=fuser)
        start, cpu0 = time.perf_counter(), time.thread_time()
        for frame, rec in frames:
            pipe.process(frame, FrameMeta(camera.name, rec["ts"], rec["index"]))
        fps = len(frames) / (time.perf_counter() - start)
        cpu_ms = (time.thread_time() - cpu0) / len(frames) * 1000
        pipe.finish(frames[-1][1]["ts"])
        plates = sum(1 for e in sink.events if getattr(e, "plate_confidence", None) is not None)
        if fuser is not None:
            fuser.close()
        return fps, cpu_ms, plates

    print(f"== pipeline on a sim scene: {n_vehicles} vehicles in {meta['seconds']:.0f} s, {len(frames)} frames "
          f"{meta['image_size']}, GT boxes + {'PRN 416 compute' if detector else 'no detector compute'},"
          " plates off/on alternating")  # fmt: skip
    results = {False: [], True: []}  # type: dict[bool, list[tuple[float, float, int]]]
    for _ in range(2):
        for flag in (False, True):
            results[flag].append(run(flag))
    base = float(np.mean([r[0] for r in results[False]]))
    with_p = float(np.mean([r[0] for r in results[True]]))
    cpu_off = float(np.mean([r[1] for r in results[False]]))
    cpu_on = float(np.mean([r[1] for r in results[True]]))
    print(f"without plates: {base:6.2f} fps  (main thread {cpu_off:.1f} CPU ms/frame)")
    print(f"with plates:    {with_p:6.2f} fps  (main thread {cpu_on:.1f} CPU ms/frame)   wall-clock drop "
          f"{100 * (1 - with_p / base):5.1f} %   passages with a plate: {results[True][-1][2]}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default="speed,curve,loop,pipeline,sim")
    ap.add_argument("--scene", action="append", default=[], help="existing sim scene folder(s) for 'sim'")
    ap.add_argument("--seconds", type=int, default=60, help="sim seconds per generated scene")
    ap.add_argument("--crop-max-px", type=int, default=256, help="VehicleCropper max_side_px (pipeline default 256)")
    ap.add_argument("--mirror", type=Path, default=Path("/work/.mirror"), help="git mirrors for 'real' and 'tune'")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    backend = RapidOcrBackend(threads=1)
    reader = PlateReader("LLL-DDDD", backend)
    reader.warm_up()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores: {os.cpu_count()}, load average at start: {load:.1f} (other work on the machine inflates times)")
    print("OCR: rapidocr PP-OCRv6 small det+rec on onnxruntime, 1 thread")
    if "real" in sections:
        print("== real photographs, plate box given (eval sets, never tuned on)")
        print("\n".join(real_report(args.mirror, backend)))
    if "tune" in sections:
        print("== decoder parameters on the tune set")
        print("\n".join(tune_report(args.mirror, backend)))
    with tempfile.TemporaryDirectory() as tmp_str:
        tmp = Path(tmp_str)
        if "speed" in sections:
            bench_speed(reader)
        if "curve" in sections:
            bench_curve(reader)
        detector = prn_workload(tmp) if sections & {"loop", "pipeline"} else None
        if "loop" in sections:
            bench_loop(reader, detector)
        if "pipeline" in sections:
            bench_pipeline(reader, detector, make_scene(tmp, "pole", 40, 11, demand_scale=1.9))
        if "sim" in sections:
            scenes = [Path(s) for s in args.scene] or [
                make_scene(tmp, "pole", args.seconds, 3),
                make_scene(tmp, "fisheye", args.seconds, 4),
            ]
            classifier = ColourClassifier()
            print("== sim scenes: colour per vehicle, plate exact-read per vehicle vs its widest plate")
            for scene in scenes:
                report_sim(scene.name, eval_scene(scene, reader, classifier, args.crop_max_px))


if __name__ == "__main__":
    main()
