"""Synthetic plates and vehicle crops with ground truth, for tests and benchmarks.

Plates are drawn with several fonts (OpenCV Hershey fonts and any TTF fonts installed,
through Pillow), then skewed in perspective, blurred and noised, so that evaluation
does not tune to one rendered font. Vehicle crops are shaded car-like shapes (body,
windows, wheels, lights) on a road with a shadow, under varied lighting, with the
plate placed on the lower body; they serve both the colour and the plate tests.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HERSHEY_FONTS = {
    "hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX,
    "hershey-complex": cv2.FONT_HERSHEY_COMPLEX,
    "hershey-triplex": cv2.FONT_HERSHEY_TRIPLEX,
}
TTF_CANDIDATES = (
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu/DejaVuSerif-Bold.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSansNarrow-Bold.ttf",
    "liberation/LiberationMono-Bold.ttf",
    "liberation/LiberationSans-Regular.ttf",
)
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@dataclass(frozen=True)
class Degradation:
    """skew: perspective corner jitter as a fraction of the plate size; blur_px: Gaussian
    sigma; noise: std of additive Gaussian noise (0..255); jpeg: quality or 0 for none."""

    skew: float = 0.0
    blur_px: float = 0.0
    noise: float = 0.0
    jpeg: int = 0


def available_fonts() -> list[str]:
    """Font names usable by `render_plate`: Hershey fonts, then TTF paths found here."""
    fonts = list(HERSHEY_FONTS)
    for rel in TTF_CANDIDATES:
        for base in FONT_DIRS:
            path = base / rel
            if path.is_file():
                fonts.append(str(path))
                break
    return fonts


def random_plate(template: str, rng: np.random.Generator) -> str:
    """A random plate text for a template (L letter, D digit, else literal), e.g. 'ABC-1234'."""
    out = []
    for c in template:
        if c == "L":
            out.append(string.ascii_uppercase[rng.integers(26)])
        elif c == "D":
            out.append(string.digits[rng.integers(10)])
        else:
            out.append(c)
    return "".join(out)


def _draw_text(canvas: np.ndarray, text: str, font: str, colour: tuple[int, int, int]) -> np.ndarray:
    """Draw text centred, filling most of the canvas (H, W, 3) uint8 BGR."""
    h, w = canvas.shape[:2]
    target_h, target_w = 0.62 * h, 0.86 * w
    if font in HERSHEY_FONTS:
        face = HERSHEY_FONTS[font]
        thick = max(2, int(h / 18))
        (tw, th), _ = cv2.getTextSize(text, face, 1.0, thick)
        scale = min(target_w / tw, target_h / th)
        thick = max(2, int(round(thick * scale / 2.5)))
        (tw, th), _ = cv2.getTextSize(text, face, scale, thick)
        org = (int((w - tw) / 2), int((h + th) / 2))
        cv2.putText(canvas, text, org, face, scale, colour, thick, cv2.LINE_AA)
        return canvas
    from PIL import Image, ImageDraw, ImageFont

    size = int(target_h * 1.3)
    pil_font = ImageFont.truetype(font, size)
    left, top, right, bottom = pil_font.getbbox(text)
    scale = min(target_w / (right - left), target_h / (bottom - top))
    pil_font = ImageFont.truetype(font, max(6, int(size * scale)))
    left, top, right, bottom = pil_font.getbbox(text)
    image = Image.fromarray(canvas[:, :, ::-1].copy())
    draw = ImageDraw.Draw(image)
    pos = ((w - (right - left)) / 2 - left, (h - (bottom - top)) / 2 - top)
    draw.text(pos, text, font=pil_font, fill=colour[::-1])
    return np.asarray(image)[:, :, ::-1].copy()


def render_plate(
    text: str,
    font: str,
    width_px: int,
    *,
    aspect: float = 4.0,
    background: tuple[int, int, int] = (235, 235, 235),
    ink: tuple[int, int, int] = (20, 20, 20),
) -> np.ndarray:
    """A flat plate image (H, W, 3) BGR of `width_px` width: border, text, slight sheen.
    Rendered at 4x and downscaled with area averaging, as a camera would sample it."""
    big_w = max(width_px * 4, 320)
    big_h = int(round(big_w / aspect))
    canvas = np.full((big_h, big_w, 3), background, dtype=np.uint8)
    border = max(2, big_h // 22)
    cv2.rectangle(canvas, (border, border), (big_w - border - 1, big_h - border - 1), ink, border)
    canvas = _draw_text(canvas, text, font, ink)
    height_px = max(2, int(round(width_px / aspect)))
    return cv2.resize(canvas, (width_px, height_px), interpolation=cv2.INTER_AREA)


def degrade(image_bgr: np.ndarray, rng: np.random.Generator, deg: Degradation, pad_px: int = 0) -> np.ndarray:
    """Perspective skew (with a neutral margin of pad_px), blur, noise and JPEG."""
    img = image_bgr
    if pad_px:
        img = cv2.copyMakeBorder(img, pad_px, pad_px, pad_px, pad_px, cv2.BORDER_CONSTANT, value=(90, 95, 100))
    h, w = img.shape[:2]
    if deg.skew > 0:
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        jitter = rng.uniform(-deg.skew, deg.skew, size=(4, 2)) * np.array([w * 0.5, h])
        dst = (src + jitter).astype(np.float32)
        dst -= dst.min(axis=0)
        out_w, out_h = int(np.ceil(dst[:, 0].max())) + 1, int(np.ceil(dst[:, 1].max())) + 1
        m = cv2.getPerspectiveTransform(src, dst)
        img = cv2.warpPerspective(img, m, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)
    if deg.blur_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), deg.blur_px)
    if deg.noise > 0:
        img = np.clip(img.astype(np.float32) + rng.normal(0, deg.noise, img.shape), 0, 255).astype(np.uint8)
    if deg.jpeg:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, deg.jpeg])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        img = img if decoded is None else np.asarray(decoded)
    return img


@dataclass(frozen=True)
class VehicleCrop:
    """A synthetic rear/front view of a vehicle in its detection box.

    image: (H, W, 3) BGR; body_mask: (H, W) bool, the painted body pixels;
    plate_xyxy: the plate's box in the image px, or None when no plate was drawn.
    """

    image: np.ndarray
    body_mask: np.ndarray
    plate_xyxy: tuple[int, int, int, int] | None


def render_vehicle(
    body_bgr: tuple[int, int, int],
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (240, 200),
    plate_text: str | None = None,
    plate_font: str = "hershey-duplex",
    plate_width_px: int | None = None,
    light: float = 1.0,
    light_tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> VehicleCrop:
    """A car seen from behind in a loose box: road around it, a shadow below, windows
    above, a shaded body with lights, wheels and (optionally) a plate.

    light scales brightness (0.5 dusk .. 1.3 sun); light_tint multiplies B, G, R.
    """
    w, h = size
    road = np.array([rng.uniform(75, 100)] * 3) + rng.normal(0, 4, 3)  # lit asphalt, sRGB
    img = np.empty((h, w, 3), dtype=np.float32)
    img[:] = road
    img += rng.normal(0, 6, (h, w, 1))  # asphalt texture
    x1, x2 = int(w * 0.1), int(w * 0.9)
    y_roof, y_belt, y_bottom = int(h * 0.1), int(h * 0.42), int(h * 0.86)
    # shadow on the road below and to one side
    shadow = np.zeros((h, w), np.uint8)
    off = int(rng.uniform(-0.06, 0.06) * w)
    cv2.ellipse(shadow, (w // 2 + off, int(h * 0.9)), (int(w * 0.46), int(h * 0.08)), 0, 0, 360, 1, -1)
    img[shadow.astype(bool)] *= 0.45
    # wheels
    for cx in (x1 + int(0.12 * w), x2 - int(0.12 * w)):
        cv2.rectangle(img, (cx - int(0.07 * w), int(h * 0.78)), (cx + int(0.07 * w), int(h * 0.94)), (22, 22, 24), -1)
    body = np.zeros((h, w), np.uint8)
    cabin = np.array([[x1 + 0.12 * w, y_belt], [x1 + 0.2 * w, y_roof], [x2 - 0.2 * w, y_roof], [x2 - 0.12 * w, y_belt]])
    cv2.fillPoly(body, [cabin.astype(np.int32)], 1)
    cv2.rectangle(body, (x1, y_belt), (x2, y_bottom), 1, -1)
    body_bool = body.astype(bool)
    # shaded paint: brighter at the top, a soft highlight band
    rows = np.linspace(1.15, 0.8, h)[:, None]
    paint = np.asarray(body_bgr, np.float32)[None, None, :] * rows[:, :, None]
    img[body_bool] = paint.repeat(w, axis=1)[body_bool]
    # rear window (glass: dark blue-grey with a reflection gradient)
    glass = np.zeros((h, w), np.uint8)
    win = np.array(
        [[x1 + 0.16 * w, y_belt - 0.03 * h], [x1 + 0.23 * w, y_roof + 0.05 * h],
         [x2 - 0.23 * w, y_roof + 0.05 * h], [x2 - 0.16 * w, y_belt - 0.03 * h]]
    )  # fmt: skip
    cv2.fillPoly(glass, [win.astype(np.int32)], 1)
    glass_bool = glass.astype(bool)
    refl = np.linspace(70, 35, w)[None, :].repeat(h, axis=0)
    img[glass_bool] = np.stack([refl + 15, refl + 8, refl], axis=2)[glass_bool]
    body_bool &= ~glass_bool
    # tail lights and a bumper line
    for lx in (x1 + 4, x2 - 4 - int(0.14 * w)):
        cv2.rectangle(img, (lx, int(h * 0.47)), (lx + int(0.14 * w), int(h * 0.56)), (30, 30, 200), -1)
        body_bool[int(h * 0.47) : int(h * 0.56) + 1, lx : lx + int(0.14 * w) + 1] = False
    cv2.line(img, (x1, int(h * 0.8)), (x2, int(h * 0.8)), (40, 40, 40), 2)
    body_bool[int(h * 0.8) - 1 : int(h * 0.8) + 2, x1 : x2 + 1] = False
    plate_xyxy = None
    if plate_text is not None:
        pw = plate_width_px or int(0.34 * w)
        plate = render_plate(plate_text, plate_font, pw).astype(np.float32)
        ph = plate.shape[0]
        px, py = (w - pw) // 2, int(h * 0.62)
        img[py : py + ph, px : px + pw] = plate
        body_bool[py : py + ph, px : px + pw] = False
        plate_xyxy = (px, py, px + pw, py + ph)
    img *= light * np.asarray(light_tint, np.float32)[None, None, :]
    out = np.clip(img, 0, 255).astype(np.uint8)
    return VehicleCrop(out, body_bool, plate_xyxy)
