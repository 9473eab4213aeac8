"""Ground calibration: image px <-> ground m on the road plane.

A pixel is first undistorted to a unit ray with the lens model, then a plane homography
G (3, 3) maps the ray (a projective point) to homogeneous ground coordinates:
``g = G @ ray``, ground = g[:2] / g[2]. Rays with g[2] <= 0 do not meet the road in front
of the camera (above the horizon). Working on rays rather than on undistorted pixels keeps
fisheyes over 180 deg exact.

G is fitted from >= 4 surveyed point pairs (normalised DLT; RANSAC via cv2.findHomography
when there are more than 4), or built from the camera's pose (height, tilt, roll), optionally
rescaled so that one measured distance fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trafficprn.camera.lens import Lens, make_lens
from trafficprn.config import CameraConfig, PoseCalibration
from trafficprn.errors import CalibrationError, GeometryError
from trafficprn.geometry.homography import collinear, fit_homography
from trafficprn.geometry.polygons import as_points

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RANSAC_THRESHOLD_M = 0.5


def _rotation_to_z(v: FloatArray) -> FloatArray:
    """(3, 3) rotation taking unit vector v onto +z."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(v, z)
    s, c = np.linalg.norm(axis), float(np.dot(v, z))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.asarray(np.eye(3) + s * kx + (1 - c) * kx @ kx, dtype=np.float64)


