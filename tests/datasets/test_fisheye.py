"""Warping labelled perspective images into fisheye geometry: the warped box must bound
the warped object's pixels, whatever side of the fisheye its view sits on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trafficprn.datasets.fisheye import (
    FisheyeWarpOptions,
    LabelledArray,
    _rotate_quarter,
    label_path_of,
    read_yolo_image,
    warp_folder,
    warp_to_fisheye,
    write_yolo_image,
)
from trafficprn.errors import InputError
from trafficprn.geometry.boxes import iou_matrix


def _bright_box_image(box: tuple[int, int, int, int], size: tuple[int, int] = (320, 240)) -> LabelledArray:
    """A dark image with one white rectangle, labelled with its box."""
    w, h = size
    image = np.full((h, w, 3), 30, dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return LabelledArray(image, np.array([[x1, y1, x2, y2]], dtype=np.float64), np.array([2]))


def _bounds_of_white(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image[..., 0] > 200)
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float64)


@pytest.mark.parametrize("seed", range(6))
def test_warped_box_bounds_the_warped_object(seed: int) -> None:
    rng = np.random.default_rng(seed)
    src = _bright_box_image((110, 90, 210, 160))
    opts = FisheyeWarpOptions(size_px=400, min_visible=0.99)
    out = warp_to_fisheye([src], rng, opts)
    assert out.image_bgr.shape == (400, 400, 3)
    if len(out.boxes_xyxy) == 0:  # the view's box fell over the rim: nothing white may show either
        assert not (out.image_bgr[..., 0] > 200).sum() > 50
        return
    assert out.class_ids.tolist() == [2]
    iou = iou_matrix(out.boxes_xyxy, _bounds_of_white(out.image_bgr))[0, 0]
    assert iou > 0.85


def test_four_views_keep_their_own_boxes_and_the_rim_is_black() -> None:
    rng = np.random.default_rng(3)
    sources = [_bright_box_image((140, 100, 180, 140)) for _ in range(4)]
    out = warp_to_fisheye(sources, rng, FisheyeWarpOptions(size_px=400))
    assert len(out.boxes_xyxy) >= 3
    assert (out.image_bgr[0, 0] == 0).all() and (out.image_bgr[-1, -1] == 0).all()
    for box in out.boxes_xyxy.astype(int):  # each box holds white pixels of its object
        x1, y1, x2, y2 = box
        assert (out.image_bgr[y1 : y2 + 1, x1 : x2 + 1, 0] > 200).sum() > 20


def test_quarter_rotation_moves_boxes_with_the_pixels() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[10:30, 60:90] = 255
    item = LabelledArray(image, np.array([[60.0, 10.0, 90.0, 30.0]]), np.array([0]))
    for quarters in (1, 2, 3):
        rotated = _rotate_quarter(item, quarters)
        assert iou_matrix(rotated.boxes_xyxy, _bounds_of_white(rotated.image_bgr) - [0, 0, 1, 1])[0, 0] > 0.9


def test_yolo_round_trip_and_folder(tmp_path: Path) -> None:
    src = _bright_box_image((50, 40, 150, 120))
    img_path = tmp_path / "src" / "images" / "train" / "a.jpg"
    write_yolo_image(src, img_path, label_path_of(img_path))
    back = read_yolo_image(img_path, label_path_of(img_path))
    np.testing.assert_allclose(back.boxes_xyxy, src.boxes_xyxy, atol=1e-3)
    n = warp_folder([img_path], tmp_path / "fish", count=3, seed=5, options=FisheyeWarpOptions(size_px=256))
    written = sorted((tmp_path / "fish" / "labels" / "train").glob("*.txt"))
    assert len(written) == 3
    assert sum(len(p.read_text().splitlines()) for p in written) == n


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="1 to 4 sources"):
        warp_to_fisheye([], np.random.default_rng(0))
    with pytest.raises(InputError, match=r"boxes_xyxy must have shape \(N, 4\)"):
        LabelledArray(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 3)), np.zeros(1, np.int64))
