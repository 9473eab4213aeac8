"""Many sites in one store: two boxes both have a `cam-1`; the API lists the sites, tells
their cameras apart by `site=`, bins each site on its own clock, and refuses ambiguity."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

import seeding  # noqa: E402
from api_helpers import make_client  # noqa: E402

from trafficprn.events import Event, VehiclePassage  # noqa: E402
from trafficprn.store import db as store_db  # noqa: E402
from trafficprn.store.repository import upsert_site  # noqa: E402
from trafficprn.store.testing import DEFAULT_ADMIN_URL, create_database, drop_database, postgres_reachable  # noqa: E402

ZONES = {"north": "Europe/Berlin", "south": "America/New_York"}
SOUTH_N = 300  # the south box saw only the first 300 vehicles of the day


def _events() -> list[Event]:
    out: list[Event] = []
    for site in ZONES:
        passages = seeding.passages()[:SOUTH_N] if site == "south" else seeding.passages()
        for ev in [*seeding.beats(), *passages, *seeding.queue_samples()]:
            if isinstance(ev, VehiclePassage):  # its own uuids: ids are made from the site too
                ev = replace(ev, uuid=ev.uuid[:-12] + ("1" if site == "south" else "2") + ev.uuid[-11:])
            out.append(replace(ev, site=site))
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def two_sites(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sites') / 'sites.sqlite'}"
    else:
        if not postgres_reachable(DEFAULT_ADMIN_URL):
            pytest.skip("Postgres on 127.0.0.1:5432 is not reachable")
        url = create_database(DEFAULT_ADMIN_URL, prefix="trafficprn_sites_")
    try:
        store_db.upgrade(url)
        seeding.seed(url, _events())
        engine = store_db.make_engine(url)
        with engine.begin() as conn:
            for name, tz in ZONES.items():
                upsert_site(conn, name, tz)
        engine.dispose()
        yield url
    finally:
        if request.param == "postgresql":
            drop_database(url)


@pytest.fixture
def central(two_sites: str) -> Iterator[TestClient]:
    """The centre's API: no site.yaml of its own."""
    with make_client(two_sites, None) as c:
        yield c


DAY = {"from": seeding.DAY0, "to": seeding.DAY0 + 86400}


def _expected(site: str, *, with_movement: bool = True) -> int:
    """The site's passages of the day (the TMC counts those with a movement)."""
    rows = seeding.passages()[:SOUTH_N] if site == "south" else seeding.passages()
    return sum(1 for p in rows if DAY["from"] <= p.passage_ts < DAY["to"] and (p.movement or not with_movement))


def test_sites_lists_each_site_with_its_zone_and_cameras(central: TestClient) -> None:
    r = central.get("/api/sites")
    assert r.status_code == 200, r.text
    got = {s["name"]: s for s in r.json()}
    assert set(got) == set(ZONES)
    for name, tz in ZONES.items():
        assert got[name]["timezone"] == tz and got[name]["local"] is False
        assert [(c["site"], c["name"], c["status"]) for c in got[name]["cameras"]] == [(name, "cam-1", "stale")]


def test_same_camera_name_needs_the_site_and_each_site_counts_its_own(central: TestClient) -> None:
    r = central.get("/api/counts/movements", params={"camera": "cam-1", **DAY})
    assert r.status_code == 422 and "several sites" in r.json()["detail"] and "south" in r.json()["detail"]
    totals = {}
    for site, tz in ZONES.items():
        r = central.get("/api/counts/movements", params={"camera": "cam-1", "site": site, **DAY})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["site"] == site and body["timezone"] == tz  # binned on the site's own clock
        totals[site] = body["total"]
    assert totals == {"north": _expected("north"), "south": _expected("south")}
    assert totals["south"] < totals["north"]


def test_passages_queues_and_speeds_filter_by_site(central: TestClient) -> None:
    r = central.get("/api/passages", params={"site": "south", "limit": 1000, **DAY})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == _expected("south", with_movement=False) and {p["site"] for p in items} == {"south"}
    for path in ("/api/queues", "/api/speeds"):
        a = central.get(path, params={"camera": "cam-1", "site": "north", **DAY})
        assert a.status_code == 200 and a.json()["site"] == "north", a.text
    speeds = {s: central.get("/api/speeds", params={"camera": "cam-1", "site": s, **DAY}).json()["count"]
              for s in ZONES}
    assert 0 < speeds["south"] < speeds["north"]


def test_cameras_of_one_site_and_unknown_sites_404(central: TestClient) -> None:
    r = central.get("/api/cameras", params={"site": "north"})
    assert [(c["site"], c["name"]) for c in r.json()] == [("north", "cam-1")]
    assert {(c["site"], c["name"]) for c in central.get("/api/cameras").json()} == {("north", "cam-1"),
                                                                                 ("south", "cam-1")}
    for path, params in (("/api/cameras", {"site": "nowhere"}),
                         ("/api/counts/movements", {"camera": "cam-1", "site": "nowhere"}),
                         ("/api/counts/movements", {"camera": "cam-9", "site": "north"}),
                         ("/api/passages", {"site": "nowhere"})):
        r = central.get(path, params=params)
        assert r.status_code == 404, (path, r.text)
        assert "nowhere" in r.json()["detail"] or "cam-9" in r.json()["detail"]


def test_tmc_csv_per_site_names_the_site(central: TestClient) -> None:
    r = central.get("/api/counts/movements", params={"camera": "cam-1", "site": "south", "format": "csv", **DAY})
    assert r.status_code == 200, r.text
    assert 'filename="tmc-south-cam-1-' in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    header = lines[0].split(",")
    total_col = header.index("total")
    assert sum(int(line.split(",")[total_col]) for line in lines[1:] if line[:1].isdigit()) == _expected("south")


def test_a_box_of_one_site_needs_no_site_parameter(seeded_url: str, site_path: Path) -> None:
    """The seeded box stored its rows before it knew its name (site ''); its own API lists
    them under its site and answers with or without site=."""
    with make_client(seeded_url, site_path) as c:
        sites = c.get("/api/sites").json()
        assert [(s["name"], s["local"], [cam["name"] for cam in s["cameras"]]) for s in sites] == [
            ("main-and-5th", True, ["cam-1"])]
        plain = c.get("/api/counts/movements", params={"camera": "cam-1", **DAY}).json()
        named = c.get("/api/counts/movements", params={"camera": "cam-1", "site": "main-and-5th", **DAY}).json()
        assert plain["total"] == named["total"] > 1000
