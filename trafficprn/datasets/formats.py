"""Labelled-image readers for the three label formats public detection sets come in:
YOLO txt folders (with a `data.yaml`), Pascal VOC xml and COCO json.

Every reader returns a list of `LabelledImage`: the image's path and size and its boxes
in pixel xyxy with one class name per box, so a scorer or a converter does not care
which format a set came in. Images are not decoded to read a label (sizes come from the
label file or the image header), so listing a large set is cheap.

Conventions:
- YOLO: one `class cx cy w h` line per box, normalised to the image size; the label of
  `.../images/x.jpg` is `.../labels/x.txt` (the last `images` folder becomes `labels`);
  an image without a label file has no boxes (a negative). Class names come from
  `data.yaml` (`names:` as a list or an `{id: name}` map).
- VOC: `<size>` gives the image size, `<object><name>` and `<bndbox>` the boxes. VOC
  coordinates are 1-based inclusive pixel indices, so `xmin, ymin` lose 1 to become
  0-based edges; `xmax, ymax` are kept.
- COCO: `bbox` is `[x, y, w, h]` in pixels; `iscrowd` regions are skipped (they are not
  single objects); images without annotations are kept with no boxes.
"""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from trafficprn.errors import InputError

FloatArray = npt.NDArray[np.float64]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class LabelledImage:
    """One labelled image: `boxes_xyxy` (N, 4) float64 pixel edges (x1, y1, x2, y2) in
    the image of `width` x `height` px at `path`; `class_names` one name per box."""

    path: Path
    width: int
    height: int
    boxes_xyxy: FloatArray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.boxes_xyxy.ndim != 2 or self.boxes_xyxy.shape[1] != 4:
            raise InputError(f"boxes_xyxy must have shape (N, 4), got {self.boxes_xyxy.shape}")
        if len(self.class_names) != len(self.boxes_xyxy):
            raise InputError(f"{len(self.boxes_xyxy)} boxes but {len(self.class_names)} class names")
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"image size must be positive, got {self.width}x{self.height}")

    def class_ids(self, names: Sequence[str]) -> npt.NDArray[np.int64]:
        """(N,) indices of each box's class in `names`; -1 where the name is not there."""
        index = {n: i for i, n in enumerate(names)}
        return np.array([index.get(n, -1) for n in self.class_names], dtype=np.int64)


def read_labelled(path: Path) -> list[LabelledImage]:
    """Whatever labels `path` holds: a COCO `.json` file; a folder with a `data.yaml`
    (YOLO); a folder of VOC `.xml` files; or a folder holding one COCO `.json`."""
    if path.is_file() and path.suffix == ".json":
        return read_coco_json(path)
    if not path.is_dir():
        raise InputError(f"{path}: expected a folder of labelled images or a COCO .json file")
    if (path / "data.yaml").exists() or (path / "data.yml").exists():
        return read_yolo_folder(path)
    if any(path.rglob("*.xml")):
        return read_voc_folder(path)
    jsons = sorted(path.rglob("*.json"))
    if len(jsons) == 1:
        return read_coco_json(jsons[0])
    raise InputError(f"{path}: no data.yaml (YOLO), .xml (VOC) or single .json (COCO) labels found")


def yolo_names(data_yaml: Path) -> tuple[str, ...]:
    """The class names of a YOLO `data.yaml` (`names:` list or `{id: name}` map)."""
    try:
        doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{data_yaml}: not valid YAML: {exc}") from exc
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, Mapping):
        return tuple(str(names[k]) for k in sorted(names, key=int))
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    raise InputError(f"{data_yaml}: expected `names:` as a list or a map of id to name")


def read_yolo_folder(folder: Path, names: Sequence[str] | None = None) -> list[LabelledImage]:
    """Every image under any `images` folder below `folder`, with its YOLO labels.
    `names` defaults to the folder's `data.yaml`; a class id outside it is an error."""
    if names is None:
        yaml_path = folder / "data.yaml" if (folder / "data.yaml").exists() else folder / "data.yml"
        if not yaml_path.exists():
            raise InputError(f"{folder}: no data.yaml to name the classes; pass names")
        names = yolo_names(yaml_path)
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "images" in p.parts)
    return [_read_yolo_image(p, label_path_of(p), names) for p in images]


def _read_yolo_image(image_path: Path, label_path: Path, names: Sequence[str]) -> LabelledImage:
    width, height = image_size(image_path)
    text = label_path.read_text(encoding="utf-8") if label_path.exists() else ""
    boxes, box_names = parse_yolo_labels(text, width, height, names, str(label_path))
    return LabelledImage(image_path, width, height, boxes, box_names)


