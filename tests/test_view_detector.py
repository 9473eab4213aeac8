"""Detection on dewarped views of a fisheye frame, merged back into frame px."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trafficprn.camera.dewarp import Dewarper
from trafficprn.camera.lens import make_lens
from trafficprn.config import CameraConfig, load_site
from trafficprn.detect.runtime import load_detector
from trafficprn.errors import ConfigError
from trafficprn.resources import data_dir
from trafficprn.types import Detections
from trafficprn.view_detector import ViewDetector, leg_views

DEMO = data_dir() / "demo"


@pytest.fixture(scope="module")
def camera() -> CameraConfig:
    return load_site(DEMO / "site.yaml").cameras[0]


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(DEMO / "video.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 300)
    ok, image = cap.read()
    cap.release()
    assert ok
    return np.asarray(image)


class FixedBoxes:
    """A detector that answers every view-sized image with the boxes it was given, and
    the whole frame with none: isolates the mapping and merging from any model."""

    class_names = ["car", "bus", "truck", "motorcycle", "bicycle"]

    def __init__(self, boxes: list[list[float]], view_shape: tuple[int, int]):
        self.boxes = np.array(boxes, dtype=np.float64)
        self.view_shape = view_shape
        self.calls: list[tuple[int, int]] = []

    def detect(self, image_bgr: np.ndarray) -> Detections:
        self.calls.append(image_bgr.shape[:2])
        if image_bgr.shape[:2] != self.view_shape:
            return Detections.empty()
        n = len(self.boxes)
        return Detections(xyxy=self.boxes, confidence=np.full(n, 0.9), class_id=np.zeros(n, dtype=np.int64))


def test_without_views_the_detector_is_unchanged(camera: CameraConfig) -> None:
    inner = FixedBoxes([], (416, 416))
    assert ViewDetector.for_camera(inner, camera) is inner  # the demo camera configures no views
    with pytest.raises(ConfigError, match="at least one view"):
        ViewDetector(inner, Dewarper.from_camera(camera))


def test_a_view_box_lands_where_the_lens_puts_it(camera: CameraConfig, frame: np.ndarray) -> None:
    views = leg_views(4)
    centre_box = [188.0, 188.0, 228.0, 228.0]  # 40 px box at each view's centre
    edge_box = [0.0, 100.0, 30.0, 140.0]  # touches the view's left border: cut by it
    inner = FixedBoxes([centre_box, edge_box], (416, 416))
    det = ViewDetector.with_views(inner, make_lens(camera.lens), views)
    out = det.detect(frame)
    assert len(inner.calls) == 5  # four views and the whole frame
    assert len(out) == 4  # one centre box per view; the edge boxes are dropped
    dewarper = Dewarper(det.dewarper.lens, views)
    expected = np.array([dewarper.view_to_image(v.name, [[208.0, 208.0]])[0] for v in views])
    centres = np.stack([(out.xyxy[:, 0] + out.xyxy[:, 2]) / 2, (out.xyxy[:, 1] + out.xyxy[:, 3]) / 2], axis=1)
    for e in expected:  # each view's centre box maps onto the lens projection of its centre
        assert np.min(np.linalg.norm(centres - e, axis=1)) < 6.0
    # without the whole frame, boxes cut by a view border are kept (nothing else sees them)
    only_views = ViewDetector(FixedBoxes([centre_box, edge_box], (416, 416)), dewarper, whole_frame=False)
    assert len(only_views.detect(frame)) == 8


def test_bundled_model_on_views_of_a_real_frame_gives_frame_boxes(camera: CameraConfig, frame: np.ndarray) -> None:
    inner = load_detector("bundled", confidence=0.25, threads=1)
    det = ViewDetector.with_views(inner, make_lens(camera.lens), leg_views(4))
    out = det.detect(frame)
    whole = inner.detect(frame)
    h, w = frame.shape[:2]
    assert len(out) >= len(whole) * 0.8  # merging never loses what the whole frame found, beyond NMS ties
    assert np.isfinite(out.xyxy).all()
    assert (out.xyxy[:, [0, 1]] >= -1).all() and (out.xyxy[:, 2] <= w + 1).all() and (out.xyxy[:, 3] <= h + 1).all()


def test_a_camera_with_views_gets_a_view_detector() -> None:
    site = load_site(DEMO / "site.yaml")
    cam = site.cameras[0].model_copy(
        update={"detector": site.cameras[0].detector.model_copy(update={"views": leg_views(2)})}
    )
    inner = load_detector("bundled", threads=1)
    wrapped = ViewDetector.for_camera(inner, cam)
    assert isinstance(wrapped, ViewDetector) and wrapped.dewarper.view_names == ["leg0", "leg1"]
