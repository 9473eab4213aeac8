from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafficprn.errors import GeometryError
from trafficprn.geometry.homography import apply_homography, fit_homography, invert_homography, reprojection_errors


def random_homography(seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    h = np.eye(3) + r.normal(0, [[0.2, 0.2, 20], [0.2, 0.2, 20], [1e-4, 1e-4, 0]])
    return h


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_inverse_round_trip(seed: int) -> None:
    h = random_homography(seed)
    pts = np.random.default_rng(seed + 1).uniform(0, 500, (20, 2))
    back = apply_homography(invert_homography(h), apply_homography(h, pts))
    np.testing.assert_allclose(back, pts, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_fit_recovers_homography(seed: int) -> None:
    h = random_homography(seed)
    src = np.random.default_rng(seed + 2).uniform(0, 500, (8, 2))
    dst = apply_homography(h, src)
    fit = fit_homography(src, dst)
    np.testing.assert_allclose(fit, h / h[2, 2], rtol=1e-6, atol=1e-6)
    assert reprojection_errors(fit, src, dst).max() < 1e-6


def test_matches_opencv(rng: np.random.Generator) -> None:
    cv2 = pytest.importorskip("cv2")
    src = rng.uniform(0, 100, (10, 2))
    dst = apply_homography(random_homography(3), src) + rng.normal(0, 0.1, (10, 2))
    ref, _ = cv2.findHomography(src, dst, 0)
    np.testing.assert_allclose(apply_homography(fit_homography(src, dst), src), apply_homography(ref, src), atol=0.02)


@pytest.mark.parametrize(
    ("src", "match"),
    [
        ([[0, 0], [1, 0], [0, 1]], "at least 4"),
        ([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]], "collinear"),
        ([[0, 0], [1, 0], [2, 0], [0, 1]], "degenerate"),
        ([[0, 0], [1, 0], [2, 0], [3, 0], [0, 1]], "degenerate"),
    ],
)
def test_degenerate(src: list, match: str) -> None:
    dst = np.asarray(src, dtype=float) * 2 + 1
    with pytest.raises(GeometryError, match=match):
        fit_homography(src, dst)


def test_bad_shape() -> None:
    with pytest.raises(GeometryError, match=r"\(3, 3\)"):
        apply_homography(np.eye(2), [[0, 0]])
