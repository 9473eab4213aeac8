"""Letterbox, yolo decoding and NMS against hand-built head tensors with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trafficprn.detect.postprocess import (
    HeadSpec,
    Letterbox,
    decode_dense,
    decode_heads,
    letterbox,
    postprocess,
)
from trafficprn.errors import GeometryError, InputError

SPEC = HeadSpec(stride=32, anchors_px=((81.0, 82.0), (135.0, 169.0), (344.0, 319.0)), classes=3)
LOW = -12.0


def make_head(cells: list[tuple[int, int, int, list[float]]], spec: HeadSpec = SPEC, grid: int = 13) -> np.ndarray:
    """(1, A*(5+C), grid, grid) raw logits, all 'nothing here' except the given
    (anchor, y, x, [tx, ty, tw, th, obj, cls...]) cells."""
    raw = np.full((1, len(spec.anchors_px), 5 + spec.classes, grid, grid), LOW, dtype=np.float32)
    raw[:, :, :4] = 0.0
    for a, y, x, values in cells:
        raw[0, a, :, y, x] = values
    return raw.reshape(1, -1, grid, grid)


def sig(v: float) -> float:
    return float(1 / (1 + np.exp(-v)))


def test_decode_single_box() -> None:
    head = make_head([(1, 4, 6, [0.0, 0.0, 0.0, float(np.log(2.0)), 10.0, LOW, 5.0, LOW])])
    (raw,) = decode_heads([head], [SPEC], (416, 416), confidence=0.25)
    assert raw.class_id.tolist() == [1]
    np.testing.assert_allclose(raw.confidence, [sig(10) * sig(5)])
    cx, cy, w, h = 6.5 * 32, 4.5 * 32, 135.0, 2 * 169.0
    np.testing.assert_allclose(raw.xyxy, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], rtol=1e-6)


def test_scale_x_y_widens_the_cell_range() -> None:
    spec = HeadSpec(stride=32, anchors_px=SPEC.anchors_px, classes=3, scale_x_y=1.05)
    head = make_head([(0, 0, 0, [30.0, -30.0, 0.0, 0.0, 10.0, 10.0, LOW, LOW])], spec)
    (raw,) = decode_heads([head], [spec], (416, 416))
    cx = (raw.xyxy[0, 0] + raw.xyxy[0, 2]) / 2
    cy = (raw.xyxy[0, 1] + raw.xyxy[0, 3]) / 2
    np.testing.assert_allclose([cx, cy], [1.025 * 32, -0.025 * 32], atol=1e-6)


def test_sparse_decode_agrees_with_dense(rng: np.random.Generator) -> None:
    head = rng.normal(0, 2, size=(2, 24, 13, 13)).astype(np.float32)
    dense = decode_dense(head, SPEC, (416, 416))
    raws = decode_heads([head], [SPEC], (416, 416), confidence=0.3)
    for b, raw in enumerate(raws):
        scores = dense[b, :, 5:].max(axis=1)
        assert len(raw.confidence) == int((scores > 0.3).sum())
        np.testing.assert_allclose(np.sort(raw.confidence), np.sort(scores[scores > 0.3]), rtol=1e-9)


def test_letterbox_geometry() -> None:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[:, :, 2] = 255  # red in BGR
    chw, box = letterbox(image, (416, 416))
    assert chw.shape == (3, 416, 416) and chw.dtype == np.float32
    assert box == Letterbox(scale_x=0.65, scale_y=0.65, pad_x_px=0.0, pad_y_px=52.0, src_width_px=640, src_height_px=480)
    np.testing.assert_allclose(chw[:, 0, 0], [128 / 255] * 3)  # grey border
    np.testing.assert_allclose(chw[:, 200, 200], [1.0, 0.0, 0.0])  # RGB order inside
    back = box.to_source(np.array([[65.0, 52.0 + 65.0, 130.0, 52.0 + 130.0]]))
    np.testing.assert_allclose(back, [[100.0, 100.0, 200.0, 200.0]])


def test_letterbox_antialiases_large_downscales() -> None:
    """A 1-px checkerboard shrunk 1280 -> 416 should come out as flat grey (its mean), as it
    does with area averaging; plain bilinear at 3x samples it into bright/dark blotches."""
    yy, xx = np.mgrid[0:1280, 0:1280]
    board = np.where((yy + xx) % 2 == 0, 255, 0).astype(np.uint8)
    image = np.repeat(board[:, :, None], 3, axis=2)
    chw, box = letterbox(image, (416, 416))
    assert box.scale_x == pytest.approx(416 / 1280)
    inner = chw[0, 8:-8, 8:-8] * 255
    assert abs(float(inner.mean()) - 127.5) < 3
    assert float(inner.std()) < 8
    reference = cv2.resize(image, (416, 416), interpolation=cv2.INTER_AREA)[8:-8, 8:-8, 0]
    assert float(np.abs(inner - reference).mean()) < 8


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((10, 10), dtype=np.uint8), InputError),
        (np.zeros((0, 10, 3), dtype=np.uint8), InputError),
        ("not an image", InputError),
    ],
)
def test_letterbox_rejects_bad_images(image: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        letterbox(image, (416, 416))  # type: ignore[arg-type]


def test_postprocess_nms_is_class_aware_and_maps_to_source() -> None:
    same = [0.0, 0.0, 0.0, 0.0, 10.0]
    head = make_head(
        [
            (1, 5, 5, same + [6.0, LOW, LOW]),  # class 0, best
            (1, 5, 6, [-1.0, 0.0, 0.0, 0.0, 10.0, 4.0, LOW, LOW]),  # class 0, overlaps -> suppressed
            (2, 5, 5, same + [LOW, LOW, 3.0]),  # class 2, overlaps the first but kept
        ]
    )
    box = Letterbox(0.65, 0.65, 0.0, 52.0, 640, 480)
    (dets,) = postprocess([head], [SPEC], (416, 416), [box], confidence=0.25, nms_iou=0.45)
    assert dets.class_id.tolist() == [0, 2]
    assert dets.confidence[0] > dets.confidence[1]
    cx, cy = 5.5 * 32, 5.5 * 32
    expected = [(cx - 67.5) / 0.65, (cy - 84.5 - 52) / 0.65, (cx + 67.5) / 0.65, (cy + 84.5 - 52) / 0.65]
    np.testing.assert_allclose(dets.xyxy[0], expected, rtol=1e-6)
    # the class-2 box (344 x 319) reaches past the image and is clipped to it
    assert dets.xyxy[1].min() >= 0 and dets.xyxy[1, 2] <= 640 and dets.xyxy[1, 3] <= 480


def test_postprocess_batch_keeps_images_apart() -> None:
    one = make_head([(0, 2, 2, [0.0, 0.0, 0.0, 0.0, 10.0, 10.0, LOW, LOW])])
    two = make_head([(0, 9, 9, [0.0, 0.0, 0.0, 0.0, 10.0, LOW, 10.0, LOW])])
    nothing = make_head([])
    box = Letterbox(1.0, 1.0, 0.0, 0.0, 416, 416)
    dets = postprocess([np.concatenate([one, two, nothing])], [SPEC], (416, 416), [box] * 3)
    assert [len(d) for d in dets] == [1, 1, 0]
    assert dets[0].class_id.tolist() == [0] and dets[1].class_id.tolist() == [1]


def test_head_channel_mismatch() -> None:
    with pytest.raises(GeometryError, match="expected 3\\*\\(5\\+3\\)"):
        decode_heads([np.zeros((1, 25, 13, 13), np.float32)], [SPEC], (416, 416))
