"""`trafficprn demo` live, in real headless Chromium: the bundled scene replayed through a
real worker (the bundled model, real decoding, SQLite), the dashboard watching it.

The demo runs as a user starts it (a subprocess of `python -m trafficprn demo`) at a high
`--speed`, so the first vehicles pass within seconds. With TRAFFICPRN_SCREENSHOTS=1 the
live view is written to docs/screenshots/demo-live-{laptop,tablet}.png.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_env import TABLET

from trafficprn.demo import demo_scene_dir
from trafficprn.store.testing import free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (demo_scene_dir().parent / "models" / "trafficprn-prn.onnx").is_file(),
                       reason="no bundled model"),
]
LAPTOP_1280 = {"width": 1280, "height": 800}
# A hash of the live view's current frame, drawn small on a canvas (same origin: readable).
FRAME_HASH = """() => {
  const img = document.querySelector('#live img');
  if (!img || !img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = 48; c.height = 48;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, 48, 48);
  const d = g.getImageData(0, 0, 48, 48).data; let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
  return String(h);
}"""
VEHICLES = "() => Number((document.querySelector('#kpis .kpi .v') || {}).textContent?.replace(/[^0-9]/g, '') || 0)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("demo-live")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trafficprn", "demo", "--no-progress", "--workdir", str(work), "--port", str(port),
         "--speed", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        found = re.search(r"dashboard at (http://\S+)", line)
        url = found.group(1) if found else None
    try:
        assert url is not None, "".join(lines)
        assert "live=1" in url
        _wait_for(f"http://127.0.0.1:{port}/api/health")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert not list(Path(demo_scene_dir()).glob("*.sqlite")), "the demo wrote into the package"


def _wait_for(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer")
        time.sleep(0.2)


def _open(page: Any, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('#live img') && document.querySelector('#live img').naturalWidth > 0",
                           timeout=60000)


def test_demo_dashboard_plays_live(demo: str, page_factory: Any, screenshot_dir: Path) -> None:
    make, errors = page_factory
    page = make(LAPTOP_1280)
    _open(page, demo)
    assert "SIMULATED SCENE" in page.locator("#banner").inner_text()
    first = page.evaluate(FRAME_HASH)
    assert first is not None
    page.wait_for_function(f"({FRAME_HASH})() !== {first!r}", timeout=30000)  # the live view moves
    before = page.evaluate(VEHICLES)
    page.wait_for_function(f"({VEHICLES})() > {before}", timeout=90000, polling=500)  # passages arrive (SSE)
    rows = page.locator("#passages tbody tr")
    page.wait_for_function("document.querySelectorAll('#passages tbody tr td').length > 1", timeout=30000)
    assert rows.count() >= 1
    assert page.locator("#counts-chart svg g.bar rect.seg").count() >= 1
    page.wait_for_function("document.querySelector('#queue-chart svg path.series')", timeout=30000)
    assert page.locator("#queue-chart").get_attribute("data-step") == "1"  # a few minutes: per second
    if os.environ.get("TRAFFICPRN_SCREENSHOTS") == "1":  # docs: a busier moment
        page.wait_for_function(f"({VEHICLES})() >= 12", timeout=120000, polling=1000)
    page.screenshot(path=str(screenshot_dir / "demo-live-laptop.png"), full_page=True)
    tablet = make(TABLET)
    _open(tablet, demo)
    tablet.wait_for_function(f"({VEHICLES})() > 0", timeout=60000, polling=500)
    tablet.screenshot(path=str(screenshot_dir / "demo-live-tablet.png"), full_page=False)
    assert errors.messages == []
