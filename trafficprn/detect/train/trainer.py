"""The training loop: data, model, optimiser with warm-up + cosine decay, EMA weights,
validation mAP, checkpoints with resume, a progress bar with loss and ETA.

    result = train(TrainConfig(data="data.yaml", cfg="yolov3-tiny-prn.cfg", out="runs/a"))

A run directory holds `model.cfg` (the cfg sized for the dataset's classes), `last.pt`
(written every `save_every_s` seconds and at each epoch end, so a run resumes mid-epoch),
`best.pt` (best validation fitness, 0.1 mAP@0.5 + 0.9 mAP@0.5:0.95) and
`results.jsonl` (one line per validation). Batches are drawn from a permutation seeded by
(seed, epoch), and augmentation from (seed, epoch, index), so a resumed run sees the
same data it would have seen.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trafficprn.detect.cfg import parse_cfg_text
from trafficprn.detect.darknet import DarknetModel, build_model
from trafficprn.detect.metrics import DetectionMetrics, MapAccumulator
from trafficprn.detect.postprocess import HeadSpec, decode_heads
from trafficprn.detect.train.augment import AugmentConfig
from trafficprn.detect.train.checkpoint import load_checkpoint, save_checkpoint
from trafficprn.detect.train.dataset import YoloDataset, collate, load_data_yaml
from trafficprn.detect.train.ema import ModelEMA
from trafficprn.detect.train.heads import load_pretrained, resize_cfg_text
from trafficprn.detect.train.loss import LossConfig, init_head_biases, make_loss
from trafficprn.errors import ConfigError
from trafficprn.geometry.nms import nms


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; stored in its checkpoints."""

    data: str
    cfg: str
    out: str
    weights: str | None = None
    size: int = 320
    epochs: int = 100
    batch: int = 16
    optimizer: str = "adamw"  # adamw | sgd
    lr0: float | None = None  # default 0.002 (adamw) / 0.01 (sgd)
    lrf: float = 0.05  # final lr = lr0 * lrf
    momentum: float = 0.937
    weight_decay: float = 5e-4
    warmup_iters: int = 300
    ema_tau: float = 2000.0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1
    seed: int = 0
    save_every_s: float = 300.0
    val_every: int = 1
    val_size: int | None = None  # validation input size (default: size)
    max_val_images: int | None = None
    max_iters: int | None = None  # stop after this many optimiser steps (smoke tests)
    progress: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.size % 32:
            raise ConfigError(f"--size must be a multiple of 32, got {self.size}", field="size")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be adamw or sgd, got {self.optimizer!r}", field="optimizer")
        if self.epochs < 1 or self.batch < 1:
            raise ConfigError(f"epochs and batch must be >= 1, got {self.epochs} and {self.batch}")

    @property
    def base_lr(self) -> float:
        return self.lr0 if self.lr0 is not None else (0.002 if self.optimizer == "adamw" else 0.01)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    last: Path
    best: Path | None
    metrics: dict[str, Any] | None
    losses: list[float]


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but torch sees no CUDA device", field="device")
    return torch.device(name)


