"""The YOLOv3 loss on raw head tensors: box (CIoU), objectness and class (BCE).

Each head of a `DarknetModel` gives (B, A*(5+C), H, W); per anchor the channels are
tx, ty, tw, th, objectness, C class logits, decoded as darknet does:

    x = (sigmoid(tx) * scale_x_y - (scale_x_y - 1) / 2 + cell_x) * stride   px
    w = exp(tw) * anchor_w                                                  px

Anchor assignment per head follows the cfg's `[yolo]` masks. A ground-truth box is
given to (a) the anchor with the best shape IoU among *all* the cfg's anchors, in the
head whose mask holds it (darknet's rule), and (b) any other anchor of any head with
shape IoU > `anchor_iou` (so boxes between anchor sizes get several). The responsible
cell is the one holding the box centre. The objectness target of a positive is its
CIoU with the box (clamped at 0), which keeps confidences calibrated; all other cells
learn objectness 0.

Weights follow the widely used YOLOv5 settings, scaled for the number of heads, the
number of classes and the input size; the sum is multiplied by the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trafficprn.detect.darknet import HeadInfo


@dataclass(frozen=True)
class LossConfig:
    box: float = 0.05
    obj: float = 1.0
    cls: float = 0.5
    anchor_iou: float = 0.2
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class LossParts:
    """Loss terms of one batch (already weighted), for logging."""

    box: float
    obj: float
    cls: float

    @property
    def total(self) -> float:
        return self.box + self.obj + self.cls


def wh_iou(wh_a: torch.Tensor, wh_b: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU of box shapes (N, 2) and (M, 2) aligned at a common centre."""
    inter = torch.min(wh_a[:, None], wh_b[None]).prod(2)
    return inter / (wh_a.prod(1)[:, None] + wh_b.prod(1)[None] - inter + 1e-9)


