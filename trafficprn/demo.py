"""`trafficprn demo` and `trafficprn eval`: the whole box in one command, and its scores.

    trafficprn demo                 # bundled scene played live (looping) through a worker -> SQLite -> dashboard
    trafficprn demo --speed 4       # the same, four times faster than real time
    trafficprn demo --headless      # process, print the accuracy summary, exit (--json for JSON)
    trafficprn eval SCENE_DIR       # any sim scene folder, with the bundled (or --model) detector

The demo scene ships in the package (trafficprn/data/demo/): a short fisheye clip made
with `trafficprn sim scene`, its site.yaml and its ground truth. Live (`demo_live`), the
scene plays from now in real time, each loop a new time window; headless, it is
processed as fast as it goes at its own timestamps and scored.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("trafficprn.demo")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="run the bundled demo scene and open the dashboard")
    p.add_argument("--headless", action="store_true", help="process, print the accuracy summary and exit")
    p.add_argument("--json", action="store_true", help="with --headless: print the summary as JSON")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workdir", help="where the SQLite file and spool go (default ~/.cache/trafficprn/demo)")
    p.add_argument("--model", default="bundled", help="detector model (default: the bundled one)")
    p.add_argument("--scene", help="a sim scene folder instead of the bundled demo scene")
    p.add_argument("--threads", type=int, default=None, help="detector threads (default: the site's)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (a quick look)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="live: play the scene this many times faster than real time (default 1)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    e = subparsers.add_parser("eval", help="run the pipeline on a sim scene and score it against its ground truth")
    e.add_argument("scene", help="sim scene folder (video.mp4, site.yaml, frames.jsonl, ...)")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e.add_argument("--model", default=None, help="detector model (default: the scene camera's, usually bundled)")
    e.add_argument("--threads", type=int, default=None, help="detector threads (default: the site's)")
    e.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    e.add_argument("--min-box-px", type=float, default=None,
                   help="ignore smaller ground-truth boxes for mAP/MOT (default: 8 px at the model's input)")
    e.add_argument("--truth", action="store_true",
                   help="instead of a detector, feed the true boxes spoiled by --noise/--dropout/--fp: scores "
                        "tracking and analytics alone")
    e.add_argument("--noise", type=float, default=0.03, help="--truth: box corner jitter, sd as a share of box size")
    e.add_argument("--dropout", type=float, default=0.05, help="--truth: share of true boxes missed")
    e.add_argument("--fp", type=float, default=0.05, help="--truth: false positives per true box")
    e.add_argument("--seed", type=int, default=0, help="--truth: seed of the spoiling")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_eval)


def demo_scene_dir() -> Path:
    from trafficprn.resources import data_dir

    return data_dir() / "demo"


def plate_secret(site: Any) -> str | None:
    """TRAFFICPRN_PLATE_SECRET, or in hash mode without it a random secret for this run
    only (hashes then cannot be linked to any other run)."""
    from trafficprn.analytics.privacy import SECRET_ENV

    secret = os.environ.get(SECRET_ENV)
    if site.privacy.plates == "hash" and not secret:
        log.info("%s is not set: plate hashes use a random secret for this run", SECRET_ENV)
        secret = secrets.token_hex(32)
    return secret


def _privacy(site: Any) -> Any:
    """The site's plate privacy, keyed with `plate_secret(site)`."""
    from trafficprn.analytics.privacy import PlatePrivacy

    return PlatePrivacy.from_config(site.privacy, plate_secret(site))


def make_pipeline_factory(privacy_holder: dict[str, Any], *, plates: bool = True, params: Any = None) -> Any:
    """A factory for `evaluation.run_scene` building the worker's pipeline: colour, plates
    (per privacy mode) and the recording detector it is given; `params`: PipelineParams
    other than the defaults."""

    def factory(site: Any, camera: Any, detector: Any, sinks: list[Any]) -> Any:
        from trafficprn.analytics.colour import ColourClassifier
        from trafficprn.errors import TrafficPRNError
        from trafficprn.pipeline import Pipeline

        privacy = _privacy(site)
        privacy_holder["privacy"] = privacy
        fuser = None
        if plates and privacy.reads_plates:
            try:
                from trafficprn.analytics.plates import PlateReader, TrackPlateFuser

                fuser = TrackPlateFuser(PlateReader(site.privacy.plate_format))
            except TrafficPRNError as exc:
                log.warning("plate reading disabled: %s", exc)
        return Pipeline(site, camera, detector, sinks=sinks, colour=ColourClassifier(), plates=fuser, privacy=privacy,
                        params=params)

    return factory