def learning_rate(iteration: int, total: int, warmup: int, lr0: float, lrf: float) -> float:
    """Linear warm-up from 0 over `warmup` steps, then cosine decay to lr0 * lrf at `total`."""
    if iteration < warmup:
        return lr0 * (iteration + 1) / warmup
    progress = min(1.0, (iteration - warmup) / max(1, total - warmup))
    return lr0 * (lrf + (1 - lrf) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv weights only (not on BN or biases)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        (decay if name.endswith("conv.weight") else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.base_lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.base_lr, betas=(config.momentum, 0.999))


def epoch_batches(n: int, batch: int, seed: int, epoch: int, start: int = 0) -> Iterator[list[int]]:
    """Index batches of one epoch (a permutation seeded by seed and epoch), from batch `start`.
    The last partial batch is dropped when there is more than one batch."""
    order = np.random.default_rng((seed, epoch)).permutation(n)
    count = n // batch if n >= batch else 1
    for b in range(start, count):
        yield order[b * batch : (b + 1) * batch].tolist()


def build_run_model(config: TrainConfig, class_names: list[str], run_dir: Path) -> tuple[DarknetModel, str]:
    """The model sized for the dataset's classes; its cfg is written to run_dir/model.cfg."""
    try:
        text = Path(config.cfg).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read cfg: {exc}", source=config.cfg) from None
    text = resize_cfg_text(text, len(class_names))
    cfg_path = run_dir / "model.cfg"
    cfg_path.write_text(text, encoding="utf-8")
    model = build_model(parse_cfg_text(text, source=str(cfg_path)))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.03
    return model, text


def head_specs(model: DarknetModel) -> list[HeadSpec]:
    return [HeadSpec(h.stride, h.anchors_px, h.classes, h.scale_x_y) for h in model.heads]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: YoloDataset,
    class_names: list[str],
    device: torch.device,
    batch: int = 16,
    confidence: float = 0.005,
    nms_iou: float = 0.6,
    max_images: int | None = None,
) -> DetectionMetrics:
    """mAP of `model` on a letterboxed (un-augmented) dataset."""
    was_training = model.training
    model.eval()
    specs = head_specs(model)  # type: ignore[arg-type]
    acc = MapAccumulator(num_classes=len(class_names), class_names=class_names)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    size = dataset.size
    for start in range(0, n, batch):
        items = [dataset[i] for i in range(start, min(n, start + batch))]
        images, targets = collate(items)
        heads = model(images.to(device).float() / 255.0)
        raw = decode_heads([h.float().cpu().numpy() for h in heads], specs, (size, size), confidence)
        for i, boxes in enumerate(raw):
            t = targets[targets[:, 0] == i].numpy().astype(np.float64)
            gt = np.stack(
                [t[:, 2] - t[:, 4] / 2, t[:, 3] - t[:, 5] / 2, t[:, 2] + t[:, 4] / 2, t[:, 3] + t[:, 5] / 2], axis=1
            ) * size if len(t) else np.zeros((0, 4))
            keep = nms(boxes.xyxy, boxes.confidence, nms_iou, class_id=boxes.class_id)[:300]
            acc.add(boxes.xyxy[keep], boxes.confidence[keep], boxes.class_id[keep], gt, t[:, 1].astype(np.int64))
    model.train(was_training)
    return acc.compute()


def fitness(metrics: DetectionMetrics) -> float:
    m50, m = metrics.map50, metrics.map50_95
    return 0.0 if math.isnan(m50) else 0.1 * m50 + 0.9 * m


def provenance(config: TrainConfig, device: torch.device) -> dict[str, Any]:
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": config.threads,
    }


