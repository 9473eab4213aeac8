"""OCR backends for plate reading: find text lines in an image, recognise a line crop.

`OcrBackend` is the interface the plate reader codes against. The default,
`RapidOcrBackend`, runs the PP-OCR detection and recognition ONNX models that the
`rapidocr` wheel ships, on ONNX Runtime, fully offline: model paths are given
explicitly so rapidocr's download path is never taken. `PaddleOcrBackend` is optional
and needs `paddleocr` plus model folders on disk.

Recognition here is our own CTC decode of the recognition model's output, so that the
alphabet can be restricted (plates hold A-Z and 0-9, the model knows ~18,700 symbols)
and so that each character comes with its probability and runner-up candidates, which
the plate reader uses for position-wise repair and per-character voting.
"""

from __future__ import annotations

import importlib
import importlib.util
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from trafficprn.errors import ConfigError, DependencyError, InputError

PLATE_ALPHABET = string.ascii_uppercase + string.digits
RAPIDOCR_INSTALL = "install it with `pip install 'rapidocr>=3,<4' onnxruntime` (its wheel ships the models)"
PADDLEOCR_INSTALL = (
    "install it with `pip install paddleocr paddlepaddle` and download the PP-OCR detection and "
    "recognition model folders on a machine with internet, then pass det_model_dir and rec_model_dir"
)
REC_HEIGHT_PX = 48
TOP_K = 4


@dataclass(frozen=True)
class TextBox:
    """One detected text line. quad_px: (4, 2) corners in image px, clockwise from top-left."""

    quad_px: np.ndarray
    score: float


@dataclass(frozen=True)
class TextRead:
    """A recognised line.

    text: the decoded characters (restricted to the allowed alphabet when one was given).
    confidence: mean character probability in [0, 1] (0 for an empty read).
    char_confidences: probability of each character of `text`.
    candidates: per character, up to TOP_K (char, probability) pairs, best first; empty
    when the backend cannot tell (e.g. paddleocr).
    ctc: the recogniser's per-timestep probabilities (T, 1 + 36): column 0 the CTC blank
    plus every symbol outside PLATE_ALPHABET (separators, punctuation), then A-Z, 0-9 (upper
    and lower case summed); None when the backend cannot give them. The plate decoder
    (`plate_decode`) reads plates from this matrix under the plate syntax.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    candidates: tuple[tuple[tuple[str, float], ...], ...] = field(default=())
    ctc: np.ndarray | None = field(default=None, compare=False, repr=False)


class OcrBackend(Protocol):
    """Text-line detection and recognition on BGR uint8 images (H, W, 3)."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> list[TextBox]: ...

    def recognise(self, crop_bgr: np.ndarray, alphabet: str | None = PLATE_ALPHABET) -> TextRead: ...


