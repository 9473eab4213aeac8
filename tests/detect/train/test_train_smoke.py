"""CI smoke test: a few training steps on a tiny dataset lower the loss, write a
checkpoint that loads, resume continues it, and the export loads in the ONNX runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trafficprn.cli import main
from trafficprn.detect.train.augment import AugmentConfig
from trafficprn.detect.train.checkpoint import load_checkpoint
from trafficprn.detect.train.release import export_checkpoint, model_from_checkpoint
from trafficprn.detect.train.trainer import TrainConfig, epoch_batches, learning_rate, train
from trafficprn.errors import ConfigError, ModelError


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config(data: Path, cfg: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=str(data), cfg=str(cfg), out=str(out), size=96, batch=8, epochs=100, max_iters=40,
        warmup_iters=5, lr0=0.01, progress=False, augment=AugmentConfig(mosaic=0.0, scale=0.1, translate=0.05),
    )
    base.update(kw)
    return TrainConfig(**base)


def test_loss_goes_down_and_checkpoint_loads(tiny_data: Path, half_prn_cfg: Path, tmp_path: Path):
    result = train(config(tiny_data, half_prn_cfg, tmp_path / "run"))
    losses = np.array(result.losses)
    assert len(losses) == 40
    assert losses[-10:].mean() < 0.7 * losses[:5].mean()
    ckpt = load_checkpoint(result.last)
    assert ckpt["iteration"] == 40 and ckpt["class_names"] == ["car", "bus", "truck"]
    model = model_from_checkpoint(ckpt, tmp_path / "run" / "model.cfg")
    with torch.no_grad():
        heads = model(torch.zeros(1, 3, 96, 96))
    assert [h.shape[1] for h in heads] == [24, 24]
    assert result.best is not None and result.metrics is not None
    assert (tmp_path / "run" / "results.jsonl").read_text().count("\n") >= 1


def test_resume_continues_the_same_run(tiny_data: Path, half_prn_cfg: Path, tmp_path: Path):
    out = tmp_path / "run"
    train(config(tiny_data, half_prn_cfg, out, epochs=2, max_iters=None))
    first = load_checkpoint(out / "last.pt")
    assert (first["epoch"], first["iteration"]) == (2, 4)
    train(config(tiny_data, half_prn_cfg, out, epochs=3, max_iters=None), resume=True)
    second = load_checkpoint(out / "last.pt")
    assert (second["epoch"], second["iteration"]) == (3, 6)
    assert len(second["history"]) == 3


def test_resume_without_checkpoint_is_an_error(tiny_data: Path, half_prn_cfg: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(config(tiny_data, half_prn_cfg, tmp_path / "none"), resume=True)


def test_cli_trains_and_exports_a_loadable_model(tiny_data: Path, half_prn_cfg: Path, tmp_path: Path, capsys):
    from trafficprn.detect.runtime import load_detector

    out = tmp_path / "cli"
    code = main(["train", "--data", str(tiny_data), "--cfg", str(half_prn_cfg), "--size", "96", "--epochs", "1",
                 "--batch", "8", "--out", str(out), "--no-progress", "--export-size", "128"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    detector = load_detector(summary["exported"], confidence=0.001)
    assert detector.class_names == ["car", "bus", "truck"] and detector.input_size == (128, 128)
    meta = json.loads((out / "model.json").read_text())
    assert meta["provenance"]["iterations"] == 2 and meta["provenance"]["data"] == str(tiny_data)
    dets = detector.detect(np.full((96, 112, 3), 100, np.uint8))
    assert dets.xyxy.shape[1] == 4
    assert (out / "model.weights").is_file()


def test_export_refuses_a_different_cfg(tiny_data: Path, half_prn_cfg: Path, tmp_path: Path):
    result = train(config(tiny_data, half_prn_cfg, tmp_path / "run", max_iters=1))
    with pytest.raises(ModelError, match="differs"):
        export_checkpoint(result.last, tmp_path / "m.onnx", cfg_path=half_prn_cfg)  # 80-class cfg


def test_learning_rate_schedule():
    lrs = [learning_rate(i, 100, 10, 0.01, 0.1) for i in range(100)]
    assert lrs[0] == pytest.approx(0.001) and lrs[9] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.001, rel=0.01)


def test_epoch_batches_are_a_seeded_permutation():
    a = list(epoch_batches(10, 3, seed=1, epoch=0))
    assert len(a) == 3 and len({i for b in a for i in b}) == 9
    assert list(epoch_batches(10, 3, seed=1, epoch=0, start=1)) == a[1:]
    assert a != list(epoch_batches(10, 3, seed=1, epoch=1))


@pytest.mark.parametrize(
    ("kwargs", "raises"),
    [({"size": 100}, ConfigError), ({"optimizer": "lion"}, ConfigError), ({"epochs": 0}, ConfigError)],
)
def test_config_validation(tmp_path: Path, kwargs, raises):
    with pytest.raises(raises):
        TrainConfig(data="d.yaml", cfg="c.cfg", out=str(tmp_path), **kwargs)
