"""Rebuild the real-image training, evaluation and hard-negative sets from the manifest
(`trafficprn/datasets/manifest.yaml`) and local git mirrors of the source repositories.

Each manifest source names a repository, a commit and a folder in it, the label format
there (YOLO, VOC, COCO, or bare images for negatives and frames), and how its classes
map onto ours. The build reads every file straight out of the mirror at that commit
(nothing is downloaded: a missing mirror is an error that says what to fetch), resizes
each image so its long side is at most the split's limit, maps the boxes and writes a
YOLO folder per source (training) or per camera type (evaluation):

    OUT/train/<source>/images/{train,val}/*.jpg  + labels/...   one folder per source
    OUT/train/data.yaml                            train: every source's images/train
    OUT/eval/<camera type>/images, labels, data.yaml
    OUT/fisheye-frames/*.jpg                       unlabelled frames for the model card

What goes to `val` is decided per image group (a Roboflow export's augmented copies of
one photograph share a group) by a hash, so a rebuild makes the same split. Images the
snapshot lacks (files of 4 MiB and more are left out of mirrors) are skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trafficprn.datasets.formats import IMAGE_SUFFIXES, parse_coco_json, parse_voc_xml, parse_yolo_labels
from trafficprn.datasets.mirror import GitSnapshot, MissingBlobError
from trafficprn.errors import ConfigError, InputError

CLASSES = ("car", "bus", "truck", "motorcycle", "bicycle")
ClassName = Literal["car", "bus", "truck", "motorcycle", "bicycle"]
MANIFEST = Path(__file__).with_name("manifest.yaml")
FloatArray = npt.NDArray[np.float64]


class SourceCounts(BaseModel):
    """What the build writes from a source (checked after each build)."""

    model_config = ConfigDict(extra="forbid")
    images: int = Field(description="images written (train + val, or eval)")
    boxes: dict[ClassName, int] = Field(default_factory=dict, description="boxes written per class")


class Source(BaseModel):
    """One folder of one repository snapshot, and what to do with it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="short name; the output folder")
    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", description="owner/name on GitHub")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the snapshot's commit")
    path: str = Field(description="folder inside the repository")
    format: Literal["yolo", "voc", "coco", "images"]
    names: list[str] = Field(default_factory=list, description="YOLO class names by id (the source's data.yaml)")
    class_map: dict[str, ClassName] = Field(default_factory=dict, description="source class name -> ours")
    drop: list[str] = Field(default_factory=list, description="source classes deliberately dropped")
    split: Literal["train", "eval", "negatives", "frames"]
    eval_set: str | None = Field(default=None, description="eval folder (camera type) for split eval")
    camera: str = Field(description="street-cctv, highway, street-photo, overhead, fisheye, background")
    licence: str = Field(description="as stated by the source; 'unstated' if it states none")
    machine_labels: str = Field(description="which labels are machine-made ('none' if all manual)")
    origin: str = Field(description="the original dataset the images come from")
    include: list[str] = Field(default_factory=list, description="regexes on the path below `path`; any must match")
    exclude: list[str] = Field(default_factory=list, description="regexes on the path below `path`; none may match")
    files_list: str | None = Field(
        default=None,
        description="file (beside the manifest) naming the only images to take, one path below `path` a line",
    )
    group_regex: str | None = Field(
        default=None, description="regex on the file name whose first group names an image's group (e.g. its video)"
    )
    max_side_px: int | None = Field(default=None, description="override the split's long-side limit")
    jpeg_quality: int | None = Field(default=None, ge=30, le=100, description="override the split's JPEG quality")
    denoise: Literal["none", "median3"] = Field(default="none", description="median3: undo salt-and-pepper noise")
    resize_aspect: float | None = Field(
        default=None,
        gt=0,
        description="undo an export's stretch: resize each image to this width/height ratio (its height kept)",
    )
    one_per_group: bool = Field(default=False, description="keep one image per group (an export's augmented copies)")
    max_images: int | None = Field(default=None, description="keep this many (a hash decides which)")
    val_percent: int = Field(default=5, ge=0, le=50, description="share of train image groups held out as val")
    unlabelled_is_negative: bool = Field(default=False, description="YOLO image without a label file: no boxes")
    min_box_px: float = Field(default=2.0, description="boxes narrower or lower than this after resizing go")
    filtered: str = Field(default="", description="what was left out and why")
    expected: SourceCounts | None = Field(default=None, description="what the build wrote last time")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    classes: list[str]
    max_side_px: dict[Literal["train", "eval", "negatives", "frames"], int]
    jpeg_quality: dict[Literal["train", "eval", "negatives", "frames"], int]
    sources: list[Source]