def parse_yolo_labels(
    text: str, width: int, height: int, names: Sequence[str], source: str = "labels"
) -> tuple[FloatArray, tuple[str, ...]]:
    """YOLO label text (`class cx cy w h` lines, normalised) as (N, 4) pixel xyxy boxes
    in a `width` x `height` image and their class names."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if any(len(ln) != 5 for ln in lines):
        raise InputError(f"{source}: expected 5 numbers per line (class cx cy w h)")
    try:
        rows = np.asarray(lines, dtype=np.float64).reshape(-1, 5)
    except ValueError as exc:
        raise InputError(f"{source}: label values must be numbers: {exc}") from exc
    ids = rows[:, 0].astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(names)):
        raise InputError(f"{source}: class id {int(ids.max())} outside the {len(names)} names {list(names)}")
    cx, cy, bw, bh = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return boxes, tuple(names[i] for i in ids)


def read_voc_folder(folder: Path) -> list[LabelledImage]:
    """Every VOC `.xml` below `folder`. The image is the xml's `<filename>` beside the
    xml, in a sibling `JPEGImages` folder, or the xml's stem with an image suffix."""
    return [_read_voc_xml(p) for p in sorted(folder.rglob("*.xml"))]


def _read_voc_xml(xml_path: Path) -> LabelledImage:
    voc = parse_voc_xml(xml_path.read_text(encoding="utf-8"), str(xml_path))
    image_path = _voc_image_path(xml_path, voc.filename)
    width, height = (voc.width, voc.height) if voc.width > 0 and voc.height > 0 else image_size(image_path)
    return LabelledImage(image_path, width, height, voc.boxes_xyxy, voc.class_names)


@dataclass(frozen=True)
class VocAnnotation:
    """One VOC xml: its `<filename>`, `<size>` (0 where absent) and boxes (pixel edges)."""

    filename: str | None
    width: int
    height: int
    boxes_xyxy: FloatArray
    class_names: tuple[str, ...]


def parse_voc_xml(text: str, source: str = "xml") -> VocAnnotation:
    """A VOC annotation's text; `xmin, ymin` (1-based) lose 1 to become pixel edges."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{source}: not valid XML: {exc}") from exc
    size = root.find("size")
    width = int(float(size.findtext("width") or 0)) if size is not None else 0
    height = int(float(size.findtext("height") or 0)) if size is not None else 0
    boxes, names = [], []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        name = obj.findtext("name")
        if box is None or name is None:
            raise InputError(f"{source}: an <object> without <name> or <bndbox>")
        try:
            x1, y1, x2, y2 = (float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as exc:
            raise InputError(f"{source}: <bndbox> values must be numbers: {exc}") from exc
        boxes.append([x1 - 1.0, y1 - 1.0, x2, y2])
        names.append(name.strip())
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if np.isnan(arr).any():
        raise InputError(f"{source}: a <bndbox> lacks one of xmin, ymin, xmax, ymax")
    return VocAnnotation(root.findtext("filename"), width, height, arr, tuple(names))


def _voc_image_path(xml_path: Path, filename: str | None) -> Path:
    folders = [xml_path.parent, xml_path.parent.parent / "JPEGImages"]
    if filename:
        for folder in folders:
            if (folder / filename).exists():
                return folder / filename
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / (xml_path.stem + suffix)
            if candidate.exists():
                return candidate
    raise InputError(f"{xml_path}: its image {filename or xml_path.stem} is not beside it or in ../JPEGImages")


def read_coco_json(json_path: Path, image_dir: Path | None = None) -> list[LabelledImage]:
    """A COCO detection json; images are `image_dir / file_name` (default: the json's folder)."""
    base = image_dir if image_dir is not None else json_path.parent
    return [
        LabelledImage(base / name, w, h, boxes, names)
        for name, w, h, boxes, names in parse_coco_json(json_path.read_text(encoding="utf-8"), str(json_path))
    ]


def parse_coco_json(text: str, source: str = "json") -> list[tuple[str, int, int, FloatArray, tuple[str, ...]]]:
    """A COCO detection json's text as (file_name, width, height, boxes_xyxy, class_names)
    per image, in the file's image order."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not {"images", "annotations", "categories"} <= doc.keys():
        raise InputError(f"{source}: a COCO file needs `images`, `annotations` and `categories`")
    categories = {c["id"]: str(c["name"]) for c in doc["categories"]}
    per_image: dict[int, list[tuple[list[float], str]]] = {im["id"]: [] for im in doc["images"]}
    for ann in doc["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        if ann["image_id"] not in per_image or ann["category_id"] not in categories:
            raise InputError(f"{source}: annotation {ann.get('id')} names an unknown image or category")
        x, y, w, h = (float(v) for v in ann["bbox"])
        per_image[ann["image_id"]].append(([x, y, x + w, y + h], categories[ann["category_id"]]))
    out = []
    for im in doc["images"]:
        anns = per_image[im["id"]]
        boxes = np.asarray([a[0] for a in anns], dtype=np.float64).reshape(-1, 4)
        out.append((str(im["file_name"]), int(im["width"]), int(im["height"]), boxes, tuple(a[1] for a in anns)))
    return out


def label_path_of(image_path: Path) -> Path:
    """The YOLO label file of an image: the last `images` folder becomes `labels`."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its PNG or JPEG header, decoding only
    other formats."""
    try:
        with path.open("rb") as f:
            head = f.read(26)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head.startswith(b"\xff\xd8"):
                size = _jpeg_size(f)
                if size is not None:
                    return size
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc}") from exc
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return int(image.shape[1]), int(image.shape[0])


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    """Walk JPEG markers from offset 2 to the first start-of-frame."""
    f.seek(2)
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return int(w), int(h)
        f.seek(length - 2, 1)