class Trainer:
    """One run. `run()` trains until `epochs` (or `max_iters`) and returns a TrainResult."""

    def __init__(self, config: TrainConfig, *, resume: bool = False):
        self.config = config
        self.run_dir = Path(config.out)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(max(1, config.threads))
        torch.manual_seed(config.seed)
        self.device = select_device(config.device)
        spec = load_data_yaml(config.data)
        self.class_names = spec.names
        self.model, self.cfg_text = build_run_model(config, spec.names, self.run_dir)
        self.model.to(self.device).train()
        self.train_set = YoloDataset(spec.train, len(spec.names), config.size, config.augment, seed=config.seed)
        self.val_set = YoloDataset(spec.val, len(spec.names), config.val_size or config.size, None)
        self.loss_fn = make_loss(self.model, config.size, config.loss).to(self.device)
        self.optimizer = make_optimizer(self.model, config)
        self.ema = ModelEMA(self.model, tau=config.ema_tau)
        self.epoch, self.batch_index, self.iteration = 0, 0, 0
        self.best_fitness = -1.0
        self.history: list[dict[str, Any]] = []
        self.transfer: dict[str, Any] | None = None
        self.started = time.time()
        self.elapsed_before = 0.0
        if resume:
            self._resume()
        else:
            # Priors first; pretrained weights then overwrite every row they have.
            init_head_biases(self.model, config.size)
            if config.weights:
                self.transfer = asdict(load_pretrained(self.model, config.weights, spec.names, self.cfg_text))
            self.ema = ModelEMA(self.model, tau=config.ema_tau)

    @property
    def batches_per_epoch(self) -> int:
        n = len(self.train_set)
        return n // self.config.batch if n >= self.config.batch else 1

    @property
    def total_iters(self) -> int:
        total = self.config.epochs * self.batches_per_epoch
        return min(total, self.config.max_iters) if self.config.max_iters else total

    def _resume(self) -> None:
        path = self.run_dir / "last.pt"
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt["model"])
        self.ema.load(ckpt["ema"], ckpt["ema_updates"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.batch_index, self.iteration = ckpt["epoch"], ckpt["batch_index"], ckpt["iteration"]
        self.best_fitness = ckpt.get("best_fitness", -1.0)
        self.history = ckpt.get("history", [])
        self.transfer = ckpt.get("transfer")
        self.elapsed_before = ckpt.get("elapsed_s", 0.0)

    def checkpoint(self, path: Path) -> Path:
        return save_checkpoint(
            path,
            {
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "ema_updates": self.ema.updates,
                "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "iteration": self.iteration,
                "best_fitness": self.best_fitness,
                "history": self.history,
                "class_names": self.class_names,
                "cfg_text": self.cfg_text,
                "size": self.config.size,
                "config": asdict(self.config),
                "transfer": self.transfer,
                "provenance": provenance(self.config, self.device),
                "elapsed_s": self.elapsed_before + time.time() - self.started,
            },
        )

    def validate(self) -> DetectionMetrics:
        metrics = evaluate(
            self.ema.module, self.val_set, self.class_names, self.device, max_images=self.config.max_val_images
        )
        row = {"epoch": self.epoch, "iteration": self.iteration, **metrics.as_dict(), "time": time.time()}
        self.history.append(row)
        with (self.run_dir / "results.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return metrics

    def step(self, indices: list[int]) -> float:
        cfg = self.config
        images, targets = collate([self.train_set[i] for i in indices])
        lr = learning_rate(self.iteration, self.total_iters, cfg.warmup_iters, cfg.base_lr, cfg.lrf)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = images.to(self.device, non_blocking=True).float() / 255.0
        outputs = self.model(x)
        loss, parts = self.loss_fn(outputs, targets, (x.shape[2], x.shape[3]))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.optimizer.step()
        self.ema.update(self.model)
        self.iteration += 1
        self.last_parts = parts
        self.last_lr = lr
        return float(loss.detach()) / len(indices)

    def run(self) -> TrainResult:
        from tqdm import tqdm

        cfg = self.config
        losses: list[float] = []
        metrics: DetectionMetrics | None = None
        last_save = time.time()
        bar = tqdm(total=self.total_iters, initial=self.iteration, disable=not cfg.progress, dynamic_ncols=True)
        try:
            while self.epoch < cfg.epochs and self.iteration < self.total_iters:
                self.train_set.set_epoch(self.epoch)
                for indices in epoch_batches(len(self.train_set), cfg.batch, cfg.seed, self.epoch, self.batch_index):
                    losses.append(self.step(indices))
                    self.batch_index += 1
                    p = self.last_parts
                    bar.set_description(f"epoch {self.epoch + 1}/{cfg.epochs}")
                    bar.set_postfix(loss=f"{losses[-1]:.3f}", box=f"{p.box:.3f}", obj=f"{p.obj:.3f}",
                                    cls=f"{p.cls:.3f}", lr=f"{self.last_lr:.1e}", refresh=False)
                    bar.update(1)
                    if time.time() - last_save > cfg.save_every_s:
                        self.checkpoint(self.run_dir / "last.pt")
                        last_save = time.time()
                    if self.iteration >= self.total_iters:
                        break
                if self.batch_index >= self.batches_per_epoch:
                    self.epoch += 1
                    self.batch_index = 0
                end_of_run = self.iteration >= self.total_iters or self.epoch >= cfg.epochs
                if end_of_run or (self.batch_index == 0 and self.epoch % cfg.val_every == 0):
                    metrics = self.validate()
                    score = fitness(metrics)
                    tqdm.write(
                        f"epoch {self.epoch}: mAP@0.5 {metrics.map50:.3f}  mAP@0.5:0.95 {metrics.map50_95:.3f}",
                        file=sys.stderr,
                    )
                    if score > self.best_fitness:
                        self.best_fitness = score
                        self.checkpoint(self.run_dir / "best.pt")
                self.checkpoint(self.run_dir / "last.pt")
                last_save = time.time()
        finally:
            bar.close()
        best = self.run_dir / "best.pt"
        return TrainResult(
            run_dir=self.run_dir,
            last=self.run_dir / "last.pt",
            best=best if best.is_file() else None,
            metrics=metrics.as_dict() if metrics is not None else None,
            losses=losses,
        )


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Train (or resume) a run; see `Trainer`."""
    if resume and not (Path(config.out) / "last.pt").is_file():
        raise ConfigError(f"--resume: no checkpoint at {Path(config.out) / 'last.pt'}", field="resume")
    os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
    return Trainer(config, resume=resume).run()
