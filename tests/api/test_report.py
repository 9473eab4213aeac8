"""The count report (`/api/reports/tmc`): its numbers are the TMC CSV's, read back from the
real PDF (pdftotext) and HTML; the PDF's pages render (pdftoppm); bad parameters are
refused exactly as the TMC route refuses them."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import seeding
from api_helpers import make_client
from fastapi.testclient import TestClient

from trafficprn.store import db as store_db

DAY = {"camera": seeding.CAMERA, "from": seeding.DAY0, "to": seeding.DAY0 + 86400}
POPPLER = shutil.which("pdftotext") is not None and shutil.which("pdftoppm") is not None
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdftoppm) not installed")
MOVEMENT_LINE = re.compile(r"(?:^|\s)(\w+)\s+([LTRU]) \((?:left|through|right|U-turn)\)\s+(\d+)\s+(\d*)\s+(\d+)\s*$")


def csv_movement_totals(text: str) -> Counter[tuple[str, str]]:
    """(leg, movement) -> vehicles of the TMC CSV's TOTAL line, summed over classes."""
    rows = list(csv.reader(io.StringIO(text)))
    header, total = rows[0], next(r for r in rows if r and r[0] == "TOTAL")
    out: Counter[tuple[str, str]] = Counter()
    for name, value in zip(header, total, strict=False):
        parts = name.split("_")
        if len(parts) == 3:
            out[(parts[0], parts[1])] += int(value)
    return out


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def report_movement_totals(text: str) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    whole: Counter[tuple[str, str]] = Counter()
    peak: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        m = MOVEMENT_LINE.search(line)  # a line may also hold diagram labels
        if m:
            whole[(m[1], m[2])] = int(m[3])
            peak[(m[1], m[2])] = int(m[4]) if m[4] else 0
    return whole, peak


@needs_poppler
def test_pdf_totals_are_the_csvs_and_its_pages_render(client: TestClient, tmp_path: Path) -> None:
    res = client.get("/api/reports/tmc", params={**DAY, "format": "pdf"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/pdf" and res.content.startswith(b"%PDF-")
    csv_text = client.get("/api/counts/movements", params={**DAY, "format": "csv"}).text
    counts = client.get("/api/counts/movements", params=DAY).json()
    text = pdf_text(res.content, tmp_path)
    whole, peak = report_movement_totals(text)
    assert whole == csv_movement_totals(csv_text)
    assert len(whole) == 16 and sum(whole.values()) == counts["total"] > 0
    ph = counts["peak_hour"]
    assert sum(peak.values()) == ph["volume"]  # the peak-hour column adds up to the peak hour
    assert f"PHF {ph['phf']:.2f}" in text and f"{ph['volume']} vehicles" in text
    assert f"{100 * counts['heavy_share']:.1f} %" in text
    assert f"marked *): {counts['incomplete_intervals']}" in text and counts["incomplete_intervals"] > 0
    assert "Europe/Berlin" in text and seeding.CAMERA in text and "main-and-5th" in text
    # the per-class tables: one row per interval each, the incomplete ones starred
    assert text.count(" *") >= counts["incomplete_intervals"]
    for vehicle_class in ("car", "bus", "truck"):
        assert f"{vehicle_class} per 15 min" in text
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "report.pdf"), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2  # the diagram page and the interval tables
    from PIL import Image

    for page in pages:
        with Image.open(page) as im:
            assert im.width > im.height  # A4 landscape
            lo, hi = im.convert("L").getextrema()
            assert lo < 100 and hi > 200  # something is drawn on a white page


def test_html_has_the_diagram_and_the_csvs_totals(client: TestClient) -> None:
    res = client.get("/api/reports/tmc", params=DAY)  # html is the default
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    csv_totals = csv_movement_totals(client.get("/api/counts/movements", params={**DAY, "format": "csv"}).text)
    body = page[page.index('id="movement-totals"'):]
    rows = re.findall(r'<tr><td class="t">(\w+)</td><td class="t">([LTRU]) \([^)]*\)</td><td>(\d+)</td>', body)
    assert {(leg, m): int(n) for leg, m, n in rows} == dict(csv_totals)
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count("marker-end") == 16  # an arrow per leg and movement
    for (leg, m), n in csv_totals.items():
        assert f">{n}<" in svg or f">{n} (" in svg, (leg, m)
    counts = client.get("/api/counts/movements", params=DAY).json()
    assert page.count('<tr class="incomplete">') >= counts["incomplete_intervals"] > 0


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"camera": "nope"}, 404),
        ({}, 422),
        ({"camera": "cam-1", "interval": "7m"}, 422),
        ({"camera": "cam-1", "from": "2020-01-01", "to": "2026-01-01"}, 422),
        ({"camera": "cam-1", "interval": "5m", "from": "2026-01-01", "to": "2026-12-01"}, 422),
        ({"camera": "cam-1", "from": "2026-03-02", "to": "2026-03-01"}, 422),
        ({"camera": "cam-1", "from": "yesterday"}, 422),
    ],
)
def test_bad_parameters_are_refused_like_the_tmc_route(client: TestClient, params: dict[str, str], status: int) -> None:
    tmc = client.get("/api/counts/movements", params=params)
    for fmt in ("html", "pdf"):
        res = client.get("/api/reports/tmc", params={**params, "format": fmt})
        assert res.status_code == tmc.status_code == status, res.text
        assert res.json()["detail"] == tmc.json()["detail"]


def test_an_unknown_format_is_422(client: TestClient) -> None:
    res = client.get("/api/reports/tmc", params={**DAY, "format": "docx"})
    assert res.status_code == 422 and "format" in res.text


@needs_poppler
def test_demo_scene_report_matches_its_csv(tmp_path: Path) -> None:
    """The bundled demo scene's true passages stored, the report over the scene's range has
    the TMC CSV's movement totals."""
    from trafficprn.demo import demo_scene_dir
    from trafficprn.events import VehiclePassage
    from trafficprn.store import repository

    scene = demo_scene_dir()
    info = json.loads((scene / "scene.json").read_text())
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    store_db.upgrade(url)
    passages = [VehiclePassage(camera=info["camera"], track_id=v["track_id"], passage_ts=v["passage_ts"],
                               first_seen_ts=v["first_ts"], last_seen_ts=v["last_ts"], vehicle_class=v["class"],
                               class_confidence=1.0, entry_leg=v["entry_leg"], exit_leg=v["exit_leg"],
                               movement=v["movement"], site="sim-default")
                for v in json.loads((scene / "vehicles.json").read_text()) if v["passage_ts"] is not None]
    engine = store_db.make_engine(url)
    with engine.begin() as conn:
        repository.write_events(conn, passages)
    engine.dispose()
    span = {"camera": info["camera"], "from": info["start_ts"], "to": info["start_ts"] + info["seconds"]}
    with make_client(url, scene / "site.yaml") as c:
        pdf = c.get("/api/reports/tmc", params={**span, "format": "pdf"})
        assert pdf.status_code == 200, pdf.text
        csv_totals = csv_movement_totals(c.get("/api/counts/movements", params={**span, "format": "csv"}).text)
    whole, _ = report_movement_totals(pdf_text(pdf.content, tmp_path))
    assert +whole == +csv_totals and sum(whole.values()) == len(passages) > 10
