from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafficprn.camera.lens import KannalaBrandt, make_lens, rays_from_angles
from trafficprn.config import LensConfig

MODELS = ("equidistant", "equisolid", "stereographic", "orthographic", "kannala_brandt", "pinhole")
LensFactory = Callable[..., LensConfig]


def disc_px(cx: float, cy: float, radius: float, n: int = 4000, seed: int = 0) -> np.ndarray:
    r = np.random.default_rng(seed)
    rad = radius * np.sqrt(r.uniform(0, 1, n))
    ang = r.uniform(-np.pi, np.pi, n)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)


# ---------------------------------------------------------------- references
def test_kannala_brandt_project_matches_cv2_fisheye(make_lens_config: LensFactory) -> None:
    lens = make_lens(make_lens_config("kannala_brandt"))
    assert isinstance(lens, KannalaBrandt)
    # cv2.fisheye represents z > 0 only: the whole image circle up to 89.9 deg.
    theta = np.sqrt(np.random.default_rng(1).uniform(0, 1, 5000)) * np.radians(89.9)
    phi = np.random.default_rng(2).uniform(-np.pi, np.pi, 5000)
    rays = rays_from_angles(theta, phi)
    k_mat = np.array([[lens.fx, 0, lens.cx], [0, lens.fy, lens.cy], [0, 0, 1]])
    ref, _ = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k_mat, lens.k)
    err = np.linalg.norm(lens.project(rays) - ref.reshape(-1, 2), axis=1)
    assert err.max() <= 0.01


@pytest.mark.parametrize("k", [(0.05, -0.01, 0.002, -0.0005), (-0.06, 0.004, -0.001, 0.0001), (0, 0, 0, 0)])
def test_kannala_brandt_unproject_matches_cv2_fisheye(make_lens_config: LensFactory, k: tuple[float, ...]) -> None:
    lens = make_lens(make_lens_config("kannala_brandt", k=list(k)))
    assert isinstance(lens, KannalaBrandt)
    # The image circle up to 89.9 deg (where cv2's x/z is still finite). cv2.fisheye.undistortPoints
    # clamps theta_d to pi/2, so for lenses whose theta_d passes pi/2 the reference stops there.
    theta = np.sqrt(np.random.default_rng(1).uniform(0, 1, 5000)) * np.radians(89.9)
    theta = theta[lens._theta_d(theta) < np.pi / 2 - 1e-9]
    phi = np.random.default_rng(2).uniform(-np.pi, np.pi, len(theta))
    px = lens.project(rays_from_angles(theta, phi))
    k_mat = np.array([[lens.fx, 0, lens.cx], [0, lens.fy, lens.cy], [0, 0, 1]])
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-14)
    und = cv2.fisheye.undistortPoints(px.reshape(-1, 1, 2), k_mat, lens.k, criteria=criteria).reshape(-1, 2)
    ref = np.hstack([und, np.ones((len(und), 1))])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    ours = lens.unproject(px)
    # Compare in px: both rays re-imaged through cv2.fisheye.projectPoints.
    ours_px, _ = cv2.fisheye.projectPoints(ours.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k_mat, lens.k)
    ref_px, _ = cv2.fisheye.projectPoints(ref.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k_mat, lens.k)
    assert np.linalg.norm(ours_px - ref_px, axis=2).max() <= 0.01
    # and in angle: f * angle between the rays, i.e. px near the centre
    angle = np.arccos(np.clip((ours * ref).sum(axis=1), -1, 1))
    assert (angle * lens.fx).max() <= 0.01
    np.testing.assert_allclose(lens.project(ours), px, atol=1e-6)


