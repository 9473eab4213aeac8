"""Real pixels under fisheye distortion: warp labelled perspective images into the image
of an overhead fisheye lens, and warp their boxes with them.

No public labelled set covers an overhead fisheye over a junction, so the detector
would only see fisheye geometry in our renders. Here each perspective photograph is
taken to be a pinhole "virtual PTZ" view (`camera.views.PerspectiveView`) inside a
fisheye's lens frame, pitched toward the rim where the legs of a junction lie, with its
"down" toward the image centre as on a real overhead camera. Up to four photographs
share one fisheye image, one per side. Every fisheye pixel takes the colour of the view
whose axis is nearest its ray; pixels no view sees are flat grey inside the image circle
and black outside it, as on a real fisheye.

A box is warped by its outline (`BOX_EDGE_SAMPLES` points per edge, lens-frame rays,
then the lens): its fisheye box bounds the outline points that land in its own view's
region and inside the image circle, and the box is kept only where at least
`min_visible` of them do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from trafficprn.camera.lens import EquidistantFisheye
from trafficprn.camera.views import PerspectiveView, view_rotation
from trafficprn.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BOX_EDGE_SAMPLES = 16
UNSEEN_GREY = 118  # BGR value of in-circle pixels that no view sees


@dataclass(frozen=True)
class LabelledArray:
    """An image with boxes: `image_bgr` (H, W, 3) uint8, `boxes_xyxy` (N, 4) image px,
    `class_ids` (N,) indices into the dataset's class names."""

    image_bgr: npt.NDArray[np.uint8]
    boxes_xyxy: FloatArray
    class_ids: IntArray

    def __post_init__(self) -> None:
        if self.image_bgr.ndim != 3 or self.image_bgr.shape[2] != 3:
            raise InputError(f"image_bgr must have shape (H, W, 3), got {self.image_bgr.shape}")
        if self.boxes_xyxy.ndim != 2 or self.boxes_xyxy.shape[1] != 4:
            raise InputError(f"boxes_xyxy must have shape (N, 4), got {self.boxes_xyxy.shape}")
        if self.class_ids.shape != (len(self.boxes_xyxy),):
            raise InputError(f"class_ids must have shape ({len(self.boxes_xyxy)},), got {self.class_ids.shape}")


@dataclass(frozen=True)
class FisheyeWarpOptions:
    """How the perspective photographs sit in the fisheye.

    size_px: the square fisheye image; fov_deg: the lens' field of view (equidistant);
    view_fov_deg: range of each photograph's horizontal field of view (smaller = the
    photograph fills more of the fisheye, so its vehicles come out larger);
    pitch_deg: range of the angle between a view's axis and the lens axis (90 = horizon);
    yaw_jitter_deg: +- jitter of each view's side; min_visible: share of a box's outline
    that must stay in its view's region; min_box_px: smaller warped boxes are dropped.
    """

    size_px: int = 640
    fov_deg: float = 185.0
    view_fov_deg: tuple[float, float] = (35.0, 80.0)
    pitch_deg: tuple[float, float] = (40.0, 70.0)
    yaw_jitter_deg: float = 25.0
    min_visible: float = 0.6
    min_box_px: float = 3.0


def fisheye_lens(options: FisheyeWarpOptions) -> EquidistantFisheye:
    s = options.size_px
    c = (s - 1) / 2.0
    return EquidistantFisheye((s, s), (c, c), s / 2.0 - 2.0, options.fov_deg)


def place_views(
    sources: Sequence[LabelledArray], rng: np.random.Generator, options: FisheyeWarpOptions
) -> list[PerspectiveView]:
    """One pinhole view per source, on evenly spaced sides with jitter."""
    base = float(rng.uniform(0.0, 360.0))
    views = []
    for k, src in enumerate(sources):
        h, w = src.image_bgr.shape[:2]
        yaw = base + k * 360.0 / len(sources) + float(rng.uniform(-options.yaw_jitter_deg, options.yaw_jitter_deg))
        pitch = float(rng.uniform(*options.pitch_deg))
        fov = float(rng.uniform(*options.view_fov_deg))
        focal = (w / 2.0) / np.tan(np.radians(fov) / 2.0)
        views.append(PerspectiveView(f"v{k}", (w, h), float(focal), view_rotation(yaw, pitch, 0.0)))
    return views