def load_manifest(path: Path = MANIFEST) -> Manifest:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the manifest: {exc}", source=str(path)) from exc
    except ValidationError as exc:
        raise ConfigError(str(exc), source=str(path)) from exc
    if tuple(manifest.classes) != CLASSES:
        raise ConfigError(f"classes must be {list(CLASSES)}, got {manifest.classes}", source=str(path))
    ids = [s.id for s in manifest.sources]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"source ids must be unique: {sorted(i for i in ids if ids.count(i) > 1)}", source=str(path))
    for s in manifest.sources:
        if s.split == "eval" and not s.eval_set:
            raise ConfigError(f"source {s.id}: an eval source needs eval_set", source=str(path))
    return manifest


@dataclass(frozen=True)
class Item:
    """One image to write: its path in the repository and its boxes in that image's px
    (`size` is the labelled size, (0, 0) when the label does not say)."""

    path: str
    boxes_xyxy: FloatArray
    class_names: tuple[str, ...]
    size: tuple[int, int] = (0, 0)
    group: str = ""


@dataclass
class SourceReport:
    id: str
    split: str
    images: int = 0
    boxes: Counter[str] = field(default_factory=Counter)
    dropped_boxes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def counts(self) -> SourceCounts:
        boxes = {c: self.boxes[c] for c in CLASSES if self.boxes[c]}
        return SourceCounts.model_validate({"images": self.images, "boxes": boxes})