def bbox_ciou(a_cxcywh: torch.Tensor, b_cxcywh: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(N,) complete IoU of paired boxes (N, 4) (cx, cy, w, h), in [-1.5, 1]."""
    a1, a2 = a_cxcywh[:, :2] - a_cxcywh[:, 2:] / 2, a_cxcywh[:, :2] + a_cxcywh[:, 2:] / 2
    b1, b2 = b_cxcywh[:, :2] - b_cxcywh[:, 2:] / 2, b_cxcywh[:, :2] + b_cxcywh[:, 2:] / 2
    inter = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(min=0).prod(1)
    wa, ha = a_cxcywh[:, 2], a_cxcywh[:, 3] + eps
    wb, hb = b_cxcywh[:, 2], b_cxcywh[:, 3] + eps
    union = wa * ha + wb * hb - inter + eps
    iou = inter / union
    enclosing = torch.max(a2, b2) - torch.min(a1, b1)
    c2 = (enclosing**2).sum(1) + eps
    rho2 = ((a_cxcywh[:, :2] - b_cxcywh[:, :2]) ** 2).sum(1)
    v = (4 / math.pi**2) * (torch.atan(wb / hb) - torch.atan(wa / ha)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def head_balance(strides: list[int]) -> list[float]:
    """Objectness weight per head: finer heads (more cells, smaller objects) weigh more."""
    table = [4.0, 1.0, 0.4] if len(strides) == 3 else [4.0, 1.0, 0.25, 0.06, 0.02]
    rank = sorted(range(len(strides)), key=lambda i: strides[i])
    out = [0.0] * len(strides)
    for r, i in enumerate(rank):
        out[i] = table[min(r, len(table) - 1)]
    return out


class YoloLoss(nn.Module):
    """Loss of a model's raw head outputs against targets.

    heads: the model's `HeadInfo`s (cfg order). anchors_px: all anchors of the cfg
    (the [yolo] `anchors=` list), so that the best-anchor rule spans heads.
    forward(outputs, targets, input_hw) -> (loss scalar tensor, LossParts), with targets
    (M, 6) rows [image index, class, cx, cy, w, h] normalised to the input size.
    """

    def __init__(
        self,
        heads: list[HeadInfo],
        head_masks: list[tuple[int, ...]],
        anchors_px: tuple[tuple[float, float], ...],
        num_classes: int,
        input_size: int,
        config: LossConfig | None = None,
    ):
        super().__init__()
        cfg = config or LossConfig()
        n_heads = len(heads)
        self.heads = heads
        self.head_masks = [torch.tensor(m, dtype=torch.long) for m in head_masks]
        self.anchors_px: torch.Tensor
        self.register_buffer("anchors_px", torch.tensor(anchors_px, dtype=torch.float32))
        self.num_classes = num_classes
        self.anchor_iou = cfg.anchor_iou
        self.balance = head_balance([h.stride for h in heads])
        self.w_box = cfg.box * 3 / n_heads
        self.w_cls = cfg.cls * num_classes / 80 * 3 / n_heads
        self.w_obj = cfg.obj * (input_size / 640) ** 2 * 3 / n_heads
        self.positive = 1.0 - 0.5 * cfg.label_smoothing
        self.negative = 0.5 * cfg.label_smoothing
        self.bce = nn.BCEWithLogitsLoss()

    def assign(self, targets: torch.Tensor, input_hw: tuple[int, int]) -> list[torch.Tensor]:
        """Per head, an (P, 2) tensor of (target row, anchor index within the head); on CPU."""
        anchors = self.anchors_px.cpu()
        targets = targets.cpu()
        wh_px = targets[:, 4:6] * torch.tensor([input_hw[1], input_hw[0]], dtype=targets.dtype)
        shape_iou = wh_iou(wh_px, anchors)  # (M, all anchors)
        best = shape_iou.argmax(1) if len(targets) else torch.zeros(0, dtype=torch.long)
        out = []
        for mask in self.head_masks:
            take = (shape_iou[:, mask] > self.anchor_iou) | (best[:, None] == mask[None, :])
            out.append(take.nonzero())
        return out

    def forward(
        self, outputs: list[torch.Tensor], targets: torch.Tensor, input_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, LossParts]:
        device = outputs[0].device
        targets = targets.to(device)
        anchors = self.anchors_px
        assignments = self.assign(targets.cpu(), input_hw)
        l_box = torch.zeros((), device=device)
        l_obj = torch.zeros((), device=device)
        l_cls = torch.zeros((), device=device)
        batch = outputs[0].shape[0]
        for h, (out, head, pairs) in enumerate(zip(outputs, self.heads, assignments, strict=True)):
            n_anchors = len(self.head_masks[h])
            b, _, gh, gw = out.shape
            pred = out.view(b, n_anchors, 5 + self.num_classes, gh, gw).permute(0, 1, 3, 4, 2)
            tobj = torch.zeros(pred.shape[:4], device=device, dtype=pred.dtype)
            if len(pairs):
                pairs = pairs.to(device)
                t = targets[pairs[:, 0]]
                a = pairs[:, 1]
                img = t[:, 0].long()
                cls = t[:, 1].long()
                gxy = t[:, 2:4] * torch.tensor([gw, gh], device=device, dtype=t.dtype)
                gwh = t[:, 4:6] * torch.tensor([gw, gh], device=device, dtype=t.dtype)
                gi = gxy[:, 0].long().clamp(0, gw - 1)
                gj = gxy[:, 1].long().clamp(0, gh - 1)
                p = pred[img, a, gj, gi]  # (P, 5 + C)
                s = head.scale_x_y
                pxy = p[:, :2].sigmoid() * s - (s - 1) / 2
                anchor_grid = anchors[self.head_masks[h].to(device)[a]] / head.stride
                pwh = torch.exp(p[:, 2:4].clamp(max=6.0)) * anchor_grid
                target_box = torch.cat([gxy - torch.stack([gi, gj], 1).to(gxy.dtype), gwh], 1)
                ciou = bbox_ciou(torch.cat([pxy, pwh], 1), target_box)
                l_box = l_box + (1.0 - ciou).mean()
                tobj[img, a, gj, gi] = ciou.detach().clamp(min=0).to(tobj.dtype)
                if self.num_classes > 1:
                    tcls = torch.full_like(p[:, 5:], self.negative)
                    tcls[torch.arange(len(p), device=device), cls] = self.positive
                    l_cls = l_cls + self.bce(p[:, 5:], tcls)
            l_obj = l_obj + self.bce(pred[..., 4], tobj) * self.balance[h]
        l_box = l_box * self.w_box
        l_obj = l_obj * self.w_obj
        l_cls = l_cls * self.w_cls
        total = (l_box + l_obj + l_cls) * batch
        parts = LossParts(float(l_box.detach()), float(l_obj.detach()), float(l_cls.detach()))
        return total, parts


def make_loss(model: nn.Module, input_size: int, config: LossConfig | None = None) -> YoloLoss:
    """The loss for a `DarknetModel`, reading anchors and masks from its cfg."""
    from trafficprn.detect.cfg import YoloSpec

    specs = [layer for layer in model.cfg.layers if isinstance(layer, YoloSpec)]  # type: ignore[union-attr]
    heads: list[HeadInfo] = list(model.heads)  # type: ignore[arg-type]
    return YoloLoss(
        heads=heads,
        head_masks=[spec.mask for spec in specs],
        anchors_px=specs[0].anchors_px,
        num_classes=specs[0].classes,
        input_size=input_size,
        config=config,
    )


def init_head_biases(model: nn.Module, input_size: int, objects_per_image: float = 8.0) -> None:
    """Start objectness and class logits at sensible priors (a few objects per image,
    classes equally likely) so training from scratch does not begin with a flood of
    confident false positives."""
    from trafficprn.detect.darknet import ConvBlock

    layers = list(model.layers)  # type: ignore[arg-type]
    for head in model.heads:  # type: ignore[union-attr]
        block = layers[head.layer - 1]
        if not isinstance(block, ConvBlock) or block.conv.bias is None:
            continue
        n_anchors = len(head.anchors_px)
        bias = block.conv.bias.detach().view(n_anchors, -1)
        with torch.no_grad():
            bias[:, 4] = math.log(objects_per_image / (input_size / head.stride) ** 2)
            bias[:, 5:] = math.log(0.6 / max(head.classes - 0.99, 0.01))
            block.conv.bias.copy_(bias.reshape(-1))
