from __future__ import annotations

import numpy as np
import pytest

from trafficprn.errors import GeometryError
from trafficprn.geometry.polygons import (
    intersection_area,
    points_in_polygon,
    polygon_area,
    polygon_centroid,
    polygons_overlap,
    segments_cross,
)

SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10]]
L_SHAPE = [[0, 0], [10, 0], [10, 4], [4, 4], [4, 10], [0, 10]]  # non-convex


@pytest.mark.parametrize(
    ("polygon", "points", "expected"),
    [
        (SQUARE, [[5, 5], [15, 5], [-1, -1], [9.9, 0.1]], [True, False, False, True]),
        (L_SHAPE, [[2, 8], [8, 8], [8, 2], [5, 5]], [True, False, True, False]),
    ],
)
def test_points_in_polygon(polygon: list, points: list, expected: list[bool]) -> None:
    assert points_in_polygon(points, polygon).tolist() == expected


def test_points_in_polygon_matches_opencv(rng: np.random.Generator) -> None:
    cv2 = pytest.importorskip("cv2")
    poly = np.array(L_SHAPE, dtype=np.float64) * 7 + 3
    pts = rng.uniform(-5, 80, (500, 2))
    ref = [cv2.pointPolygonTest(poly.astype(np.float32), (float(x), float(y)), False) > 0 for x, y in pts]
    assert points_in_polygon(pts, poly).tolist() == ref


@pytest.mark.parametrize(
    ("a", "b", "area", "overlap"),
    [
        (SQUARE, [[5, 5], [15, 5], [15, 15], [5, 15]], 25.0, True),
        (SQUARE, [[10, 0], [20, 0], [20, 10], [10, 10]], 0.0, False),  # shared edge
        (SQUARE, [[20, 20], [30, 20], [30, 30]], 0.0, False),
        (L_SHAPE, [[6, 6], [12, 6], [12, 12], [6, 12]], 0.0, False),  # in the notch of the L
        (L_SHAPE, [[2, 2], [8, 2], [8, 8], [2, 8]], 6 * 2 + 2 * 4, True),
        (L_SHAPE[::-1], SQUARE, 64.0, True),  # orientation does not matter
    ],
)
def test_overlap_table(a: list, b: list, area: float, overlap: bool) -> None:
    assert intersection_area(a, b) == pytest.approx(area)
    assert polygons_overlap(a, b) is overlap


def test_area_and_centroid() -> None:
    assert polygon_area(SQUARE) == 100
    assert polygon_area(L_SHAPE) == 64
    np.testing.assert_allclose(polygon_centroid(SQUARE), [5, 5])


@pytest.mark.parametrize(
    ("p1", "p2", "expected"),
    [
        ([0, -1], [0, 1], True),
        ([0, -1], [0, -0.5], False),
        ([5, -1], [5, 1], False),  # beyond the line's end
        ([-2, 0], [-1, 0], False),  # collinear, apart
        ([1, 0], [1, 1], True),  # touching counts
    ],
)
def test_segments_cross(p1: list, p2: list, expected: bool) -> None:
    out = segments_cross([p1], [p2], [-1, 0], [1, 0])
    assert out.tolist() == [expected]


def test_polygon_too_small() -> None:
    with pytest.raises(GeometryError, match="at least 3 points"):
        polygon_area([[0, 0], [1, 1]])
