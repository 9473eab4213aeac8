"""The dashboard and setup page in real headless Chromium against a seeded database."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import seeding
import yaml
from browser_env import API_KEY, LAPTOP, TABLET, serve_in_thread, street_frame

from trafficprn.config import load_site

pytestmark = pytest.mark.browser
RANGE = {"camera": seeding.CAMERA, "from": "2026-03-10T00:00:00+01:00", "to": "2026-03-11T00:00:00+01:00"}


def _dashboard(server: dict[str, Any], page: Any, **extra: str) -> None:
    page.goto(f"{server['base']}/ui/index.html?{urlencode({**RANGE, **extra})}", wait_until="domcontentloaded")
    page.wait_for_selector("#counts-chart svg g.bar", timeout=30000)
    page.wait_for_selector("#passages tbody tr td", timeout=30000)


def _api(server: dict[str, Any], path: str, **params: object) -> Any:
    return httpx.get(f"{server['base']}{path}", params={**RANGE, **params}, timeout=10).json()


def test_dashboard_renders_seeded_data(server: dict[str, Any], page_factory: Any, screenshot_dir: Path) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    _dashboard(server, page)
    tmc = _api(server, "/api/counts/movements")
    speeds = _api(server, "/api/speeds")
    bars = page.locator("#counts-chart svg g.bar")
    assert bars.count() == len(tmc["rows"]) == 96
    totals = [int(bars.nth(i).get_attribute("data-total")) for i in range(bars.count())]
    assert totals == [r["total"] for r in tmc["rows"]]
    assert page.locator("#counts-chart svg g.bar.incomplete").count() == 3
    peak_row = max(range(96), key=lambda i: totals[i])
    assert bars.nth(peak_row).locator("rect.seg").count() == sum(1 for v in tmc["rows"][peak_row]["by_movement"].values() if v)
    assert page.locator("#speed-chart svg rect.bin").count() == len(speeds["histogram"])
    assert page.locator("#queue-chart svg path.series").count() == 2
    assert page.locator("#od table tbody tr").count() == 4
    assert page.locator("#passages tbody tr").count() == 50
    kpis = page.locator("#kpis").inner_text()
    assert f"{tmc['total']:,}" in kpis or str(tmc["total"]) in kpis.replace(",", "").replace("\u202f", "")
    page.wait_for_function("document.querySelector('#live img') && document.querySelector('#live img').naturalWidth > 0",
                           timeout=30000)
    assert "fps" in page.locator("#worker-facts").inner_text()
    page.screenshot(path=str(screenshot_dir / "dashboard-laptop.png"), full_page=True)
    tablet = make(TABLET)
    _dashboard(server, tablet)
    tablet.wait_for_function("document.querySelector('#live img') && document.querySelector('#live img').naturalWidth > 0",
                             timeout=30000)
    tablet.screenshot(path=str(screenshot_dir / "dashboard-tablet.png"), full_page=True)
    assert errors.messages == []


def test_passage_filters_work(server: dict[str, Any], page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    _dashboard(server, page)
    page.select_option("#passage-filters select[name=class]", "bus")
    page.wait_for_function(
        "[...document.querySelectorAll('#passages tbody tr')].every(r => r.children[1].textContent === 'bus')")
    expected = _api(server, "/api/passages", **{"class": "bus", "limit": 50})["items"]
    rows = page.locator("#passages tbody tr")
    assert rows.count() == len(expected) > 0
    page.select_option("#passage-filters select[name=movement]", "L")
    page.fill("#passage-filters input[name=speed_min]", "30")
    expected = _api(server, "/api/passages", **{"class": "bus", "movement": "L", "speed_min": 30, "limit": 50})["items"]
    page.wait_for_function(f"document.querySelectorAll('#passages tbody tr').length === {len(expected)}")
    speeds = [float(rows.nth(i).locator("td").nth(5).inner_text()) for i in range(rows.count())]
    assert all(s >= 30 for s in speeds)
    assert errors.messages == []


def test_plate_search_after_entering_the_key(server: dict[str, Any], page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    _dashboard(server, page)
    page.click("#key-button")
    page.fill("#key-input", API_KEY)
    page.click("#key-dialog button[value=save]")
    page.fill("#plate-text", "ABC-10")
    page.click("#plate-form button[type=submit]")
    page.wait_for_selector("#plates tbody tr")
    plates = page.locator("#plates tbody tr td:nth-child(2)").all_inner_texts()
    assert plates and all("ABC-10" in p for p in plates)
    assert errors.messages == []


def test_setup_page_saves_a_lane(server: dict[str, Any], page_factory: Any, screenshot_dir: Path) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    page.goto(f"{server['base']}/ui/setup.html?camera={seeding.CAMERA}", wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('#snapshot-msg').textContent.startsWith('Snapshot loaded')",
                           timeout=30000)
    assert "N-1" in page.locator("#yaml").input_value()
    page.evaluate("sessionStorage.setItem('trafficprn.apiKey', arguments[0])".replace("arguments[0]", repr(API_KEY)))
    page.fill("#new-lane", "E-1")
    page.select_option("#leg", "E")
    page.click("#add-lane button")
    page.select_option("#tool", "lane")
    page.select_option("#lane", "E-1")
    box = page.locator("#canvas").bounding_box()
    sx, sy = box["width"] / 1280, box["height"] / 720

    def click(x: float, y: float) -> None:
        page.mouse.click(box["x"] + x * sx, box["y"] + y * sy)

    for x, y in [(880, 230), (1270, 230), (1270, 350), (880, 350)]:
        click(x, y)
    page.click("#finish")
    page.select_option("#tool", "stop")
    click(880, 230)
    click(880, 350)
    page.wait_for_function("document.querySelector('#yaml').value.includes('E-1')")
    page.screenshot(path=str(screenshot_dir / "setup-laptop.png"), full_page=True)
    before = server["site_path"].read_text()
    page.click("#save")
    page.wait_for_function("document.querySelector('#save-msg').className === 'ok'", timeout=10000)
    after = server["site_path"].read_text()
    assert after != before
    site = load_site(server["site_path"])
    lanes = {lane.name: lane for lane in site.cameras[0].lanes}
    assert set(lanes) == {"N-1", "S-1", "E-1"} and lanes["E-1"].leg == "E"
    xs = [p[0] for p in lanes["E-1"].polygon]
    assert min(xs) == pytest.approx(880, abs=3) and max(xs) == pytest.approx(1270, abs=3)
    assert yaml.safe_load(after)["cameras"][0]["live_url"].startswith("http://127.0.0.1:")
    tablet = make(TABLET)
    tablet.goto(f"{server['base']}/ui/setup.html?camera={seeding.CAMERA}", wait_until="domcontentloaded")
    tablet.wait_for_function("document.querySelector('#yaml').value.includes('E-1')", timeout=30000)
    tablet.wait_for_function("document.querySelector('#snapshot-msg').textContent.startsWith('Snapshot loaded')",
                             timeout=30000)
    tablet.screenshot(path=str(screenshot_dir / "setup-tablet.png"), full_page=True)
    assert errors.messages == []


def test_dashboard_updates_live_without_reload(server: dict[str, Any], page_factory: Any) -> None:
    from trafficprn.events import VehiclePassage

    make, errors = page_factory
    page = make(LAPTOP)
    _dashboard(server, page)
    page.evaluate("window.__notReloaded = true")
    page.wait_for_timeout(1000)  # the event stream has sent its first state
    ts = seeding.DAY0 + 86400 - 1
    seeding.seed(str(server["db"]), [VehiclePassage(
        camera=seeding.CAMERA, track_id=777777, passage_ts=ts, first_seen_ts=ts - 3, last_seen_ts=ts,
        vehicle_class="truck", class_confidence=0.9, entry_leg="W", exit_leg="E", movement="T",
        speed_median_kmh=42.0, speed_max_kmh=45.0, uuid="00000000-0000-4000-8000-777777777777")])
    page.wait_for_function("document.querySelector('#passages tbody tr td:last-child').textContent === '777777'",
                           timeout=30000)
    assert page.evaluate("window.__notReloaded") is True
    assert errors.messages == []


@pytest.fixture
def keyed_server(server: dict[str, Any], tmp_path: Path) -> Any:
    """The same data behind an API that needs the key for reads, with a worker that needs
    its token: what a box open to a city network runs."""
    from trafficprn.live_view import LiveFrames
    from trafficprn.worker import WorkerHTTP, WorkerMetrics

    site = load_site(server["site_path"])
    live = LiveFrames(site.cameras[0], ["car", "bus", "truck", "motorcycle", "bicycle"])
    frame, dets = street_frame()
    live.update(frame, dets)
    http = WorkerHTTP(live, WorkerMetrics(seeding.CAMERA), port=0, max_fps=5, token="w-secret").start()
    site_path = seeding.write_site(tmp_path / "site.yaml", live_url=f"http://127.0.0.1:{http.port}")
    from trafficprn.settings import Settings

    base, stop = serve_in_thread(Settings(database_url=server["db"], api_key=API_KEY, site_path=str(site_path),
                                          require_key_for_reads=True, worker_token="w-secret"))
    yield {"base": base, "worker": f"http://127.0.0.1:{http.port}"}
    stop()
    http.close()


def test_live_view_and_live_updates_work_where_reads_need_the_key(keyed_server: dict[str, Any],
                                                                   page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    page.goto(f"{keyed_server['base']}/ui/index.html?{urlencode(RANGE)}", wait_until="domcontentloaded")
    assert httpx.get(f"{keyed_server['worker']}/snapshot.jpg", timeout=5).status_code == 401  # anonymous, direct
    page.click("#key-button")
    page.fill("#key-input", API_KEY)
    page.click("#key-dialog button[value=save]")
    # the <img> of the live view sends no header: the session cookie carries the key
    page.wait_for_function("(() => { const i = document.querySelector('#live img');"
                           " return i && i.complete && i.naturalWidth === 1280; })()", timeout=30000)
    page.wait_for_selector("#passages tbody tr td", timeout=30000)
    opened = page.evaluate("""async () => {
        const src = new EventSource('/api/events?max_s=2&poll_s=0.3');
        return await new Promise((ok) => {
          src.addEventListener('update', () => { src.close(); ok('update'); });
          src.addEventListener('error', () => { src.close(); ok('error'); });
        });
    }""")
    assert opened == "update"
    errors.messages.clear()  # the 401s of the first load, before the key, are expected


def test_report_button_opens_the_count_report_of_the_shown_range(server: dict[str, Any], page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    _dashboard(server, page)
    page.select_option("#interval", "30m")
    page.wait_for_function("document.querySelector('#report-link').href.includes('interval=30m')", timeout=30000)
    href = page.locator("#report-link").get_attribute("href")
    assert href is not None and href.startswith("/api/reports/tmc?") and "format=pdf" in href
    res = httpx.get(f"{server['base']}{href}", timeout=30)
    assert res.status_code == 200 and res.content.startswith(b"%PDF-")
    csv_link = page.locator("#csv-link").get_attribute("href")
    assert csv_link is not None and csv_link.split("?", 1)[1].replace("format=csv", "") == href.split("?", 1)[1].replace(
        "format=pdf", "")  # the report covers what the CSV covers
    assert errors.messages == []
