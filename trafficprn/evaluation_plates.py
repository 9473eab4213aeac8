"""Plate reading on real photographs: load the sets of `datasets/plates.yaml` from a git
mirror, read every plate and score exact matches, with the raw OCR engine beside it.

    sets = load_plate_sets(Path("/work/.mirror"), role="eval")
    score = score_plates(PlateReader("auto"), sets["openalpr-endtoend-eu"])
    print(format_score("eu auto", score))

A sample is an image and a plate box (x, y, w, h px; the whole image for crop sets) with
its text; the reader gets the box's crop, as `trafficprn plate --box` does. Exact: the
read's normalised text equals the label's. The raw anchor recognises the same crop with
the OCR backend alone (greedy CTC, plate alphabet), no plate logic.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from trafficprn.analytics.ocr import PLATE_ALPHABET, OcrBackend, TextBox, TextRead
from trafficprn.analytics.plate_decode import DecodeParams
from trafficprn.analytics.plates import PlateReader, PlateResult, normalise_plate
from trafficprn.datasets.mirror import GitSnapshot
from trafficprn.errors import InputError

MANIFEST = Path(__file__).with_name("datasets") / "plates.yaml"


@dataclass(frozen=True)
class PlateSample:
    """One labelled plate. box: (x, y, w, h) in image px, or None for the whole image."""

    name: str
    image_bgr: np.ndarray = field(repr=False)
    box: tuple[int, int, int, int] | None
    text: str

    def crop(self) -> np.ndarray:
        if self.box is None:
            return self.image_bgr
        x, y, w, h = self.box
        ih, iw = self.image_bgr.shape[:2]
        return self.image_bgr[max(y, 0) : min(y + h, ih), max(x, 0) : min(x + w, iw)]


@dataclass(frozen=True)
class PlateSource:
    """A manifest entry (see datasets/plates.yaml)."""

    id: str
    repo: str
    commit: str
    path: str
    layout: str
    region: str
    role: str
    licence: str
    labels: str | None = None
    expected: int | None = None


@dataclass
class PlateScore:
    """Exact reads of one set. rows: (name, truth, read or None); ms: per read."""

    rows: list[tuple[str, str, str | None]] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def exact(self) -> int:
        return sum(truth == read for _, truth, read in self.rows)

    @property
    def rate(self) -> float:
        return self.exact / self.n if self.n else 0.0

    def merged(self, other: PlateScore) -> PlateScore:
        return PlateScore(self.rows + other.rows, self.ms + other.ms)


def load_manifest(path: Path = MANIFEST) -> list[PlateSource]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for s in raw["sources"]:
        expected = (s.get("expected") or {}).get("plates")
        keys = ("id", "repo", "commit", "path", "layout", "region", "role", "licence")
        out.append(PlateSource(**{k: str(s[k]) for k in keys}, labels=s.get("labels"), expected=expected))
    return out


def _decode(data: bytes, name: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot decode image {name!r}")
    return image


def _box_samples(snap: GitSnapshot, src: PlateSource) -> list[PlateSample]:
    """endtoend layout: IMAGE.txt holds 'file x y w h TEXT' per image."""
    out = []
    for path in snap.list_files(src.path):
        if not path.endswith(".txt"):
            continue
        parts = snap.read(path).decode("utf-8").split()
        if len(parts) < 6:
            continue
        folder = path.rsplit("/", 1)[0]
        x, y, w, h = (int(p) for p in parts[1:5])
        image = _decode(snap.read(f"{folder}/{parts[0]}"), parts[0])
        out.append(PlateSample(parts[0], image, (x, y, w, h), normalise_plate(parts[5])))
    return out


def _crop_samples(snap: GitSnapshot, src: PlateSource) -> list[PlateSample]:
    """seg_and_ocr layout: a CSV of file,state,text beside a folder of plate crops."""
    if src.labels is None:
        raise InputError(f"plate source {src.id} has layout 'crops' but no labels file")
    out = []
    for row in csv.reader(io.StringIO(snap.read(src.labels).decode("utf-8"))):
        if len(row) >= 3 and row[0].strip():
            image = _decode(snap.read(f"{src.path}/{row[0].strip()}"), row[0])
            out.append(PlateSample(row[0].strip(), image, None, normalise_plate(row[2])))
    return out


def load_plate_sets(mirror: Path, role: str | None = None, ids: Iterable[str] | None = None) -> dict[str, list[PlateSample]]:
    """The manifest's sets (optionally one role or some ids) read from the mirror."""
    wanted = set(ids) if ids is not None else None
    sets: dict[str, list[PlateSample]] = {}
    for src in load_manifest():
        if (role is not None and src.role != role) or (wanted is not None and src.id not in wanted):
            continue
        with GitSnapshot(mirror, src.repo, src.commit) as snap:
            loader = _crop_samples if src.layout == "crops" else _box_samples
            sets[src.id] = loader(snap, src)
    return sets


