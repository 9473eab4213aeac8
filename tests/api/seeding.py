"""A seeded intersection day for the API and dashboard tests (ground truth in Python).

One camera `cam-1` at a four-leg junction (Europe/Berlin), 2026-03-10 local:
- passages: a fixed pseudo-random stream with a morning peak, all classes and movements,
  some with plates and colours;
- camera status: up from 00:00, down 12:05-12:40 local (intervals 12:00, 12:15, 12:30
  are incomplete), up again after;
- queue samples on lanes N-1 and S-1 every 5 s from 08:00 to 09:00.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from trafficprn.config import dump_site, parse_site
from trafficprn.events import CameraStatus, Event, Heartbeat, QueueSample, VehiclePassage
from trafficprn.store.db import make_engine
from trafficprn.store.repository import write_events
from trafficprn.store.testing import heartbeats

TZ = "Europe/Berlin"
CAMERA = "cam-1"
DAY0 = datetime(2026, 3, 10, tzinfo=ZoneInfo(TZ)).timestamp()  # local midnight
DOWN = (DAY0 + 12 * 3600 + 5 * 60, DAY0 + 12 * 3600 + 40 * 60)
LEGS = ["N", "E", "S", "W"]
CLASSES = ["car", "car", "car", "car", "bus", "truck", "motorcycle", "bicycle"]
COLOURS = ["white", "black", "grey", "red", "blue", None]
# right-hand traffic: from N, turning left goes E, through S, right W.
TURN = {"N": {"L": "E", "T": "S", "R": "W", "U": "N"}, "E": {"L": "S", "T": "W", "R": "N", "U": "E"},
        "S": {"L": "W", "T": "N", "R": "E", "U": "S"}, "W": {"L": "N", "T": "E", "R": "S", "U": "W"}}


def site_dict(live_url: str | None = None) -> dict[str, object]:
    def box(x: float, y: float, s: float = 80) -> list[list[float]]:
        return [[x - s, y - s], [x + s, y - s], [x + s, y + s], [x - s, y + s]]

    cam: dict[str, object] = {
        "name": CAMERA,
        "source": "rtsp://127.0.0.1:1/none",
        "lens": {"model": "pinhole", "image_size": [1280, 720], "fx": 900, "fy": 900, "cx": 640, "cy": 360},
        "calibration": {"points": [{"image_px": [100, 100], "ground_m": [0, 0]},
                                   {"image_px": [1180, 100], "ground_m": [30, 0]},
                                   {"image_px": [1180, 620], "ground_m": [30, 20]},
                                   {"image_px": [100, 620], "ground_m": [0, 20]}]},
        "legs": [
            {"name": "N", "entry": box(560, 120), "exit": box(720, 120)},
            {"name": "E", "entry": box(1100, 280), "exit": box(1100, 440)},
            {"name": "S", "entry": box(720, 600), "exit": box(560, 600)},
            {"name": "W", "entry": box(180, 440), "exit": box(180, 280)},
        ],
        "lanes": [
            {"name": "N-1", "leg": "N", "polygon": [[500, 0], [620, 0], [620, 200], [500, 200]],
             "stop_line": [[500, 200], [620, 200]]},
            {"name": "S-1", "leg": "S", "polygon": [[660, 520], [780, 520], [780, 720], [660, 720]],
             "stop_line": [[660, 520], [780, 520]]},
        ],
    }
    if live_url:
        cam["live_url"] = live_url
    return {"site": {"name": "main-and-5th", "timezone": TZ}, "cameras": [cam]}


def write_site(path: Path, live_url: str | None = None) -> Path:
    dump_site(parse_site(site_dict(live_url)), path)
    return path


def passages(n: int = 1500, seed: int = 7) -> list[VehiclePassage]:
    rng = np.random.default_rng(seed)
    # time of day with a morning peak around 08:00-09:00 local
    hours = np.concatenate([rng.uniform(0, 24, n - n // 3), rng.normal(8.5, 0.35, n // 3)])
    hours = np.clip(hours, 0, 23.999)
    out = []
    for i, h in enumerate(np.sort(hours)):
        ts = DAY0 + float(h) * 3600
        if DOWN[0] <= ts < DOWN[1]:
            continue  # nothing is seen while the camera is down
        entry = LEGS[int(rng.integers(4))]
        movement = "LTTTRRU"[int(rng.integers(7))]
        cls = CLASSES[int(rng.integers(len(CLASSES)))]
        speed = float(np.round(rng.uniform(8, 70), 1)) if i % 10 else None
        out.append(VehiclePassage(
            camera=CAMERA, track_id=i + 1, passage_ts=ts, first_seen_ts=ts - 4, last_seen_ts=ts + 3,
            vehicle_class=cls, class_confidence=0.9, entry_leg=entry, exit_leg=TURN[entry][movement],
            movement=movement,  # type: ignore[arg-type]
            speed_median_kmh=speed, speed_max_kmh=None if speed is None else speed + 5,
            approach_speed_kmh=None if speed is None or i % 3 else speed + 3.0,
            through_speed_kmh=None if speed is None or i % 3 else speed - 2.0,
            stopped_s=None if i % 3 else float(i % 4) * 6.5, stops=None if i % 3 else i % 4,
            colour=COLOURS[i % len(COLOURS)], colour_confidence=0.8,
            plate_text=f"ABC-{1000 + i}" if i % 50 == 0 else None, plate_confidence=0.93 if i % 50 == 0 else None,
            uuid=f"00000000-0000-4000-8000-{i:012d}",
        ))
    # vehicles seen without a complete movement
    out.append(VehiclePassage(camera=CAMERA, track_id=99999, passage_ts=DAY0 + 10 * 3600, first_seen_ts=DAY0 + 36000 - 2,
                              last_seen_ts=DAY0 + 36001, vehicle_class="car", class_confidence=0.7,
                              uuid="00000000-0000-4000-8000-999999999999"))
    return out


def statuses() -> list[CameraStatus]:
    return [CameraStatus(CAMERA, DAY0 - 3600, True, "started"), CameraStatus(CAMERA, DOWN[0], False, "no frames"),
            CameraStatus(CAMERA, DOWN[1], True, "frames arriving")]


def queue_samples() -> list[QueueSample]:
    out = []
    for k, t in enumerate(np.arange(DAY0 + 8 * 3600, DAY0 + 9 * 3600, 5.0)):
        out.append(QueueSample(CAMERA, "N-1", float(t), float(k % 60) * 0.5, (k % 60) // 12))
        out.append(QueueSample(CAMERA, "S-1", float(t), 10.0, 2))
    return out


WATCHED = (DAY0 - 3600, DAY0 + 86400 + 3600)  # the worker's heartbeats span the seeded day


def beats() -> list[Heartbeat]:
    return heartbeats(CAMERA, *WATCHED, down=[DOWN])


def all_events() -> list[Event]:
    return [*statuses(), *beats(), *passages(), *queue_samples()]


def seed(url: str, events: list[Event] | None = None) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            write_events(conn, all_events() if events is None else events)
    finally:
        engine.dispose()