def _detector(scene: Any, model: str | None, threads: int | None, record_confidence: float | None = 0.01,
              truth: Any = None) -> Any:
    """The scene camera's detector (or `model`), run at `record_confidence` (for mAP) and
    wrapped to hand the pipeline only boxes at the camera's threshold; None runs it at the
    camera's threshold (as a worker does). With `truth` (a TruthNoise): the scene's true
    boxes, spoiled so, instead of a model."""
    from trafficprn.config import load_site
    from trafficprn.detect.runtime import load_detector
    from trafficprn.evaluation import RecordingDetector, TruthDetector
    from trafficprn.view_detector import ViewDetector

    camera = load_site(scene.site_path).cameras[0]
    cfg = camera.detector
    if truth is not None:
        return RecordingDetector(TruthDetector(scene, truth), confidence=0.0)
    name = model or cfg.model
    if name != "bundled" and not Path(name).is_absolute() and (scene.root / name).exists():
        name = str(scene.root / name)
    low = cfg.confidence if record_confidence is None else min(record_confidence, cfg.confidence)
    inner = load_detector(name, confidence=low, nms_iou=cfg.nms_iou, threads=threads or cfg.threads)
    return RecordingDetector(ViewDetector.for_camera(inner, camera), confidence=cfg.confidence)


def evaluate(scene_dir: Path, *, model: str | None, threads: int | None, sinks: list[Any] | None = None,
             max_frames: int | None = None, progress: bool = True, min_box_px: float | None = None,
             shift_s: float = 0.0, truth: Any = None) -> dict[str, Any]:
    """Run the pipeline on a scene (optionally moved `shift_s` seconds in time) and score it;
    with `truth` (a TruthNoise) on spoiled true boxes instead of a detector."""
    from trafficprn.evaluation import score_scene

    scene, run, holder = run_scene_cli(scene_dir, model=model, threads=threads, sinks=sinks, max_frames=max_frames,
                                       progress=progress, shift_s=shift_s, truth=truth)
    return score_scene(scene, run, min_box_px=min_box_px, privacy=holder.get("privacy"))


def run_scene_cli(scene_dir: Path, *, model: str | None = None, threads: int | None = None,
                  sinks: list[Any] | None = None, max_frames: int | None = None, progress: bool = True,
                  shift_s: float = 0.0, truth: Any = None, params: Any = None,
                  plates: bool = True) -> tuple[Any, Any, dict[str, Any]]:
    """(scene, SceneRun, holder) of one run of the worker's pipeline (with `params`; plate
    reading off with `plates=False`) on a scene folder, with a progress bar;
    holder["privacy"] is the run's plate privacy."""
    from tqdm import tqdm

    from trafficprn.evaluation import load_scene, run_scene

    scene = load_scene(scene_dir).shifted(shift_s)
    detector = _detector(scene, model, threads, truth=truth)
    holder: dict[str, Any] = {}
    total = len(scene.frames) if max_frames is None else min(max_frames, len(scene.frames))
    with tqdm(total=total, unit="frame", desc="pipeline", disable=not progress, file=sys.stderr) as bar:
        run = run_scene(scene, make_pipeline_factory(holder, params=params, plates=plates), detector, sinks=sinks,
                        max_frames=max_frames, progress=bar.update)
    return scene, run, holder


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    from trafficprn.evaluation import format_summary

    print(json.dumps(summary, indent=2) if as_json else format_summary(summary))


def cmd_eval(args: argparse.Namespace) -> int:
    from trafficprn.evaluation import TruthNoise

    truth = TruthNoise(args.noise, args.dropout, args.fp, args.seed) if args.truth else None
    summary = evaluate(Path(args.scene), model=args.model, threads=args.threads, max_frames=args.max_frames,
                       progress=not args.no_progress, min_box_px=args.min_box_px, truth=truth)
    _print_summary(summary, args.json)
    return 0


