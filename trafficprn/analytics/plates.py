"""Licence-plate reading: find the plate in a vehicle or plate crop, pick its number line,
and decode it under the site's plate syntax.

- `PlateReader(plate_format, backend).read(crop_bgr) -> PlateResult | None`
- the syntax (`trafficprn.plate_syntax`): a template, a list, a region or `auto`;
- decoding (`plate_decode`): the recogniser's CTC probabilities under the templates;
  `PlateFormat.fit` repairs a bare text read (backends without CTC probabilities);
- the number line among several (`plate_lines`); multi-frame fusion (`plate_fusion`,
  re-exported here: `TrackPlateFuser`, `fuse_reads`, `PlateResult`).

Template: `L` a letter, `D` a digit, `*` either, any other letter or digit a literal,
anything else (``-``, space) a separator that normalisation strips: "LLL-DDDD" has 7 slots.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from trafficprn.analytics.ocr import PLATE_ALPHABET, OcrBackend, TextBox, TextRead, make_backend
from trafficprn.analytics.plate_decode import DecodeParams, decode_plate
from trafficprn.analytics.plate_fusion import FuserStats, PlateResult, TrackPlateFuser, fuse_reads
from trafficprn.analytics.plate_lines import find_char_rows, line_shape, rank_plate_lines
from trafficprn.errors import ConfigError
from trafficprn.plate_syntax import ANY, PlateSyntax, parse_plate_format, slots_of

__all__ = [
    "FuserStats",
    "PlateFormat",
    "PlateReader",
    "PlateResult",
    "TrackPlateFuser",
    "fuse_reads",
    "normalise_plate",
    "plate_crop_quality",
    "rectify_quad",
]

MIN_CROP_SIDE_PX = 12
MIN_PLATE_HEIGHT_PX = 6
ROWS_TRIED = 2  # character rows of a plate crop read before the whole crop
TALLER = 1.1  # a row whose characters are this much taller is read too, and wins if it fits
NUMBER_SIZED = 0.3  # characters at least this share of a plate crop's height can be its number
# digit <-> letter confusions, repaired by position. The first four pairs are the classic
# ones (O/0, I/1, B/8, S/5); the others are common on worn or skewed plates.
TO_LETTER = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A", "7": "T"}
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "B": "8", "S": "5", "Z": "2",
            "G": "6", "A": "4", "T": "7"}  # fmt: skip


def normalise_plate(text: str) -> str:
    """Upper-case and keep only A-Z and 0-9: 'abc-12 34' -> 'ABC1234'."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


class PlateFormat:
    """A plate template: slots 'L' (letter), 'D' (digit), '*' (either) or a literal."""

    def __init__(self, template: str) -> None:
        self.template = template

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlateFormat) and other.template == self.template

    def __hash__(self) -> int:
        return hash(self.template)

    @classmethod
    def parse(cls, template: str | None) -> PlateFormat | None:
        if template is None or template == "":
            return None
        slots = slots_of(template)
        if not slots:
            raise ConfigError(
                f"plate format {template!r} has no L/D slots; expected e.g. 'LLL-DDDD'", field="plate_format"
            )
        return cls(slots)

    def __len__(self) -> int:
        return len(self.template)

    def fit(self, read: TextRead | str) -> tuple[str, int] | None:
        """Repair `read` to this format: (text, repairs), or None if it cannot fit.

        Reads longer than the template are fitted by the window needing fewest repairs
        (a stray border mark or country code). At a letter slot a digit becomes the
        recogniser's runner-up letter when that has some probability (>= 0.05), else its
        look-alike (0->O, 1->I, 8->B, 5->S, ...); at a digit slot the reverse.
        """
        found = self.fit_at(read)
        return None if found is None else (found[0], found[1])

    def fit_at(self, read: TextRead | str) -> tuple[str, int, int] | None:
        """As `fit`, plus where the fitted window starts in the read: (text, repairs, start)."""
        if isinstance(read, str):
            read = TextRead(normalise_plate(read), 1.0)
        n = len(self.template)
        best: tuple[str, int, int] | None = None
        for start in range(len(read.text) - n + 1):
            out = self._fit_window(read, start)
            if out is not None and (best is None or out[1] < best[1]):
                best = (out[0], out[1], start)
        return best

    def _fit_window(self, read: TextRead, start: int) -> tuple[str, int] | None:
        chars: list[str] = []
        repairs = 0
        for k, slot in enumerate(self.template):
            i = start + k
            ch = read.text[i]
            cands = list(read.candidates[i]) if i < len(read.candidates) else []
            want: Callable[[str], bool]
            if slot == "L":
                want = str.isalpha
                mapped = TO_LETTER.get(ch)
            elif slot == "D":
                want = str.isdigit
                mapped = TO_DIGIT.get(ch)
            elif slot == ANY:
                want = str.isalnum
                mapped = None
            else:
                want = slot.__eq__
                mapped = slot if ch in (slot, TO_LETTER.get(slot), TO_DIGIT.get(slot)) else None
            if want(ch):
                chars.append(ch)
                continue
            alt = next(((c, p) for c, p in cands if want(c)), None)
            if alt is not None and alt[1] >= 0.05:  # a real runner-up of the recogniser
                fix: str | None = alt[0]
            elif mapped is not None and want(mapped):  # else the look-alike
                fix = mapped
            else:
                fix = None if alt is None else alt[0]
            if fix is None:
                return None
            chars.append(fix)
            repairs += 1
        # a window that leaves out characters is worse than one that uses them all
        return "".join(chars), repairs + (len(read.text) - len(self.template))


