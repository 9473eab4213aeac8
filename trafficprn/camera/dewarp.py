"""Dewarping: perspective views and a cylindrical panorama of a (fisheye) frame.

Remap tables are built once per view and cached (as OpenCV fixed-point maps by default,
which remap faster than float maps). `view_to_image` / `image_to_view` map points exactly
through the lens model, and detections found on several overlapping views are merged in
image px with NMS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trafficprn.camera.lens import Lens, make_lens
from trafficprn.camera.views import CylindricalView, PerspectiveView, VirtualView
from trafficprn.config import CameraConfig, ViewConfig
from trafficprn.errors import ConfigError, GeometryError
from trafficprn.geometry.boxes import as_boxes
from trafficprn.geometry.nms import nms
from trafficprn.types import Detections

FloatArray = npt.NDArray[np.float64]

PANORAMA = "panorama"
_BOX_EDGE_SAMPLES = 9  # points per box edge when mapping boxes between frames


@dataclass(frozen=True)
class RemapTable:
    """Remap maps for one view: either (int16 (h, w, 2), uint16 (h, w)) fixed-point maps or
    two float32 (h, w) maps. `valid` (h, w) marks view pixels that see into the image circle."""

    map1: np.ndarray
    map2: np.ndarray
    valid: npt.NDArray[np.bool_]


def remap_table(lens: Lens, view: VirtualView, *, fixed_point: bool = True) -> RemapTable:
    """The remap table of `view` through `lens`; pixels outside the FOV map off the image."""
    import cv2

    w, h = view.size
    rays = view.grid_rays().reshape(-1, 3)
    px = lens.project(rays)
    ok = np.isfinite(px).all(axis=1) & lens.in_fov(rays) & lens.in_image(np.nan_to_num(px, nan=-1.0))
    px[~ok] = -10.0  # off the image: the border value shows
    map_x = px[:, 0].reshape(h, w).astype(np.float32)
    map_y = px[:, 1].reshape(h, w).astype(np.float32)
    valid = ok.reshape(h, w)
    if fixed_point:
        m1, m2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        return RemapTable(m1, m2, valid)
    return RemapTable(map_x, map_y, valid)


def apply_table(image_bgr: np.ndarray, table: RemapTable) -> np.ndarray:
    """Remap an image through a table (bilinear, black outside the image)."""
    import cv2

    return cv2.remap(image_bgr, table.map1, table.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def perspective_view(cfg: ViewConfig) -> PerspectiveView:
    return PerspectiveView.from_angles(cfg.name, cfg.yaw_deg, cfg.pitch_deg, cfg.roll_deg, cfg.fov_deg, cfg.size)


def check_view_in_circle(lens: Lens, view: PerspectiveView, field: str = "views") -> None:
    """Raise ConfigError (naming `field`) when the view's centre looks outside the image circle."""
    axis = view.axis.reshape(1, 3)
    px = lens.project(axis)
    if not (lens.in_fov(axis)[0] and np.isfinite(px).all() and lens.in_image(px)[0]):
        raise ConfigError(
            f"view {view.name!r} looks outside the image circle (its centre is "
            f"{np.degrees(np.arccos(np.clip(axis[0, 2], -1, 1))):.1f} deg off the axis; the lens covers "
            f"{lens.fov_deg / 2:.1f} deg)",
            field=field,
        )


