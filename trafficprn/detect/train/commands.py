"""`trafficprn train`: train a PRN (or any darknet-cfg YOLO) detector on a YOLO dataset.

    trafficprn train --data data.yaml --cfg trafficprn/data/cfg/trafficprn-prn.cfg \\
        --size 320 --epochs 50 --batch 16 --out runs/mine [--weights yolov3-tiny-prn.weights]
    trafficprn train --out runs/mine --resume            # continue where it stopped

After the last epoch the best EMA checkpoint is exported to OUT/model.onnx + .json.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a detector on a YOLO-format dataset (needs the train extra)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", help="data.yaml of a YOLO-format dataset")
    p.add_argument("--cfg", help="darknet cfg; its heads are resized to the dataset's classes")
    p.add_argument("--weights", help="start from darknet .weights (e.g. COCO) or a trafficprn .pt checkpoint")
    p.add_argument("--size", type=int, default=320, help="training input size in px (multiple of 32)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 100; with --resume: extend to this)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", required=True, help="run directory (checkpoints, results.jsonl, exported model)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--lr0", type=float, default=None, help="peak learning rate (default 0.002 adamw, 0.01 sgd)")
    p.add_argument("--warmup-iters", type=int, default=300, help="linear learning-rate warm-up steps")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every-s", type=float, default=300.0, help="write last.pt at least this often")
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    p.add_argument("--max-val-images", type=int, default=None)
    p.add_argument("--fliplr", type=float, default=0.5, help="left-right flip probability")
    p.add_argument("--flipud", type=float, default=0.0, help="up-down flip probability (top-down fisheye: 0.5)")
    p.add_argument("--mosaic", type=float, default=1.0, help="mosaic probability")
    p.add_argument("--scale", type=float, default=0.5, help="random scale gain +-")
    p.add_argument("--degrees", type=float, default=0.0, help="random rotation +- degrees")
    p.add_argument("--export-size", type=int, default=None, help="ONNX input size (default: --size)")
    p.add_argument("--no-export", action="store_true", help="do not export OUT/model.onnx at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from dataclasses import fields
    from pathlib import Path

    from trafficprn.errors import ConfigError, DependencyError

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise DependencyError("training needs PyTorch: pip install 'trafficprn[train]'") from None
    from trafficprn.detect.train.augment import AugmentConfig
    from trafficprn.detect.train.checkpoint import load_checkpoint
    from trafficprn.detect.train.loss import LossConfig
    from trafficprn.detect.train.release import export_checkpoint
    from trafficprn.detect.train.trainer import TrainConfig, train

    if args.resume:
        saved = load_checkpoint(Path(args.out) / "last.pt")["config"]
        saved["augment"] = AugmentConfig(**saved["augment"])
        saved["loss"] = LossConfig(**saved["loss"])
        saved.update(out=args.out, threads=args.threads, device=args.device, progress=not args.no_progress)
        if args.epochs is not None:
            saved["epochs"] = args.epochs
        known = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    else:
        if not args.data or not args.cfg:
            raise ConfigError("train needs --data and --cfg (or --resume with --out)")
        config = TrainConfig(
            data=args.data,
            cfg=args.cfg,
            out=args.out,
            weights=args.weights,
            size=args.size,
            epochs=args.epochs or 100,
            batch=args.batch,
            optimizer=args.optimizer,
            lr0=args.lr0,
            warmup_iters=args.warmup_iters,
            device=args.device,
            threads=args.threads,
            seed=args.seed,
            save_every_s=args.save_every_s,
            val_every=args.val_every,
            max_val_images=args.max_val_images,
            progress=not args.no_progress,
            augment=AugmentConfig(
                mosaic=args.mosaic, fliplr=args.fliplr, flipud=args.flipud, scale=args.scale, degrees=args.degrees
            ),
        )
    result = train(config, resume=args.resume)
    summary: dict[str, Any] = {"run_dir": str(result.run_dir), "last": str(result.last), "metrics": result.metrics}
    if not args.no_export:
        best = result.best or result.last
        json_path = export_checkpoint(best, result.run_dir / "model.onnx", input_size=args.export_size)
        summary["exported"] = str(json_path.with_suffix(".onnx"))
    print(json.dumps(summary, indent=2))
    return 0