def _is_image(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES


def _group_of(path: str, group_regex: str | None = None) -> str:
    """An image's group: what `group_regex` captures from its file name, else the
    original photograph (Roboflow names augmented copies `<original>_jpg.rf.<hash>.jpg`)."""
    name = PurePosixPath(path).name
    if group_regex:
        match = re.search(group_regex, name)
        if match:
            return match.group(1)
    return name.split(".rf.")[0]


def _yolo_label_of(path: str) -> str:
    parts = list(PurePosixPath(path).parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return str(PurePosixPath(*parts).with_suffix(".txt"))


def _root(source: Source) -> str:
    """The source folder as a path prefix ("" for the repository root)."""
    return source.path.strip("/") + "/" if source.path.strip("./") else ""


def _selected(source: Source, paths: Sequence[str], listed: set[str] | None = None) -> list[str]:
    root = _root(source)
    inc = [re.compile(p) for p in source.include]
    exc = [re.compile(p) for p in source.exclude]
    out = []
    for p in paths:
        rel = p[len(root) :]
        if listed is not None and rel not in listed:
            continue
        if inc and not any(r.search(rel) for r in inc):
            continue
        if any(r.search(rel) for r in exc):
            continue
        out.append(p)
    return out


def _hash(*parts: str) -> int:
    return int(hashlib.sha1("\0".join(parts).encode("utf-8", errors="surrogateescape")).hexdigest()[:12], 16)


def read_files_list(source: Source, manifest_dir: Path) -> set[str] | None:
    """The source's `files_list` (paths below `path`, one a line, `#` comments), if any."""
    if source.files_list is None:
        return None
    path = manifest_dir / source.files_list
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"source {source.id}: cannot read files_list {path}: {exc}") from exc
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def enumerate_items(
    source: Source, snap: GitSnapshot, report: SourceReport, listed: set[str] | None = None
) -> list[Item]:
    """Every labelled image of the source, before subsampling."""
    files = snap.list_files(source.path)
    present = set(files)
    items: list[Item] = []
    if listed is not None:
        root = _root(source)
        missing = sorted(listed - {f[len(root) :] for f in files})
        if missing:
            raise InputError(
                f"source {source.id}: files_list names {len(missing)} files not in the snapshot, e.g. {missing[:3]}"
            )
    if source.format in ("yolo", "images"):
        for p in _selected(source, [f for f in files if _is_image(f)], listed):
            if source.format == "images":
                items.append(Item(p, np.zeros((0, 4)), (), group=_group_of(p, source.group_regex)))
                continue
            label = _yolo_label_of(p)
            if label not in present and not source.unlabelled_is_negative:
                report.skipped["no label file"] += 1
                continue
            text = snap.read(label).decode("utf-8-sig") if label in present else ""
            # YOLO labels are normalised: boxes are scaled once the image size is known
            boxes, names = parse_yolo_labels(text, 1, 1, source.names, f"{source.repo}:{label}")
            items.append(Item(p, boxes, names, (1, 1), _group_of(p, source.group_regex)))
    elif source.format == "voc":
        for xml in _selected(source, [f for f in files if f.lower().endswith(".xml")], listed):
            voc = parse_voc_xml(snap.read(xml).decode("utf-8-sig"), f"{source.repo}:{xml}")
            image = _voc_image(xml, voc.filename, present)
            if image is None:
                report.skipped["xml without image"] += 1
                continue
            items.append(
                Item(
                    image,
                    voc.boxes_xyxy,
                    voc.class_names,
                    (voc.width, voc.height),
                    _group_of(image, source.group_regex),
                )
            )
    else:
        for js in [f for f in files if f.lower().endswith(".json")]:
            folder = str(PurePosixPath(js).parent)
            for name, w, h, boxes, names in parse_coco_json(snap.read(js).decode("utf-8-sig"), f"{source.repo}:{js}"):
                image = f"{folder}/{name}"
                if image not in present:
                    report.skipped["json entry without image"] += 1
                    continue
                if _selected(source, [image], listed):
                    items.append(Item(image, boxes, names, (w, h), _group_of(image, source.group_regex)))
    return items


def _voc_image(xml: str, filename: str | None, present: set[str]) -> str | None:
    folder = PurePosixPath(xml).parent
    candidates = []
    if filename:
        candidates += [str(folder / filename), str(folder.parent / "JPEGImages" / filename)]
    stem = PurePosixPath(xml).stem
    for suffix in IMAGE_SUFFIXES:
        candidates += [str(folder / (stem + suffix)), str(folder.parent / "JPEGImages" / (stem + suffix))]
    return next((c for c in candidates if c in present), None)


def subsample(source: Source, items: list[Item]) -> list[Item]:
    """At most `max_images` items (one per group with `one_per_group`), the same ones on every build."""
    ranked = sorted(items, key=lambda it: _hash(source.id, it.path))
    if source.one_per_group:
        first: dict[str, Item] = {}
        for it in ranked:
            first.setdefault(it.group, it)
        ranked = list(first.values())
        items = sorted(ranked, key=lambda it: it.path)
    if source.max_images is None or len(items) <= source.max_images:
        return items
    return sorted(ranked[: source.max_images], key=lambda it: it.path)


def is_val(source: Source, item: Item) -> bool:
    return _hash(source.id, "val", item.group) % 100 < source.val_percent


def _resize(image: npt.NDArray[np.uint8], max_side: int) -> tuple[npt.NDArray[np.uint8], float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        image = np.asarray(
            cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    return image, scale


def map_boxes(
    source: Source, item: Item, width: int, height: int, scale: float, report: SourceReport
) -> tuple[FloatArray, list[int]]:
    """The item's boxes in the written image's px and our class ids; boxes of dropped
    classes and boxes under `min_box_px` are left out (and counted). `width` x `height`
    is the decoded image; the item's boxes are in px of `item.size` (YOLO: (1, 1),
    normalised; (0, 0): the label gives no size, so the decoded one)."""
    sx, sy = (1.0, 1.0) if item.size == (0, 0) else (width / item.size[0], height / item.size[1])
    kept, ids = [], []
    for box, name in zip(item.boxes_xyxy.tolist(), item.class_names, strict=True):
        ours = source.class_map.get(name)
        if ours is None:
            if name not in source.drop:
                raise ConfigError(f"source {source.id}: class {name!r} is neither in class_map nor in drop")
            report.dropped_boxes[name] += 1
            continue
        x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
        y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
        out = [x1 * scale, y1 * scale, x2 * scale, y2 * scale]
        if out[2] - out[0] < source.min_box_px or out[3] - out[1] < source.min_box_px:
            report.dropped_boxes["too small"] += 1
            continue
        kept.append(out)
        ids.append(CLASSES.index(ours))
    return np.asarray(kept, dtype=np.float64).reshape(-1, 4), ids


def write_yolo(
    image: npt.NDArray[np.uint8], boxes: FloatArray, ids: Sequence[int], image_path: Path, quality: int
) -> None:
    """One JPEG and its YOLO label file (empty for a negative)."""
    h, w = image.shape[:2]
    image_path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(image_path), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise InputError(f"cannot write {image_path}")
    label_path = Path(_yolo_label_of(str(image_path)))
    label_path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
        for c, (x1, y1, x2, y2) in zip(ids, boxes.tolist(), strict=True)
    ]
    label_path.write_text("".join(lines), encoding="utf-8")


def _destinations(source: Source, out: Path) -> Iterator[Path]:
    if source.split in ("train", "negatives"):
        yield out / "train" / source.id
    elif source.split == "frames":
        yield out / "fisheye-frames"


def build_source(
    source: Source, manifest: Manifest, mirror_root: Path, out: Path, manifest_dir: Path = MANIFEST.parent
) -> SourceReport:
    """Write one source's images and labels under `out`."""
    report = SourceReport(source.id, source.split)
    for folder in _destinations(source, out):
        if folder.exists() and source.split != "frames":
            shutil.rmtree(folder)
    max_side = source.max_side_px or manifest.max_side_px[source.split]
    quality = source.jpeg_quality or manifest.jpeg_quality[source.split]
    with GitSnapshot(mirror_root, source.repo, source.commit) as snap:
        items = subsample(source, enumerate_items(source, snap, report, read_files_list(source, manifest_dir)))
        for item in items:
            try:
                data = snap.read(item.path)
            except MissingBlobError:
                report.skipped["missing from snapshot"] += 1
                continue
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if decoded is None:
                report.skipped["undecodable"] += 1
                continue
            if source.denoise == "median3":
                decoded = cv2.medianBlur(decoded, 3)
            if source.resize_aspect is not None:
                height = decoded.shape[0]
                width = round(height * source.resize_aspect)
                decoded = cv2.resize(decoded, (width, height), interpolation=cv2.INTER_CUBIC)
            h, w = decoded.shape[:2]
            image, scale = _resize(np.asarray(decoded, dtype=np.uint8), max_side)
            boxes, ids = map_boxes(source, item, w, h, scale, report)
            name = f"{source.id}_{_hash(item.path):012x}.jpg"
            if source.split == "eval":
                target = out / "eval" / str(source.eval_set) / "images" / name
            elif source.split == "frames":
                target = out / "fisheye-frames" / name
            else:
                sub = "val" if source.split == "train" and is_val(source, item) else "train"
                target = out / "train" / source.id / "images" / sub / name
            if source.split == "frames":
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            else:
                write_yolo(image, boxes, ids, target, quality)
            report.images += 1
            for i in ids:
                report.boxes[CLASSES[i]] += 1
    return report


def write_data_yamls(manifest: Manifest, out: Path, splits: set[str]) -> None:
    names = list(CLASSES)
    if "train" in splits:
        train_ids = [
            s.id for s in manifest.sources if s.split in ("train", "negatives") and (out / "train" / s.id).exists()
        ]
        val = [f"{i}/images/val" for i in train_ids if (out / "train" / i / "images" / "val").exists()]
        doc = {"path": ".", "train": [f"{i}/images/train" for i in train_ids], "val": val, "names": names}
        (out / "train" / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    if "eval" in splits:
        for eval_set in sorted({str(s.eval_set) for s in manifest.sources if s.split == "eval"}):
            folder = out / "eval" / eval_set
            if folder.exists():
                doc = {"path": ".", "train": "images", "val": "images", "test": "images", "names": names}
                (folder / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


SPLITS = {"train": {"train", "negatives"}, "eval": {"eval"}, "all": {"train", "negatives", "eval", "frames"}}


def build(
    mirror_root: Path,
    out: Path,
    split: Literal["train", "eval", "all"] = "all",
    manifest_path: Path = MANIFEST,
    only: Sequence[str] = (),
) -> list[SourceReport]:
    """Rebuild the sources of `split` (or only the sources named in `only`). Eval folders
    are rebuilt whole, since several sources may feed one camera type."""
    manifest = load_manifest(manifest_path)
    chosen = [s for s in manifest.sources if s.split in SPLITS[split] and (not only or s.id in only)]
    unknown = set(only) - {s.id for s in manifest.sources}
    if unknown:
        raise InputError(f"no source named {sorted(unknown)} in {manifest_path}")
    for eval_set in {str(s.eval_set) for s in chosen if s.split == "eval"}:
        if (out / "eval" / eval_set).exists():
            shutil.rmtree(out / "eval" / eval_set)
    cv2.setNumThreads(1)
    reports = [build_source(s, manifest, mirror_root, out, manifest_path.parent) for s in chosen]
    write_data_yamls(manifest, out, {s.split for s in chosen} | ({"train"} if split in ("train", "all") else set()))
    (out / f"build-report-{split}.json").parent.mkdir(parents=True, exist_ok=True)
    (out / f"build-report-{split}.json").write_text(
        json.dumps([_report_dict(r) for r in reports], indent=1), encoding="utf-8"
    )
    return reports


def _report_dict(r: SourceReport) -> dict[str, object]:
    return {
        "id": r.id,
        "split": r.split,
        "images": r.images,
        "boxes": dict(r.boxes),
        "dropped_boxes": dict(r.dropped_boxes),
        "skipped": dict(r.skipped),
    }


def mismatches(manifest: Manifest, reports: Sequence[SourceReport]) -> list[str]:
    """Where the build wrote other counts than the manifest's `expected`."""
    by_id = {s.id: s for s in manifest.sources}
    out = []
    for r in reports:
        expected = by_id[r.id].expected
        if expected is not None and expected != r.counts():
            out.append(f"{r.id}: expected {expected.model_dump()}, wrote {r.counts().model_dump()}")
    return out
