"""Licence-plate reading: find the plate in a vehicle crop, read it, repair it by the
site's plate format, and fuse reads over a track without stalling the frame loop.

- `PlateReader(plate_format, backend).read(crop_bgr) -> PlateResult | None`
- `TrackPlateFuser(reader, ...)`: `.offer(track_id, crop, quality)` from the frame loop,
  reads run on a bounded thread pool; `.result(track_id)` votes per character.
- `normalise_plate`, `PlateFormat.fit`, `fuse_reads` are pure and tested on their own.

Plate format: `L` a letter, `D` a digit, any other letter or digit a literal, anything
else (``-``, space) a separator that normalisation strips. "LLL-DDDD" -> 7 slots.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from trafficprn.analytics.ocr import PLATE_ALPHABET, OcrBackend, TextBox, TextRead, make_backend
from trafficprn.errors import ConfigError, InputError

log = logging.getLogger(__name__)

MIN_CROP_SIDE_PX = 12
MIN_PLATE_HEIGHT_PX = 6
# digit <-> letter confusions, repaired by position. The first four pairs are the classic
# ones (O/0, I/1, B/8, S/5); the others are common on worn or skewed plates.
TO_LETTER = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A", "7": "T"}
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "B": "8", "S": "5", "Z": "2",
            "G": "6", "A": "4", "T": "7"}  # fmt: skip


@dataclass(frozen=True)
class PlateResult:
    """A plate read. text: normalised (A-Z, 0-9); confidence in [0, 1].

    char_confidences: per character of text; reads: how many reads were fused into it;
    quad_px: (4, 2) plate corners in the crop's px when the reader located it.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    reads: int = 1
    quad_px: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "confidence": round(float(self.confidence), 4)}


def normalise_plate(text: str) -> str:
    """Upper-case and keep only A-Z and 0-9: 'abc-12 34' -> 'ABC1234'."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


@dataclass(frozen=True)
class PlateFormat:
    """A plate template: slots 'L' (letter), 'D' (digit) or a literal character."""

    template: str

    @classmethod
    def parse(cls, template: str | None) -> PlateFormat | None:
        if template is None or template == "":
            return None
        slots = "".join(c for c in template.upper() if c.isalnum())
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


def _line_shape(quad_px: np.ndarray) -> tuple[float, float]:
    """(width, height) in px of a text-line quad, width along its long side."""
    (_, _), (a, b), _ = cv2.minAreaRect(np.asarray(quad_px, dtype=np.float32))
    return (max(a, b), min(a, b))


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

    plate_format: the site's template ("LLL-DDDD"); None or "" accepts any 4-10 character
    read without repair. backend: "rapidocr" (default), "paddleocr", or an OcrBackend.
    min_confidence: reads below it are "no plate".
    """

    def __init__(
        self,
        plate_format: str | None = "LLL-DDDD",
        backend: str | OcrBackend = "rapidocr",
        *,
        threads: int = 1,
        min_confidence: float = 0.5,
        max_candidates: int = 3,
    ) -> None:
        self.format = PlateFormat.parse(plate_format)
        self.backend: OcrBackend = make_backend(backend, threads=threads) if isinstance(backend, str) else backend
        self.min_confidence = min_confidence
        self.max_candidates = max_candidates

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
        best: PlateResult | None = None
        if 1.3 <= w / h <= 7.0 and h <= 160:  # looks like a plate crop already
            best = self._better(best, self._read_line(image, None))
            if best is not None and best.confidence >= 0.9:
                return best
        top = 0 if best is not None or w / h >= 1.3 and h <= 160 else int(h * 0.3)
        region = image[top:]
        for box in self._plate_boxes(region)[: self.max_candidates]:
            quad = box.quad_px + np.array([0.0, top])
            line = rectify_quad(image, quad)
            best = self._better(best, self._read_line(line, quad))
        if best is None or best.confidence < self.min_confidence:
            return None
        return best

    def read_read(self, read: TextRead) -> PlateResult | None:
        """Normalise and repair a raw OCR read; None when it cannot be a plate."""
        text = normalise_plate(read.text)
        if len(text) != len(read.text):  # keep candidates aligned with text
            read = TextRead(text, read.confidence, read.char_confidences[: len(text)], read.candidates[: len(text)])
        if self.format is None:
            if not 4 <= len(text) <= 10:
                return None
            return PlateResult(text, read.confidence, read.char_confidences)
        fitted = self.format.fit_at(read)
        if fitted is None:
            return None
        fixed, repairs, start = fitted
        confs = list(read.char_confidences) or [read.confidence] * len(read.text)
        window = confs[start : start + len(fixed)]
        # each repaired or dropped character costs confidence
        penalty = 0.9**repairs
        char_conf = tuple(
            float(c) * (1.0 if a == b else 0.8) for c, a, b in zip(window, read.text[start:], fixed, strict=False)
        )
        return PlateResult(fixed, float(np.mean(char_conf)) * penalty, char_conf)

    # ------------------------------------------------------------ internals
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

    def _plate_boxes(self, image: np.ndarray) -> list[TextBox]:
        """Text lines that could be plates: plate-like aspect, tall enough, contrasty."""
        keep: list[tuple[float, TextBox]] = []
        for box in self.backend.detect(image):
            w, h = _line_shape(box.quad_px)
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

    @staticmethod
    def _better(a: PlateResult | None, b: PlateResult | None) -> PlateResult | None:
        if a is None:
            return b
        if b is None:
            return a
        return b if b.confidence > a.confidence else a