def test_pinhole_matches_cv2(make_lens_config: LensFactory) -> None:
    cfg = make_lens_config("pinhole")
    lens = make_lens(cfg)
    k_mat = np.array([[cfg.fx, 0, cfg.cx], [0, cfg.fy, cfg.cy], [0, 0, 1]])
    dist = np.asarray(cfg.dist)
    r = np.random.default_rng(3)
    xy = r.uniform(-0.7, 0.7, (3000, 2))
    rays = np.hstack([xy, np.ones((3000, 1))])
    ref, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), k_mat, dist)
    np.testing.assert_allclose(lens.project(rays), ref.reshape(-1, 2), atol=1e-6)
    px = r.uniform([0, 0], [1280, 720], (3000, 2))
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-14)
    und = cv2.undistortPointsIter(px.reshape(-1, 1, 2), k_mat, dist, None, None, criteria).reshape(-1, 2)
    ours = lens.unproject(px)
    np.testing.assert_allclose(ours[:, :2] / ours[:, 2:], und, atol=1e-6)


def test_kb_without_distortion_is_equidistant(make_lens_config: LensFactory) -> None:
    eq = make_lens(make_lens_config("equidistant", fov_deg=180, radius_px=600))
    f = 600 / (np.pi / 2)
    kb = make_lens(make_lens_config("kannala_brandt", fx=f, fy=f, cx=640, cy=640, k=[0, 0, 0, 0]))
    px = disc_px(640, 640, 600)
    np.testing.assert_allclose(kb.unproject(px), eq.unproject(px), atol=1e-12)


@pytest.mark.parametrize(
    ("model", "theta_deg", "r_px"),
    [
        ("equidistant", 92.5, 630.0),
        ("equidistant", 45.0, 630.0 * 45 / 92.5),
        ("equisolid", 45.0, 630.0 * np.sin(np.radians(22.5)) / np.sin(np.radians(46.25))),
        ("stereographic", 45.0, 630.0 * np.tan(np.radians(22.5)) / np.tan(np.radians(46.25))),
        ("orthographic", 30.0, 630.0 * 0.5),
    ],
)
def test_fisheye_radius_formulae(make_lens_config: LensFactory, model: str, theta_deg: float, r_px: float) -> None:
    lens = make_lens(make_lens_config(model))
    px = lens.project(rays_from_angles(np.array([np.radians(theta_deg)]), np.array([0.0])))
    np.testing.assert_allclose(px, [[640 + r_px, 640]], atol=1e-9)


# ---------------------------------------------------------------- properties
@pytest.mark.parametrize("model", MODELS)
def test_round_trips(make_lens_config: LensFactory, model: str) -> None:
    lens = make_lens(make_lens_config(model))

    @settings(max_examples=60, deadline=None)
    @given(st.floats(0, 1), st.floats(-np.pi, np.pi))
    def check(t: float, phi: float) -> None:
        theta = np.array([t * lens.max_theta_rad * 0.999])
        ray = rays_from_angles(theta, np.array([phi]))
        px = lens.project(ray)
        if model == "pinhole" and not lens.in_image(px)[0]:
            return
        np.testing.assert_allclose(lens.unproject(px), ray, atol=1e-9)
        np.testing.assert_allclose(lens.project(lens.unproject(px)), px, atol=1e-7)

    check()


@pytest.mark.parametrize("model", MODELS)
def test_valid(make_lens_config: LensFactory, model: str) -> None:
    lens = make_lens(make_lens_config(model))
    w, h = lens.image_size
    cx, cy = lens.center_px
    out = lens.valid([[cx, cy], [-5, cy], [cx, h + 5], [np.nan, 0]])
    assert out.tolist() == [True, False, False, False]
    if model != "pinhole":
        # corners of a square frame lie outside the image circle
        assert not lens.valid([[1, 1], [w - 1, h - 1]]).any()


def test_rays_outside_model_are_nan(make_lens_config: LensFactory) -> None:
    ortho = make_lens(make_lens_config("orthographic"))
    pin = make_lens(make_lens_config("pinhole"))
    behind = np.array([[0.0, 0.2, -1.0]])
    assert np.isnan(ortho.project(behind)).all()
    assert np.isnan(pin.project(behind)).all()
    assert not ortho.in_fov(behind)[0]
