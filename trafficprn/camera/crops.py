"""Per-vehicle crops for colour and plate reading.

For a fisheye, a crop is a small perspective view ("virtual PTZ") whose axis is the ray
through the box centre and whose field of view just covers the box, upright (the view's
"up" points away from the image centre). The remap for it is built per crop on a coarse
grid and interpolated, so a crop costs well under a millisecond. For a pinhole camera the
crop is a padded slice of the frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.camera.lens import Lens, Pinhole, make_lens
from trafficprn.camera.views import PerspectiveView, direction_angles, view_rotation
from trafficprn.config import LensConfig
from trafficprn.errors import GeometryError
from trafficprn.geometry.boxes import as_boxes

FloatArray = npt.NDArray[np.float64]

_OUTLINE_SAMPLES = 7  # points per box edge used to size the crop
_GRID_STEP_PX = 8  # remap evaluated exactly every this many output px, bilinear in between


class VehicleCropper:
    """Crops boxes of a camera's frames into small upright perspective images.

    lens_cfg: the camera's lens config (or a ready `Lens`). pad: fraction added around the
    box on every side. max_side_px: the natural crop size is capped at this longer side.
    """

    def __init__(self, lens_cfg: LensConfig | Lens, *, pad: float = 0.1, max_side_px: int = 256):
        self.lens = lens_cfg if isinstance(lens_cfg, Lens) else make_lens(lens_cfg)
        self.pad = float(pad)
        self.max_side_px = int(max_side_px)

    def view_for(self, box_xyxy: npt.ArrayLike, out_size: tuple[int, int] | None = None) -> PerspectiveView:
        """The perspective view a crop of `box_xyxy` (4,) image px uses."""
        box = as_boxes(box_xyxy)[0]
        x1, y1, x2, y2 = box
        centre_px = np.array([[(x1 + x2) / 2, (y1 + y2) / 2]])
        centre = self.lens.unproject(centre_px)[0]
        if not self.lens.valid(centre_px)[0]:
            raise GeometryError(f"box {box.tolist()} is centred outside the lens' image circle")
        yaw, pitch = direction_angles(centre)
        rot = view_rotation(yaw, pitch)
        t = np.linspace(0.0, 1.0, _OUTLINE_SAMPLES)
        outline = np.concatenate(
            [
                np.stack([x1 + (x2 - x1) * t, np.full_like(t, y1)], 1),
                np.stack([x1 + (x2 - x1) * t, np.full_like(t, y2)], 1),
                np.stack([np.full_like(t, x1), y1 + (y2 - y1) * t], 1),
                np.stack([np.full_like(t, x2), y1 + (y2 - y1) * t], 1),
            ]
        )
        r = self.lens.unproject(outline) @ rot  # in the view frame
        r = r[np.isfinite(r).all(axis=1) & (r[:, 2] > 1e-3)]
        if len(r) == 0:
            raise GeometryError(f"box {box.tolist()} lies outside the lens' image circle")
        half_x = float(np.abs(r[:, 0] / r[:, 2]).max()) * (1 + 2 * self.pad)
        half_y = float(np.abs(r[:, 1] / r[:, 2]).max()) * (1 + 2 * self.pad)
        half_x, half_y = max(half_x, 1e-4), max(half_y, 1e-4)
        if out_size is None:
            # the frame's own resolution at the box: px per unit of tan(angle)
            density = _px_per_unit(self.lens, centre, rot)
            w, h = 2 * half_x * density, 2 * half_y * density
            scale = min(1.0, self.max_side_px / max(w, h))
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            focal = min(size[0] / (2 * half_x), size[1] / (2 * half_y))
        else:
            size = (int(out_size[0]), int(out_size[1]))
            if size[0] < 1 or size[1] < 1:
                raise GeometryError(f"out_size must be positive (w, h), got {out_size}")
            focal = min(size[0] / (2 * half_x), size[1] / (2 * half_y))
        return PerspectiveView("crop", size, float(focal), rot)

    def crop(
        self, image_bgr: np.ndarray, box_xyxy: npt.ArrayLike, out_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """An upright crop (h, w, C) of the box; out_size (w, h) or the natural size."""
        import cv2

        w_img, h_img = self.lens.image_size
        if image_bgr.shape[:2] != (h_img, w_img):
            raise GeometryError(f"expected a frame of {w_img}x{h_img} px for this lens, got shape {image_bgr.shape}")
        if isinstance(self.lens, Pinhole):
            return self._slice(image_bgr, as_boxes(box_xyxy)[0], out_size)
        view = self.view_for(box_xyxy, out_size)
        map_x, map_y = self._maps(view)
        return np.asarray(cv2.remap(image_bgr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT))

    def _maps(self, view: PerspectiveView) -> tuple[np.ndarray, np.ndarray]:
        """float32 maps of the view: exact on a grid every _GRID_STEP_PX output px, linear in
        between (cv2.resize of the grid; float weights, so no quantisation)."""
        import cv2

        w, h = view.size
        s = _GRID_STEP_PX
        # Grid node j sits where cv2.resize (half-pixel centres) samples it, shifted one
        # step outward so the output's border px lie between nodes rather than clamped.
        gw, gh = -(-w // s) + 2, -(-h // s) + 2
        xs = (np.arange(gw) + 0.5) * s - 0.5 - s
        ys = (np.arange(gh) + 0.5) * s - 0.5 - s
        gx, gy = np.meshgrid(xs, ys)
        px = self.lens.project(view.rays(np.stack([gx.ravel(), gy.ravel()], axis=1)))
        px[~np.isfinite(px).all(axis=1)] = -10.0
        coarse = px.reshape(gh, gw, 2).astype(np.float32)
        fine = cv2.resize(coarse, (gw * s, gh * s), interpolation=cv2.INTER_LINEAR)[s : s + h, s : s + w]
        return np.ascontiguousarray(fine[..., 0]), np.ascontiguousarray(fine[..., 1])

    def _slice(self, image_bgr: np.ndarray, box: FloatArray, out_size: tuple[int, int] | None) -> np.ndarray:
        import cv2

        h_img, w_img = image_bgr.shape[:2]
        x1, y1, x2, y2 = box
        px, py = (x2 - x1) * self.pad, (y2 - y1) * self.pad
        xa, ya = max(0, int(np.floor(x1 - px))), max(0, int(np.floor(y1 - py)))
        xb, yb = min(w_img, int(np.ceil(x2 + px))), min(h_img, int(np.ceil(y2 + py)))
        if xb <= xa or yb <= ya:
            raise GeometryError(f"box {box.tolist()} lies outside the {w_img}x{h_img} frame")
        out = image_bgr[ya:yb, xa:xb]
        if out_size is not None:
            return np.asarray(cv2.resize(out, (int(out_size[0]), int(out_size[1])), interpolation=cv2.INTER_LINEAR))
        return out.copy()


def _px_per_unit(lens: Lens, centre: FloatArray, rot: FloatArray) -> float:
    """Image px per unit of the view's normalised coordinates at its centre."""
    eps = 1e-3
    rays = np.stack([[0.0, 0.0, 1.0], [eps, 0.0, 1.0], [0.0, eps, 1.0]]) @ rot.T
    px = lens.project(rays)
    d = float((np.linalg.norm(px[1] - px[0]) + np.linalg.norm(px[2] - px[0])) / (2 * eps))
    return max(d, 1e-3)
