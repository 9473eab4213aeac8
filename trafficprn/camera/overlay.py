"""Drawings that help a person check the camera geometry: the ground grid of a calibration
and the legs and lanes of a camera, over a frame; a contact sheet of views.

Computation lives in calibration/dewarp; this module only draws (BGR uint8 images).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.camera.calibration import Calibration
from trafficprn.config import CameraConfig

FloatArray = npt.NDArray[np.float64]

MINOR_BGR = (150, 150, 150)
MAJOR_BGR = (0, 215, 255)
AXIS_BGR = (60, 60, 255)
ENTRY_BGR = (80, 200, 80)
EXIT_BGR = (230, 120, 40)
LANE_BGR = (200, 80, 200)
POINT_BGR = (0, 0, 255)


def _polyline(image: np.ndarray, px: FloatArray, bgr: tuple[int, int, int], thickness: int) -> None:
    """Draw (N, 2) px as a polyline, broken where points are nan."""
    import cv2

    ok = np.asarray(np.isfinite(px).all(axis=1))
    start: int | None = None
    for i in range(len(px) + 1):
        if i < len(px) and ok[i]:
            if start is None:
                start = i
            continue
        if start is not None and i - start >= 2:
            pts = np.round(px[start:i] * 4).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(image, [pts], False, bgr, thickness, cv2.LINE_AA, shift=2)
        start = None


def grid_extent_m(
    cal: Calibration, margin_m: float = 5.0, max_half_m: float = 60.0
) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) ground m to draw: the surveyed area plus a margin, or
    what the camera sees within `max_half_m` of the point under the image centre."""
    if len(cal.ground_m):
        lo = cal.ground_m.min(axis=0) - margin_m
        hi = cal.ground_m.max(axis=0) + margin_m
    else:
        centre = cal.image_to_ground([cal.lens.center_px])[0]
        centre = np.where(np.isfinite(centre), centre, 0.0)
        lo, hi = centre - 2 * margin_m, centre + 2 * margin_m
    lo = np.maximum(lo, -max_half_m)
    hi = np.minimum(hi, max_half_m)
    return (float(np.floor(lo[0])), float(np.floor(lo[1])), float(np.ceil(hi[0])), float(np.ceil(hi[1])))


def draw_ground_grid(
    image_bgr: np.ndarray,
    cal: Calibration,
    *,
    minor_m: float = 1.0,
    major_m: float = 5.0,
    extent_m: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """A copy of the frame with ground lines every `minor_m` (thin) and `major_m` (bold),
    the ground axes (X red, Y) from the origin, and the surveyed points with their residuals."""
    import cv2

    x0, y0, x1, y1 = extent_m or grid_extent_m(cal)
    step = min(minor_m, major_m) / 8.0
    out = image_bgr.copy()
    for major, alpha in ((False, 0.45), (True, 0.85)):
        layer = out.copy()
        spacing = major_m if major else minor_m
        for axis in (0, 1):
            lo, hi = (x0, x1) if axis == 0 else (y0, y1)
            other = np.arange(y0, y1 + step / 2, step) if axis == 0 else np.arange(x0, x1 + step / 2, step)
            for value in np.arange(np.ceil(lo / spacing) * spacing, hi + 1e-9, spacing):
                if abs(value / major_m - round(value / major_m)) < 1e-9 and not major:
                    continue  # drawn with the major lines
                colour = AXIS_BGR if abs(value) < 1e-9 else (MAJOR_BGR if major else MINOR_BGR)
                line = (
                    np.stack([np.full_like(other, value), other], 1)
                    if axis == 0
                    else np.stack([other, np.full_like(other, value)], 1)
                )
                _polyline(layer, cal.ground_to_image(line), colour, 2 if major else 1)
        out = cv2.addWeighted(layer, alpha, out, 1 - alpha, 0)
    for i, (px, gm) in enumerate(zip(cal.image_px, cal.ground_m, strict=True)):
        cv2.circle(out, (round(px[0]), round(px[1])), 6, POINT_BGR, 2, cv2.LINE_AA)
        back = cal.ground_to_image([gm])[0]
        if np.isfinite(back).all():
            cv2.line(out, (round(px[0]), round(px[1])), (round(back[0]), round(back[1])), POINT_BGR, 1, cv2.LINE_AA)
        _label(out, f"{i}", (px[0] + 8, px[1] - 8), POINT_BGR)
    return out


def draw_zones(image_bgr: np.ndarray, cam: CameraConfig) -> np.ndarray:
    """A copy of the frame with each leg's entry (green) and exit (orange) zones, the lanes
    (magenta) and their stop lines, labelled."""
    import cv2

    out = image_bgr.copy()
    overlay = out.copy()
    for leg in cam.legs:
        for poly, colour in ((leg.entry, ENTRY_BGR), (leg.exit, EXIT_BGR)):
            pts = np.round(np.asarray(poly) * 4).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(overlay, [pts], colour, cv2.LINE_AA, shift=2)
    out = cv2.addWeighted(overlay, 0.3, out, 0.7, 0)
    for leg in cam.legs:
        for poly, colour, tag in ((leg.entry, ENTRY_BGR, "in"), (leg.exit, EXIT_BGR, "out")):
            p = np.asarray(poly, dtype=np.float64)
            _polyline(out, np.vstack([p, p[:1]]), colour, 2)
            c = p.mean(axis=0)
            _label(out, f"{leg.name} {tag}", (c[0], c[1]), colour)
    for lane in cam.lanes:
        p = np.asarray(lane.polygon, dtype=np.float64)
        _polyline(out, np.vstack([p, p[:1]]), LANE_BGR, 1)
        _polyline(out, np.asarray(lane.stop_line, dtype=np.float64), (255, 255, 255), 3)
        far = p[np.argmax(np.linalg.norm(p - np.asarray(lane.stop_line[0]), axis=1))]
        _label(out, lane.name, (far[0], far[1]), LANE_BGR)
    return out


def contact_sheet(images: dict[str, np.ndarray], columns: int = 2, cell_width: int = 640) -> np.ndarray:
    """Views in a grid, each scaled to `cell_width` and labelled with its name; wide images
    (panoramas, aspect > 2.5) get a full-width row of their own below."""
    import cv2

    full_width = columns * cell_width

    def scaled(name: str, img: np.ndarray, width: int) -> np.ndarray:
        h, w = img.shape[:2]
        out = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
        out = out if out.ndim == 3 else cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
        _label(out, name, (10, 28), (255, 255, 255), scale=0.8)
        return np.asarray(out)

    cells = [scaled(n, i, cell_width) for n, i in images.items() if i.shape[1] <= 2.5 * i.shape[0]]
    wide = [scaled(n, i, full_width) for n, i in images.items() if i.shape[1] > 2.5 * i.shape[0]]
    rows = []
    if cells:
        cell_h = max(c.shape[0] for c in cells)
        for r in range(0, len(cells), columns):
            row = [np.pad(c, ((0, cell_h - c.shape[0]), (0, 0), (0, 0))) for c in cells[r : r + columns]]
            row += [np.zeros((cell_h, cell_width, 3), np.uint8)] * (columns - len(row))
            rows.append(np.hstack(row))
    rows.extend(wide)
    if not rows:
        return np.zeros((1, 1, 3), np.uint8)
    return np.vstack(rows)


def _label(
    image: np.ndarray, text: str, at: tuple[float, float], bgr: tuple[int, int, int], scale: float = 0.5
) -> None:
    import cv2

    org = (int(round(at[0])), int(round(at[1])))
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, bgr, 1, cv2.LINE_AA)