def _owners(
    rays: FloatArray, views: Sequence[PerspectiveView], in_fov: npt.NDArray[np.bool_]
) -> tuple[IntArray, list[FloatArray]]:
    """For each ray, the index of the view that sees it with the nearest axis (-1: none),
    and each view's pixel coordinates of every ray."""
    best = np.full(len(rays), -np.inf)
    owner = np.full(len(rays), -1, dtype=np.int64)
    view_px = []
    for k, view in enumerate(views):
        px = view.pixels(rays)
        w, h = view.size
        with np.errstate(invalid="ignore"):
            inside = in_fov & (px[:, 0] >= 0) & (px[:, 0] <= w - 1) & (px[:, 1] >= 0) & (px[:, 1] <= h - 1)
        score = rays @ view.axis
        take = inside & (score > best)
        owner[take] = k
        best[take] = score[take]
        view_px.append(px)
    return owner, view_px


def _outline(boxes: FloatArray) -> FloatArray:
    """(N, 4 * BOX_EDGE_SAMPLES, 2) points along each box's edges."""
    t = np.linspace(0.0, 1.0, BOX_EDGE_SAMPLES)
    x1, y1, x2, y2 = (boxes[:, i : i + 1] for i in range(4))
    xs = np.hstack([x1 + (x2 - x1) * t, x2 + 0 * t, x1 + (x2 - x1) * t, x1 + 0 * t])
    ys = np.hstack([y1 + 0 * t, y1 + (y2 - y1) * t, y2 + 0 * t, y1 + (y2 - y1) * t])
    return np.stack([xs, ys], axis=2)


def warp_to_fisheye(
    sources: Sequence[LabelledArray], rng: np.random.Generator, options: FisheyeWarpOptions | None = None
) -> LabelledArray:
    """One fisheye image from 1-4 perspective sources (see the module docstring)."""
    opts = options or FisheyeWarpOptions()
    if not 1 <= len(sources) <= 4:
        raise InputError(f"warp_to_fisheye takes 1 to 4 sources, got {len(sources)}")
    lens = fisheye_lens(opts)
    s = opts.size_px
    ys, xs = np.mgrid[0:s, 0:s]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    in_circle = lens.valid(grid)
    rays = lens.unproject(np.where(in_circle[:, None], grid, lens.center_px))
    views = place_views(sources, rng, opts)
    owner, view_px = _owners(rays, views, in_circle)

    out = np.zeros((s * s, 3), dtype=np.uint8)
    out[in_circle] = UNSEEN_GREY
    boxes: list[FloatArray] = []
    classes: list[IntArray] = []
    owner_img = owner.reshape(s, s)
    for k, (src, view) in enumerate(zip(sources, views, strict=True)):
        mine = owner == k
        if not mine.any():
            continue
        maps = np.where(mine[:, None], view_px[k], -10.0).astype(np.float32).reshape(s, s, 2)
        sampled = cv2.remap(src.image_bgr, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR)
        out[mine] = sampled.reshape(-1, 3)[mine]
        if len(src.boxes_xyxy):
            b, c = _warp_boxes(src, view, lens, owner_img, k, opts)
            boxes.append(b)
            classes.append(c)
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    all_classes = np.concatenate(classes) if classes else np.zeros(0, dtype=np.int64)
    return LabelledArray(out.reshape(s, s, 3), all_boxes, all_classes)