# ---------------------------------------------------------------- reader
def _order_quad(quad: np.ndarray) -> np.ndarray:
    """(4, 2) corners as top-left, top-right, bottom-right, bottom-left."""
    s = quad.sum(axis=1)
    d = np.diff(quad, axis=1).ravel()
    return np.array([quad[np.argmin(s)], quad[np.argmin(d)], quad[np.argmax(s)], quad[np.argmax(d)]], dtype=np.float32)


def rectify_quad(image_bgr: np.ndarray, quad_px: np.ndarray, pad: float = 0.08) -> np.ndarray:
    """Perspective-warp the quad (slightly padded) to an upright rectangle."""
    q = _order_quad(np.asarray(quad_px, dtype=np.float32))
    centre = q.mean(axis=0)
    q = centre + (q - centre) * (1.0 + pad)
    w = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    h = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    w_px, h_px = max(int(round(w)), 2), max(int(round(h)), 2)
    dst = np.array([[0, 0], [w_px - 1, 0], [w_px - 1, h_px - 1], [0, h_px - 1]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(q.astype(np.float32), dst)
    return cv2.warpPerspective(image_bgr, m, (w_px, h_px), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _box_quad(box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def plate_contrast(crop_bgr: np.ndarray) -> float:
    """Spread between dark and light pixels (10th to 90th percentile of grey), 0..255."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY) if crop_bgr.ndim == 3 else crop_bgr
    lo, hi = np.percentile(grey, [10, 90])
    return float(hi - lo)


def plate_crop_quality(crop_bgr: np.ndarray) -> float:
    """Quality of a crop for plate reading: sqrt(area px) x sharpness (Laplacian std).

    Larger and sharper crops score higher; use it as `quality` in `TrackPlateFuser.offer`.
    """
    if not isinstance(crop_bgr, np.ndarray) or crop_bgr.size == 0 or min(crop_bgr.shape[:2]) < 2:
        return 0.0
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY) if crop_bgr.ndim == 3 else crop_bgr
    sharp = float(cv2.Laplacian(grey, cv2.CV_32F).std())
    return float(np.sqrt(grey.shape[0] * grey.shape[1]) * sharp)


class PlateReader:
    """Reads one plate from a vehicle crop or a plate crop.

    plate_format: a syntax spec (`trafficprn.plate_syntax`): a template ("LLL-DDDD"), a
    list, a region ("us", "eu", "de", "br", ...) or "auto" (default: every preset); None,
    "" or "none" accept any 4-10 character read as it is. backend: "rapidocr" (default),
    "paddleocr", or an OcrBackend. min_confidence: reads below it are "no plate".
    """

    def __init__(
        self,
        plate_format: str | Sequence[str] | None = "auto",
        backend: str | OcrBackend = "rapidocr",
        *,
        threads: int = 1,
        min_confidence: float = 0.5,
        max_candidates: int = 3,
        params: DecodeParams | None = None,
        detect_fallback: bool = True,
    ) -> None:
        self.syntax: PlateSyntax | None = parse_plate_format(plate_format, field="plate_format")
        self.formats = [PlateFormat(t.slots) for t in self.syntax.templates] if self.syntax else []
        self.backend: OcrBackend = make_backend(backend, threads=threads) if isinstance(backend, str) else backend
        self.min_confidence = min_confidence
        self.max_candidates = max_candidates
        self.params = params or DecodeParams()
        self.detect_fallback = detect_fallback

    @property
    def fused_length(self) -> int | None:
        """The plate length fusion votes on: the syntax's only length, else None (heaviest)."""
        if self.syntax is None or len(self.syntax.lengths) != 1:
            return None
        return next(iter(self.syntax.lengths))

    # ------------------------------------------------------------ public
    def warm_up(self) -> None:
        """Load the models and run them once, so that the first real read is not slow."""
        blank = np.full((64, 200, 3), 200, dtype=np.uint8)
        cv2.putText(blank, "ABC1234", (8, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 3)
        self.backend.recognise(blank, PLATE_ALPHABET)
        self.backend.detect(blank)

    def read(self, crop_bgr: np.ndarray | None) -> PlateResult | None:
        """The best plate in the crop, or None ("no plate") for empty, tiny or plate-less crops."""
        image = self._as_image(crop_bgr)
        if image is None:
            return None
        h, w = image.shape[:2]
        plate_like = 1.3 <= w / h <= 7.0 and (h <= 160 or w / h >= 1.8)  # looks like a plate crop already
        best = self._read_plate_crop(image) if plate_like else self._read_vehicle_crop(image)
        if best is None or best.confidence < self.min_confidence:
            return None
        return best

    def read_read(self, read: TextRead) -> PlateResult | None:
        """Decode a raw OCR read under the syntax; None when it cannot be a plate.

        With the recogniser's CTC probabilities, the constrained decoder reads it
        (`plate_decode`); with text alone, `PlateFormat.fit` repairs it by position. A
        read that fits no template keeps its text at a lower confidence.
        """
        if self.syntax is not None and read.ctc is not None:
            decoded = decode_plate(read.ctc, self.syntax, self.params)
            if decoded is None or not 2 <= len(decoded.text) <= 10:
                return None
            return PlateResult(decoded.text, decoded.confidence, decoded.char_probs)
        text = normalise_plate(read.text)
        if len(text) != len(read.text):  # keep candidates aligned with text
            read = TextRead(text, read.confidence, read.char_confidences[: len(text)], read.candidates[: len(text)])
        fitted = self._fit_text(read)
        if fitted is not None:
            return fitted
        if not 4 <= len(text) <= 10:
            return None
        factor = 1.0 if self.syntax is None else self.params.unfit_factor
        return PlateResult(text, read.confidence * factor, read.char_confidences)

    # ------------------------------------------------------------ internals
    def _fit_text(self, read: TextRead) -> PlateResult | None:
        """The template fit with the fewest repairs (text-only backends)."""
        best: tuple[str, int, int] | None = None
        for fmt in self.formats:
            got = fmt.fit_at(read)
            if got is not None and (best is None or got[1] < best[1]):
                best = got
        if best is None:
            return None
        fixed, repairs, start = best
        confs = list(read.char_confidences) or [read.confidence] * len(read.text)
        window = confs[start : start + len(fixed)]
        penalty = 0.9**repairs  # each repaired or dropped character costs confidence
        char_conf = tuple(
            float(c) * (1.0 if a == b else 0.8) for c, a, b in zip(window, read.text[start:], fixed, strict=False)
        )
        return PlateResult(fixed, float(np.mean(char_conf)) * penalty, char_conf)

    @staticmethod
    def _as_image(crop_bgr: np.ndarray | None) -> np.ndarray | None:
        if crop_bgr is None or not isinstance(crop_bgr, np.ndarray) or crop_bgr.size == 0:
            return None
        if crop_bgr.ndim not in (2, 3) or min(crop_bgr.shape[:2]) < MIN_CROP_SIDE_PX:
            return None
        if crop_bgr.ndim == 2:
            return cv2.cvtColor(crop_bgr, cv2.COLOR_GRAY2BGR)
        if crop_bgr.shape[2] == 4:
            return cv2.cvtColor(crop_bgr, cv2.COLOR_BGRA2BGR)
        if crop_bgr.shape[2] != 3:
            return None
        return crop_bgr if crop_bgr.dtype == np.uint8 else np.clip(crop_bgr, 0, 255).astype(np.uint8)

    def _fits(self, result: PlateResult | None) -> bool:
        return result is not None and (self.syntax is None or self.syntax.matches(result.text))

    def _read_plate_crop(self, image: np.ndarray) -> PlateResult | None:
        """A crop that is already a plate: its rows of characters are found by geometry
        (`plate_lines.find_char_rows`: tallest characters, number-like, near the middle)
        and read in that order (the text detector's lines when no row is found), then the
        whole crop, until a read fits the syntax. When none fits: the first row's read if
        its characters are number-sized, else the whole crop's (geometry, never the
        longest or most confident text)."""
        h, w = image.shape[:2]
        rows = find_char_rows(image)[:ROWS_TRIED]
        reads: list[tuple[float, PlateResult]] = []  # (character height / crop height, read)
        for i, row in enumerate(rows):
            x, y, bw, bh = row.box
            got = self._read_line(image[y : y + bh, x : x + bw], _box_quad(row.box))
            if got is not None:
                reads.append((row.char_height_px / h, got))
            # done unless a later row has clearly taller characters (a number under a slogan)
            if self._fits(got) and all(r.char_height_px <= TALLER * row.char_height_px for r in rows[i + 1 :]):
                break
        fitting = [hr for hr in reads if self._fits(hr[1])]
        if fitting:
            return max(fitting, key=lambda hr: hr[0])[1]
        if not rows and self.detect_fallback:
            for line in rank_plate_lines(self.backend.detect(image), (h, w))[: self.max_candidates]:
                got = self._read_line(rectify_quad(image, line.box.quad_px), line.box.quad_px)
                if self._fits(got):
                    return got
        whole = self._read_line(image, None)
        if self._fits(whole) or not reads or reads[0][0] < NUMBER_SIZED:
            return whole
        return reads[0][1]

    def _read_vehicle_crop(self, image: np.ndarray) -> PlateResult | None:
        """A vehicle: plate-like text lines in its lower part, the first that fits wins."""
        h, w = image.shape[:2]
        top = 0 if w / h >= 1.3 and h <= 160 else int(h * 0.3)
        first: PlateResult | None = None
        for box in self._plate_boxes(image[top:])[: self.max_candidates]:
            quad = box.quad_px + np.array([0.0, top])
            got = self._read_line(rectify_quad(image, quad), quad)
            if self._fits(got):
                return got
            first = first if first is not None and (got is None or first.confidence >= got.confidence) else got
        return first

    def _plate_boxes(self, image: np.ndarray) -> list[TextBox]:
        """Text lines that could be plates: plate-like aspect, tall enough, contrasty."""
        keep: list[tuple[float, TextBox]] = []
        for box in self.backend.detect(image):
            w, h = line_shape(box.quad_px)
            if h < MIN_PLATE_HEIGHT_PX or not 1.5 <= w / max(h, 1e-6) <= 12.0:
                continue
            x, y, bw, bh = cv2.boundingRect(box.quad_px.astype(np.float32))
            patch = image[max(y, 0) : y + bh, max(x, 0) : x + bw]
            if patch.size == 0 or plate_contrast(patch) < 40:
                continue
            # prefer confident, larger lines with a plate-like aspect (~2-6)
            aspect_fit = 1.0 if 2.0 <= w / h <= 6.5 else 0.7
            keep.append((box.score * aspect_fit * np.sqrt(w * h), box))
        keep.sort(key=lambda t: -t[0])
        return [b for _, b in keep]

    def _read_line(self, line_bgr: np.ndarray, quad: np.ndarray | None) -> PlateResult | None:
        if min(line_bgr.shape[:2]) < MIN_PLATE_HEIGHT_PX:
            return None
        result = self.read_read(self.backend.recognise(line_bgr, PLATE_ALPHABET))
        if result is None:
            return None
        return PlateResult(result.text, result.confidence, result.char_confidences, 1, quad)
