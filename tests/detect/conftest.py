"""Fixtures for the detector tests: the shipped cfgs, random well-scaled darknet weights
written to disk, and ONNX exports of them (built once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from trafficprn.resources import data_dir

CFG_NAMES = ("yolov3-tiny-prn", "yolov3-tiny")


def shipped_cfg(name: str) -> Path:
    return data_dir() / "cfg" / f"{name}.cfg"


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """name -> path of a darknet .weights file with random, well-scaled values for the
    shipped cfg `name` (seeded, written once per session)."""
    from trafficprn.detect.darknet import build_model, randomize_weights, save_weights

    root = tmp_path_factory.mktemp("weights")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            model = build_model(shipped_cfg(name))
            randomize_weights(model, seed=len(made) + 7)
            made[name] = root / f"{name}.weights"
            save_weights(model, made[name])
        return made[name]

    return get


@pytest.fixture(scope="session")
def exported_model(
    tmp_path_factory: pytest.TempPathFactory, random_weights: Callable[[str], Path]
) -> Callable[[str, int], Path]:
    """(name, size) -> an exported .onnx (+ .json, + .weights beside it) of the random model."""
    import shutil

    from trafficprn.detect.darknet import build_model, load_weights
    from trafficprn.detect.export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    made: dict[tuple[str, int], Path] = {}

    def get(name: str, size: int) -> Path:
        key = (name, size)
        if key not in made:
            model = build_model(shipped_cfg(name))
            load_weights(model, random_weights(name))
            path = root / f"{name}-{size}.onnx"
            export_onnx(model, path, input_size=(size, size), provenance={"test": True})
            shutil.copy(random_weights(name), path.with_suffix(".weights"))
            made[key] = path
        return made[key]

    return get
