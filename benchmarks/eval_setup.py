"""The setup suggestion (`trafficprn setup suggest`, issue 17) against hand-made zones.

For each held-out scene (scenarios in `benchmarks/setup_scenes/`, which the suggestion code
was not developed on: it used the shipped `default` and `tune` only) this renders 10 minutes
of sim footage, strips the scene's site.yaml to what an installer knows before setting up
(fisheye: its mounting height as a pose, no zones; pole: its lens as a data sheet gives it
(`--pole-lens none` drops that too, so the focal is fitted from traffic as well), no
calibration, no zones), runs the real command on the video, then runs the worker's
pipeline with the bundled detector twice over the same footage — once with the scene's
hand-made zones and calibration, once with the suggestion — and compares:

- turning-movement counts per (entry, exit) movement; suggested legs are matched to the
  hand-made ones by their zones' image positions (names need not agree);
- queue length per lane, lanes matched by their stop lines on the ground (within 2 m);
- for cameras calibrated from traffic: the error of ground distances of 20 m (pairs of true
  vehicle ground points, mapped through each calibration), and the passage speed MAE against
  the sim's truth, beside the hand-made calibration's in the same run.

Usage: python benchmarks/eval_setup.py [--work DIR] [--minutes 10] [--scenes avenue-fisheye,tee-pole]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import linear_sum_assignment

from trafficprn.camera.calibration import Calibration
from trafficprn.config import CameraConfig, load_site
from trafficprn.demo import run_scene_cli
from trafficprn.evaluation import SceneRun, load_scene, score_passages
from trafficprn.evaluation_match import passage_to_truth
from trafficprn.evaluation_speeds import score_passage_speeds
from trafficprn.sim.cameras import make_camera
from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import SceneOptions, render_scene

HERE = Path(__file__).resolve().parent
COUNT_MIN_VEHICLES = 10  # movements with fewer are listed, not judged
COUNT_TOLERANCE = 0.05
QUEUE_TARGET_M = 2.0
DISTANCE_M = 20.0
DISTANCE_TARGET = 0.08
SPEED_TARGET_KMH = 3.0
LANE_MATCH_M = 2.0


@dataclass(frozen=True)
class EvalScene:
    name: str
    scenario: Path
    camera: str  # sim camera kind: fisheye | pole
    seed: int


SCENES = (
    EvalScene("avenue-fisheye", HERE / "setup_scenes" / "avenue.yaml", "fisheye", 101),
    EvalScene("tee-pole", HERE / "setup_scenes" / "tee.yaml", "pole", 102),
)


def render(spec: EvalScene, work: Path, seconds: float) -> Path:
    out = work / spec.name / "scene"
    if (out / "video.mp4").is_file() and (out / "queues.jsonl").is_file():
        return out
    t0 = time.perf_counter()
    render_scene(load_scenario(spec.scenario), out, SceneOptions(seconds=seconds, fps=10.0, camera=spec.camera,
                                                                 seed=spec.seed))
    print(f"  rendered {seconds / 60:.0f} min of {spec.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def bare_site(scene_dir: Path, spec: EvalScene, out: Path, pole_lens: bool) -> Path:
    """The scene's site.yaml with what an installer knows before any setup."""
    raw = yaml.safe_load((scene_dir / "site.yaml").read_text(encoding="utf-8"))
    cam = raw["cameras"][0]
    cam.pop("legs", None)
    cam.pop("lanes", None)
    cam["source"] = str(scene_dir / "video.mp4")
    if spec.camera == "fisheye":
        cam["calibration"] = {"pose": {"height_m": float(make_camera("fisheye").position_m[2]), "tilt_deg": 90.0}}
    else:
        cam.pop("calibration", None)
        if not pole_lens:
            cam.pop("lens", None)
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


