"""Sim scenes for the setup tests: truth only (no video), rendered once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafficprn.sim.scenario import load_scenario
from trafficprn.sim.scene import SceneOptions, render_scene

SCENE_SECONDS = 180.0  # two and a half signal cycles of the default junction: every leg queues
SCENE_FPS = 4.0


def _render(root: Path, camera: str, size: tuple[int, int]) -> Path:
    opts = SceneOptions(seconds=SCENE_SECONDS, fps=SCENE_FPS, camera=camera, seed=21, size_px=size, video=False)
    return render_scene(load_scenario("default"), root / camera, opts)


@pytest.fixture(scope="session")
def fisheye_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("setup-scenes"), "fisheye", (640, 640))


@pytest.fixture(scope="session")
def pole_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("setup-scenes"), "pole", (640, 360))
