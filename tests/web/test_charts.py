"""The dashboard's charts in real headless Chromium: the queue chart draws the data it is
given (one point per second over a short range, one per bin with the max shaded over a
long one) and the per-interval bars split by movement or by class."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
import seeding
from browser_env import LAPTOP, serve_in_thread

from trafficprn.events import QueueSample
from trafficprn.settings import Settings
from trafficprn.store.db import upgrade
from trafficprn.store.testing import heartbeats

pytestmark = pytest.mark.browser
START = seeding.DAY0 + 10 * 3600  # 10:00 local: 30 minutes of 1 Hz queue samples from here
SECONDS = 1800


def queue_samples() -> list[QueueSample]:
    t = np.arange(START, START + SECONDS, 1.0)
    wave = 20 + 15 * np.sin(2 * np.pi * (t - START) / 90)  # a queue building and clearing every 90 s
    return [QueueSample(seeding.CAMERA, lane, float(ts), round(float(v) * k, 2), int(v // 6))
            for ts, v in zip(t, wave, strict=True) for lane, k in (("N-1", 1.0), ("S-1", 0.5))]


@pytest.fixture(scope="module")
def chart_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("charts")
    url = f"sqlite:///{folder / 'db.sqlite'}"
    upgrade(url)
    seeding.seed(url, [*seeding.statuses(), *heartbeats(seeding.CAMERA, *seeding.WATCHED), *seeding.passages(),
                       *queue_samples()])
    site_path = seeding.write_site(folder / "site.yaml")
    base, stop = serve_in_thread(Settings(database_url=url, site_path=str(site_path)))
    yield {"base": base}
    stop()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _open(server: dict[str, Any], page: Any, a: float, b: float) -> dict[str, str]:
    rng = {"camera": seeding.CAMERA, "from": _iso(a), "to": _iso(b)}
    page.goto(f"{server['base']}/ui/index.html?{urlencode(rng)}", wait_until="domcontentloaded")
    page.wait_for_selector("#queue-chart svg path.series", timeout=30000)
    return rng


def _points(page: Any, kind: str) -> dict[str, int]:
    paths = page.locator(f"#queue-chart svg path.{kind}")
    return {paths.nth(i).get_attribute("data-name"): int(paths.nth(i).get_attribute("data-points"))
            for i in range(paths.count())}


def test_queue_chart_has_a_point_per_second_over_a_short_range(chart_server: dict[str, Any],
                                                               page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    a, b = START + 300, START + 900  # ten minutes
    rng = _open(chart_server, page, a, b)
    assert page.locator("#queue-chart").get_attribute("data-step") == "1"
    assert _points(page, "series") == {"N-1": 600, "S-1": 600}  # one per second of the range
    assert _points(page, "band") == {}  # per second there is nothing to shade
    api = httpx.get(f"{chart_server['base']}/api/queues", params={**rng, "step_s": 1}, timeout=10).json()
    lane = next(s for s in api["lanes"] if s["lane"] == "N-1")
    assert lane["ts"] == [float(t) for t in range(int(a), int(b))]
    assert "per second" in page.locator("#queue-note").inner_text()
    assert errors.messages == []


def test_queue_chart_bins_a_long_range_into_mean_and_max(chart_server: dict[str, Any], page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    rng = _open(chart_server, page, seeding.DAY0, seeding.DAY0 + 86400)  # a day: 1-minute bins
    assert page.locator("#queue-chart").get_attribute("data-step") == "60"
    assert _points(page, "series") == {"N-1": SECONDS // 60, "S-1": SECONDS // 60}  # one per bin with samples
    assert _points(page, "band") == {"N-1": SECONDS // 60, "S-1": SECONDS // 60}
    api = httpx.get(f"{chart_server['base']}/api/queues", params={**rng, "step_s": 1}, timeout=10).json()
    lane = next(s for s in api["lanes"] if s["lane"] == "N-1")
    assert api["step_s"] == 60 and lane["ts"] == [float(t) for t in range(int(START), int(START) + SECONDS, 60)]
    assert all(hi >= mean for mean, hi in zip(lane["length_m"], lane["length_m_max"], strict=True))
    assert max(lane["length_m_max"]) == pytest.approx(35.0, abs=0.1)
    assert max(lane["length_m_max"]) > max(lane["length_m"])  # a minute's mean is below its peak
    assert "mean per 1 min" in page.locator("#queue-note").inner_text()
    assert errors.messages == []


def test_interval_bars_split_by_class(chart_server: dict[str, Any], page_factory: Any) -> None:
    make, errors = page_factory
    page = make(LAPTOP)
    _open(chart_server, page, seeding.DAY0, seeding.DAY0 + 86400)
    page.wait_for_selector("#counts-chart svg g.bar")
    by_movement = page.locator("#counts-chart svg rect.seg").evaluate_all("rs => rs.map(r => r.dataset.key)")
    assert set(by_movement) <= {"L", "T", "R", "U"}
    page.select_option("#split", "class")
    page.wait_for_function("[...document.querySelectorAll('#counts-chart svg rect.seg')].some(r => r.dataset.key === 'car')")
    tmc = httpx.get(f"{chart_server['base']}/api/counts/movements",
                    params={"camera": seeding.CAMERA, "from": _iso(seeding.DAY0), "to": _iso(seeding.DAY0 + 86400),
                            "interval": "15m"}, timeout=10).json()
    bars = page.locator("#counts-chart svg g.bar")
    busiest = max(range(len(tmc["rows"])), key=lambda i: tmc["rows"][i]["total"])
    expected: dict[str, int] = {}
    for col, n in tmc["rows"][busiest]["counts"].items():
        expected[col.split("_", 2)[2]] = expected.get(col.split("_", 2)[2], 0) + n
    segs = bars.nth(busiest).locator("rect.seg")
    assert {segs.nth(i).get_attribute("data-key") for i in range(segs.count())} == {k for k, v in expected.items() if v}
    assert int(bars.nth(busiest).get_attribute("data-total")) == tmc["rows"][busiest]["total"]
    assert "bus" in page.locator("#counts-legend").inner_text()
    assert errors.messages == []