class Dewarper:
    """Perspective views and a panorama of one camera's frames.

    lens: the camera's lens. views: the perspective views by config. Tables are built on
    first use and cached; `fixed_point` picks OpenCV's fixed-point maps (faster remap).
    """

    def __init__(
        self,
        lens: Lens,
        views: Sequence[ViewConfig] = (),
        *,
        fixed_point: bool = True,
        field_prefix: str = "detector.views",
    ):
        self.lens = lens
        self.fixed_point = fixed_point
        self._views: dict[str, VirtualView] = {}
        self._tables: dict[str, RemapTable] = {}
        for j, cfg in enumerate(views):
            if cfg.name in self._views:
                raise ConfigError(f"view names must be unique, {cfg.name!r} repeats", field=f"{field_prefix}[{j}].name")
            view = perspective_view(cfg)
            check_view_in_circle(lens, view, f"{field_prefix}[{j}]")
            self._views[cfg.name] = view

    @classmethod
    def from_camera(cls, cam: CameraConfig, *, camera_index: int | None = None, fixed_point: bool = True) -> Dewarper:
        prefix = "detector.views" if camera_index is None else f"cameras[{camera_index}].detector.views"
        return cls(make_lens(cam.lens), cam.detector.views, fixed_point=fixed_point, field_prefix=prefix)

    # ------------------------------------------------------------ views
    @property
    def view_names(self) -> list[str]:
        return [n for n in self._views if n != PANORAMA]

    def add_view(self, view: VirtualView) -> None:
        """Register (or replace) a view by its name; its table is rebuilt on next use."""
        self._views[view.name] = view
        self._tables.pop(view.name, None)

    def get_view(self, name: str) -> VirtualView:
        try:
            return self._views[name]
        except KeyError:
            raise GeometryError(f"no view named {name!r}; views: {sorted(self._views)}") from None

    def table(self, name: str) -> RemapTable:
        """The cached remap table of a view (built on first use)."""
        table = self._tables.get(name)
        if table is None:
            table = remap_table(self.lens, self.get_view(name), fixed_point=self.fixed_point)
            self._tables[name] = table
        return table

    def view(self, image_bgr: np.ndarray, name: str) -> np.ndarray:
        """The dewarped view `name` of an image frame, (h, w, C) like the view's size."""
        self._check_image(image_bgr)
        return apply_table(image_bgr, self.table(name))

    def views(self, image_bgr: np.ndarray) -> dict[str, np.ndarray]:
        """Every perspective view of the frame, by name."""
        return {name: self.view(image_bgr, name) for name in self.view_names}

    def panorama_view(
        self, size: tuple[int, int] = (1920, 480), theta_min_deg: float = 30.0, theta_max_deg: float | None = None
    ) -> CylindricalView:
        """Register the 360 deg panorama (outer edge at the lens' FOV unless given) and return it."""
        top = min(self.lens.fov_deg / 2.0, 179.0) if theta_max_deg is None else theta_max_deg
        if not 0 < theta_min_deg < top < 180:
            raise GeometryError(f"expected 0 < theta_min_deg < theta_max_deg < 180, got {theta_min_deg}, {top}")
        pano = CylindricalView(PANORAMA, (int(size[0]), int(size[1])), float(theta_min_deg), float(top))
        current = self._views.get(PANORAMA)
        if current != pano:
            self.add_view(pano)
        return pano

    def panorama(
        self,
        image_bgr: np.ndarray,
        size: tuple[int, int] = (1920, 480),
        theta_min_deg: float = 30.0,
        theta_max_deg: float | None = None,
    ) -> np.ndarray:
        """A cylindrical 360 deg panorama around the optical axis (for overhead fisheyes)."""
        self.panorama_view(size, theta_min_deg, theta_max_deg)
        return self.view(image_bgr, PANORAMA)

    # ------------------------------------------------------------ points and boxes
    def view_to_image(self, name: str, view_px: npt.ArrayLike) -> FloatArray:
        """(N, 2) view px -> (N, 2) image px (exact, through the lens model)."""
        return self.lens.project(self.get_view(name).rays(view_px))

    def image_to_view(self, name: str, image_px: npt.ArrayLike) -> FloatArray:
        """(N, 2) image px -> (N, 2) view px; nan where the point is behind the view."""
        return self.get_view(name).pixels(self.lens.unproject(image_px))

    def boxes_to_image(self, name: str, xyxy: npt.ArrayLike) -> FloatArray:
        """(N, 4) view-px boxes -> (N, 4) image-px boxes bounding each box's mapped outline."""
        b = as_boxes(xyxy)
        if len(b) == 0:
            return b
        t = np.linspace(0.0, 1.0, _BOX_EDGE_SAMPLES)
        x1, y1, x2, y2 = (b[:, i : i + 1] for i in range(4))
        xs = np.hstack([x1 + (x2 - x1) * t, x2 + 0 * t, x1 + (x2 - x1) * t, x1 + 0 * t])
        ys = np.hstack([y1 + 0 * t, y1 + (y2 - y1) * t, y2 + 0 * t, y1 + (y2 - y1) * t])
        img = self.view_to_image(name, np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(len(b), -1, 2)
        with np.errstate(invalid="ignore"):
            out = np.stack(
                [
                    np.nanmin(img[..., 0], 1),
                    np.nanmin(img[..., 1], 1),
                    np.nanmax(img[..., 0], 1),
                    np.nanmax(img[..., 1], 1),
                ],
                axis=1,
            )
        return np.asarray(out, dtype=np.float64)

    def detections_to_image(self, name: str, dets: Detections) -> Detections:
        """Detections found on view `name` mapped into image px (boxes bound the mapped outline)."""
        return Detections(
            xyxy=self.boxes_to_image(name, dets.xyxy),
            confidence=dets.confidence,
            class_id=dets.class_id,
            track_id=dets.track_id,
            data=dict(dets.data),
        )

    def merge_detections(self, per_view: Mapping[str, Detections], iou: float = 0.45) -> Detections:
        """Merge detections of overlapping views: map each into image px, then class-wise NMS."""
        mapped = [self.detections_to_image(name, d) for name, d in per_view.items() if len(d)]
        merged = Detections.concat(mapped)
        if len(merged) == 0:
            return merged
        finite = np.asarray(np.isfinite(merged.xyxy).all(axis=1))
        merged = merged[finite]
        keep = nms(merged.xyxy, merged.confidence, iou, class_id=merged.class_id)
        return merged[keep]

    def _check_image(self, image: np.ndarray) -> None:
        w, h = self.lens.image_size
        if image.ndim < 2 or image.shape[:2] != (h, w):
            raise GeometryError(f"expected a frame of {w}x{h} px for this lens, got shape {image.shape}")
