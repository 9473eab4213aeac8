from __future__ import annotations

import numpy as np
import pytest

from trafficprn.errors import GeometryError
from trafficprn.types import Detections, VehicleClass


def make(n: int) -> Detections:
    xyxy = np.tile(np.array([[10.0, 20.0, 30.0, 60.0]]), (n, 1)) + np.arange(n)[:, None]
    return Detections(xyxy=xyxy, confidence=np.full(n, 0.9), class_id=np.zeros(n, dtype=np.int64))


@pytest.mark.parametrize(
    ("xyxy", "confidence", "class_id", "error"),
    [
        (np.zeros((2, 4)), np.zeros(2), np.zeros(2), None),
        (np.zeros((0, 4)), np.zeros(0), np.zeros(0), None),
        (np.zeros(3), np.zeros(1), np.zeros(1), "shape \\(N, 4\\), got shape \\(3,\\)"),
        (np.zeros((2, 4)), np.zeros(3), np.zeros(2), "confidence must have shape \\(2,\\)"),
        (np.zeros((2, 4)), np.zeros(2), np.zeros(1), "class_id must have shape \\(2,\\)"),
    ],
)
def test_detections_validation(xyxy, confidence, class_id, error):
    if error is None:
        d = Detections(xyxy=xyxy, confidence=confidence, class_id=class_id)
        assert len(d) == len(xyxy)
    else:
        with pytest.raises(GeometryError, match=error):
            Detections(xyxy=xyxy, confidence=confidence, class_id=class_id)


def test_select_and_tracks_return_new_objects():
    d = make(3)
    t = d.with_tracks(np.array([5, 6, 7]))
    assert d.track_id is None
    assert t.track_id.tolist() == [5, 6, 7]
    sub = t[np.array([True, False, True])]
    assert sub.track_id.tolist() == [5, 7]
    np.testing.assert_allclose(sub.anchor_px, [[20.0, 60.0], [22.0, 62.0]])


def test_concat_keeps_rows():
    both = Detections.concat([make(2), make(3)])
    assert len(both) == 5
    assert len(Detections.concat([])) == 0


def test_vehicle_class_labels():
    assert VehicleClass.from_label("Truck") is VehicleClass.TRUCK
    with pytest.raises(ValueError, match="expected one of"):
        VehicleClass.from_label("tram")
