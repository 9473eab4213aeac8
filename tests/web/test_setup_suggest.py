"""The setup page from a suggestion to saved legs, lanes and calibration, and the map-pairs
fit, in real headless Chromium against a real API on a small simulated scene."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from browser_env import API_KEY, LAPTOP, serve_in_thread
from suggestions import suggested_site

from trafficprn.camera.calibration import Calibration
from trafficprn.config import load_site
from trafficprn.settings import Settings
from trafficprn.store.db import upgrade

pytestmark = pytest.mark.browser
CAMERA = "fisheye-1"
COMMENTS = ("# the test junction: a simulated fisheye", "  # surveyed by hand, once")
GRID_RGB = (0x56, 0xB4, 0xE9)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("setup-scene") / "scene"
    subprocess.run([sys.executable, "-m", "trafficprn", "sim", "scene", "--scenario", "default", "--seconds", "5",
                    "--fps", "2", "--size", "640", "--out", str(out)], check=True, capture_output=True, timeout=120)
    text = (out / "site.yaml").read_text()
    text = COMMENTS[0] + "\n" + text.replace("  calibration:\n", COMMENTS[1] + "\n  calibration:\n", 1)
    (out / "site.yaml").write_text(text)
    load_site(out / "site.yaml")
    return out


@pytest.fixture
def setup_server(scene: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    folder = tmp_path / "site"
    shutil.copytree(scene, folder)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    site_path = folder / "site.yaml"
    base, stop = serve_in_thread(Settings(database_url=url, api_key=API_KEY, site_path=str(site_path)))
    yield {"base": base, "site_path": site_path}
    stop()


def _open(page: Any, base: str) -> None:
    page.add_init_script(f"sessionStorage.setItem('trafficprn.apiKey', {API_KEY!r})")
    page.goto(f"{base}/ui/setup.html?camera={CAMERA}", wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('#canvas').dataset.gridSource === 'saved'", timeout=30000)


def _grid_pixels(page: Any) -> int:
    """Canvas pixels in the grid's colour."""
    return int(page.evaluate("""([r, g, b]) => {
        const c = document.querySelector('#canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
          if (Math.abs(d[i] - r) < 6 && Math.abs(d[i + 1] - g) < 6 && Math.abs(d[i + 2] - b) < 6) n++;
        return n; }""", list(GRID_RGB)))


def test_setup_page_from_suggestion_to_saved_zones_and_calibration(setup_server: dict[str, Any], page_factory: Any,
                                                                   screenshot_dir: Path) -> None:
    site_path = setup_server["site_path"]
    suggested = suggested_site(site_path, site_path.parent / "suggested.yaml", CAMERA, dx_px=3.0)
    make, errors = page_factory
    page = make(LAPTOP)
    _open(page, setup_server["base"])
    saved_grid = _grid_pixels(page)
    assert saved_grid > 300  # the saved calibration's grid is drawn from the start
    page.click("#load-suggestion")
    page.wait_for_selector("#legs li[data-zone='leg:E'][data-status='pending']", timeout=10000)
    support = {z["name"]: z["tracks"] for z in suggested["suggestion"]["legs"] + suggested["suggestion"]["lanes"]}
    shown = {li.get_attribute("data-zone").split(":", 1)[1]: int(li.get_attribute("data-tracks"))
             for li in page.locator("#legs li, #lanes li").all()}
    assert shown == support
    assert "40 tracks" in page.locator("#legs li[data-zone='leg:E']").inner_text()
    assert "214" in page.locator("#suggestion-meta").inner_text()
    page.wait_for_function("document.querySelector('#canvas').dataset.gridSource === 'suggestion'", timeout=10000)
    page.click("#save")  # nothing decided yet: the page refuses
    page.wait_for_function("document.querySelector('#save-msg').textContent.includes('pending')")
    page.click("button[aria-label='Reject lane W-2']")
    page.click("#accept-rest")
    assert page.locator("#lanes li[data-zone='lane:W-2']").get_attribute("data-status") == "rejected"
    assert page.locator("li[data-zone='calibration']").get_attribute("data-status") == "accepted"
    assert page.locator("#lanes li[data-status='accepted']").count() == 7
    assert int(page.locator("#canvas").get_attribute("data-grid-lines")) > 10
    assert _grid_pixels(page) > 300
    page.uncheck("#show-grid")
    assert _grid_pixels(page) < saved_grid / 10  # what was counted is the grid
    page.check("#show-grid")
    page.screenshot(path=str(screenshot_dir / "setup-suggestion.png"), full_page=True)
    page.click("#save")
    page.wait_for_function("document.querySelector('#save-msg').className === 'ok'", timeout=15000)
    assert "calibration" in page.locator("#save-msg").inner_text()

    text = site_path.read_text()
    for comment in COMMENTS:
        assert comment in text
    cam = yaml.safe_load(text)["cameras"][0]
    assert cam["legs"] == suggested["legs"]
    assert cam["lanes"] == [lane for lane in suggested["lanes"] if lane["name"] != "W-2"]
    assert cam["calibration"] == suggested["calibration"]
    assert cam["lens"] == suggested["lens"]
    assert "suggestion" not in cam
    assert load_site(site_path).cameras[0].calibration.points[0].ground_m == tuple(
        suggested["calibration"]["points"][0]["ground_m"])
    assert errors.messages == []


