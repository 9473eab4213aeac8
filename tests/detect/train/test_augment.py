"""Augmentation keeps labels on the pixels they describe."""

from __future__ import annotations

import numpy as np
import pytest

from trafficprn.detect.train.augment import (
    AugmentConfig,
    flip_lr,
    flip_ud,
    hsv_jitter,
    letterbox,
    mosaic4,
    random_affine,
)

RED = (0, 0, 255)


def scene(rng: np.random.Generator, w: int = 120, h: int = 80):
    """Grey image with one red box; labels [class, x1, y1, x2, y2]."""
    image = np.full((h, w, 3), 90, np.uint8)
    x1, y1 = int(rng.integers(5, w - 40)), int(rng.integers(5, h - 30))
    x2, y2 = x1 + int(rng.integers(12, 35)), y1 + int(rng.integers(12, 25))
    image[y1:y2, x1:x2] = RED
    return image, np.array([[0, x1, y1, x2, y2]], np.float32)


def centre_is_red(image: np.ndarray, labels: np.ndarray) -> bool:
    ok = []
    for _, x1, y1, x2, y2 in labels:
        px = image[int((y1 + y2) / 2), int((x1 + x2) / 2)].astype(int)
        ok.append(px[2] > 200 and px[0] < 60)
    return all(ok)


@pytest.mark.parametrize("seed", range(5))
def test_flips_and_letterbox_keep_labels_on_the_object(seed):
    rng = np.random.default_rng(seed)
    image, labels = scene(rng)
    for fn in (flip_lr, flip_ud):
        out, lab = fn(image, labels)
        assert centre_is_red(out, lab)
    boxed, scale, (px, py) = letterbox(image, 96)
    assert boxed.shape == (96, 96, 3)
    lab = labels.copy()
    lab[:, [1, 3]] = lab[:, [1, 3]] * scale + px
    lab[:, [2, 4]] = lab[:, [2, 4]] * scale + py
    assert centre_is_red(boxed, lab)


@pytest.mark.parametrize("seed", range(5))
def test_mosaic_then_affine_keeps_labels_on_objects(seed):
    rng = np.random.default_rng(seed)
    parts = [scene(rng) for _ in range(4)]
    canvas, labels = mosaic4([p[0] for p in parts], [p[1] for p in parts], 128, rng)
    assert canvas.shape == (256, 256, 3)
    visible = labels[(labels[:, 3] > 0) & (labels[:, 4] > 0)]
    assert centre_is_red(canvas, np.clip(visible, 0, 255))
    out, lab = random_affine(canvas, labels, rng, AugmentConfig(scale=0.3, translate=0.1), 128)
    assert out.shape == (128, 128, 3)
    assert (lab[:, 1:] >= 0).all() and (lab[:, 1:] <= 128).all()
    # clipped boxes may lose their centre; whole ones keep it
    whole = lab[((lab[:, 3] - lab[:, 1]) > 6) & ((lab[:, 4] - lab[:, 2]) > 6)]
    assert centre_is_red(out, whole)


def test_hsv_jitter_changes_colour_not_shape():
    rng = np.random.default_rng(0)
    image, _ = scene(rng)
    out = hsv_jitter(image, rng, 0.015, 0.7, 0.4)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    assert hsv_jitter(image, rng, 0, 0, 0) is image


@pytest.mark.parametrize(
    ("kwargs", "raises"),
    [({"mosaic": 1.5}, ValueError), ({"fliplr": -0.1}, ValueError), ({"scale": 1.0}, ValueError), ({}, None)],
)
def test_augment_config_validation(kwargs, raises):
    if raises:
        with pytest.raises(raises):
            AugmentConfig(**kwargs)
    else:
        AugmentConfig(**kwargs)
