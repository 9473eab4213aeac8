"""SORT: the batched filter against the filterpy reference, lifecycle rules, ids."""

from __future__ import annotations

import numpy as np
import pytest

from trafficprn.errors import TrackingError
from trafficprn.track.kalman import x_to_xyxy, xyxy_to_z
from trafficprn.track.reference import FilterpySortTracker
from trafficprn.track.sort import SortTracker, associate, iou_matrix
from trafficprn.types import Detections


def make_dets(xyxy: list[list[float]] | np.ndarray, class_id: int | list[int] = 0, conf: float = 0.9) -> Detections:
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    cls = np.broadcast_to(np.asarray(class_id), (len(xyxy),))
    return Detections(xyxy=xyxy, confidence=np.full(len(xyxy), conf), class_id=cls)


def random_scene(rng: np.random.Generator, n: int, frames: int) -> list[Detections]:
    """Objects on straight lines with jitter, 10 % dropouts, crossings and false positives."""
    pos = rng.uniform(0, 1000, (n, 2))
    vel = rng.normal(0, 4, (n, 2))
    size = rng.uniform(20, 80, (n, 2))
    out = []
    for f in range(frames):
        p = pos + vel * f + rng.normal(0, 1.0, (n, 2))
        xyxy = np.concatenate([p - size / 2, p + size / 2], axis=1)[rng.random(n) > 0.1]
        fp = rng.uniform(0, 1000, (2, 2))
        xyxy = np.concatenate([xyxy, np.concatenate([fp, fp + 30], axis=1)])
        out.append(Detections(xyxy, rng.random(len(xyxy)), rng.integers(0, 5, len(xyxy))))
    return out


@pytest.mark.parametrize(("max_age", "min_hits", "iou"), [(1, 3, 0.3), (3, 1, 0.3), (5, 0, 0.1), (0, 3, 0.5)])
def test_batched_filter_matches_filterpy(rng: np.random.Generator, max_age: int, min_hits: int, iou: float) -> None:
    fast = SortTracker(max_age=max_age, min_hits=min_hits, iou_threshold=iou)
    ref = FilterpySortTracker(max_age=max_age, min_hits=min_hits, iou_threshold=iou)
    reported = 0
    for dets in random_scene(rng, 40, 120):
        a, b = fast.update(dets), ref.update(dets)
        assert a.track_id is not None and b.track_id is not None
        oa, ob = np.argsort(a.track_id), np.argsort(b.track_id)
        np.testing.assert_array_equal(a.track_id[oa], b.track_id[ob])
        np.testing.assert_allclose(a.xyxy[oa], b.xyxy[ob], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(a.class_id[oa], b.class_id[ob])
        reported += len(a)
    assert reported > 1000


def test_box_z_round_trip(rng: np.random.Generator) -> None:
    xy = rng.uniform(0, 500, (20, 2))
    xyxy = np.concatenate([xy, xy + rng.uniform(1, 100, (20, 2))], axis=1)
    np.testing.assert_allclose(x_to_xyxy(xyxy_to_z(xyxy)), xyxy, atol=1e-9)


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10.0]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30.0], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou_matrix(a, b)[0], [50 / 150, 0.0, 1.0])


def test_associate_rejects_low_iou() -> None:
    dets = np.array([[0, 0, 10, 10], [100, 100, 110, 110.0]])
    trks = np.array([[1, 1, 11, 11], [300, 300, 310, 310.0]])
    matches, free_d, free_t = associate(dets, trks, 0.3)
    assert matches.tolist() == [[0, 0]] and free_d.tolist() == [1] and free_t.tolist() == [1]


def moving_box(frame: int) -> list[float]:
    return [10.0 + 5 * frame, 20.0, 50.0 + 5 * frame, 60.0]


def test_min_hits_and_ids_start_at_one() -> None:
    tracker = SortTracker(max_age=1, min_hits=3)
    shown = []
    for f in range(8):
        out = tracker.update(make_dets([moving_box(f)], class_id=2, conf=0.7))
        shown.append(out.track_id.tolist() if out.track_id is not None else None)
    # reported in the first min_hits frames (start-up rule), then every matched frame
    assert shown == [[1]] * 8
    assert out.class_id.tolist() == [2] and out.confidence.tolist() == [0.7]
    assert out.data["det_index"].tolist() == [0]


def test_track_survives_max_age_gap_and_keeps_its_id() -> None:
    tracker = SortTracker(max_age=3, min_hits=1)
    for f in range(5):
        tracker.update(make_dets([moving_box(f)]))
    for _ in range(3):
        assert len(tracker.update(Detections.empty())) == 0
    out = tracker.update(make_dets([moving_box(8)]))
    assert out.track_id is not None and out.track_id.tolist() == [1]


def test_track_dies_after_max_age() -> None:
    tracker = SortTracker(max_age=1, min_hits=1)
    for f in range(5):
        tracker.update(make_dets([moving_box(f)]))
    tracker.update(Detections.empty())
    tracker.update(Detections.empty())
    assert tracker.live_ids.tolist() == []
    tracker.update(make_dets([moving_box(7)]))
    assert tracker.live_ids.tolist() == [2]


def test_each_tracker_owns_its_counter() -> None:
    a, b = SortTracker(min_hits=0), SortTracker(min_hits=0)
    a.update(make_dets([[0, 0, 10, 10], [50, 50, 60, 60]]))
    out = b.update(make_dets([[0, 0, 10, 10]]))
    assert out.track_id is not None and out.track_id.tolist() == [1]


def test_crossing_objects_keep_ids() -> None:
    tracker = SortTracker(max_age=1, min_hits=1)
    ids = set()
    for f in range(40):
        a = [100.0 + 10 * f, 100.0, 140.0 + 10 * f, 140.0]
        b = [500.0 - 10 * f, 160.0, 540.0 - 10 * f, 200.0]
        out = tracker.update(make_dets([a, b]))
        assert out.track_id is not None
        ids.update(out.track_id.tolist())
    assert ids == {1, 2}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_age": -1}, TrackingError),
        ({"min_hits": -2}, TrackingError),
        ({"iou_threshold": 1.5}, TrackingError),
        ({"max_age": 0, "min_hits": 0, "iou_threshold": 0.0}, None),
    ],
)
def test_parameters_are_checked(kwargs: dict[str, float], error: type[Exception] | None) -> None:
    if error is None:
        SortTracker(**kwargs)  # type: ignore[arg-type]
    else:
        with pytest.raises(error):
            SortTracker(**kwargs)  # type: ignore[arg-type]
