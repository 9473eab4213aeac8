"""Offline smoothing of a finished track's ground trajectory: a constant-velocity Kalman
filter run forwards, then the Rauch-Tung-Striebel (RTS) backward pass, so every position
and velocity uses the whole track, before and after it.

Each observation carries its own ground covariance: a box anchor a few pixels off moves
a vehicle far out on a fisheye's rim by metres along the radius and by little across it,
so the measurement noise is the image noise (px) mapped through the local ground
Jacobian of the calibration (`ground_covariance_m2`). Near the centre the smoother trusts
each position; on the rim it leans on the motion model. Observations whose innovation is
implausible (an identity switch, a bad box) have their covariance inflated (a robust
Kalman update) instead of pulling the trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trafficprn.analytics.speed import MPS_TO_KMH
from trafficprn.analytics.zones import GroundMapper
from trafficprn.errors import CalibrationError, InputError
from trafficprn.types import FloatArray


@dataclass
class GroundPath:
    """A track's raw ground positions: times ts (s), positions (m) and their 2x2
    covariance (m^2: var_x, cov_xy, var_y). Bounded: past `max_samples` every other
    observation is dropped (the smoother copes with the wider spacing)."""

    t: list[float]
    x_m: list[float]
    y_m: list[float]
    cov_m2: list[tuple[float, float, float]]

    @classmethod
    def empty(cls) -> GroundPath:
        return cls([], [], [], [])

    def add(self, t: float, xy_m: FloatArray, cov_m2: FloatArray, max_samples: int) -> None:
        """Append one observation; cov_m2 is its (2, 2) ground covariance."""
        self.t.append(t)
        self.x_m.append(float(xy_m[0]))
        self.y_m.append(float(xy_m[1]))
        self.cov_m2.append((float(cov_m2[0, 0]), float(cov_m2[0, 1]), float(cov_m2[1, 1])))
        if len(self.t) > max_samples:
            self.t, self.x_m, self.y_m, self.cov_m2 = self.t[::2], self.x_m[::2], self.y_m[::2], self.cov_m2[::2]

    def joined(self, later: GroundPath) -> GroundPath:
        """This path followed by a later fragment's."""
        return GroundPath(self.t + later.t, self.x_m + later.x_m, self.y_m + later.y_m, self.cov_m2 + later.cov_m2)


