"""Detection on dewarped views of a fisheye frame (`detector.views`).

A 416 px network sees a 1280 px fisheye at a third of its resolution, and the vehicles
on the far legs near the rim are both small and bent. `ViewDetector` runs the detector
on the whole frame and on each configured perspective view (a "virtual PTZ" toward a
leg, `camera.dewarp.Dewarper`), maps the view boxes back into frame px by their
outlines and merges everything with class-wise NMS, so the pipeline downstream sees one
set of frame-px boxes as before.

Boxes that touch a view's border are cut by it; they are dropped when the whole frame is
also searched (it sees those vehicles whole). Each view costs one more network run per
frame: `benchmarks/bench_real_detect.py --fisheye-views` measures the gain against the
time on real fisheye frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trafficprn.camera.dewarp import Dewarper
from trafficprn.camera.lens import Lens
from trafficprn.config import CameraConfig, ViewConfig
from trafficprn.errors import ConfigError
from trafficprn.geometry.nms import nms
from trafficprn.types import Detections, Detector

EDGE_PX = 2.0  # a view box this close to the view's border is cut by it


class ViewDetector:
    """`inner` on the frame (if `whole_frame`) and on each view of `dewarper`, merged."""

    def __init__(self, inner: Detector, dewarper: Dewarper, *, whole_frame: bool = True, nms_iou: float = 0.45):
        if not dewarper.view_names:
            raise ConfigError("view detection needs at least one view", field="detector.views")
        self.inner = inner
        self.dewarper = dewarper
        self.whole_frame = whole_frame
        self.nms_iou = nms_iou
        self.class_names = inner.class_names

    @classmethod
    def for_camera(cls, inner: Detector, camera: CameraConfig) -> Detector:
        """`inner` itself when the camera has no `detector.views`, else a ViewDetector."""
        if not camera.detector.views:
            return inner
        return cls(inner, Dewarper.from_camera(camera), nms_iou=camera.detector.nms_iou)

    @classmethod
    def with_views(
        cls, inner: Detector, lens: Lens, views: Sequence[ViewConfig], *, nms_iou: float = 0.45
    ) -> ViewDetector:
        """A ViewDetector with `views` through `lens` (e.g. `make_lens(camera.lens)`)."""
        return cls(inner, Dewarper(lens, views), nms_iou=nms_iou)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        per_view: dict[str, Detections] = {}
        for name in self.dewarper.view_names:
            view = self.dewarper.view(image_bgr, name)
            dets = self.inner.detect(view)
            if self.whole_frame and len(dets):
                h, w = view.shape[:2]
                x1, y1, x2, y2 = dets.xyxy.T
                inside = (x1 > EDGE_PX) & (y1 > EDGE_PX) & (x2 < w - EDGE_PX) & (y2 < h - EDGE_PX)
                dets = dets[np.flatnonzero(inside)]
            per_view[name] = dets
        merged = self.dewarper.merge_detections(per_view, iou=self.nms_iou)
        if not self.whole_frame:
            return merged
        both = Detections.concat([d for d in (self.inner.detect(image_bgr), merged) if len(d)])
        if len(both) == 0:
            return both
        keep = nms(both.xyxy, both.confidence, self.nms_iou, class_id=both.class_id)
        return both[keep]


def leg_views(
    count: int = 4, *, pitch_deg: float = 60.0, fov_deg: float = 70.0, size: tuple[int, int] = (416, 416)
) -> list[ViewConfig]:
    """`count` views at even yaws around an overhead fisheye, pitched toward the rim where
    a junction's legs and their far vehicles are (a starting point for `detector.views`)."""
    return [
        ViewConfig(name=f"leg{i}", yaw_deg=360.0 * i / count, pitch_deg=pitch_deg, fov_deg=fov_deg, size=size)
        for i in range(count)
    ]