# ---------------------------------------------------------------- fusion
def fuse_reads(reads: list[PlateResult], length: int | None = None) -> PlateResult | None:
    """Vote per character over reads of one plate, weighted by character confidence.

    Only reads of `length` characters (the template's) vote; without a length, the
    length with the largest total confidence wins. Confidence of the result: the mean
    over positions of (winning weight / all weight at that position) x the winners'
    mean confidence, so disagreement and weak reads both lower it.
    """
    reads = [r for r in reads if r.text]
    if not reads:
        return None
    if length is None:
        totals: dict[int, float] = {}
        for r in reads:
            totals[len(r.text)] = totals.get(len(r.text), 0.0) + r.confidence
        length = max(totals, key=lambda k: totals[k])
    group = [r for r in reads if len(r.text) == length]
    if not group:
        return None
    chars: list[str] = []
    confs: list[float] = []
    for pos in range(length):
        votes: dict[str, list[float]] = {}
        for r in group:
            c = r.char_confidences[pos] if len(r.char_confidences) == length else r.confidence
            votes.setdefault(r.text[pos], []).append(float(c))
        winner = max(votes, key=lambda ch: sum(votes[ch]))
        total = sum(sum(v) for v in votes.values())
        share = sum(votes[winner]) / total if total > 0 else 0.0
        chars.append(winner)
        confs.append(share * float(np.mean(votes[winner])))
    support = len(group) / len(reads)
    return PlateResult("".join(chars), float(np.mean(confs)) * support, tuple(confs), len(group))


@dataclass
class FuserStats:
    offered: int = 0
    submitted: int = 0
    dropped: int = 0
    read: int = 0
    no_plate: int = 0
    failed: int = 0


@dataclass
class _TrackState:
    reads: list[tuple[float, PlateResult]] = field(default_factory=list)  # (quality, read)
    read_qualities: list[float] = field(default_factory=list)  # of every submitted crop
    pending: int = 0
    submitted: int = 0


