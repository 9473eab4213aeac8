from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafficprn.errors import GeometryError
from trafficprn.geometry.boxes import (
    box_area,
    cxcysr_to_xyxy,
    iou_matrix,
    xywh_to_xyxy,
    xyxy_to_cxcysr,
    xyxy_to_xywh,
)

coord = st.floats(-1000, 1000, allow_nan=False)
size = st.floats(0.5, 500, allow_nan=False)


@st.composite
def boxes(draw: st.DrawFn, n: int = 5) -> np.ndarray:
    rows = [
        (x, y, x + w, y + h)
        for x, y, w, h in draw(st.lists(st.tuples(coord, coord, size, size), min_size=1, max_size=n))
    ]
    return np.asarray(rows)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # degenerate: no nan
    ],
)
def test_iou_table(a: list[float], b: list[float], expected: float) -> None:
    assert iou_matrix([a], [b])[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "error"),
    [(np.zeros((3, 3)), GeometryError), (np.zeros((2, 4, 1)), GeometryError)],
)
def test_iou_bad_shapes(a: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"shape \(N, 4\)"):
        iou_matrix(a, np.zeros((1, 4)))


def test_iou_empty() -> None:
    assert iou_matrix(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


@settings(max_examples=50, deadline=None)
@given(boxes(), boxes())
def test_iou_symmetric_and_bounded(a: np.ndarray, b: np.ndarray) -> None:
    m = iou_matrix(a, b)
    assert m.shape == (len(a), len(b))
    np.testing.assert_allclose(m, iou_matrix(b, a).T)
    assert np.all((m >= 0) & (m <= 1))
    np.testing.assert_allclose(np.diag(iou_matrix(a, a)), 1.0)


@settings(max_examples=50, deadline=None)
@given(boxes())
def test_conversions_round_trip(b: np.ndarray) -> None:
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(b)), b, atol=1e-9)
    np.testing.assert_allclose(cxcysr_to_xyxy(xyxy_to_cxcysr(b)), b, atol=1e-6)


def test_cxcysr_values() -> None:
    z = xyxy_to_cxcysr([[0, 0, 20, 10]])
    np.testing.assert_allclose(z, [[10, 5, 200, 2]])
    assert box_area([[0, 0, 20, 10], [5, 5, 0, 0]]).tolist() == [200, 0]
