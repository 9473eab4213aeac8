"""Anchor k-means recovers planted cluster shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trafficprn.detect.train.anchors import dataset_box_sizes, kmeans_anchors, mean_best_iou
from trafficprn.detect.train.dataset import load_data_yaml
from trafficprn.errors import InputError


def test_recovers_planted_shapes():
    rng = np.random.default_rng(0)
    planted = np.array([[8, 8], [20, 12], [40, 60]], float)
    wh = np.concatenate([p * rng.uniform(0.95, 1.05, (200, 2)) for p in planted])
    anchors = kmeans_anchors(wh, 3)
    np.testing.assert_allclose(anchors, planted, rtol=0.05)
    assert mean_best_iou(wh, anchors) > 0.9


def test_too_few_boxes():
    with pytest.raises(InputError):
        kmeans_anchors([[1, 1]], 3)


def test_dataset_box_sizes(tiny_data: Path):
    spec = load_data_yaml(tiny_data)
    wh = dataset_box_sizes(spec.train, 3, size=112)
    assert wh.shape[1] == 2 and len(wh) >= 16
    # factory boxes are 15-40 % of each side of a 112 x 96 image
    assert wh[:, 0].min() > 0.14 * 112 and wh[:, 0].max() < 0.41 * 112
