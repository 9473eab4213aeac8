"""YOLOv3 loss: anchor assignment per head, CIoU, and that better predictions cost less."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trafficprn.detect.cfg import parse_cfg_text
from trafficprn.detect.darknet import build_model
from trafficprn.detect.train.heads import resize_cfg_text
from trafficprn.detect.train.loss import bbox_ciou, head_balance, init_head_biases, make_loss, wh_iou
from trafficprn.resources import data_dir


@pytest.fixture(scope="module")
def model():
    text = resize_cfg_text((data_dir() / "cfg" / "yolov3-tiny-prn.cfg").read_text(), 3)
    return build_model(parse_cfg_text(text)).train()


def test_wh_iou():
    iou = wh_iou(torch.tensor([[10.0, 10.0], [20.0, 5.0]]), torch.tensor([[10.0, 10.0], [5.0, 20.0]]))
    torch.testing.assert_close(iou, torch.tensor([[1.0, 50 / 150], [50 / 150, 25 / 175]]))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([5, 5, 4, 2], [5, 5, 4, 2], 1.0),
        ([5, 5, 4, 4], [5, 5, 2, 2], 0.25),  # same centre and aspect: CIoU == IoU
        # disjoint: iou 0, centre distance^2 / enclosing diagonal^2 = 16 / (6^2 + 2^2)
        ([2, 5, 2, 2], [6, 5, 2, 2], -16 / 40),
    ],
)
def test_ciou_known_values(a, b, expected):
    out = bbox_ciou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
    assert out.item() == pytest.approx(expected, abs=1e-6)


def test_head_balance_weighs_fine_heads_more():
    assert head_balance([32, 16]) == [1.0, 4.0]
    assert head_balance([8, 16, 32]) == [4.0, 1.0, 0.4]


@pytest.mark.parametrize(
    ("anchor", "head"),
    [
        ((344, 319), 0),  # anchor 5 lives only in mask 3,4,5 (stride 32)
        ((23, 27), 1),  # anchor 1 lives only in mask 1,2,3 (stride 16)
    ],
)
def test_box_shaped_like_an_anchor_goes_to_its_head(model, anchor, head):
    loss = make_loss(model, 416)
    target = torch.tensor([[0, 1, 0.5, 0.5, anchor[0] / 416, anchor[1] / 416]])
    pairs = loss.assign(target, (416, 416))
    assert len(pairs[head]) >= 1
    mask = loss.head_masks[head]
    best = [int(mask[a]) for _, a in pairs[head].tolist()]
    assert model.cfg.layers[model.heads[head].layer].anchors_px.index(anchor) in best


def test_anchor_shared_by_both_heads_is_used_in_both(model):
    loss = make_loss(model, 416)
    target = torch.tensor([[0, 0, 0.5, 0.5, 81 / 416, 82 / 416]])  # anchor 3 is in both masks
    pairs = loss.assign(target, (416, 416))
    assert len(pairs[0]) >= 1 and len(pairs[1]) >= 1


def test_perfect_prediction_costs_less_and_gradients_flow(model):
    loss = make_loss(model, 128)
    target = torch.tensor([[0, 2, 0.4, 0.6, 0.3, 0.25]])
    outputs = [torch.zeros(1, 3 * 8, 128 // h.stride, 128 // h.stride, requires_grad=True) for h in model.heads]
    random_loss, _ = loss(outputs, target, (128, 128))
    random_loss.backward()
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for o in outputs)
    # build the ideal logits for every assigned (head, anchor, cell)
    ideal = [torch.full_like(o, -12.0).detach() for o in outputs]
    for h, pairs in enumerate(loss.assign(target, (128, 128))):
        g = 128 // model.heads[h].stride
        view = ideal[h].view(1, 3, 8, g, g)
        for row, a in pairs.tolist():
            _, cls, cx, cy, w, hh = target[row].tolist()
            gi, gj = int(cx * g), int(cy * g)
            fx, fy = cx * g - gi, cy * g - gj
            anchor = loss.anchors_px[loss.head_masks[h][a]] / model.heads[h].stride
            view[0, a, 0, gj, gi] = math.log(fx / (1 - fx))
            view[0, a, 1, gj, gi] = math.log(fy / (1 - fy))
            view[0, a, 2, gj, gi] = math.log(w * g / anchor[0])
            view[0, a, 3, gj, gi] = math.log(hh * g / anchor[1])
            view[0, a, 4, gj, gi] = 12.0
            view[0, a, 5 + int(cls), gj, gi] = 12.0
    ideal_loss, parts = loss(ideal, target, (128, 128))
    assert parts.box < 1e-4
    assert ideal_loss.item() < 0.01 * random_loss.item()


def test_empty_targets_only_learn_background(model):
    loss = make_loss(model, 128)
    outputs = [torch.zeros(2, 24, 128 // h.stride, 128 // h.stride) for h in model.heads]
    total, parts = loss(outputs, torch.zeros((0, 6)), (128, 128))
    assert parts.box == 0 and parts.cls == 0 and parts.obj > 0


def test_bias_priors_make_few_confident_cells(model):
    init_head_biases(model, 320)
    with torch.no_grad():
        out = model.eval()(torch.rand(1, 3, 320, 320))
    model.train()
    objectness = torch.cat([o.view(1, 3, 8, *o.shape[2:])[:, :, 4].sigmoid().flatten() for o in out])
    assert objectness.mean() < 0.1


def test_cfg_for_classes_parses(tmp_path: Path):
    text = resize_cfg_text((data_dir() / "cfg" / "yolov3-tiny.cfg").read_text(), 5)
    cfg = parse_cfg_text(text)
    assert cfg.classes == 5
    heads = [cfg.layers[i - 1].filters for i in cfg.yolo_indices]
    assert heads == [30, 30]