class TrackPlateFuser:
    """Reads plates of tracks in the background and fuses them per track.

    offer() never blocks: a crop is submitted only when it would be among the track's
    `reads_per_track` best by quality, the track has no read in flight, and fewer than
    `max_pending` reads wait in the pool; otherwise it is dropped (and counted). Each
    track submits at most 2 x reads_per_track crops. State is bounded (`max_tracks`,
    least recently offered evicted); call forget() when a track ends. With warm_up the
    reader's models load on the worker right away. Worker threads run at `worker_nice`
    (Linux per-thread nice), so the frame loop wins the CPU when both want it.
    """

    def __init__(
        self,
        reader: PlateReader,
        *,
        max_workers: int = 1,
        max_pending: int = 8,
        reads_per_track: int = 3,
        min_quality: float = 0.0,
        max_tracks: int = 512,
        warm_up: bool = True,
        worker_nice: int = 10,
    ) -> None:
        if max_workers < 1 or max_pending < 1 or reads_per_track < 1:
            raise ConfigError(
                f"expected max_workers, max_pending and reads_per_track >= 1, got "
                f"{max_workers}, {max_pending}, {reads_per_track}"
            )
        self.reader = reader
        self.max_pending = max_pending
        self.reads_per_track = reads_per_track
        self.min_quality = min_quality
        self.max_tracks = max_tracks
        self.stats = FuserStats()
        self.worker_nice = worker_nice
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="plate-ocr", initializer=self._lower_priority
        )
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._pending = 0
        self._tracks: OrderedDict[int, _TrackState] = OrderedDict()
        self._closed = False
        if warm_up:  # load the models on the worker, not on the first offer's critical path
            self._pool.submit(self._warm_up)

    def _lower_priority(self) -> None:
        """Run OCR threads at a lower OS priority (Linux: per-thread nice), so that under
        load the frame loop keeps its core and OCR takes what is left (and drops)."""
        if self.worker_nice <= 0 or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.worker_nice)
        except OSError:  # not permitted here: run at normal priority
            log.debug("could not lower the plate OCR thread's priority")

    def _warm_up(self) -> None:
        try:
            self.reader.warm_up()
        except Exception:  # reported again, with its cause, by the first real read
            log.exception("plate reader warm-up failed")

    def offer(self, track_id: int, crop_bgr: np.ndarray, quality: float) -> bool:
        """Offer a crop of a track; True when it was queued for reading. Never blocks."""
        with self._lock:
            if self._closed:
                raise InputError("TrackPlateFuser is closed")
            self.stats.offered += 1
            state = self._tracks.get(track_id)
            if state is None:
                state = self._tracks[track_id] = _TrackState()
                while len(self._tracks) > self.max_tracks:
                    self._tracks.popitem(last=False)
            else:
                self._tracks.move_to_end(track_id)
            if not self._wanted(state, quality):
                return False
            if self._pending >= self.max_pending:
                self.stats.dropped += 1
                return False
            state.pending += 1
            state.submitted += 1
            state.read_qualities.append(float(quality))
            self._pending += 1
            self.stats.submitted += 1
        crop = np.array(crop_bgr, copy=True)
        future = self._pool.submit(self.reader.read, crop)
        future.add_done_callback(lambda f: self._finish(track_id, state, float(quality), f))
        return True

    def _wanted(self, state: _TrackState, quality: float) -> bool:
        if quality < self.min_quality or state.pending > 0 or state.submitted >= 2 * self.reads_per_track:
            return False
        best = sorted(state.read_qualities, reverse=True)[: self.reads_per_track]
        if len(best) < self.reads_per_track:
            # while filling up, only crops clearly better than the last one
            return not best or quality > 1.25 * state.read_qualities[-1]
        return quality > 1.25 * best[-1]

    def _finish(self, track_id: int, state: _TrackState, quality: float, future: Future[PlateResult | None]) -> None:
        with self._lock:
            self._pending -= 1
            state.pending -= 1
            try:
                result = None if future.cancelled() else future.result()
            except Exception:  # a bad crop must not kill the worker
                log.exception("plate read failed for track %s", track_id)
                self.stats.failed += 1
                result = None
            if result is None:
                self.stats.no_plate += 1
            else:
                self.stats.read += 1
                if self._tracks.get(track_id) is state:
                    state.reads.append((quality, result))
            self._done.notify_all()

    def result(self, track_id: int, *, wait_s: float = 0.0) -> PlateResult | None:
        """The fused plate of a track so far (None: no plate yet). wait_s > 0 waits up
        to that long for the track's reads in flight (offline processing)."""
        with self._lock:
            state = self._tracks.get(track_id)
            if state is None:
                return None
            if wait_s > 0:
                self._done.wait_for(lambda: state.pending == 0, timeout=wait_s)
            best = sorted(state.reads, key=lambda qr: -qr[0])[: self.reads_per_track]
        length = len(self.reader.format) if self.reader.format is not None else None
        return fuse_reads([r for _, r in best], length)

    def forget(self, track_id: int) -> None:
        """Drop a track's state; reads still in flight for it are discarded."""
        with self._lock:
            self._tracks.pop(track_id, None)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until no read is in flight; True if that happened within timeout_s."""
        with self._lock:
            return self._done.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self) -> None:
        """Stop the pool: queued reads are cancelled, running ones finish."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TrackPlateFuser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
