from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trafficprn.camera.dewarp import Dewarper
from trafficprn.camera.lens import make_lens
from trafficprn.camera.views import view_rotation
from trafficprn.config import LensConfig, ViewConfig
from trafficprn.errors import ConfigError, GeometryError
from trafficprn.geometry.boxes import iou_matrix
from trafficprn.types import Detections

LensFactory = Callable[..., LensConfig]
FISHEYES = ("equidistant", "equisolid", "stereographic", "orthographic", "kannala_brandt")

VIEWS = [
    ViewConfig(name="N", yaw_deg=0, pitch_deg=55, fov_deg=90, size=(640, 480)),
    ViewConfig(name="E", yaw_deg=90, pitch_deg=55, fov_deg=90, size=(640, 480)),
    ViewConfig(name="S", yaw_deg=180, pitch_deg=55, roll_deg=5, fov_deg=90, size=(640, 480)),
    ViewConfig(name="W", yaw_deg=270, pitch_deg=55, fov_deg=90, size=(640, 480)),
]


def dewarper(make_lens_config: LensFactory, model: str = "equidistant", views: list[ViewConfig] = VIEWS) -> Dewarper:
    return Dewarper(make_lens(make_lens_config(model)), views)


@pytest.mark.parametrize("model", FISHEYES)
def test_point_round_trips(make_lens_config: LensFactory, model: str) -> None:
    d = dewarper(make_lens_config, model)
    d.panorama_view((1920, 480))

    @settings(max_examples=40, deadline=None)
    @given(st.sampled_from([*d.view_names, "panorama"]), st.floats(0, 1), st.floats(0, 1))
    def check(name: str, fx: float, fy: float) -> None:
        w, h = d.get_view(name).size
        view_px = np.array([[fx * (w - 1), fy * (h - 1)]])
        image_px = d.view_to_image(name, view_px)
        assume(bool(d.lens.valid(image_px)[0]))  # the part of the view that sees the image circle
        np.testing.assert_allclose(d.image_to_view(name, image_px), view_px, atol=1e-6)
        np.testing.assert_allclose(d.view_to_image(name, d.image_to_view(name, image_px)), image_px, atol=1e-6)

    check()


def test_view_centre_and_orientation(make_lens_config: LensFactory) -> None:
    d = dewarper(make_lens_config)
    cx, cy = (639 / 2, 479 / 2)
    centre = {n: d.view_to_image(n, [[cx, cy]])[0] for n in d.view_names}
    # N looks towards the image top, E to the right, ...
    assert centre["N"][1] < 640 - 300 and abs(centre["N"][0] - 640) < 1e-6
    assert centre["E"][0] > 640 + 300 and abs(centre["E"][1] - 640) < 1e-6
    # view "up" points away from the image centre: the view's top row is farther out
    top = d.view_to_image("N", [[cx, 0]])[0]
    assert top[1] < centre["N"][1]
    # view right is image right for the N view (not mirrored)
    right = d.view_to_image("N", [[639, cy]])[0]
    assert right[0] > centre["N"][0]
    rot = view_rotation(33, 47, 12)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)


@pytest.mark.parametrize("model", FISHEYES)
def test_straight_lines_stay_straight(
    make_lens_config: LensFactory, checkerboard: Callable[..., Any], model: str
) -> None:
    lens = make_lens(make_lens_config(model))
    # a board on the ground plane 1 m below an overhead camera, seen 50 deg off-axis
    view = ViewConfig(name="v", yaw_deg=30, pitch_deg=50, fov_deg=70, size=(480, 400))
    d = Dewarper(lens, [view])
    axis = d.get_view("v").rays([[239.5, 199.5]])[0]
    centre = axis / axis[2]  # where the view's axis meets z = 1
    cols, rows = 10, 8
    # board axes along the view's x and its ground direction; 10 squares ~ half the view width
    vx = d.get_view("v").rotation[:, 0]
    u = np.array([vx[0], vx[1], 0.0]) / np.hypot(vx[0], vx[1])
    v = np.array([-u[1], u[0], 0.0])
    square = np.linalg.norm(centre) * 2 * np.tan(np.radians(35)) / 18
    image = checkerboard(lens, centre, u, v, square, (cols, rows))
    out = cv2.cvtColor(d.view(image, "v"), cv2.COLOR_BGR2GRAY)
    found, corners = cv2.findChessboardCornersSB(out, (cols - 1, rows - 1), flags=cv2.CALIB_CB_ACCURACY)
    assert found
    grid = corners.reshape(rows - 1, cols - 1, 2)
    residuals = [line_residual(grid[i]) for i in range(rows - 1)] + [line_residual(grid[:, j]) for j in range(cols - 1)]
    assert max(residuals) <= 0.5, max(residuals)
    # and the raw fisheye frame really is curved (the check has teeth)
    found_raw, raw = cv2.findChessboardCornersSB(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (cols - 1, rows - 1))
    if found_raw and model != "orthographic":
        g = raw.reshape(rows - 1, cols - 1, 2)
        assert max(line_residual(g[0]), line_residual(g[-1]), line_residual(g[:, 0]), line_residual(g[:, -1])) > 1.0


