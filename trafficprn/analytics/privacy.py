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
from trafficprn.config import PrivacySection
from trafficprn.errors import ConfigError, GeometryError, InputError

PlateMode = Literal["off", "hash", "clear"]
SECRET_ENV = "TRAFFICPRN_PLATE_SECRET"


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
) -> np.ndarray:
    """A copy of the image with plates made unreadable (coarse pixelation).

    boxes_xyxy: (N, 4) image px. kind="plate": the boxes are plates, each is pixelated
    (slightly enlarged). kind="vehicle": the plate box is unknown, so the lower
    `lower_fraction` of each vehicle box is pixelated, where plates sit on a front or
    rear view. Pixels outside the boxes are unchanged.
    """
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim not in (2, 3) or image_bgr.size == 0:
        raise InputError(f"expected a non-empty image array (H, W, 3), got shape {getattr(image_bgr, 'shape', None)}")
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        return image_bgr.copy()
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise GeometryError(f"boxes_xyxy must be a 2D array with shape (N, 4), got shape {boxes.shape}")
    out = image_bgr.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in boxes:
        if kind == "vehicle":
            y1 = y2 - (y2 - y1) * lower_fraction
            cells_x = 8
        else:
            dx, dy = 0.1 * (x2 - x1), 0.2 * (y2 - y1)
            x1, x2, y1, y2 = x1 - dx, x2 + dx, y1 - dy, y2 + dy
            cells_x = 4
        xa, xb = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
        ya, yb = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
        if xb - xa < 1 or yb - ya < 1:
            continue
        region = out[ya:yb, xa:xb]
        # cells of at least ~1/4 of a plate's width: no character survives
        cols = max(1, min(cells_x, (xb - xa) // 4))
        rows = max(1, min(int(round(cols * (yb - ya) / (xb - xa))) or 1, (yb - ya) // 4 or 1))
        small = cv2.resize(region, (cols, rows), interpolation=cv2.INTER_AREA)
        out[ya:yb, xa:xb] = cv2.resize(small, (xb - xa, yb - ya), interpolation=cv2.INTER_NEAREST)
    return out