def suggest(scene_dir: Path, bare: Path, camera: str, minutes: float, out: Path) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "trafficprn", "setup", "suggest", str(scene_dir / "video.mp4"), "--site", str(bare),
           "--camera", camera, "--minutes", f"{minutes:g}", "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - t0, proc.stderr.strip()


def suggested_scene(scene_dir: Path, suggested: Path, out: Path) -> Path:
    """A scene folder reading the same footage and truth with the suggested site.yaml."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("scene.json", "frames.jsonl", "vehicles.json", "queues.jsonl", "video.mp4"):
        link = out / name
        if not link.exists():
            link.symlink_to(scene_dir / name)
    raw = yaml.safe_load(suggested.read_text(encoding="utf-8"))
    raw["cameras"][0]["source"] = "video.mp4"
    (out / "site.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


def _centre(points: list[tuple[float, float]] | tuple[tuple[float, float], ...]) -> np.ndarray:
    centre: np.ndarray = np.asarray(points, dtype=np.float64).reshape(-1, 2).mean(axis=0)
    return centre


def match_legs(hand: CameraConfig, ours: CameraConfig) -> dict[str, str]:
    """Suggested leg name -> hand-made leg name, by the image positions of entry and exit zones."""
    if not hand.legs or not ours.legs:
        return {}
    cost = np.array([[np.linalg.norm(_centre(o.entry) - _centre(h.entry)) + np.linalg.norm(_centre(o.exit) - _centre(h.exit))
                      for h in hand.legs] for o in ours.legs])
    rows, cols = linear_sum_assignment(cost)
    return {ours.legs[r].name: hand.legs[c].name for r, c in zip(rows, cols, strict=True)}


def match_lanes(hand: CameraConfig, ours: CameraConfig, ground: Calibration) -> dict[str, str]:
    """Suggested lane -> hand-made lane whose stop line's middle lies within LANE_MATCH_M on the
    ground (through the hand-made, surveyed calibration)."""
    if not hand.lanes or not ours.lanes:
        return {}
    h = ground.image_to_ground(np.array([_centre(lane.stop_line) for lane in hand.lanes]))
    o = ground.image_to_ground(np.array([_centre(lane.stop_line) for lane in ours.lanes]))
    cost = np.linalg.norm(o[:, None, :] - h[None, :, :], axis=2)
    cost = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return {ours.lanes[r].name: hand.lanes[c].name for r, c in zip(rows, cols, strict=True)
            if cost[r, c] <= LANE_MATCH_M}


def movement_counts(run: SceneRun, names: dict[str, str] | None = None) -> Counter[tuple[str, str]]:
    def name(leg: str) -> str:
        return leg if names is None else names.get(leg, f"?{leg}")

    return Counter((name(p.entry_leg), name(p.exit_leg)) for p in run.passages if p.entry_leg and p.exit_leg)


def compare_counts(hand: Counter[tuple[str, str]], ours: Counter[tuple[str, str]]) -> bool:
    print(f"  {'movement':<10}{'hand-made':>10}{'suggested':>10}{'error':>9}")
    judged, ok = 0, 0
    worst = 0.0
    for key in sorted(set(hand) | set(ours), key=lambda k: (-hand[k], k)):
        h, o = hand[key], ours[key]
        err = (o - h) / h if h else float("inf")
        mark = ""
        if h >= COUNT_MIN_VEHICLES:
            judged += 1
            ok += abs(err) <= COUNT_TOLERANCE
            worst = max(worst, abs(err))
            mark = "" if abs(err) <= COUNT_TOLERANCE else "  <- over 5 %"
        err_text = f"{100 * err:+.1f} %" if h else "-"
        print(f"  {key[0] + '->' + key[1]:<10}{h:>10}{o:>10}{err_text:>9}{mark}")
    print(f"  counts: {ok}/{judged} movements with >= {COUNT_MIN_VEHICLES} vehicles within 5 % "
          f"(largest error {100 * worst:.1f} %); total {sum(hand.values())} hand-made, {sum(ours.values())} suggested")
    return judged > 0 and ok == judged


def compare_queues(hand_run: SceneRun, our_run: SceneRun, lanes: dict[str, str], hand_lanes: list[str]) -> bool:
    hand = {(q.lane, round(q.ts)): q.length_m for q in hand_run.queues}
    ours = {(q.lane, round(q.ts)): q.length_m for q in our_run.queues}
    inverse = {h: o for o, h in lanes.items()}
    errors: list[float] = []
    missing_errors: list[float] = []
    for lane in hand_lanes:
        keys = [k for k in hand if k[0] == lane]
        if lane not in inverse:
            mean = np.mean([hand[k] for k in keys]) if keys else 0.0
            print(f"  lane {lane:<6} no suggested lane (hand-made mean queue {mean:.1f} m)")
            missing_errors.extend(hand[k] for k in keys)
            continue
        lane_err = [abs(ours.get((inverse[lane], k[1]), 0.0) - hand[k]) for k in keys]
        errors.extend(lane_err)
        mean_h = np.mean([hand[k] for k in keys]) if keys else 0.0
        print(f"  lane {lane:<6} <- {inverse[lane]:<6} MAE {np.mean(lane_err) if lane_err else float('nan'):.2f} m "
              f"(hand-made mean {mean_h:.1f} m, {len(keys)} samples)")
    mae = float(np.mean(errors)) if errors else float("nan")
    everything = float(np.mean(errors + missing_errors)) if errors or missing_errors else float("nan")
    extra = [o for o in {q.lane for q in our_run.queues} if o not in lanes]
    matched = sum(1 for lane in hand_lanes if lane in inverse)
    print(f"  queues: MAE {mae:.2f} m over {matched} matched lanes; "
          f"{everything:.2f} m counting unmatched hand-made lanes as 0 m; suggested lanes without a match: "
          f"{', '.join(sorted(extra)) or 'none'}")
    return bool(errors) and everything <= QUEUE_TARGET_M


def distance_errors(scene_dir: Path, hand: Calibration, ours: Calibration, length_m: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Relative errors of ground distances of `length_m` between true vehicle ground points."""
    scene = load_scene(scene_dir)
    px = np.array([o["anchor_px"] for f in scene.frames[::10] for o in f["objects"] if o.get("visibility", 1) >= 0.5])
    truth = hand.image_to_ground(px)
    fitted = ours.image_to_ground(px)
    i, j = rng.integers(0, len(px), size=(2, 200_000))
    d_true = np.linalg.norm(truth[i] - truth[j], axis=1)
    keep = np.abs(d_true - length_m) <= 0.5
    d_ours = np.linalg.norm(fitted[i[keep]] - fitted[j[keep]], axis=1)
    rel: np.ndarray = np.abs(d_ours - d_true[keep]) / d_true[keep]
    return rel


