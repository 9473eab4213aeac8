"""Speed fit, queue rule, class vote and TMC tables on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
from junction_factory import STOP_M, Vehicle, lane_point, make_site
from junction_replay import T0, run_vehicles

from trafficprn.analytics.queue import queue_from_stop_line
from trafficprn.analytics.speed import fit_velocity_mps, summarise_speeds
from trafficprn.analytics.tmc import tmc_counts, tmc_table
from trafficprn.analytics.vote import ClassVote
from trafficprn.events import VehiclePassage
from trafficprn.types import VehicleClass


def test_theil_sen_velocity_is_exact_and_ignores_outliers(rng: np.random.Generator) -> None:
    ts = np.sort(rng.uniform(0, 1.5, 20))  # irregular capture times: never frame counts
    xy = np.stack([3.0 + 12.0 * ts, -1.0 - 5.0 * ts], axis=1)
    np.testing.assert_allclose(fit_velocity_mps(ts, xy), [12.0, -5.0], atol=1e-9)
    xy[[3, 11]] += [[8.0, -6.0], [-9.0, 4.0]]  # two wild anchors
    np.testing.assert_allclose(fit_velocity_mps(ts, xy), [12.0, -5.0], atol=0.5)
    assert fit_velocity_mps(ts[:1], xy[:1]) is None
    assert fit_velocity_mps(np.zeros(3), xy[:3]) is None


@pytest.mark.parametrize(
    ("samples", "median", "top", "flagged"),
    [([30.0, 31.0, 29.0], 30.0, 31.0, False), ([200.0, 210.0], 205.0, 210.0, True), ([50.0], None, None, False)],
)
def test_speed_summary(samples: list[float], median: float | None, top: float | None, flagged: bool) -> None:
    s = summarise_speeds(np.array(samples), max_plausible_kmh=160.0)
    assert (s.median_kmh, s.max_kmh, s.flagged) == (median, top, flagged)


@pytest.mark.parametrize(
    ("distance", "length", "stopped", "expected"),
    [
        ([2.75, 9.25, 15.75], [4.5] * 3, [True] * 3, (18.0, 3)),
        ([15.75, 2.75, 9.25], [4.5] * 3, [True] * 3, (18.0, 3)),  # order does not matter
        ([2.75, 9.25, 30.0], [4.5] * 3, [True] * 3, (11.5, 2)),  # a 18.5 m gap ends the queue
        ([2.75, 9.25, 15.75], [4.5] * 3, [True, False, True], (5.0, 1)),  # a moving car ends it
        ([12.0, 18.0], [4.5] * 2, [True] * 2, (0.0, 0)),  # first one too far from the line
        ([], [], [], (0.0, 0)),
    ],
)
def test_queue_rule(distance: list[float], length: list[float], stopped: list[bool], expected: tuple[float, int]) -> None:
    got = queue_from_stop_line(np.array(distance), np.array(length), np.array(stopped, dtype=bool), 8.0)
    assert got[0] == pytest.approx(expected[0]) and got[1] == expected[1]


def test_static_queue_length_through_the_pipeline() -> None:
    """Five cars stand still on the W approach, middles 3 m, 9.5 m, ... from the stop line
    (2 m bumper gaps); a sixth stands 14 m behind the fifth, beyond max_gap_m."""
    fps = 10.0
    middles = [3.0, 9.5, 16.0, 22.5, 29.0, 29.0 + 18.5]
    vehicles = []
    for k, d in enumerate(middles):
        v = Vehicle(k + 1, "W", "E")
        v.ts = T0 + np.arange(int(10 * fps)) / fps
        v.s_m = np.full(len(v.ts), 60.0 - STOP_M - d)  # arc length from the far end of the leg
        vehicles.append(v)
    run = run_vehicles(make_site(), vehicles, fps=fps, t_end=T0 + 10.0)
    west = [q for q in run.queues if q.lane == "W-1"]
    settled = [q for q in west if q.ts >= T0 + 4.0]  # after min_hits, a speed window and dwell_s
    assert settled and all(q.vehicles == 5 and q.length_m == pytest.approx(29.0 + 2.25, abs=0.6) for q in settled)
    assert all(q.length_m == 0.0 for q in run.queues if q.lane != "W-1")
    assert np.diff([q.ts for q in west]).min() >= 0.99  # sampled every second
    assert lane_point("W", True, 1.0)[0] < 0


def test_class_vote_is_a_confidence_weighted_majority() -> None:
    vote = ClassVote()
    for cls, conf in [(VehicleClass.TRUCK, 0.9), (VehicleClass.BUS, 0.6), (VehicleClass.TRUCK, 0.5), (VehicleClass.BUS, 0.5)]:
        vote.add(int(cls), conf)
    best, confidence = vote.result()
    assert best == VehicleClass.TRUCK and confidence == pytest.approx(1.4 / 2.5)
    assert ClassVote().result() == (VehicleClass.CAR, 0.0)


def _passage(ts: float, entry: str | None, exit_leg: str | None, movement: str | None, cls: str = "car") -> VehiclePassage:
    return VehiclePassage("cam", 1, ts, ts - 5, ts + 5, cls, 0.9, entry, exit_leg, movement)  # type: ignore[arg-type]


def test_tmc_bins_by_local_interval_and_skips_incomplete() -> None:
    base = 1_767_225_600.0  # 2026-01-01 00:00 UTC = 01:00 Europe/Berlin
    passages = [
        _passage(base + 60, "N", "S", "T"),
        _passage(base + 14 * 60, "N", "S", "T", "bus"),
        _passage(base + 15 * 60, "N", "E", "L"),
        _passage(base + 16 * 60, "N", None, None),
    ]
    counts = tmc_counts(passages, "Europe/Berlin", 15)
    assert counts == {
        (base, "N", "S", "T", "car"): 1,
        (base, "N", "S", "T", "bus"): 1,
        (base + 900, "N", "E", "L", "car"): 1,
    }
    assert tmc_table(counts) == {(base, "N", "S"): {"T": 2}, (base + 900, "N", "E"): {"L": 1}}
    assert tmc_table(counts, by_class=True)[(base, "N", "S")] == {"bus": 1, "car": 1}