def score_plates(read: Callable[[np.ndarray], PlateResult | None], samples: list[PlateSample]) -> PlateScore:
    """Read every sample's crop; the read's text (or None) against the label, with ms per read."""
    score = PlateScore()
    for sample in samples:
        crop = sample.crop()
        start = time.perf_counter()
        result = read(crop)
        score.ms.append((time.perf_counter() - start) * 1000)
        score.rows.append((sample.name, sample.text, None if result is None else result.text))
    return score


def raw_reader(backend: OcrBackend) -> Callable[[np.ndarray], PlateResult | None]:
    """The OCR engine alone on the crop (the public anchor): its greedy read, normalised."""

    def read(crop: np.ndarray) -> PlateResult | None:
        got = backend.recognise(crop, PLATE_ALPHABET)
        return PlateResult(normalise_plate(got.text), got.confidence) if got.text else None

    return read


def format_score(label: str, score: PlateScore) -> str:
    ms = np.array(score.ms) if score.ms else np.zeros(1)
    return (
        f"{label:<28} exact {score.exact:4d}/{score.n:<4d} {100 * score.rate:5.1f} %   "
        f"median {np.median(ms):6.1f} ms  p95 {np.percentile(ms, 95):6.1f} ms"
    )


def region_of(source_id: str) -> str:
    """The region a manifest set is scored with (its `region` field)."""
    for src in load_manifest():
        if src.id == source_id:
            return src.region
    raise InputError(f"no plate source {source_id!r} in {MANIFEST}")


def real_report(mirror: Path, backend: OcrBackend) -> list[str]:
    """Exact-match lines per eval set: the raw engine, the reader with `auto` and with the
    set's region format (one spec per set, never per plate); then pooled over every set,
    and over every set but the US one (the issue's "at least two regions")."""
    scores: dict[str, dict[str, PlateScore]] = {}  # region -> kind -> score
    lines: list[str] = []
    for sid, samples in load_plate_sets(mirror, role="eval").items():
        region = region_of(sid)
        runs = {"raw": score_plates(raw_reader(backend), samples)}
        for kind, spec in (("auto", "auto"), ("region", region)):
            reader = PlateReader(spec, backend)
            reader.warm_up()
            runs[kind] = score_plates(reader.read, samples)
        lines += [format_score(f"{region} {kind}" + (f" ({region})" if kind == "region" else ""), score)
                  for kind, score in runs.items()]  # fmt: skip
        scores[region] = runs
    for label, regions in (("pooled", list(scores)), ("pooled " + "+".join(r for r in scores if r != "us"),
                                                        [r for r in scores if r != "us"])):  # fmt: skip
        for kind in ("raw", "auto", "region"):
            parts = [scores[r][kind] for r in regions]
            total = parts[0]
            for part in parts[1:]:
                total = total.merged(part)
            lines.append(format_score(f"{label} {kind}", total))
    return lines


class CachedBackend:
    """An OcrBackend that remembers its answers per image: a parameter sweep then reruns
    the decoder alone (the tune section)."""

    def __init__(self, backend: OcrBackend) -> None:
        self.inner = backend
        self.name = f"cached-{backend.name}"
        self._boxes: dict[tuple[bytes, tuple[int, ...]], list[TextBox]] = {}
        self._reads: dict[tuple[str | None, bytes, tuple[int, ...]], TextRead] = {}

    @staticmethod
    def _key(image: np.ndarray) -> tuple[bytes, tuple[int, ...]]:
        return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest(), image.shape

    def detect(self, image_bgr: np.ndarray) -> list[TextBox]:
        key = self._key(image_bgr)
        if key not in self._boxes:
            self._boxes[key] = self.inner.detect(image_bgr)
        return self._boxes[key]

    def recognise(self, crop_bgr: np.ndarray, alphabet: str | None = PLATE_ALPHABET) -> TextRead:
        key = (alphabet, *self._key(crop_bgr))
        if key not in self._reads:
            self._reads[key] = self.inner.recognise(crop_bgr, alphabet)
        return self._reads[key]


def tune_report(mirror: Path, backend: OcrBackend, specs: Iterable[str] = ("us", "auto")) -> list[str]:
    """Exact rate on the tune set (role: tune) over a grid of decoder parameters: how the
    defaults of `plate_decode.DecodeParams` were chosen. Never run on an eval set."""
    cached = CachedBackend(backend)
    lines = []
    for sid, samples in load_plate_sets(mirror, role="tune").items():
        for spec in specs:
            for rare, free in itertools.product((0.0, 1.2, 2.5), (0.3, 1.0, 2.5)):
                params = DecodeParams(rare_letter_nats=rare, free_penalty_nats=free)
                score = score_plates(PlateReader(spec, cached, params=params).read, samples)
                lines.append(f"{sid} {spec:<5} rare_letter_nats {rare:3.1f} free_penalty_nats {free:3.1f}  "
                             f"exact {100 * score.rate:5.1f} %")  # fmt: skip
    return lines