def evaluate(spec: EvalScene, work: Path, minutes: float, pole_lens: bool) -> bool:
    print(f"\n== {spec.name} ({spec.camera}, scenario {spec.scenario.stem}, seed {spec.seed}) ==", flush=True)
    scene_dir = render(spec, work, seconds=minutes * 60.0)
    base = work / spec.name
    bare = bare_site(scene_dir, spec, base / "bare-site.yaml", pole_lens)
    hand_site = load_site(scene_dir / "site.yaml")
    hand_cam = hand_site.cameras[0]
    out = base / "suggested.yaml"
    rc, seconds, err = suggest(scene_dir, bare, hand_cam.name, minutes, out)
    print(f"  setup suggest: exit {rc} after {seconds:.0f} s for {minutes:g} min of footage")
    if rc != 0:
        print("  " + err.replace("\n", "\n  "))
        return False
    ours_dir = suggested_scene(scene_dir, out, base / "suggested")
    our_cam = load_site(ours_dir / "site.yaml").cameras[0]
    meta = our_cam.suggestion
    if meta is not None:
        support = ", ".join(f"{z.name} {z.tracks}" for z in meta.legs)
        print(f"  suggested legs (tracks): {support}; lanes: {', '.join(f'{z.name} {z.tracks}' for z in meta.lanes)}")
    scene_h, hand_run, _ = run_scene_cli(scene_dir, plates=False, progress=False)
    scene_o, our_run, _ = run_scene_cli(ours_dir, plates=False, progress=False)
    legs = match_legs(hand_cam, our_cam)
    print(f"  legs: {', '.join(f'{o} = {h}' for o, h in legs.items())} (suggested = hand-made)")
    ok_counts = compare_counts(movement_counts(hand_run), movement_counts(our_run, legs))
    hand_cal = Calibration.from_camera(hand_cam)
    ok_queues = compare_queues(hand_run, our_run, match_lanes(hand_cam, our_cam, hand_cal), [ln.name for ln in hand_cam.lanes])
    ok = ok_counts and ok_queues
    if meta is not None and meta.calibration is not None and meta.calibration.method == "traffic":
        fit = meta.calibration
        sim = make_camera(spec.camera)
        forward = sim.rotation[2]  # rows: the camera axes in the world; z looks forward
        true_vals = {"focal_px": float(getattr(hand_cam.lens, "fx", float("nan"))), "height_m": float(sim.position_m[2]),
                     "tilt_deg": float(np.degrees(np.arcsin(-forward[2])))}
        print("  calibration from traffic: " + ", ".join(
            f"{k} {v:.3g} ± {fit.uncertainty.get(k, float('nan')):.2g}"
            + (f" (true {true_vals[k]:.3g})" if k in true_vals else "") for k, v in fit.values.items())
            + f"; scale from {fit.scale_source}")
        rel = distance_errors(scene_dir, hand_cal, Calibration.from_camera(our_cam), DISTANCE_M,
                              np.random.default_rng(spec.seed))
        print(f"  {DISTANCE_M:.0f} m distances: mean error {100 * rel.mean():.1f} %, median {100 * np.median(rel):.1f} %, "
              f"p90 {100 * np.quantile(rel, 0.9):.1f} % (n={len(rel)})")
        hand_speed = score_passages(scene_h, hand_run, passage_to_truth(scene_h, hand_run))
        our_map = passage_to_truth(scene_o, our_run)
        our_speed = score_passages(scene_o, our_run, our_map)
        approach = score_passage_speeds(scene_o.vehicles, our_run.passages, our_map)
        print(f"  passage speed MAE: suggested calibration {our_speed['speed_mae_kmh']:.2f} km/h "
              f"(n={our_speed['speed_n']}), hand-made {hand_speed['speed_mae_kmh']:.2f} km/h (n={hand_speed['speed_n']}); "
              f"approach stopped/moving {approach['approach_stopped_mae_kmh'] or float('nan'):.2f} / "
              f"{approach['approach_moving_mae_kmh'] or float('nan'):.2f} km/h")
        ok = ok and rel.mean() <= DISTANCE_TARGET and (our_speed["speed_mae_kmh"] or 99.0) <= SPEED_TARGET_KMH
    print(f"  {spec.name}: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "trafficprn-eval-setup")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--scenes", default=",".join(s.name for s in SCENES))
    ap.add_argument("--pole-lens", choices=("datasheet", "none"), default="datasheet",
                    help="give the pole camera's lens (focal) or fit it from traffic too")
    args = ap.parse_args()
    wanted = set(args.scenes.split(","))
    unknown = wanted - {s.name for s in SCENES}
    if unknown:
        ap.error(f"unknown scenes {sorted(unknown)}; expected some of {[s.name for s in SCENES]}")
    results = {s.name: evaluate(s, args.work, args.minutes, args.pole_lens == "datasheet")
               for s in SCENES if s.name in wanted}
    print("\n" + ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
