"""Detectors: ONNX Runtime (the default, no torch needed) and PyTorch, behind the
`trafficprn.types.Detector` interface.

    detector = load_detector("bundled", threads=2)
    dets = detector.detect(image_bgr)          # Detections in image px

Both share letterboxing, decoding and NMS (`trafficprn.detect.postprocess`), so they
differ only in how the raw head tensors are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trafficprn.detect.classes import default_class_names
from trafficprn.detect.export import read_model_json
from trafficprn.detect.postprocess import HeadSpec, Letterbox, letterbox, postprocess
from trafficprn.errors import DependencyError, ModelError
from trafficprn.resources import data_dir
from trafficprn.types import Detections

if TYPE_CHECKING:
    from trafficprn.detect.darknet import DarknetModel

BUNDLED_MODEL = "models/trafficprn-prn.onnx"
RUNTIMES = ("onnx", "torch")


def bundled_model_path() -> Path:
    return data_dir() / BUNDLED_MODEL


class _YoloDetector:
    """Shared letterbox -> heads -> decode/NMS; subclasses implement `infer`."""

    class_names: list[str]
    input_size: tuple[int, int]
    head_specs: list[HeadSpec]
    confidence: float
    nms_iou: float

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        """(B, 3, h, w) float32 RGB in [0, 1] -> raw head tensors (B, A*(5+C), H, W)."""
        raise NotImplementedError

    def preprocess(self, images_bgr: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        pairs = [letterbox(im, self.input_size) for im in images_bgr]
        return np.stack([p[0] for p in pairs]), [p[1] for p in pairs]

    def detect_batch(self, images_bgr: Sequence[np.ndarray]) -> list[Detections]:
        """Detect on several BGR uint8 images in one inference; one `Detections` each."""
        if not images_bgr:
            return []
        batch, boxes = self.preprocess(images_bgr)
        heads = self.infer(batch)
        return postprocess(
            heads, self.head_specs, self.input_size, boxes, confidence=self.confidence, nms_iou=self.nms_iou
        )

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """BGR uint8 (H, W, 3) -> Detections in image px."""
        return self.detect_batch([image_bgr])[0]


class OnnxDetector(_YoloDetector):
    """A model (`.onnx` + `.json`) on ONNX Runtime's CPU provider.

    threads: intra-op threads. spinning: let idle ORT threads busy-wait; off by default,
    because several processes share the box's cores. graph_optimization: "all",
    "extended", "basic" or "disable".
    """

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        confidence: float = 0.25,
        nms_iou: float = 0.45,
        threads: int = 1,
        spinning: bool = False,
        graph_optimization: str = "all",
    ):
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise ModelError(f"{path}: ONNX model not found")
        meta = read_model_json(path)
        self.meta = meta
        self.path = path
        try:
            self.class_names = [str(c) for c in meta["classes"]]
            self.input_size = (int(meta["input_size"][0]), int(meta["input_size"][1]))
            self.head_specs = [HeadSpec.from_json(o) for o in meta["outputs"]]
            self.output_names = [str(o["name"]) for o in meta["outputs"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{path.with_suffix('.json')}: malformed model JSON: {exc!r}") from None
        self.confidence = confidence
        self.nms_iou = nms_iou
        levels = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }
        if graph_optimization not in levels:
            raise ModelError(f"graph_optimization must be one of {sorted(levels)}, got {graph_optimization!r}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = levels[graph_optimization]
        spin = "1" if spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: cannot load ONNX model: {str(exc).splitlines()[0]}") from None
        self.input_name = self.session.get_inputs()[0].name

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        outputs = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(batch, np.float32)})
        return [np.asarray(o) for o in outputs]


class TorchDetector(_YoloDetector):
    """A `DarknetModel` on PyTorch (CPU), with BN folded into the convs for inference.
    Needs the `train` extra. PyTorch's OpenMP threads busy-wait between ops unless
    OMP_WAIT_POLICY=PASSIVE is set before torch is imported (the CLI does), which
    matters when other processes share the cores."""

    def __init__(
        self,
        model: DarknetModel,
        *,
        class_names: list[str] | None = None,
        input_size: tuple[int, int] | None = None,
        confidence: float = 0.25,
        nms_iou: float = 0.45,
        threads: int = 1,
    ):
        import torch

        from trafficprn.detect.darknet import fused_for_inference

        # channels-last lets oneDNN pick its fast CPU kernels (about 1.5x here).
        self.model = fused_for_inference(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.class_names = class_names if class_names is not None else default_class_names(model.class_count)
        self.input_size = input_size or (model.cfg.net.width, model.cfg.net.height)
        self.head_specs = [
            HeadSpec(stride=h.stride, anchors_px=h.anchors_px, classes=h.classes, scale_x_y=h.scale_x_y)
            for h in model.heads
        ]
        self.confidence = confidence
        self.nms_iou = nms_iou
        self.threads = max(1, int(threads))

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        import torch

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            heads = self.model(x)
        return [np.ascontiguousarray(h.numpy()) for h in heads]


def _torch_model(cfg_path: Path, cfg_text: str | None, weights_path: Path) -> DarknetModel:
    try:
        from trafficprn.detect.cfg import parse_cfg, parse_cfg_text
        from trafficprn.detect.darknet import build_model, load_weights
    except ModuleNotFoundError as exc:
        raise DependencyError(
            f"the torch runtime needs PyTorch ({exc.name} is missing): pip install 'trafficprn[train]'"
        ) from None
    cfg = parse_cfg_text(cfg_text, source=str(cfg_path)) if cfg_text else parse_cfg(cfg_path)
    model = build_model(cfg)
    load_weights(model, weights_path)
    return model


def load_detector(
    model: str | Path,
    *,
    confidence: float = 0.25,
    nms_iou: float = 0.45,
    threads: int = 1,
    runtime: str = "onnx",
    weights: str | Path | None = None,
    input_size: int | tuple[int, int] | None = None,
) -> OnnxDetector | TorchDetector:
    """A detector for `model`.

    model: "bundled" (trafficprn/data/models/trafficprn-prn.onnx), an `.onnx` path (its
    `.json` beside it), or for runtime="torch" a darknet `.cfg` (weights from `weights`,
    else the `.weights` of the same name beside it).
    runtime: "onnx" (ONNX Runtime) or "torch".
    input_size: the network input in px (int for square). Torch: default the cfg's [net]
    size. ONNX: fixed at export; a different size here is a ModelError.
    """
    if runtime not in RUNTIMES:
        raise ModelError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if str(model) == "bundled":
        path = bundled_model_path()
        if not path.is_file():
            raise ModelError(
                f"{path}: bundled model not found; it is produced by the training step "
                "(trafficprn train) or pass --model PATH.onnx"
            )
    else:
        path = Path(model)
        if not path.exists():
            raise ModelError(f"{path}: model not found")
    size = (input_size, input_size) if isinstance(input_size, int) else input_size
    if runtime == "onnx":
        if path.suffix.lower() != ".onnx":
            raise ModelError(f"{path}: the onnx runtime needs an .onnx model, got {path.suffix or 'no suffix'}")
        detector = OnnxDetector(path, confidence=confidence, nms_iou=nms_iou, threads=threads)
        if size is not None and tuple(size) != detector.input_size:
            w, h = detector.input_size
            raise ModelError(f"{path}: ONNX model input is fixed at {w}x{h} at export, got {size[0]}x{size[1]}")
        return detector
    class_names: list[str] | None = None
    cfg_text: str | None = None
    if path.suffix.lower() == ".onnx":
        # Rebuild from the cfg recorded in the model JSON and the .weights beside the model.
        meta: dict[str, Any] = read_model_json(path)
        cfg_text = (meta.get("source_cfg") or {}).get("text")
        if not cfg_text:
            raise ModelError(f"{path.with_suffix('.json')}: no source cfg recorded; pass the .cfg instead")
        class_names = [str(c) for c in meta["classes"]]
        size = size or (int(meta["input_size"][0]), int(meta["input_size"][1]))
    weights_path = Path(weights) if weights is not None else path.with_suffix(".weights")
    net = _torch_model(path.with_suffix(".json") if cfg_text else path, cfg_text, weights_path)
    return TorchDetector(
        net, class_names=class_names, input_size=size, confidence=confidence, nms_iou=nms_iou, threads=threads
    )
