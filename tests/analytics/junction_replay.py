"""Run synthetic junction vehicles through the real Pipeline (SORT + analytics).

The detector is a replay of the vehicles' true boxes (with optional noise and hidden
vehicles): the stages after detection are what these tests check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from junction_factory import Vehicle, detections_at

from trafficprn.config import SiteConfig
from trafficprn.events import ListSink, QueueSample, VehiclePassage
from trafficprn.pipeline import Pipeline, PipelineParams
from trafficprn.types import Detections, FrameMeta, VehicleClass

T0 = 1_780_000_000.0  # 2026-05-28, a Thursday


class ReplayDetector:
    """Detector protocol: returns whatever `next` holds (class ids are VehicleClass values)."""

    class_names = [c.label for c in VehicleClass]

    def __init__(self) -> None:
        self.next = Detections.empty()

    def detect(self, image_bgr: np.ndarray) -> Detections:
        return self.next


@dataclass
class Run:
    passages: list[VehiclePassage]
    queues: list[QueueSample]
    pipeline: Pipeline


def run_vehicles(
    site: SiteConfig,
    vehicles: list[Vehicle],
    *,
    fps: float,
    t_end: float,
    rng: np.random.Generator | None = None,
    noise_px: float = 0.0,
    hidden: Callable[[float], set[int]] | None = None,
    params: PipelineParams | None = None,
) -> Run:
    camera = site.cameras[0]
    detector = ReplayDetector()
    sink = ListSink()
    pipe = Pipeline(site, camera, detector, sinks=[sink], params=params)
    image = np.zeros((4, 4, 3), np.uint8)
    t_start = min(float(v.ts[0]) for v in vehicles if len(v.ts))
    for i in range(int((t_end - t_start) * fps)):
        ts = t_start + i / fps
        detector.next = detections_at(vehicles, ts, fps, rng, noise_px, hidden(ts) if hidden else None)
        pipe.process(image, FrameMeta(camera.name, ts, i))
    pipe.finish(t_end)
    return Run(sink.of_type(VehiclePassage), sink.of_type(QueueSample), pipe)
