"""Browser fixtures: the API (uvicorn in a thread on 127.0.0.1:<free port>) on a seeded
SQLite, a real worker endpoint serving a synthetic annotated frame, and Debian's headless
Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

import seeding  # noqa: E402

from trafficprn.api import create_app  # noqa: E402
from trafficprn.config import load_site  # noqa: E402
from trafficprn.live_view import LiveFrames
from trafficprn.settings import Settings  # noqa: E402
from trafficprn.store.db import upgrade  # noqa: E402
from trafficprn.store.testing import free_port  # noqa: E402
from trafficprn.types import Detections  # noqa: E402
from trafficprn.worker import WorkerHTTP, WorkerMetrics  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
API_KEY = "browser-key-123"
LAPTOP = {"width": 1440, "height": 900}
TABLET = {"width": 820, "height": 1180}


def street_frame() -> tuple[np.ndarray, Detections]:
    """A 1280x720 junction drawing with three tracked vehicles (boxes in image px)."""
    img = np.full((720, 1280, 3), (70, 110, 60), np.uint8)
    cv2.rectangle(img, (500, 0), (780, 720), (95, 95, 95), -1)
    cv2.rectangle(img, (0, 220), (1280, 500), (95, 95, 95), -1)
    for y in range(0, 720, 60):
        cv2.line(img, (640, y), (640, y + 30), (230, 230, 230), 3)
    xyxy = np.array([[520, 60, 610, 190], [1000, 380, 1160, 470], [680, 560, 770, 700]], float)
    for (x1, y1, x2, y2), colour in zip(xyxy.astype(int), [(40, 40, 200), (200, 120, 30), (220, 220, 220)], strict=True):
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, -1)
    dets = Detections(xyxy=xyxy, confidence=np.array([0.9, 0.8, 0.85]), class_id=np.array([0, 1, 0]),
                      track_id=np.array([3, 7, 12]))
    return img, dets


@pytest.fixture(scope="session")
def worker_endpoint() -> Iterator[str]:
    site = load_site_for_worker()
    live = LiveFrames(site.cameras[0], ["car", "bus", "truck", "motorcycle", "bicycle"])
    frame, dets = street_frame()
    live.update(frame, dets)
    http = WorkerHTTP(live, WorkerMetrics(seeding.CAMERA), host="127.0.0.1", port=0, max_fps=5).start()
    stop = threading.Event()

    def feed() -> None:  # a new frame now and then, like a camera
        while not stop.wait(0.3):
            live.update(frame, dets)

    threading.Thread(target=feed, daemon=True).start()
    yield f"http://127.0.0.1:{http.port}"
    stop.set()
    http.close()


def load_site_for_worker() -> object:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="trafficprn-worker-site-"))
    try:
        return load_site(seeding.write_site(folder / "site.yaml"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def serve_in_thread(settings: Settings) -> tuple[str, Callable[[], None]]:
    """The API for `settings` under uvicorn in a thread: (base URL, stop)."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                        timeout_graceful_shutdown=1))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)

    def stop() -> None:
        srv.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, worker_endpoint: str) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'db.sqlite'}"
    upgrade(url)
    seeding.seed(url)
    site_path = seeding.write_site(folder / "site.yaml", live_url=worker_endpoint)
    base, stop = serve_in_thread(Settings(database_url=url, api_key=API_KEY, site_path=str(site_path)))
    yield {"base": base, "site_path": site_path, "db": url}
    stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM,
                               args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class PageErrors:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, page: object) -> None:
        page.on("console", lambda m: self.messages.append(f"console: {m.text}") if m.type == "error" else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))  # type: ignore[attr-defined]


@pytest.fixture
def page_factory(browser: object) -> Iterator[tuple[object, PageErrors]]:
    contexts = []
    errors = PageErrors()

    def make(viewport: dict[str, int] = LAPTOP) -> object:
        ctx = browser.new_context(viewport=viewport, device_scale_factor=1)  # type: ignore[attr-defined]
        contexts.append(ctx)
        page = ctx.new_page()
        errors.watch(page)
        return page

    yield make, errors  # type: ignore[misc]
    for ctx in contexts:
        ctx.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots when TRAFFICPRN_SCREENSHOTS=1, else a temp folder."""
    import os

    if os.environ.get("TRAFFICPRN_SCREENSHOTS") == "1":
        out = Path(__file__).parents[2] / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")
