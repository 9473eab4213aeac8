"""Plate privacy: what of a plate is kept, and blurring plates in frames that leave the worker.

`privacy.plates` in site.yaml:
- ``off``: plates are neither stored nor hashed;
- ``hash`` (default): HMAC-SHA256 of the normalised text, keyed with the deployment's
  secret `TRAFFICPRN_PLATE_SECRET`. One secret per deployment, so the same plate gives the
  same hash at every camera and intersection (journey times), yet cannot be reversed or
  brute-forced without the secret;
- ``clear``: the normalised text itself (served only to authorised API clients).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from trafficprn.analytics.plates import normalise_plate
from trafficprn.camera.calibration import Calibration
from trafficprn.config import PrivacySection
from trafficprn.errors import ConfigError, GeometryError, InputError
from trafficprn.types import FloatArray, VehicleClass

PlateMode = Literal["off", "hash", "clear"]
SECRET_ENV = "TRAFFICPRN_PLATE_SECRET"
# Plate widths by vehicle class, m (EU car plate 0.52 m; motorcycle plates ~0.2 m; bicycles have none).
PLATE_WIDTH_M = {VehicleClass.CAR: 0.52, VehicleClass.BUS: 0.52, VehicleClass.TRUCK: 0.52,
                 VehicleClass.MOTORCYCLE: 0.2}
# A plate whose width spans fewer image px than this is not legible: nothing to blur. The
# pipeline reads plates from 40 px; people read them from about 20 px, and the estimate from
# the ground calibration runs up to ~25 % under the true width on a pole camera.
MIN_LEGIBLE_PLATE_PX = 12.0


def plate_hash(text: str, secret: str) -> str:
    """HMAC-SHA256 hex digest of the normalised plate text, keyed with `secret`."""
    return hmac.new(secret.encode("utf-8"), normalise_plate(text).encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PlatePrivacy:
    """Applies the plate mode to a read. Build it with `from_config`."""

    mode: PlateMode
    secret: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("off", "hash", "clear"):
            raise ConfigError(f"expected off, hash or clear, got {self.mode!r}", field="privacy.plates")
        if self.mode == "hash" and (self.secret is None or not self.secret.strip()):
            raise ConfigError(
                f"privacy.plates is 'hash' but {SECRET_ENV} is not set; set {SECRET_ENV} to a long random "
                "string, the same for every camera of this deployment (e.g. `openssl rand -hex 32`), "
                "or set privacy.plates to 'off' or 'clear'",
                field="privacy.plates",
            )

    @classmethod
    def from_config(cls, privacy: PrivacySection, secret: str | None) -> PlatePrivacy:
        """From the site's privacy section and the secret (Settings.plate_secret)."""
        return cls(privacy.plates, secret if privacy.plates == "hash" else None)

    def apply(self, text: str | None) -> tuple[str | None, str | None]:
        """(plate_text, plate_hash) to store for a read: text only in clear mode, hash only
        in hash mode, neither when off or when there is no (non-empty) plate."""
        if text is None or self.mode == "off":
            return None, None
        norm = normalise_plate(text)
        if not norm:
            return None, None
        if self.mode == "clear":
            return norm, None
        return None, plate_hash(norm, self.secret or "")

    @property
    def reads_plates(self) -> bool:
        """False when plates are off: the pipeline can skip OCR altogether."""
        return self.mode != "off"