def make_backend(name: str = "rapidocr", *, threads: int = 1, **options: Any) -> OcrBackend:
    """Build an OCR backend by name: "rapidocr" (default, offline) or "paddleocr"."""
    if name == "rapidocr":
        return RapidOcrBackend(threads=threads, **options)
    if name == "paddleocr":
        return PaddleOcrBackend(**options)
    raise ConfigError(f"unknown OCR backend {name!r}; expected 'rapidocr' or 'paddleocr'", field="backend")


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        shape = getattr(image, "shape", None)
        raise InputError(f"{what} must be a non-empty BGR image array (H, W, 3), got shape {shape}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


class RapidOcrBackend:
    """PP-OCR det + rec from the rapidocr wheel on ONNX Runtime, limited to `threads`.

    model_dir: folder with the .onnx files (default: the installed rapidocr's models/).
    det_side_px: the detector input's shorter side is scaled to this (multiple of 32);
    smaller is faster, larger finds smaller text.
    """

    name = "rapidocr"
    DET_MODEL = "PP-OCRv6_det_small.onnx"
    REC_MODEL = "PP-OCRv6_rec_small.onnx"

    def __init__(self, *, threads: int = 1, model_dir: str | Path | None = None, det_side_px: int = 256) -> None:
        if importlib.util.find_spec("rapidocr") is None:
            raise DependencyError(f"the rapidocr OCR backend is not installed; {RAPIDOCR_INSTALL}")
        if importlib.util.find_spec("onnxruntime") is None:
            raise DependencyError("onnxruntime is not installed; install it with `pip install onnxruntime`")
        if model_dir is None:
            spec = importlib.util.find_spec("rapidocr")
            origin = spec.origin if spec is not None else None
            model_dir = Path(origin).parent / "models" if origin else Path("rapidocr-models")
        self.model_dir = Path(model_dir)
        self.det_path = self.model_dir / self.DET_MODEL
        self.rec_path = self.model_dir / self.REC_MODEL
        for path in (self.det_path, self.rec_path):
            if not path.is_file():
                raise DependencyError(f"OCR model {path} is missing; {RAPIDOCR_INSTALL}, or pass model_dir")
        self.threads = threads
        self.det_side_px = int(round(det_side_px / 32) * 32) or 32
        self._det: Any = None
        self._rec: Any = None
        self._characters: list[str] = []
        self._plate_columns: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ sessions (lazy)
    def _session_options(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return opts

    def _load(self) -> None:
        with self._lock:
            if self._rec is not None:
                return
            import onnxruntime as ort
            from rapidocr.ch_ppocr_det.utils import DBPostProcess, DetPreProcess

            providers = ["CPUExecutionProvider"]
            det = ort.InferenceSession(str(self.det_path), sess_options=self._session_options(), providers=providers)
            rec = ort.InferenceSession(str(self.rec_path), sess_options=self._session_options(), providers=providers)
            meta = rec.get_modelmeta().custom_metadata_map
            if "character" not in meta:
                raise DependencyError(f"OCR model {self.rec_path} has no character table; {RAPIDOCR_INSTALL}")
            # index 0 is the CTC blank; the model's table follows, then a space.
            self._characters = ["", *meta["character"].splitlines(), " "]
            self._det_pre = DetPreProcess(self.det_side_px, "min", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
            self._det_post = DBPostProcess(
                thresh=0.3, box_thresh=0.5, max_candidates=100, unclip_ratio=1.6, use_dilation=True
            )
            self._plate_columns = self._plate_column_map()
            self._det = det
            self._rec = rec

    def _plate_column_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(model class indices, their PLATE_ALPHABET column 1..36) for the plate symbols."""
        src, dst = [], []
        for i, ch in enumerate(self._characters):
            if i > 0 and len(ch) == 1 and ch.upper() in PLATE_ALPHABET:
                src.append(i)
                dst.append(1 + PLATE_ALPHABET.index(ch.upper()))
        return np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp)

    def plate_probs(self, probs: np.ndarray) -> np.ndarray:
        """(T, C) model probabilities -> (T, 37): blank and non-plate symbols, A-Z, 0-9."""
        self._load()
        if self._plate_columns is None:
            raise DependencyError(f"OCR model {self.rec_path} has no character table; {RAPIDOCR_INSTALL}")
        src, dst = self._plate_columns
        out = np.zeros((probs.shape[0], 1 + len(PLATE_ALPHABET)), dtype=np.float64)
        np.add.at(out.T, dst, probs[:, src].T.astype(np.float64))
        out[:, 0] = np.clip(1.0 - out[:, 1:].sum(axis=1), 1e-12, 1.0)
        return out

    def _alphabet_mask(self, alphabet: str | None, n_classes: int) -> np.ndarray:
        mask = np.zeros(n_classes, dtype=bool)
        if alphabet is None:
            mask[:] = True
            return mask
        allowed = set(alphabet)
        for i, ch in enumerate(self._characters[:n_classes]):
            mask[i] = i == 0 or ch in allowed or ch.upper() in allowed
        return mask

    # ------------------------------------------------------------ detection
    def detect(self, image_bgr: np.ndarray) -> list[TextBox]:
        """Text lines in the image, as quads in the image's px, best first."""
        image_bgr = _check_image(image_bgr, "image")
        self._load()
        h, w = image_bgr.shape[:2]
        if min(h, w) < 8:
            return []
        tensor = self._det_pre(image_bgr)
        if tensor is None:
            return []
        pred = self._det.run(None, {self._det.get_inputs()[0].name: tensor})[0]
        quads, scores = self._det_post(pred, (h, w))
        boxes = [
            TextBox(np.asarray(q, dtype=np.float64).reshape(4, 2), float(s)) for q, s in zip(quads, scores, strict=True)
        ]
        return sorted(boxes, key=lambda b: -b.score)

    # ------------------------------------------------------------ recognition
    def recognise(self, crop_bgr: np.ndarray, alphabet: str | None = PLATE_ALPHABET) -> TextRead:
        """Read one text line. The crop is scaled to height 48 px; alphabet restricts the
        output symbols (None: all the model knows). Lower-case maps to upper-case."""
        crop_bgr = _check_image(crop_bgr, "crop")
        self._load()
        h, w = crop_bgr.shape[:2]
        width_px = max(16, min(1600, int(np.ceil(REC_HEIGHT_PX * w / max(h, 1)))))
        resized = cv2.resize(crop_bgr, (width_px, REC_HEIGHT_PX), interpolation=cv2.INTER_LINEAR)
        # no padding to rapidocr's nominal 320 px: the model takes any width, a plate is
        # ~200 px wide at height 48, and padding cost ~1.6x the time for the same reads.
        tensor = (resized.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)[None]
        probs = self._rec.run(None, {self._rec.get_inputs()[0].name: tensor})[0][0]  # (T, C)
        read = self._decode(probs, alphabet)
        if alphabet != PLATE_ALPHABET:
            return read
        return TextRead(read.text, read.confidence, read.char_confidences, read.candidates, self.plate_probs(probs))

    def _decode(self, probs: np.ndarray, alphabet: str | None) -> TextRead:
        """Greedy CTC decode over the allowed symbols, with per-character candidates."""
        mask = self._alphabet_mask(alphabet, probs.shape[1])
        masked = np.where(mask, probs, 0.0)
        best = masked.argmax(axis=1)
        text: list[str] = []
        confs: list[float] = []
        cands: list[tuple[tuple[str, float], ...]] = []
        prev = -1
        for t, idx in enumerate(best):
            if idx != 0 and idx != prev:
                row = masked[t]
                top = np.argsort(row)[::-1][: TOP_K + 1]
                options: dict[str, float] = {}
                for j in top:
                    if j == 0 or row[j] <= 0:
                        continue
                    ch = self._characters[j].upper()
                    options[ch] = options.get(ch, 0.0) + float(row[j])
                ranked = tuple(sorted(options.items(), key=lambda kv: -kv[1])[:TOP_K])
                if ranked:
                    text.append(ranked[0][0])
                    confs.append(min(1.0, ranked[0][1]))
                    cands.append(ranked)
            prev = int(idx)
        conf = float(np.mean(confs)) if confs else 0.0
        return TextRead("".join(text), conf, tuple(confs), tuple(cands))


class PaddleOcrBackend:
    """PaddleOCR (3.x) text detection and recognition from local model folders.

    paddleocr downloads models at first use, which fails offline; here both model
    folders must be given and exist, otherwise a DependencyError says what to do.
    """

    name = "paddleocr"

    def __init__(self, *, det_model_dir: str | Path | None = None, rec_model_dir: str | Path | None = None) -> None:
        if importlib.util.find_spec("paddleocr") is None:
            raise DependencyError(f"the paddleocr OCR backend is not installed; {PADDLEOCR_INSTALL}")
        for label, path in (("det_model_dir", det_model_dir), ("rec_model_dir", rec_model_dir)):
            if path is None or not Path(path).is_dir():
                raise DependencyError(
                    f"paddleocr needs a local model folder for {label} (got {path}); {PADDLEOCR_INSTALL}"
                )
        paddleocr = importlib.import_module("paddleocr")
        self._det = paddleocr.TextDetection(model_dir=str(det_model_dir))
        self._rec = paddleocr.TextRecognition(model_dir=str(rec_model_dir))

    def detect(self, image_bgr: np.ndarray) -> list[TextBox]:
        image_bgr = _check_image(image_bgr, "image")
        boxes: list[TextBox] = []
        for res in self._det.predict(input=image_bgr):
            for quad, score in zip(res["dt_polys"], res["dt_scores"], strict=True):
                boxes.append(TextBox(np.asarray(quad, dtype=np.float64).reshape(4, 2), float(score)))
        return sorted(boxes, key=lambda b: -b.score)

    def recognise(self, crop_bgr: np.ndarray, alphabet: str | None = PLATE_ALPHABET) -> TextRead:
        crop_bgr = _check_image(crop_bgr, "crop")
        for res in self._rec.predict(input=crop_bgr):
            raw = str(res["rec_text"]).upper()
            text = "".join(c for c in raw if alphabet is None or c in alphabet)
            score = float(res["rec_score"])
            return TextRead(text, score if text else 0.0, tuple(score for _ in text))
        return TextRead("", 0.0)
