"""CLI: `trafficprn model info|export` and `trafficprn detect`. argparse only at import;
the handlers import what they need."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from trafficprn.errors import InputError


def register(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="model tools: info, export, quantize, eval")
    model_sub = model.add_subparsers(dest="model_command", metavar="MODEL_COMMAND")

    info = model_sub.add_parser("info", help="weights-file values, trainable parameters and BFLOPs of a cfg")
    info.add_argument("cfg", type=Path, help="darknet .cfg file")
    info.add_argument("--size", type=int, default=None, help="input size in px (square); default the cfg's")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_model_info)

    export = model_sub.add_parser("export", help="write an ONNX model (+ JSON) and/or the weights again")
    export.add_argument("cfg", type=Path, help="darknet .cfg file")
    export.add_argument("--weights", type=Path, required=True, help="darknet .weights file")
    export.add_argument("--onnx", type=Path, default=None, help="output .onnx (its .json is written beside it)")
    export.add_argument("--weights-out", type=Path, default=None, help="output darknet .weights (round trip)")
    export.add_argument("--size", type=int, default=None, help="input size in px (square); default the cfg's")
    export.add_argument("--names", type=Path, default=None, help="class names, one per line (darknet .names)")
    export.set_defaults(func=_model_export)
    quant = model_sub.add_parser("quantize", help="INT8 copy of an ONNX model, calibrated on images (opt-in)")
    quant.add_argument("onnx", type=Path, help="exported FP32 .onnx (with its .json)")
    quant.add_argument("--images", type=Path, required=True, help="folder of calibration images from the scene")
    quant.add_argument("--out", type=Path, required=True, help="output .onnx (its .json is written beside it)")
    quant.add_argument("--max-images", type=int, default=64, help="calibration images to use (default 64)")
    quant.set_defaults(func=_model_quantize)
    ev = model_sub.add_parser("eval", help="score a model on labelled images (YOLO data.yaml, VOC .xml or COCO .json)")
    ev.add_argument("data", type=Path, help="folder with data.yaml / VOC .xml files, or a COCO .json")
    ev.add_argument("--model", default="bundled", help="'bundled' or PATH.onnx (default bundled)")
    ev.add_argument(
        "--confidence",
        type=float,
        default=None,
        help="operating confidence for recall/precision (default: the pipeline's detector.confidence)",
    )
    ev.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--pictures", type=Path, default=None, help="write each image with truth and boxes here")
    ev.set_defaults(func=_model_eval)
    model.set_defaults(func=lambda args: _missing(model))

    detect = subparsers.add_parser("detect", help="detect objects in an image or a video file")
    detect.add_argument("source", type=Path, help="image or video file")
    which = detect.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="ONNX model (.onnx with its .json), or 'bundled'")
    which.add_argument("--cfg", type=Path, help="darknet .cfg (PyTorch runtime; needs --weights)")
    detect.add_argument("--weights", type=Path, default=None, help="darknet .weights for --cfg")
    detect.add_argument("--size", type=int, default=None, help="input size in px for --cfg (ONNX: fixed at export)")
    detect.add_argument("--confidence", type=float, default=0.25, help="minimum confidence (default 0.25)")
    detect.add_argument("--nms-iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    detect.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    detect.add_argument("--json", action="store_true", help="print JSON (one line per image or frame)")
    detect.add_argument("--out", type=Path, default=None, help="write an annotated image (.png/.jpg) or video (.mp4)")
    detect.set_defaults(func=_detect)


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _emit(line: str) -> None:
    print(line, flush=True)


def _model_info(args: argparse.Namespace) -> int:
    from trafficprn.detect.cfg import model_info, parse_cfg

    cfg = parse_cfg(args.cfg)
    info = model_info(cfg, args.size, args.size)
    if args.json:
        print(json.dumps({"cfg": str(args.cfg), **info.__dict__, "bflops": round(info.bflops, 4)}))
        return 0
    print(f"{args.cfg} at {info.width}x{info.height}")
    print(f"  layers            {info.layers} ({info.conv_layers} convolutional)")
    print(f"  weights values    {info.weights_values:,}")
    print(f"  trainable params  {info.trainable_params:,}")
    print(f"  BFLOPs            {info.bflops:.2f}")
    return 0


def _read_names(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read class names: {exc}") from None
    return [line.strip() for line in lines if line.strip()]


def _model_export(args: argparse.Namespace) -> int:
    if args.onnx is None and args.weights_out is None:
        raise InputError("model export: nothing to write, give --onnx and/or --weights-out")
    from trafficprn.detect.darknet import build_model, load_weights, save_weights
    from trafficprn.detect.export import export_onnx

    model = build_model(args.cfg)
    header = load_weights(model, args.weights)
    if args.weights_out is not None:
        save_weights(model, args.weights_out, header)
        print(f"wrote {args.weights_out}")
    if args.onnx is not None:
        names = _read_names(args.names) if args.names else None
        size = (args.size, args.size) if args.size else None
        provenance = {"weights": args.weights.name, "seen": header.seen}
        json_path = export_onnx(model, args.onnx, class_names=names, input_size=size, provenance=provenance)
        print(f"wrote {args.onnx} and {json_path}")
    return 0


def _model_quantize(args: argparse.Namespace) -> int:
    from trafficprn.detect.quantize import quantize_onnx
    from trafficprn.detect.run import IMAGE_SUFFIXES, read_image

    if not args.images.is_dir():
        raise InputError(f"{args.images}: not a folder of images")
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.max_images]
    if not files:
        raise InputError(f"{args.images}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    json_path = quantize_onnx(args.onnx, args.out, [read_image(p) for p in files])
    print(f"wrote {args.out} and {json_path} (calibrated on {len(files)} images)")
    return 0


def _detect(args: argparse.Namespace) -> int:
    if not getattr(args, "debug", False):
        # FFmpeg logs decoder complaints (e.g. about a truncated file) straight to stderr;
        # we report them as one line ourselves. Read by OpenCV at its first capture.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    # Like ORT's spinning off: idle OpenMP threads of the torch runtime sleep instead of
    # busy-waiting, as other processes share the cores. Read when torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from trafficprn.detect.run import is_video, run_on_image, run_on_video
    from trafficprn.detect.runtime import load_detector

    if args.cfg is not None:
        detector = load_detector(
            args.cfg,
            runtime="torch",
            weights=args.weights,
            input_size=args.size,
            confidence=args.confidence,
            nms_iou=args.nms_iou,
            threads=args.threads,
        )
    else:
        if args.weights is not None:
            raise InputError("--weights goes with --cfg; an ONNX model carries its weights")
        detector = load_detector(
            args.model, confidence=args.confidence, nms_iou=args.nms_iou, threads=args.threads, input_size=args.size
        )
    run = run_on_video if is_video(args.source) else run_on_image
    code = run(detector, args.source, as_json=args.json, out=args.out, emit=_emit)
    sys.stdout.flush()
    return code


def _model_eval(args: argparse.Namespace) -> int:
    # `datasets` sits above `detect` (it reads label formats and runs detectors); like
    # every handler here, this entry point imports what it needs when it runs.
    from trafficprn.datasets.evaluate import AP_CONFIDENCE, load_set, operating_confidence, score_set
    from trafficprn.detect.runtime import load_detector

    confidence = operating_confidence() if args.confidence is None else args.confidence
    data = load_set(args.data)
    detector = load_detector(args.model, confidence=min(AP_CONFIDENCE, confidence), threads=args.threads)
    result = score_set(detector, data, confidence, args.pictures)
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    print(f"{args.data}: {result.images} images, {result.boxes} vehicle boxes, model {args.model}")
    if data.dropped:
        print("  not scored (not vehicle classes): " + ", ".join(f"{k} {v}" for k, v in sorted(data.dropped.items())))
    print(f"  AP@0.5 all vehicles    {_fmt(result.ap50_vehicle)}")
    print("  AP@0.5 per class       " + "  ".join(f"{k} {_fmt(v)}" for k, v in result.ap50.items()))
    print("  AP@0.5 by size (px)    " + "  ".join(f"{k} {_fmt(v)}" for k, v in result.ap50_by_size.items()))
    print("  boxes by size          " + "  ".join(f"{k} {v}" for k, v in result.boxes_by_size.items()))
    print(
        f"  at confidence {confidence:g}: recall {_fmt(result.recall)}  precision {_fmt(result.precision)}  "
        f"boxes/image {result.boxes_per_image:.2f}"
    )
    print("  recall by size         " + "  ".join(f"{k} {_fmt(v)}" for k, v in result.recall_by_size.items()))
    if args.pictures is not None:
        print(f"  pictures in {args.pictures}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