def line_residual(points: np.ndarray) -> float:
    """Max distance in px of points from their total-least-squares line."""
    p = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(p)
    return float(np.abs(p @ vt[1]).max())


def test_tables_cached_and_fixed_point_matches_float(make_lens_config: LensFactory) -> None:
    lens = make_lens(make_lens_config("equidistant"))
    fast, exact = Dewarper(lens, VIEWS, fixed_point=True), Dewarper(lens, VIEWS, fixed_point=False)
    image = np.random.default_rng(0).integers(0, 255, (1280, 1280, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    assert fast.table("N") is fast.table("N")
    assert fast.table("N").map1.dtype == np.int16
    a, b = fast.view(image, "N").astype(int), exact.view(image, "N").astype(int)
    assert np.abs(a - b).max() <= 2
    views = fast.views(image)
    assert set(views) == {"N", "E", "S", "W"} and views["E"].shape == (480, 640, 3)
    pano = fast.panorama(image, (1920, 480))
    assert pano.shape == (480, 1920, 3)


def test_view_pixels_sample_the_right_place(make_lens_config: LensFactory) -> None:
    """A bright dot in the frame shows up in the view where image_to_view says."""
    d = dewarper(make_lens_config, "kannala_brandt")
    image = np.zeros((1280, 1280, 3), np.uint8)
    dot = d.view_to_image("E", [[400.0, 150.0]])[0]
    cv2.circle(image, (round(dot[0]), round(dot[1])), 3, (255, 255, 255), -1)
    out = cv2.cvtColor(d.view(image, "E"), cv2.COLOR_BGR2GRAY).astype(float)
    ys, xs = np.nonzero(out > 50)
    wts = out[ys, xs]
    np.testing.assert_allclose([np.average(xs, weights=wts), np.average(ys, weights=wts)], [400, 150], atol=1.0)


@pytest.mark.parametrize(
    ("view", "error", "match"),
    [
        (
            ViewConfig(name="sky", yaw_deg=0, pitch_deg=100, fov_deg=60),
            ConfigError,
            r"views\[1\]: view 'sky' looks outside",
        ),
        (ViewConfig(name="N", yaw_deg=10, pitch_deg=30, fov_deg=60), ConfigError, r"views\[1\]\.name"),
    ],
)
def test_bad_views(make_lens_config: LensFactory, view: ViewConfig, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Dewarper(make_lens(make_lens_config("equidistant")), [VIEWS[0], view])


def test_wrong_frame_size_and_unknown_view(make_lens_config: LensFactory) -> None:
    d = dewarper(make_lens_config)
    with pytest.raises(GeometryError, match="1280x1280"):
        d.view(np.zeros((720, 1280, 3), np.uint8), "N")
    with pytest.raises(GeometryError, match="no view named"):
        d.view_to_image("X", [[0, 0]])


def test_merge_detections_from_overlapping_views(make_lens_config: LensFactory) -> None:
    views = [
        ViewConfig(name="a", yaw_deg=0, pitch_deg=50, fov_deg=90),
        ViewConfig(name="b", yaw_deg=40, pitch_deg=50, fov_deg=90),
    ]
    d = dewarper(make_lens_config, "equidistant", views)
    # one round blob (its box does not depend on rotation) in the overlap, one seen by view a only
    car, other = (730.0, 330.0, 28.0), (580.0, 270.0, 18.0)

    def outline(blob: tuple[float, float, float]) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, 90)
        return np.stack([blob[0] + blob[2] * np.cos(t), blob[1] + blob[2] * np.sin(t)], axis=1)

    def seen_by(name: str, blob: tuple[float, float, float]) -> list[float]:
        v = d.image_to_view(name, outline(blob))
        return [v[:, 0].min(), v[:, 1].min(), v[:, 0].max(), v[:, 1].max()]

    def image_box(blob: tuple[float, float, float]) -> np.ndarray:
        return np.array([[blob[0] - blob[2], blob[1] - blob[2], blob[0] + blob[2], blob[1] + blob[2]]])

    per_view = {
        "a": Detections(np.array([seen_by("a", car), seen_by("a", other)]), [0.9, 0.7], [0, 0]),
        "b": Detections(np.array([seen_by("b", car)]), [0.8], [0]),
    }
    merged = d.merge_detections(per_view)
    assert len(merged) == 2
    order = np.argsort(-merged.confidence)
    assert merged.confidence[order].tolist() == [0.9, 0.7]
    assert iou_matrix(merged.xyxy[order[:1]], image_box(car))[0, 0] > 0.8
    assert iou_matrix(merged.xyxy[order[1:]], image_box(other))[0, 0] > 0.8
