"""Sim ground truth as `ObservedTrack`s: perfect tracks, to test the suggestion maths apart
from the detector (tests only; the suggestion code itself never reads the sim)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from trafficprn.setup.tracks import ObservedTrack


def truth_tracks(scene: Path, min_visibility: float = 0.5) -> list[ObservedTrack]:
    rows: dict[int, list[tuple[float, list[float]]]] = defaultdict(list)
    classes: dict[int, str] = {}
    with open(scene / "frames.jsonl", encoding="utf-8") as f:
        for line in f:
            frame = json.loads(line)
            for obj in frame["objects"]:
                if obj.get("visibility", 1.0) < min_visibility:
                    continue
                rows[obj["track_id"]].append((frame["ts"], obj["xyxy"]))
                classes[obj["track_id"]] = obj["class"]
    out = []
    for tid, r in sorted(rows.items()):
        if len(r) < 3:
            continue
        ts = np.array([t for t, _ in r], dtype=np.float64)
        boxes = np.array([b for _, b in r], dtype=np.float64)
        out.append(ObservedTrack(tid, classes[tid], ts, boxes))
    return out