def pose_rotation(tilt_deg: float, roll_deg: float = 0.0) -> FloatArray:
    """(3, 3) rotation camera -> ground frame (X right, Y forward, Z up) for a camera whose
    optical axis is tilted `tilt_deg` below horizontal and rolled `roll_deg` about that axis."""
    t, r = np.radians(tilt_deg), np.radians(roll_deg)
    # columns: camera x (right), y (down), z (optical axis) in the ground frame, before roll
    base = np.array([[1.0, 0.0, 0.0], [0.0, -np.sin(t), np.cos(t)], [0.0, -np.cos(t), -np.sin(t)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0.0], [np.sin(r), np.cos(r), 0.0], [0.0, 0.0, 1.0]])
    return np.asarray(base @ roll, dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """Maps image px <-> ground m for one camera.

    lens: the camera's lens model. ray_to_ground: (3, 3) G with ground ~ G @ ray.
    image_px, ground_m: (N, 2) the point pairs it was fitted or checked with (may be empty).
    inliers: (N,) the pairs RANSAC kept. residuals_m / residuals_px: (N,) per pair.
    rms_m / rms_px: reprojection RMS over the inliers, or None without point pairs.
    """

    lens: Lens
    ray_to_ground: FloatArray
    image_px: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    ground_m: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    residuals_m: FloatArray = field(default_factory=lambda: np.zeros(0))
    residuals_px: FloatArray = field(default_factory=lambda: np.zeros(0))
    method: str = "points"

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_camera(cls, cam: CameraConfig) -> Calibration:
        """The calibration of a configured camera: from its point pairs when it has >= 4,
        else from its pose (the pairs, if any, then only check it)."""
        lens = make_lens(cam.lens)
        pts = cam.calibration.points
        image_px = np.array([p.image_px for p in pts], dtype=np.float64).reshape(-1, 2)
        ground_m = np.array([p.ground_m for p in pts], dtype=np.float64).reshape(-1, 2)
        pose = cam.calibration.pose
        try:
            if len(pts) >= 4 or pose is None:
                return cls.from_points(lens, image_px, ground_m)
            return cls.from_pose(lens, pose, check_image_px=image_px, check_ground_m=ground_m)
        except CalibrationError as exc:
            raise CalibrationError(f"camera {cam.name!r}: {exc}") from None

    @classmethod
    def from_points(
        cls,
        lens: Lens,
        image_px: npt.ArrayLike,
        ground_m: npt.ArrayLike,
        *,
        ransac_threshold_m: float = RANSAC_THRESHOLD_M,
    ) -> Calibration:
        """Fit G from (N, 2) image px and (N, 2) ground m pairs, N >= 4.

        Raises CalibrationError for fewer than 4 pairs, collinear points, or image points
        outside the image circle.
        """
        px = as_points(image_px, "image_px")
        gm = as_points(ground_m, "ground_m")
        if px.shape != gm.shape:
            raise CalibrationError(f"expected as many image points as ground points, got {len(px)} and {len(gm)}")
        if len(px) < 4:
            raise CalibrationError(f"expected at least 4 surveyed point pairs, got {len(px)}")
        outside = np.nonzero(~lens.valid(px))[0]
        if len(outside):
            i = int(outside[0])
            raise CalibrationError(
                f"calibration.points[{i}].image_px {px[i].tolist()} lies outside the image circle "
                f"(or the image {list(lens.image_size)})"
            )
        if collinear(gm):
            raise CalibrationError("the ground points are collinear; survey points spread over the road")
        if collinear(px):
            raise CalibrationError("the image points are collinear; pick points spread over the road")
        rays = lens.unproject(px)
        # Normalise: rotate the mean ray onto +z so every ray has a finite x/z.
        rot = _rotation_to_z(rays.mean(axis=0) / np.linalg.norm(rays.mean(axis=0)))
        r = rays @ rot.T
        if np.any(r[:, 2] <= 1e-6):
            raise CalibrationError("the calibration points span more than a hemisphere; they cannot lie on one plane")
        plane = r[:, :2] / r[:, 2:3]
        inliers = np.ones(len(px), dtype=bool)
        if len(px) > 4:
            inliers = _ransac_inliers(plane, gm, ransac_threshold_m)
            if inliers.sum() < 4:
                raise CalibrationError(
                    f"only {int(inliers.sum())} of {len(px)} point pairs agree within {ransac_threshold_m} m; "
                    "check the surveyed points"
                )
        try:
            h = fit_homography(plane[inliers], gm[inliers])
        except GeometryError as exc:
            raise CalibrationError(f"cannot fit the ground plane: {exc}") from None
        g = h @ rot
        if np.median((rays[inliers] @ g.T)[:, 2]) < 0:
            g = -g
        return cls._checked(lens, g, px, gm, inliers, "points")

    @classmethod
    def from_pose(
        cls,
        lens: Lens,
        pose: PoseCalibration,
        *,
        check_image_px: npt.ArrayLike = (),
        check_ground_m: npt.ArrayLike = (),
    ) -> Calibration:
        """G from the camera's height and tilt (and roll): the ground origin is under the
        camera, Y points along the optical axis' horizontal direction (image up for a camera
        looking straight down). A known distance between two image points rescales the height."""
        rot = pose_rotation(pose.tilt_deg, pose.roll_deg)
        height = pose.height_m
        if pose.known_distance is not None:
            kd = pose.known_distance
            pts = np.array([kd.a_px, kd.b_px], dtype=np.float64)
            if not lens.valid(pts).all():
                raise CalibrationError("calibration.pose.known_distance: a point lies outside the image circle")
            ground = _pose_ground(lens, rot, 1.0, pts)
            span = float(np.linalg.norm(ground[1] - ground[0]))
            if not np.isfinite(span) or span <= 0:
                raise CalibrationError(
                    "calibration.pose.known_distance: the points do not both see the road below the horizon"
                )
            height = kd.distance_m / span
        flip = np.diag([height, height, -1.0])  # (h dX, h dY, -dZ) for direction d = rot @ ray
        g = flip @ rot
        px = as_points(check_image_px, "check_image_px")
        gm = as_points(check_ground_m, "check_ground_m")
        return cls._checked(lens, g, px, gm, np.ones(len(px), dtype=bool), "pose")

    @classmethod
    def _checked(
        cls, lens: Lens, g: FloatArray, px: FloatArray, gm: FloatArray, inliers: BoolArray, method: str
    ) -> Calibration:
        g = np.asarray(g / np.abs(g).max(), dtype=np.float64)
        cal = cls(lens=lens, ray_to_ground=g, image_px=px, ground_m=gm, inliers=inliers, method=method)
        if len(px):
            res_m = np.linalg.norm(cal.image_to_ground(px) - gm, axis=1)
            res_px = np.linalg.norm(cal.ground_to_image(gm) - px, axis=1)
            object.__setattr__(cal, "residuals_m", res_m)
            object.__setattr__(cal, "residuals_px", res_px)
        return cal

    # ------------------------------------------------------------ mapping
    @property
    def rms_m(self) -> float | None:
        """RMS of the ground residuals over the inlier pairs, m (None without pairs)."""
        if not self.inliers.any():
            return None
        return float(np.sqrt(np.mean(self.residuals_m[self.inliers] ** 2)))

    @property
    def rms_px(self) -> float | None:
        """RMS of the image residuals over the inlier pairs, px (None without pairs)."""
        if not self.inliers.any():
            return None
        return float(np.sqrt(np.mean(self.residuals_px[self.inliers] ** 2)))

    def rays_to_ground(self, rays: npt.ArrayLike) -> FloatArray:
        """(N, 3) camera rays -> (N, 2) ground m; nan where the ray misses the road."""
        r = np.asarray(rays, dtype=np.float64).reshape(-1, 3)
        g = r @ self.ray_to_ground.T
        w = g[:, 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = g[:, :2] / np.where(w > 1e-12, w, np.nan)
        return np.asarray(out, dtype=np.float64)

    def image_to_ground(self, px: npt.ArrayLike) -> FloatArray:
        """(N, 2) image px -> (N, 2) ground m. nan where the pixel lies outside the image
        circle or sees no road (above the horizon)."""
        p = as_points(px, "px")
        rays = self.lens.unproject(p)
        out = self.rays_to_ground(rays)
        out[~self.lens.valid(p)] = np.nan
        return out

    def ground_to_rays(self, ground_m: npt.ArrayLike) -> FloatArray:
        """(N, 2) ground m -> (N, 3) unit camera rays."""
        gm = as_points(ground_m, "ground_m")
        homog = np.hstack([gm, np.ones((len(gm), 1))])
        rays = homog @ np.linalg.inv(self.ray_to_ground).T
        return np.asarray(rays / np.linalg.norm(rays, axis=1, keepdims=True), dtype=np.float64)

    def ground_to_image(self, ground_m: npt.ArrayLike) -> FloatArray:
        """(N, 2) ground m -> (N, 2) image px; nan where the lens cannot see the point."""
        rays = self.ground_to_rays(ground_m)
        px = self.lens.project(rays)
        px[~self.lens.in_fov(rays)] = np.nan
        return px

    def metres_per_px(self, px: npt.ArrayLike) -> FloatArray:
        """(N,) local ground scale at image px: metres per pixel (geometric mean of both axes)."""
        dx, dy = self._ground_steps(px)
        area = np.abs(dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0])
        return np.asarray(np.sqrt(area), dtype=np.float64)

    def finest_metres_per_px(self, px: npt.ArrayLike) -> FloatArray:
        """(N,) metres of ground one pixel step spans at image px along the finer of the two
        image axes: the most ground detail the view resolves there (on an oblique view the
        across-the-view axis; the along-the-view one is foreshortened)."""
        dx, dy = self._ground_steps(px)
        return np.asarray(np.minimum(np.linalg.norm(dx, axis=1), np.linalg.norm(dy, axis=1)), dtype=np.float64)

    def ground_normal(self) -> FloatArray:
        """(3,) unit normal of the ground plane in the camera's ray frame, pointing from the
        ground towards the camera (the plane's points are l * inv(G) @ (x, y, 1))."""
        inv = np.linalg.inv(self.ray_to_ground)
        normal = np.cross(inv[:, 0], inv[:, 1])
        normal /= np.linalg.norm(normal)
        if normal @ inv[:, 2] > 0:  # the camera (the origin) lies on the side opposite the plane's points
            normal = -normal
        return np.asarray(normal, dtype=np.float64)

    def view_sine(self, px: npt.ArrayLike) -> FloatArray:
        """(N,) sine of the angle between each pixel's ray and the vertical: 0 looking
        straight down, 1 looking along the ground. An upright face (a plate) shows its height
        in proportion to it; nan outside the image circle."""
        p = as_points(px, "px")
        rays = self.lens.unproject(p)
        rays = rays / np.linalg.norm(rays, axis=1, keepdims=True)
        cos = np.clip(np.abs(rays @ self.ground_normal()), 0.0, 1.0)
        out = np.sqrt(1.0 - cos**2)
        out[~self.lens.valid(p)] = np.nan
        return np.asarray(out, dtype=np.float64)

    def _ground_steps(self, px: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """(N, 2) ground m moved by one px step along image x and along image y at px."""
        p = as_points(px, "px")
        base = self.image_to_ground(p)
        return self.image_to_ground(p + [1.0, 0.0]) - base, self.image_to_ground(p + [0.0, 1.0]) - base


def _pose_ground(lens: Lens, rot: FloatArray, height_m: float, px: FloatArray) -> FloatArray:
    d = lens.unproject(px) @ rot.T
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d[:, 2] < -1e-9, height_m / -d[:, 2], np.nan)
    return np.asarray(d[:, :2] * t[:, None], dtype=np.float64)


def _ransac_inliers(plane: FloatArray, ground_m: FloatArray, threshold_m: float) -> BoolArray:
    import cv2  # local: heavy import

    _, mask = cv2.findHomography(
        plane.astype(np.float64), ground_m.astype(np.float64), cv2.RANSAC, threshold_m, maxIters=2000, confidence=0.999
    )
    if mask is None:
        return np.zeros(len(plane), dtype=bool)
    return np.asarray(mask.reshape(-1).astype(bool))