def _workdir(given: str | None) -> Path:
    path = Path(given) if given else Path.home() / ".cache" / "trafficprn" / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    from trafficprn.errors import InputError
    from trafficprn.evaluation import load_scene

    scene_dir = Path(args.scene) if args.scene else demo_scene_dir()
    if not (scene_dir / "scene.json").is_file():
        raise InputError(f"{scene_dir}: demo scene not found (the package data is incomplete)")
    info = load_scene(scene_dir).info
    work = _workdir(args.workdir)
    lock = _lock_workdir(work, args.port)
    try:
        return _run_demo(args, scene_dir, info, work)
    finally:
        lock.close()


def _run_demo(args: argparse.Namespace, scene_dir: Path, info: dict[str, Any], work: Path) -> int:
    from trafficprn.errors import InputError

    if not args.headless:
        from trafficprn.demo_live import run_live

        if not args.speed > 0:
            raise InputError(f"--speed must be above 0, got {args.speed}")
        return run_live(args, scene_dir, info, work,
                        lambda sd, wd, live_url: _work_site(sd, wd, live_url, model=args.model, threads=args.threads),
                        _iso)
    return _run_headless(args, scene_dir, work)


def _run_headless(args: argparse.Namespace, scene_dir: Path, work: Path) -> int:
    """The scored batch run: the scene at its own timestamps into a fresh SQLite file."""
    from trafficprn.store.db import upgrade
    from trafficprn.store.sink import DatabaseSink

    db_file = work / "demo.sqlite"
    db_file.unlink(missing_ok=True)  # a fresh database each run: no double counts
    shutil.rmtree(work / "spool", ignore_errors=True)
    url = f"sqlite:///{db_file}"
    upgrade(url)
    sink = DatabaseSink(url, work / "spool")
    try:
        summary = evaluate(scene_dir, model=args.model, threads=args.threads, sinks=[sink],
                           max_frames=args.max_frames, progress=not args.no_progress)
    finally:
        sink.close()
    _print_summary(summary, args.json)
    return 0


def _lock_workdir(work: Path, port: int) -> Any:
    """Lock the demo's folder (its SQLite file and spool) for this process, or refuse
    with a message naming the demo that holds it: two demos on one folder would delete
    each other's database."""
    from trafficprn.errors import InputError

    handle = open(work / "demo.lock", "a+")  # noqa: SIM115 (held for the demo's lifetime)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InputError(
            f"another trafficprn demo is running in {work} ({holder}); stop it, or give this one its own "
            "folder with --workdir DIR (and --port)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, port {port}")
    handle.flush()
    return handle


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _work_site(scene_dir: Path, work: Path, live_url: str | None = None, *, model: str = "bundled",
               threads: int | None = None) -> Path:
    """A copy of the scene's site.yaml in the demo's folder, which the setup page may edit
    (the installed package stays as shipped); camera sources point back at the scene, the
    camera's live_url at the demo's worker, its detector at `model` (with `threads`)."""
    from ruamel.yaml import YAML

    rt = YAML(typ="rt")
    doc = rt.load((scene_dir / "site.yaml").read_text(encoding="utf-8"))
    for cam in doc.get("cameras", []):
        src = str(cam.get("source", ""))
        if src and "://" not in src and not Path(src).is_absolute():
            cam["source"] = str((scene_dir / src).resolve())
        if live_url is not None:
            cam["live_url"] = live_url
        det = cam.setdefault("detector", {})
        if model != "bundled":
            det["model"] = str(Path(model).resolve()) if Path(model).exists() else model
        name = str(det.get("model", "bundled"))
        if name != "bundled" and not Path(name).is_absolute() and (scene_dir / name).exists():
            det["model"] = str((scene_dir / name).resolve())
        if threads is not None:
            det["threads"] = threads
    path = work / "site.yaml"
    with path.open("w", encoding="utf-8") as out:
        rt.dump(doc, out)
    return path
