"""Which text line of a plate crop is the plate number.

A plate often carries more text than its number: the state or country name, a slogan
("Garden State"), a dealer's frame, a registration sticker. On the plate, the number is
the line with the tallest characters, a number-like aspect, centred in the crop; the
others are smaller and sit above or below it. `rank_plate_lines` orders detected lines
by those three, never by how long or how confidently they read.

Weights were chosen on openalpr/benchmarks `seg_and_ocr/usimages` (the tune set).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trafficprn.analytics.ocr import TextBox

MIN_LINE_HEIGHT_PX = 6
# a plate number holds 4-10 characters of aspect ~0.5 (w/h): its line's aspect
NUMBER_ASPECT = (1.6, 9.0)
LOCAL = (True,)  # thresholds tried (False: Otsu global): on the tune set local alone read 83.9 %, both 83.8, Otsu 83.4
ROW_MARGIN_Y = 0.15  # a character row's crop margin above and below, in character heights


@dataclass(frozen=True)
class PlateLine:
    """A detected line and what ranks it. height_rel: line height / crop height;
    centre_rel: line centre in crop units (0..1, 0..1); score: the rank (higher first)."""

    box: TextBox
    width_px: float
    height_px: float
    height_rel: float
    centre_rel: tuple[float, float]
    score: float


def line_shape(quad_px: np.ndarray) -> tuple[float, float]:
    """(width, height) in px of a text-line quad, width along its long side."""
    (_, _), (a, b), _ = cv2.minAreaRect(np.asarray(quad_px, dtype=np.float32))
    return (max(a, b), min(a, b))


def _aspect_fit(aspect: float) -> float:
    lo, hi = NUMBER_ASPECT
    if lo <= aspect <= hi:
        return 1.0
    return max(0.05, min(aspect / lo, hi / aspect)) ** 2


def describe_line(box: TextBox, crop_hw: tuple[int, int]) -> PlateLine:
    """Measure one line against the crop and score it as the plate number."""
    h_img, w_img = crop_hw
    w, h = line_shape(box.quad_px)
    cx, cy = np.asarray(box.quad_px, dtype=np.float64).mean(axis=0)
    height_rel = h / max(h_img, 1)
    centre = (float(cx / max(w_img, 1)), float(cy / max(h_img, 1)))
    # tallest characters first; then a number-like aspect; then near the middle
    position = 1.0 - 0.8 * min(1.0, abs(centre[1] - 0.5) / 0.5) ** 2 - 0.3 * min(1.0, abs(centre[0] - 0.5) / 0.5) ** 2
    score = height_rel * _aspect_fit(w / max(h, 1e-6)) * max(position, 0.05)
    if h < MIN_LINE_HEIGHT_PX:
        score *= 0.1
    return PlateLine(box, float(w), float(h), float(height_rel), centre, float(score))


def rank_plate_lines(boxes: list[TextBox], crop_hw: tuple[int, int]) -> list[PlateLine]:
    """Detected lines of a plate crop, the likeliest plate number first."""
    lines = [describe_line(b, crop_hw) for b in boxes]
    return sorted(lines, key=lambda line: -line.score)


# ---------------------------------------------------------------- character rows
@dataclass(frozen=True)
class CharRow:
    """A row of character-like blobs in a plate crop. box: (x, y, w, h) px of the row: the
    crop's width, the blobs' height with margins; char_height_px: median blob height;
    count: blobs; score: the rank."""

    box: tuple[int, int, int, int]
    char_height_px: float
    count: int
    score: float


def _blobs(grey: np.ndarray, dark_text: bool, local: bool = False) -> np.ndarray:
    """(N, 4) x, y, w, h of character-sized connected components of one polarity, split
    by Otsu's global threshold or (local) by a threshold over a third of the crop's height."""
    h_img, w_img = grey.shape
    mode = cv2.THRESH_BINARY_INV if dark_text else cv2.THRESH_BINARY
    if local:
        block = max(3, (h_img // 3) | 1)
        binary = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, mode, block, 8)
    else:
        _, binary = cv2.threshold(grey, 0, 255, mode | cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    keep = (
        (h >= max(MIN_LINE_HEIGHT_PX, 0.18 * h_img)) & (h <= 0.92 * h_img)
        & (w <= 0.3 * w_img) & (w >= 0.08 * h) & (w <= 1.3 * h)
        & (area >= 0.12 * w * h)
        & (x > 0) & (y > 0) & (x + w < w_img) & (y + h < h_img)  # touching the border: frame or background
    )  # fmt: skip
    return np.asarray(np.stack([x, y, w, h], axis=1)[keep], dtype=np.float64)


def _rows(blobs: np.ndarray, crop_hw: tuple[int, int]) -> list[CharRow]:
    """Group blobs into rows of similar height and centre line; score each row."""
    h_img, w_img = crop_hw
    rows: list[CharRow] = []
    used = np.zeros(len(blobs), dtype=bool)
    for i in np.argsort(-blobs[:, 3]):
        if used[i]:
            continue
        cy, hh = blobs[i, 1] + blobs[i, 3] / 2, blobs[i, 3]
        centres = blobs[:, 1] + blobs[:, 3] / 2
        member = (np.abs(centres - cy) <= 0.3 * hh) & (blobs[:, 3] >= 0.65 * hh) & (blobs[:, 3] <= 1.35 * hh)
        member &= ~used
        if member.sum() < 3:
            continue
        used |= member
        group = blobs[member]
        char_h = float(np.median(group[:, 3]))
        x1, x2 = 0.0, float(w_img)  # the crop's width: characters the blobs missed at either end
        y1 = group[:, 1].min() - ROW_MARGIN_Y * char_h
        y2 = (group[:, 1] + group[:, 3]).max() + ROW_MARGIN_Y * char_h
        x1, y1 = max(0, int(x1)), max(0, int(y1))
        box = (x1, y1, min(w_img, int(np.ceil(x2))) - x1, min(h_img, int(np.ceil(y2))) - y1)
        centre_y = (y1 + box[3] / 2) / h_img
        position = 1.0 - 0.6 * min(1.0, abs(centre_y - 0.5) / 0.5) ** 2
        count_fit = min(len(group), 8) / 8
        rows.append(CharRow(box, char_h, int(len(group)), (char_h / h_img) * position * (0.5 + count_fit)))
    return rows


def find_char_rows(crop_bgr: np.ndarray) -> list[CharRow]:
    """Rows of characters in a plate crop, the likeliest plate number first: the tallest
    characters (several of them, a number's aspect), near the middle. Dark-on-light and
    light-on-dark text are both tried. Cheap (no neural detector): ~1-2 ms."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY) if crop_bgr.ndim == 3 else crop_bgr
    grey = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(grey)
    rows = [r for dark in (True, False) for local in LOCAL for r in _rows(_blobs(grey, dark, local), grey.shape[:2])]
    return sorted(rows, key=lambda r: -r.score)
