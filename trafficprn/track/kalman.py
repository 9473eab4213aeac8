"""A constant-velocity Kalman box filter, batched over tracks (Bewley et al. 2016, SORT).

State per track: x = (u, v, s, r, u', v', s') where (u, v) is the box centre in image px,
s its area in px^2 and r its aspect ratio w / h (r is held constant). Measurements are
z = (u, v, s, r). The matrices and their initial values follow SORT, and the maths
follows filterpy's ``KalmanFilter`` (predict: x = F x, P = F P F' + Q; update with the
Joseph form P = (I - K H) P (I - K H)' + K R K'), so that a filterpy reference gives the
same numbers. Here every operation runs on all tracks at once: x is (T, 7), P is (T, 7, 7).
"""

from __future__ import annotations

import numpy as np

from trafficprn.errors import GeometryError
from trafficprn.types import FloatArray

DIM_X = 7
DIM_Z = 4


def transition_matrix() -> FloatArray:
    """F (7, 7): position += velocity for u, v and s."""
    f = np.eye(DIM_X)
    f[0, 4] = f[1, 5] = f[2, 6] = 1.0
    return f


def measurement_matrix() -> FloatArray:
    """H (4, 7): we observe (u, v, s, r)."""
    return np.eye(DIM_Z, DIM_X)


def measurement_noise() -> FloatArray:
    """R (4, 4): scale and ratio are noisier than the centre."""
    r = np.eye(DIM_Z)
    r[2:, 2:] *= 10.0
    return r


def process_noise() -> FloatArray:
    """Q (7, 7): small noise on the velocities, smallest on the area's rate."""
    q = np.eye(DIM_X)
    q[-1, -1] *= 0.01
    q[4:, 4:] *= 0.01
    return q


def initial_covariance() -> FloatArray:
    """P0 (7, 7): the unobserved velocities start very uncertain."""
    p = np.eye(DIM_X)
    p[4:, 4:] *= 1000.0
    p *= 10.0
    return p


def xyxy_to_z(xyxy: FloatArray) -> FloatArray:
    """(N, 4) boxes x1, y1, x2, y2 in image px -> (N, 4) z = (u, v, s, r)."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise GeometryError(f"boxes must have shape (N, 4), got shape {xyxy.shape}")
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = w / h
    return np.stack([xyxy[:, 0] + w / 2.0, xyxy[:, 1] + h / 2.0, w * h, r], axis=1)


def x_to_xyxy(x: FloatArray) -> FloatArray:
    """(N, >=4) states (u, v, s, r, ...) -> (N, 4) boxes in image px (NaN where s * r < 0)."""
    with np.errstate(invalid="ignore"):
        w = np.sqrt(x[:, 2] * x[:, 3])
        h = x[:, 2] / w
    return np.stack([x[:, 0] - w / 2.0, x[:, 1] - h / 2.0, x[:, 0] + w / 2.0, x[:, 1] + h / 2.0], axis=1)


class BatchedBoxFilter:
    """Kalman states of T tracks as arrays; rows are tracks, in the caller's order.

    x: (T, 7) states; P: (T, 7, 7) covariances. `add`, `keep`, `predict` and `update`
    change the arrays in place (the tracker owns this object).
    """

    def __init__(self) -> None:
        self.F = transition_matrix()
        self.H = measurement_matrix()
        self.R = measurement_noise()
        self.Q = process_noise()
        self.P0 = initial_covariance()
        self.x: FloatArray = np.zeros((0, DIM_X))
        self.P: FloatArray = np.zeros((0, DIM_X, DIM_X))

    def __len__(self) -> int:
        return len(self.x)

    def add(self, z: FloatArray) -> None:
        """Start filters at measurements z (N, 4), with zero velocity."""
        n = len(z)
        x = np.zeros((n, DIM_X))
        x[:, :DIM_Z] = z
        self.x = np.concatenate([self.x, x])
        self.P = np.concatenate([self.P, np.broadcast_to(self.P0, (n, DIM_X, DIM_X))])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where `mask` (T,) is False."""
        self.x = self.x[mask]
        self.P = self.P[mask]

    def predict(self) -> None:
        """One time step for every track. An area that would turn negative stops shrinking."""
        if not len(self.x):
            return
        shrink = self.x[:, 6] + self.x[:, 2] <= 0
        self.x[shrink, 6] = 0.0
        # F only adds velocities to positions: x' = F x without a matmul.
        self.x[:, :3] += self.x[:, 4:7]
        self.P = self.F @ self.P @ self.F.T + self.Q

    def update(self, rows: np.ndarray, z: FloatArray) -> None:
        """Correct the tracks `rows` (M,) with measurements z (M, 4)."""
        if not len(rows):
            return
        x = self.x[rows]
        p = self.P[rows]
        y = z - x[:, :DIM_Z]
        pht = p[:, :, :DIM_Z]  # P H' with H = [I 0]
        s = pht[:, :DIM_Z, :] + self.R  # H P H' + R
        k = pht @ np.linalg.inv(s)  # (M, 7, 4)
        x = x + np.einsum("mij,mj->mi", k, y)
        i_kh = np.broadcast_to(np.eye(DIM_X), p.shape).copy()
        i_kh[:, :, :DIM_Z] -= k
        p = i_kh @ p @ i_kh.transpose(0, 2, 1) + k @ self.R @ k.transpose(0, 2, 1)
        self.x[rows] = x
        self.P[rows] = p
