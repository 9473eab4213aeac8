"""Approach speed, through speed, stopped time and stops of each passage, against the
trajectories that made the boxes (free flow and stop-and-go behind a signal)."""

from __future__ import annotations

import numpy as np
import pytest
from junction_factory import ROAD_END_M, STOP_M, ZONE_END_M, Vehicle, constant_speed, make_site, route, signal_queue
from junction_replay import T0, run_vehicles

from trafficprn.analytics.speed import (
    APPROACH_M,
    PassageSpeeds,
    SpeedTrace,
    count_stops,
    passage_speeds,
    sample_durations_s,
)


def true_speeds(v: Vehicle) -> PassageSpeeds:
    """The definitions applied to the exact trajectory (arc length s at each time)."""
    total = float(np.hypot(*np.diff(route(v.entry, v.exit), axis=0).T).sum())
    kmh = np.gradient(v.s_m, v.ts) * 3.6
    s_in, s_pass, s_exit = ROAD_END_M - ZONE_END_M, ROAD_END_M - STOP_M, total - (ROAD_END_M - STOP_M)
    window = (v.s_m >= s_in - APPROACH_M) & (v.s_m <= s_in) & (kmh > 5.0)
    t_pass = float(np.interp(s_pass, v.s_m, v.ts))
    t_exit = float(np.interp(s_exit, v.s_m, v.ts))
    dt = float(np.median(np.diff(v.ts)))
    return PassageSpeeds(float(np.median(kmh[window])), (s_exit - s_pass) / (t_exit - t_pass) * 3.6,
                         float((kmh < 5.0).sum() * dt), count_stops(kmh))


def test_free_flow_speeds_equal_the_drive() -> None:
    fps = 15.0
    vehicles = [constant_speed(1, "S", "N", 36.0, T0, fps), constant_speed(2, "W", "S", 25.0, T0 + 3, fps),
                constant_speed(3, "E", "S", 30.0, T0 + 6, fps)]
    run = run_vehicles(make_site(), vehicles, fps=fps, t_end=float(vehicles[-1].ts[-1]) + 2,
                       rng=np.random.default_rng(1), noise_px=0.5)
    got = sorted(run.passages, key=lambda p: p.first_seen_ts)
    assert len(got) == 3
    for v, p, kmh in zip(vehicles, got, (36.0, 25.0, 30.0), strict=True):
        assert p.approach_speed_kmh == pytest.approx(kmh, abs=1.0), v.vid
        assert p.through_speed_kmh == pytest.approx(kmh, abs=1.5), v.vid  # turns included: path, not chord
        assert p.stopped_s == 0.0 and p.stops == 0


@pytest.fixture(scope="module")
def stop_and_go():
    fps = 10.0
    vehicles = signal_queue("S", ["N", "E", "W"], [2.5 * i for i in range(14)], fps=fps, cycle_s=30.0,
                            green_s=10.0, horizon_s=150.0, t0=T0)
    run = run_vehicles(make_site(), vehicles, fps=fps, t_end=T0 + 150.0, rng=np.random.default_rng(3), noise_px=1.0)
    return vehicles, run


def test_stopped_vehicles_keep_their_moving_speeds(stop_and_go) -> None:
    """A vehicle that waited at red: the approach speed is its speed while moving towards
    the entry zone (not the 0 km/h a whole-track median gives), the stops and the time
    stood are counted."""
    vehicles, run = stop_and_go
    by_id = {p.first_seen_ts: p for p in run.passages}
    stopped = 0
    approach_err, through_err = [], []
    rows = []
    for v in vehicles:
        if not len(v.ts) or v.s_m[-1] < np.hypot(*np.diff(route(v.entry, v.exit), axis=0).T).sum() - 1:
            continue
        p = min(by_id.values(), key=lambda q: abs(q.first_seen_ts - v.ts[0]))
        assert abs(p.first_seen_ts - v.ts[0]) < 0.5
        t = true_speeds(v)
        rows.append((v.vid, t, p))
        assert p.approach_speed_kmh is not None and p.through_speed_kmh is not None
        approach_err.append(abs(p.approach_speed_kmh - t.approach_kmh))
        through_err.append(abs(p.through_speed_kmh - t.through_kmh))
        assert p.stops == t.stops, (v.vid, p.stops, t.stops)
        assert p.stopped_s == pytest.approx(t.stopped_s, abs=1.5)
        stopped += t.stops > 0
    assert stopped >= 5 and len(rows) >= 10  # the scene really makes vehicles wait
    assert np.mean(approach_err) <= 3.0 and np.mean(through_err) <= 3.0
    assert max(approach_err) <= 4.0 and max(through_err) <= 4.0  # braking into the queue smooths most
    waited = [p for _, t, p in rows if t.stops]
    assert all(p.approach_speed_kmh > 10.0 for p in waited)


def test_count_stops_has_hysteresis() -> None:
    assert count_stops(np.array([30, 4, 6, 4, 6, 20, 3, 0, 12.0])) == 2  # creeping at 4-6 km/h is one stop
    assert count_stops(np.array([0, 0, 11, 30.0])) == 1
    assert count_stops(np.array([], dtype=float)) == 0


def test_sample_durations_cap_gaps() -> None:
    np.testing.assert_allclose(sample_durations_s(np.array([0.0, 0.5, 1.0, 5.0]), 1.0), [0.75, 0.5, 0.75, 1.0])


def test_speeds_are_none_where_not_seen() -> None:
    trace = SpeedTrace.empty()
    for k in range(10):
        trace.add(10.0 + 0.5 * k, np.array([5.0 * k, 0.0]), 36.0, 2048)
    s = passage_speeds(trace, entry_ts=9.0, passage_ts=None, exit_ts=None)  # first seen inside its entry zone
    assert s.approach_kmh is None and s.through_kmh is None and s.stops == 0
    s = passage_speeds(trace, entry_ts=13.0, passage_ts=13.5, exit_ts=14.5)
    assert s.approach_kmh == pytest.approx(36.0) and s.through_kmh == pytest.approx(36.0)