def test_setup_page_fits_map_pairs_and_saves_them(setup_server: dict[str, Any], page_factory: Any,
                                                  tmp_path: Path) -> None:
    site_path = setup_server["site_path"]
    truth = Calibration.from_camera(load_site(site_path).cameras[0])
    ground = np.array([[-12.0, -10.0], [12.0, -9.0], [11.0, 12.0], [-10.0, 11.0], [2.0, 16.0]])
    image_px = truth.ground_to_image(ground)
    mpp, origin = 0.1, np.array([200.0, 200.0])
    aerial_px = np.stack([origin[0] + ground[:, 0] / mpp, origin[1] - ground[:, 1] / mpp], 1)
    aerial = np.full((400, 400, 3), (60, 100, 60), np.uint8)
    cv2.rectangle(aerial, (160, 0), (240, 400), (90, 90, 90), -1)
    cv2.rectangle(aerial, (0, 160), (400, 240), (90, 90, 90), -1)
    cv2.imwrite(str(tmp_path / "aerial.png"), aerial)

    make, errors = page_factory
    page = make(LAPTOP)
    _open(page, setup_server["base"])
    page.set_input_files("#aerial-file", str(tmp_path / "aerial.png"))
    page.wait_for_function("document.querySelector('#aerial').width === 400")
    page.fill("#aerial-mpp", str(mpp))
    page.click("#pick-pairs")

    def click(selector: str, size: tuple[int, int], p: Any) -> None:  # scrolls the canvas into view
        box = page.locator(selector).bounding_box()
        page.locator(selector).click(position={"x": p[0] * box["width"] / size[0], "y": p[1] * box["height"] / size[1]})

    for px, ap in zip(image_px, aerial_px, strict=True):
        click("#canvas", (640, 640), px)
        click("#aerial", (400, 400), ap)
    assert page.locator("#pairs li").count() == 5
    page.click("#fit-map")
    page.wait_for_function("document.querySelector('#pairs-msg').className === 'ok'", timeout=10000)
    page.wait_for_function("document.querySelector('#canvas').dataset.gridSource === 'map pairs'", timeout=10000)
    residuals = [float(li.get_attribute("data-residual-m")) for li in page.locator("#pairs li").all()]
    assert max(residuals) < 0.3
    assert _grid_pixels(page) > 300
    page.click("#save")
    page.wait_for_function("document.querySelector('#save-msg').className === 'ok'", timeout=15000)

    points = load_site(site_path).cameras[0].calibration.points
    assert len(points) == 5
    np.testing.assert_allclose([p.image_px for p in points], image_px, atol=1.0)
    np.testing.assert_allclose([p.ground_m for p in points], ground - ground[0], atol=0.15)  # pair 1 is the origin
    for comment in COMMENTS:
        assert comment in site_path.read_text()
    assert errors.messages == []


def test_setup_page_takes_a_picked_suggestion_file_and_edits_a_leg(setup_server: dict[str, Any], page_factory: Any,
                                                                   tmp_path: Path) -> None:
    site_path = setup_server["site_path"]
    picked = tmp_path / "my-suggestion.yaml"  # on the user's computer, not beside site.yaml
    suggested = suggested_site(site_path, picked, CAMERA, dx_px=2.0)
    make, errors = page_factory
    page = make(LAPTOP)
    _open(page, setup_server["base"])
    page.set_input_files("#suggestion-file", str(picked))
    page.wait_for_selector("#legs li[data-zone='leg:N'][data-status='pending']", timeout=10000)
    assert "picked file" in page.locator("#suggestion-msg").inner_text()
    page.click("button[aria-label='Reject leg W']")  # takes its lanes with it
    assert page.locator("#lanes li[data-status='rejected']").count() == 2
    page.click("button[aria-label='Edit leg N']")
    assert page.locator("#tool").input_value() == "entry" and page.locator("#leg").input_value() == "N"
    entry = np.array(next(leg for leg in suggested["legs"] if leg["name"] == "N")["entry"])
    cx, cy = entry.mean(axis=0)
    square = [(cx - 4, cy - 4), (cx + 4, cy - 4), (cx + 4, cy + 4), (cx - 4, cy + 4)]
    box = page.locator("#canvas").bounding_box()
    for x, y in square:
        page.locator("#canvas").click(position={"x": x * box["width"] / 640, "y": y * box["height"] / 640})
    page.click("#finish")
    page.click("#accept-rest")
    page.click("button[aria-label='Reject the suggested calibration']")
    page.wait_for_function("document.querySelector('#canvas').dataset.gridSource === 'saved'", timeout=10000)
    before = yaml.safe_load(site_path.read_text())["cameras"][0]
    page.click("#save")
    page.wait_for_function("document.querySelector('#save-msg').className === 'ok'", timeout=15000)

    cam = yaml.safe_load(site_path.read_text())["cameras"][0]
    assert [leg["name"] for leg in cam["legs"]] == ["E", "N", "S"]
    assert [lane["name"] for lane in cam["lanes"]] == ["E-1", "E-2", "N-1", "N-2", "S-1", "S-2"]
    np.testing.assert_allclose(cam["legs"][1]["entry"], square, atol=1.0)
    assert cam["legs"][1]["exit"] == suggested["legs"][1]["exit"]
    assert cam["calibration"] == before["calibration"]  # the rejected calibration is not saved
    assert errors.messages == []