def anchor_covariance_m2(ground: GroundMapper, anchor_px: FloatArray, xyxy: FloatArray,
                         sd_px: float, sd_share: float) -> FloatArray:
    """(N, 2, 2) ground covariance (m^2) of box anchors (N, 2) px: an image error of sd
    sd_px + sd_share * box size (sqrt of the area of xyxy (N, 4) px) on both axes, mapped
    to the ground as J diag(sd^2) J^T, J the ground step per image px there (finite
    differences of `ground.image_to_ground`). nan where the ground is not defined."""
    size_px = np.sqrt(np.clip((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 0.0, None))
    sd = sd_px + sd_share * size_px
    try:
        return ground_covariance_m2(ground, anchor_px, sd)
    except CalibrationError:
        return np.full((len(anchor_px), 2, 2), np.nan)


def ground_covariance_m2(ground: GroundMapper, anchor_px: FloatArray, sd_px: FloatArray) -> FloatArray:
    """(N, 2, 2) ground covariance (m^2) of image points (N, 2) px whose error has sd
    sd_px (N,) px on both axes: J diag(sd^2) J^T with J the ground step per image px
    (finite differences of `ground.image_to_ground`). Non-finite where the ground is."""
    base = ground.image_to_ground(anchor_px)
    jac = np.stack([ground.image_to_ground(anchor_px + [1.0, 0.0]) - base,
                    ground.image_to_ground(anchor_px + [0.0, 1.0]) - base], axis=2)  # (N, 2 ground, 2 px)
    return np.asarray(np.einsum("nij,nkj->nik", jac, jac) * (sd_px**2)[:, None, None], dtype=np.float64)


@dataclass(frozen=True)
class SmootherParams:
    """accel_mps2: sd of the (white-noise) acceleration the motion model allows, m/s^2;
    speed_prior_mps: sd of the unknown initial velocity; gate: squared Mahalanobis
    innovation above which an observation's covariance is inflated in proportion."""

    accel_mps2: float = 1.5
    speed_prior_mps: float = 15.0
    gate: float = 16.0


@dataclass(frozen=True)
class SmoothedPath:
    """Smoothed positions xy_m (K, 2) m and velocities v_mps (K, 2) m/s at times t (K,) s."""

    t: FloatArray
    xy_m: FloatArray
    v_mps: FloatArray

    @property
    def speed_kmh(self) -> FloatArray:
        """(K,) speed, km/h."""
        return np.asarray(np.hypot(self.v_mps[:, 0], self.v_mps[:, 1]) * MPS_TO_KMH, dtype=np.float64)


def _transition(dt: float, q: float) -> tuple[FloatArray, FloatArray]:
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    qm = np.zeros((4, 4))
    a, b, c = q * dt**3 / 3.0, q * dt**2 / 2.0, q * dt
    qm[0, 0] = qm[1, 1] = a
    qm[2, 2] = qm[3, 3] = c
    qm[0, 2] = qm[2, 0] = qm[1, 3] = qm[3, 1] = b
    return f, qm


def smooth_path(path: GroundPath, params: SmootherParams | None = None) -> SmoothedPath:
    """RTS smoothing of a path (constant-velocity model, per-observation covariance).
    Observations are taken in time order; equal times are merged by the filter."""
    p = params or SmootherParams()
    k = len(path.t)
    if k == 0:
        raise InputError("smooth_path: the path has no observations, expected at least 1")
    order = np.argsort(np.asarray(path.t), kind="stable")
    t = np.asarray(path.t, dtype=np.float64)[order]
    z = np.column_stack([path.x_m, path.y_m])[order]
    c = np.asarray(path.cov_m2, dtype=np.float64).reshape(-1, 3)[order]
    r = np.stack([np.stack([c[:, 0], c[:, 1]], 1), np.stack([c[:, 1], c[:, 2]], 1)], 1)
    q = p.accel_mps2**2
    xs_f, xs_p = np.zeros((k, 4)), np.zeros((k, 4))  # filtered and predicted states
    ps_f, ps_p, fs = np.zeros((k, 4, 4)), np.zeros((k, 4, 4)), np.zeros((k, 4, 4))  # their covariances, transitions
    x = np.array([z[0, 0], z[0, 1], 0.0, 0.0])
    cov = np.zeros((4, 4))
    cov[:2, :2] = r[0]
    cov[2, 2] = cov[3, 3] = p.speed_prior_mps**2
    for i in range(k):
        if i > 0:
            f, qm = _transition(t[i] - t[i - 1], q)
            x, cov = f @ x, f @ cov @ f.T + qm
            fs[i] = f
        xs_p[i], ps_p[i] = x, cov
        if i > 0:
            innov = z[i] - x[:2]
            s = cov[:2, :2] + r[i]
            d2 = float(innov @ np.linalg.solve(s, innov))
            if d2 > p.gate:  # implausible: trust it less, in proportion
                s = cov[:2, :2] + r[i] * (d2 / p.gate)
            gain = cov[:, :2] @ np.linalg.inv(s)
            x = x + gain @ innov
            cov = cov - gain @ cov[:2, :]
        xs_f[i], ps_f[i] = x, cov
    xs = xs_f.copy()
    for i in range(k - 2, -1, -1):
        g = ps_f[i] @ fs[i + 1].T @ np.linalg.pinv(ps_p[i + 1])
        xs[i] = xs_f[i] + g @ (xs[i + 1] - xs_p[i + 1])
    return SmoothedPath(t, xs[:, :2].copy(), xs[:, 2:].copy())
