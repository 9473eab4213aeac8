"""The offline trajectory smoother (analytics.smooth): noisy ground positions of a
constant-speed drive and of a stop-and-go behind a signal, against the exact motion."""

from __future__ import annotations

import numpy as np
import pytest

from trafficprn.analytics.smooth import GroundPath, anchor_covariance_m2, ground_covariance_m2, smooth_path
from trafficprn.analytics.speed import MPS_TO_KMH, SpeedTrace, count_stops, fit_velocity_mps, passage_speeds
from trafficprn.errors import InputError

FPS = 10.0


def noisy_path(ts: np.ndarray, s_m: np.ndarray, sd_m: float, seed: int) -> GroundPath:
    """A drive along x (arc length s_m at ts) seen with isotropic ground noise sd_m."""
    rng = np.random.default_rng(seed)
    path = GroundPath.empty()
    cov = np.eye(2) * sd_m**2
    for t, s in zip(ts, s_m, strict=True):
        path.add(float(t), np.array([s, 0.0]) + rng.normal(0.0, sd_m, 2), cov, max_samples=10_000)
    return path


def windowed_kmh(path: GroundPath, window_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The trace's estimate (Theil-Sen over the last window_s), at each window's middle."""
    t, xy = np.array(path.t), np.column_stack([path.x_m, path.y_m])
    mids, kmh = [], []
    for k in range(int(window_s * FPS), len(t)):
        sel = (t > t[k] - window_s - 1e-9) & (t <= t[k])
        v = fit_velocity_mps(t[sel], xy[sel])
        assert v is not None
        mids.append((t[sel][0] + t[sel][-1]) / 2)
        kmh.append(float(np.hypot(*v)) * MPS_TO_KMH)
    return np.array(mids), np.array(kmh)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_constant_speed_error_is_well_below_the_windowed_fits(seed: int) -> None:
    ts = np.arange(0.0, 10.0, 1 / FPS)
    true_kmh = 45.0
    path = noisy_path(ts, ts * true_kmh / MPS_TO_KMH, sd_m=0.8, seed=seed)  # rim-like scatter
    smoothed = smooth_path(path)
    _, raw = windowed_kmh(path)
    raw_err = float(np.mean(np.abs(raw - true_kmh)))
    smooth_err = float(np.mean(np.abs(smoothed.speed_kmh - true_kmh)))
    assert raw_err > 1.5  # the scatter the trace suffers on the rim
    assert smooth_err < 0.6 * raw_err


def stop_and_go(ts: np.ndarray) -> np.ndarray:
    """Arc length (m): 36 km/h, brake at 2.5 m/s^2 to a stand at 8 s, wait, pull away at 2 m/s^2."""
    v0, brake, go, t_stop, t_go = 10.0, 2.5, 2.0, 8.0, 14.0
    t_brake = t_stop - v0 / brake
    s = np.where(ts < t_brake, v0 * ts, 0.0)
    braking = (ts >= t_brake) & (ts < t_stop)
    s = np.where(braking, v0 * t_brake + v0 * (ts - t_brake) - brake * (ts - t_brake) ** 2 / 2, s)
    s_stop = v0 * t_brake + v0**2 / (2 * brake)
    s = np.where((ts >= t_stop) & (ts < t_go), s_stop, s)
    return np.where(ts >= t_go, s_stop + go * (ts - t_go) ** 2 / 2, s)


def test_stop_and_go_keeps_its_stop() -> None:
    ts = np.arange(0.0, 20.0, 1 / FPS)
    smoothed = smooth_path(noisy_path(ts, stop_and_go(ts), sd_m=0.3, seed=4))
    kmh = smoothed.speed_kmh
    standing = (ts > 8.5) & (ts < 13.5)
    assert np.all(kmh[standing] < 5.0)
    assert np.all(kmh[ts < 3.0] > 30.0) and np.all(kmh[ts > 18.5] > 25.0)
    assert count_stops(kmh) == 1


def test_an_outlier_does_not_drag_the_speed() -> None:
    ts = np.arange(0.0, 6.0, 1 / FPS)
    path = noisy_path(ts, ts * 10.0, sd_m=0.2, seed=5)
    path.x_m[30] += 15.0  # one bad box (an identity switch for a frame)
    kmh = smooth_path(path).speed_kmh
    assert np.max(np.abs(kmh - 36.0)) < 6.0


def test_ground_covariance_follows_the_local_mapping() -> None:
    """A linear image->ground map A: the covariance is A diag(sd^2) A^T (anisotropic, as on a fisheye rim)."""
    a = np.array([[0.05, 0.0], [0.02, 0.4]])

    class Linear:
        def image_to_ground(self, px: np.ndarray) -> np.ndarray:
            return np.asarray(px, dtype=np.float64) @ a.T

    px = np.array([[100.0, 200.0], [640.0, 30.0]])
    sd = np.array([2.0, 3.0])
    got = ground_covariance_m2(Linear(), px, sd)
    for k in range(2):
        np.testing.assert_allclose(got[k], a @ a.T * sd[k] ** 2, rtol=1e-9)
    boxes = np.array([[90.0, 190.0, 110.0, 210.0], [630.0, 20.0, 650.0, 40.0]])  # 20 px boxes
    np.testing.assert_allclose(anchor_covariance_m2(Linear(), px, boxes, 1.0, 0.05), ground_covariance_m2(
        Linear(), px, np.array([2.0, 2.0])), rtol=1e-9)


def test_path_is_bounded_and_joins() -> None:
    path = GroundPath.empty()
    for k in range(9):
        path.add(k * 0.1, np.array([k, 0.0]), np.eye(2), max_samples=8)
    assert len(path.t) <= 8 and path.t[0] == 0.0
    later = GroundPath([2.0], [5.0], [0.0], [(1.0, 0.0, 1.0)])
    assert path.joined(later).t[-1] == 2.0


def test_empty_path_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no observations"):
        smooth_path(GroundPath.empty())


def test_motion_trace_gives_through_speed_stopped_time_and_stops() -> None:
    """passage_speeds takes the through speed, stopped time and stops from `motion` when
    given, the approach speed from the trace."""
    t = np.arange(0.0, 10.0, 0.5)
    trace = SpeedTrace(t.tolist(), (t * 10.0).tolist(), np.zeros_like(t).tolist(), [36.0] * len(t))
    tm = np.arange(0.0, 10.0, 0.1)
    s_m = np.where(tm < 5.0, tm * 5.0, 25.0)  # 18 km/h, then standing from 5 s
    kmh = np.where(tm < 5.0, 18.0, 0.0)
    motion = SpeedTrace(tm.tolist(), s_m.tolist(), np.zeros_like(tm).tolist(), kmh.tolist())
    plain = passage_speeds(trace, entry_ts=2.0, passage_ts=3.0, exit_ts=4.0)
    with_motion = passage_speeds(trace, entry_ts=2.0, passage_ts=3.0, exit_ts=4.0, motion=motion)
    assert plain.through_kmh == pytest.approx(36.0) and (plain.stopped_s, plain.stops) == (0.0, 0)
    assert with_motion.through_kmh == pytest.approx(18.0)
    assert with_motion.stopped_s == pytest.approx(5.0, abs=0.15) and with_motion.stops == 1
    assert with_motion.approach_kmh == plain.approach_kmh == pytest.approx(36.0)