def _warp_boxes(
    src: LabelledArray,
    view: PerspectiveView,
    lens: EquidistantFisheye,
    owner_img: IntArray,
    k: int,
    opts: FisheyeWarpOptions,
) -> tuple[FloatArray, IntArray]:
    pts = _outline(src.boxes_xyxy)  # (N, M, 2)
    n, m = pts.shape[:2]
    rays = view.rays(pts.reshape(-1, 2))
    fish = lens.project(rays).reshape(n, m, 2)
    ok = lens.in_fov(rays).reshape(n, m) & np.isfinite(fish).all(axis=2)
    s = owner_img.shape[0]
    xi = np.clip(np.nan_to_num(fish[..., 0], nan=-1).round().astype(np.int64), 0, s - 1)
    yi = np.clip(np.nan_to_num(fish[..., 1], nan=-1).round().astype(np.int64), 0, s - 1)
    ok &= owner_img[yi, xi] == k
    keep = ok.mean(axis=1) >= opts.min_visible
    fx = np.where(ok, fish[..., 0], np.nan)
    fy = np.where(ok, fish[..., 1], np.nan)
    out = np.zeros((n, 4))
    if keep.any():
        out[keep] = np.stack(
            [np.nanmin(fx[keep], 1), np.nanmin(fy[keep], 1), np.nanmax(fx[keep], 1), np.nanmax(fy[keep], 1)], axis=1
        )
    out = np.clip(out, 0.0, s - 1.0)
    big = keep & (out[:, 2] - out[:, 0] >= opts.min_box_px) & (out[:, 3] - out[:, 1] >= opts.min_box_px)
    return out[big], src.class_ids[big]


def read_yolo_image(image_path: Path, label_path: Path) -> LabelledArray:
    """An image and its YOLO label file (`class cx cy w h`, normalised) as pixel boxes."""
    read = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if read is None:
        raise InputError(f"cannot read image {image_path}")
    image = np.asarray(read, dtype=np.uint8)
    h, w = image.shape[:2]
    rows = np.zeros((0, 5))
    if label_path.exists():
        text = label_path.read_text(encoding="utf-8").split()
        if len(text) % 5:
            raise InputError(f"{label_path}: expected 5 numbers per line")
        rows = np.asarray(text, dtype=np.float64).reshape(-1, 5)
    cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return LabelledArray(image, boxes, rows[:, 0].astype(np.int64))


def write_yolo_image(item: LabelledArray, image_path: Path, label_path: Path, quality: int = 90) -> None:
    h, w = item.image_bgr.shape[:2]
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(image_path), item.image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise InputError(f"cannot write {image_path}")
    b = item.boxes_xyxy
    lines = [
        f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
        for c, (x1, y1, x2, y2) in zip(item.class_ids.tolist(), b.tolist(), strict=True)
    ]
    label_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def warp_folder(
    images: Sequence[Path],
    out_dir: Path,
    count: int,
    seed: int,
    options: FisheyeWarpOptions | None = None,
    split: str = "train",
) -> int:
    """Write `count` fisheye images made from random draws of `images` (YOLO layout,
    labels found by the images/ -> labels/ rule) into `out_dir/images/<split>` and
    `out_dir/labels/<split>`. Returns the number of boxes written."""
    if not images:
        raise InputError("warp_folder: no source images")
    rng = np.random.default_rng(seed)
    n_boxes = 0
    for i in range(count):
        n_src = int(rng.integers(1, 5))
        picks = rng.choice(len(images), size=n_src, replace=len(images) < n_src)
        sources = [read_yolo_image(images[j], label_path_of(images[j])) for j in picks]
        item = warp_to_fisheye(sources, rng, options)
        if rng.random() < 0.5:
            item = _rotate_quarter(item, int(rng.integers(1, 4)))
        name = f"fish{seed:03d}_{i:06d}"
        write_yolo_image(item, out_dir / "images" / split / f"{name}.jpg", out_dir / "labels" / split / f"{name}.txt")
        n_boxes += len(item.boxes_xyxy)
    return n_boxes


def _rotate_quarter(item: LabelledArray, quarters: int) -> LabelledArray:
    """Rotate a square image and its boxes by `quarters` x 90 deg counter-clockwise."""
    image = np.ascontiguousarray(np.rot90(item.image_bgr, quarters))
    s = item.image_bgr.shape[0]
    b = item.boxes_xyxy.copy()
    for _ in range(quarters):
        # (x, y) -> (y, s - 1 - x) for one counter-clockwise quarter turn
        b = np.stack([b[:, 1], s - 1 - b[:, 2], b[:, 3], s - 1 - b[:, 0]], axis=1)
    return LabelledArray(image, b, item.class_ids)


def label_path_of(image_path: Path) -> Path:
    """The YOLO label file of an image: the last `images` folder becomes `labels`."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")