def blur_plates(
    image_bgr: np.ndarray,
    boxes_xyxy: np.ndarray,
    *,
    kind: Literal["plate", "vehicle"] = "plate",
    lower_fraction: float = 0.5,
    margin: tuple[float, float] = (0.1, 0.2),
    cell_px: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of the image with plates made unreadable (coarse pixelation).

    boxes_xyxy: (N, 4) image px. kind="plate": the boxes are plates, each is pixelated
    (enlarged by `margin` (x, y) of its width and height on each side; `plate_bands`
    have their margin already: pass (0, 0)). kind="vehicle": the plate box is unknown, so the lower
    `lower_fraction` of each vehicle box is pixelated, where plates sit on a front or
    rear view. cell_px: (N,) pixelation cell per box (at least 4 px), e.g. a quarter of a
    plate's width over a band that holds one (default: 4 cells across a plate box, 8 across a
    vehicle). Pixels outside the boxes are unchanged.
    """
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim not in (2, 3) or image_bgr.size == 0:
        raise InputError(f"expected a non-empty image array (H, W, 3), got shape {getattr(image_bgr, 'shape', None)}")
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        return image_bgr.copy()
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise GeometryError(f"boxes_xyxy must be a 2D array with shape (N, 4), got shape {boxes.shape}")
    cells = None if cell_px is None else np.maximum(np.asarray(cell_px, dtype=np.float64).reshape(-1), 4.0)
    if cells is not None and len(cells) != len(boxes):
        raise GeometryError(f"cell_px must have one size per box ({len(boxes)}), got shape {cells.shape}")
    out = image_bgr.copy()
    h, w = out.shape[:2]
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        if kind == "vehicle":
            y1 = y2 - (y2 - y1) * lower_fraction
            cells_x = 8
        else:
            dx, dy = margin[0] * (x2 - x1), margin[1] * (y2 - y1)
            x1, x2, y1, y2 = x1 - dx, x2 + dx, y1 - dy, y2 + dy
            cells_x = 4
        xa, xb = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
        ya, yb = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
        if xb - xa < 1 or yb - ya < 1:
            continue
        region = out[ya:yb, xa:xb]
        # cells of at least ~1/4 of a plate's width: no character survives
        if cells is not None:
            cols = max(1, int((xb - xa) // cells[k]))
            rows = max(1, int((yb - ya) // cells[k]))
        else:
            cols = max(1, min(cells_x, (xb - xa) // 4))
            rows = max(1, min(int(round(cols * (yb - ya) / (xb - xa))) or 1, (yb - ya) // 4 or 1))
        small = cv2.resize(region, (cols, rows), interpolation=cv2.INTER_AREA)
        out[ya:yb, xa:xb] = cv2.resize(small, (xb - xa, yb - ya), interpolation=cv2.INTER_NEAREST)
    return out


@dataclass(frozen=True)
class PlateScale:
    """How large a plate would look at each vehicle box (N,): `width_px`, its width in image
    px (face-on), and `legible_px`, that width times the view sine (a plate's face is upright:
    seen from straight above it shrinks to a line, however fine the ground resolution)."""

    width_px: FloatArray
    legible_px: FloatArray


def plate_scale(calibration: Calibration, boxes_xyxy: np.ndarray, class_id: np.ndarray) -> PlateScale:
    """PlateScale of boxes (N, 4) image px of VehicleClass `class_id` (N,): the class's plate
    width over the ground calibration's finer axis at the box centre (0 for classes without
    plates and where the centre sees no ground)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    centre = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    width_m = np.array([PLATE_WIDTH_M.get(VehicleClass(int(c)), 0.0) if int(c) in _CLASS_VALUES else 0.0
                        for c in np.asarray(class_id).reshape(-1)], dtype=np.float64)
    if not len(boxes):
        return PlateScale(np.zeros(0), np.zeros(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        width = width_m / calibration.finest_metres_per_px(centre)
    width = np.where(np.isfinite(width), width, 0.0)
    sine = np.nan_to_num(calibration.view_sine(centre), nan=0.0)
    return PlateScale(np.asarray(width, dtype=np.float64), np.asarray(width * sine, dtype=np.float64))


_CLASS_VALUES = {int(c) for c in VehicleClass}


@dataclass(frozen=True)
class PlateBands:
    """xyxy: (M, 4) image px bands that may hold a legible plate; cell_px: (M,) the
    pixelation cell for each, a quarter of the largest plate width the band may hold."""

    xyxy: FloatArray
    cell_px: FloatArray


def plate_bands(boxes_xyxy: np.ndarray, scale: PlateScale, *,
                min_legible_px: float = MIN_LEGIBLE_PLATE_PX) -> PlateBands:
    """PlateBands: image px bands holding the plates of the vehicle boxes whose plate could be
    legible (`scale.legible_px` at least `min_legible_px`; see `plate_scale`); none for the
    others, so a vehicle whose plate no one can read is left as it is.

    A legible plate faces the camera on the vehicle's near face, low down: on sim renders of
    the pole camera its bottom sits 0.3-1.0 plate widths above the box's bottom and its top
    0.6-1.35 (cars to trucks), anywhere across the box (a turning vehicle shows its plate off
    centre). So the band spans the box's width and 1.5 plate widths up from its bottom (the
    width estimate can run 25 % under the truth), at most the lower half of the box.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    widths = np.asarray(scale.width_px, dtype=np.float64).reshape(-1)
    legible = np.asarray(scale.legible_px, dtype=np.float64).reshape(-1)
    if len(widths) != len(boxes) or len(legible) != len(boxes):
        raise GeometryError(f"the plate scale must have one value per box ({len(boxes)}), got {widths.shape}")
    keep = legible >= min_legible_px
    x1, y1, x2, y2 = boxes[keep].T
    plate_w = widths[keep] / 0.75
    top = np.maximum(y2 - 1.5 * plate_w, (y1 + y2) / 2)
    return PlateBands(np.asarray(np.column_stack([x1, top, x2, y2]), dtype=np.float64).reshape(-1, 4),
                      np.asarray(plate_w / 4, dtype=np.float64))
