"""REST API against a seeded SQLite and the real Postgres: results checked against the
Python ground truth of the seeded events."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import seeding
import yaml
from api_helpers import API_KEY, make_client
from fastapi.testclient import TestClient

from trafficprn.config import load_site
from trafficprn.timebins import interval_start

DAY = {"camera": seeding.CAMERA, "from": seeding.DAY0, "to": seeding.DAY0 + 86400}
PASSAGES = seeding.passages()


def _complete(p: object) -> bool:
    return getattr(p, "movement", None) is not None


def test_health(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_cameras_status_and_uptime(client: TestClient) -> None:
    cams = client.get("/api/cameras").json()
    assert [c["name"] for c in cams] == [seeding.CAMERA]
    cam = cams[0]
    # the seeded worker's last heartbeat was months ago: stale, not "up" for ever
    assert cam["status"] == "stale" and cam["since_ts"] == pytest.approx(seeding.WATCHED[1])
    assert cam["last_heartbeat_ts"] == pytest.approx(seeding.WATCHED[1]) and "no heartbeat" in cam["reason"]
    assert cam["uptime_s"] is None and cam["live"] is False
    assert cam["legs"] == ["N", "E", "S", "W"] and cam["lanes"] == ["N-1", "S-1"]


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({}, lambda p: True),
        ({"class": "bus"}, lambda p: p.vehicle_class == "bus"),
        ({"movement": "L"}, lambda p: p.movement == "L"),
        ({"colour": "red"}, lambda p: p.colour == "red"),
        ({"entry_leg": "S", "movement": "T"}, lambda p: p.entry_leg == "S" and p.movement == "T"),
        ({"speed_min": 20, "speed_max": 30},
         lambda p: p.speed_median_kmh is not None and 20 <= p.speed_median_kmh <= 30),
        ({"from": "2026-03-10T07:00:00+01:00", "to": "2026-03-10T08:00:00+01:00"},
         lambda p: seeding.DAY0 + 7 * 3600 <= p.passage_ts < seeding.DAY0 + 8 * 3600),
    ],
)
def test_passage_filters_and_cursor(client: TestClient, params: dict[str, object], keep: object) -> None:
    expected = sorted(p.uuid for p in PASSAGES if keep(p))  # type: ignore[operator]
    got: list[dict[str, object]] = []
    cursor = None
    for _ in range(100):
        res = client.get("/api/passages", params={"camera": seeding.CAMERA, "limit": 200, **params,
                                                   **({"cursor": cursor} if cursor else {})})
        assert res.status_code == 200, res.text
        page = res.json()
        got += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(str(p["uuid"]) for p in got) == expected
    ts = [float(p["passage_ts"]) for p in got]  # type: ignore[arg-type]
    assert ts == sorted(ts, reverse=True)
    assert all("plate_text" not in p for p in got)


def test_movement_counts_match_python(client: TestClient) -> None:
    res = client.get("/api/counts/movements", params=DAY)
    assert res.status_code == 200, res.text
    t = res.json()
    assert len(t["rows"]) == 96 and t["interval_minutes"] == 15 and t["timezone"] == seeding.TZ
    assert t["legs"] == ["N", "E", "S", "W"]
    truth: Counter[tuple[float, str]] = Counter()
    for p in PASSAGES:
        if _complete(p):
            truth[(interval_start(p.passage_ts, seeding.TZ, 15), f"{p.entry_leg}_{p.movement}_{p.vehicle_class}")] += 1
    got = Counter({(r["start_ts"], col): n for r in t["rows"] for col, n in r["counts"].items() if n})
    assert got == truth
    assert t["total"] == sum(truth.values()) and t["unassigned"] == 1
    assert t["rows"][0]["start"] == "2026-03-10T00:00:00+01:00"
    incomplete = [r["start"][11:16] for r in t["rows"] if not r["complete"]]
    assert incomplete == ["12:00", "12:15", "12:30"] and t["incomplete_intervals"] == 3
    heavy = sum(1 for p in PASSAGES if _complete(p) and p.vehicle_class in ("bus", "truck"))
    assert t["heavy_share"] == pytest.approx(heavy / t["total"])
    totals = np.array([r["total"] for r in t["rows"]])
    windows = [totals[i : i + 4].sum() for i in range(93) if all(r["complete"] for r in t["rows"][i : i + 4])]
    peak = t["peak_hour"]
    assert peak["volume"] == max(windows)
    i = [r["start_ts"] for r in t["rows"]].index(peak["start_ts"])
    assert peak["phf"] == pytest.approx(peak["volume"] / (4 * totals[i : i + 4].max()))
    assert 7 <= int(peak["start"][11:13]) <= 9  # the seeded morning peak
    od = np.array(t["od_matrix"])
    assert od.sum() == t["total"]
    assert od[0, 2] == sum(1 for p in PASSAGES if p.entry_leg == "N" and p.exit_leg == "S")
    assert all(len(r["counts"]) == len(t["columns"]) for r in t["rows"])  # every column, zeros included


def test_movement_counts_without_row_counts_keep_every_sum(client: TestClient) -> None:
    """row_counts=false (what the dashboard asks) leaves out each row's per-column counts
    and nothing else: per-row movement and class sums, totals, peak and O-D as in full."""
    full = client.get("/api/counts/movements", params=DAY).json()
    lite = client.get("/api/counts/movements", params={**DAY, "row_counts": "false"}).json()
    assert all(r["counts"] is None for r in lite["rows"])
    for f, li in zip(full["rows"], lite["rows"], strict=True):
        assert li["by_movement"] == f["by_movement"] and li["total"] == f["total"] == sum(f["by_class"].values())
        for cls, n in f["by_class"].items():
            assert n == sum(v for col, v in f["counts"].items() if col.endswith(f"_{cls}"))
    assert {k: v for k, v in lite.items() if k != "rows"} == {k: v for k, v in full.items() if k != "rows"}
    assert len(lite["rows"]) == len(full["rows"])


def test_movement_counts_csv(client: TestClient) -> None:
    res = client.get("/api/counts/movements", params={**DAY, "format": "csv", "interval": "60m"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(res.text)))
    header = rows[0]
    assert header[:3] == ["interval_start", "interval_end", "complete"] and header[-2:] == ["total", "heavy"]
    assert "N_L_car" in header and len(header) == 3 + 4 * 4 * 5 + 2
    body = rows[1:25]
    assert len(body) == 24 and rows[25][0] == "TOTAL"
    assert sum(int(r[-2]) for r in body) == int(rows[25][-2]) == sum(map(_complete, PASSAGES))
    assert body[12][2] == "0"  # 12:00-13:00 overlaps the downtime
    summary = {r[0]: r[1] for r in rows[27:] if r}
    assert set(summary) >= {"peak_hour_start", "peak_hour_factor", "heavy_vehicle_share", "incomplete_intervals"}


def test_queues_resampled(client: TestClient) -> None:
    res = client.get("/api/queues", params={**DAY, "step_s": 300})
    assert res.status_code == 200, res.text
    lanes = {s["lane"]: s for s in res.json()["lanes"]}
    assert set(lanes) == {"N-1", "S-1"}
    assert len(lanes["N-1"]["ts"]) == 12 and lanes["S-1"]["length_m"] == [10.0] * 12
    samples = [q for q in seeding.queue_samples() if q.lane == "N-1"]
    first = [q.length_m for q in samples if q.ts < seeding.DAY0 + 8 * 3600 + 300]
    assert lanes["N-1"]["length_m"][0] == pytest.approx(np.mean(first), abs=0.01)


def test_speeds_percentiles_and_histogram(client: TestClient) -> None:
    res = client.get("/api/speeds", params={**DAY, "bin_kmh": 10})
    assert res.status_code == 200, res.text
    s = res.json()
    # the approach speed where measured, else the median speed
    speeds = np.array([p.approach_speed_kmh if p.approach_speed_kmh is not None else p.speed_median_kmh
                       for p in PASSAGES if p.speed_median_kmh is not None])
    assert any(p.approach_speed_kmh is not None for p in PASSAGES)
    assert s["count"] == len(speeds)
    for name, q in (("p15", 15), ("p50", 50), ("p85", 85), ("p95", 95)):
        assert s["percentiles"][name] == pytest.approx(np.percentile(speeds, q), abs=1e-6)
    assert sum(b["count"] for b in s["histogram"]) == len(speeds)
    assert all(b["hi_kmh"] - b["lo_kmh"] == pytest.approx(10) for b in s["histogram"])


def test_passages_carry_the_engineers_speeds(client: TestClient) -> None:
    res = client.get("/api/passages", params={**DAY, "limit": 500})
    assert res.status_code == 200, res.text
    want = {p.uuid: p for p in PASSAGES}
    items = res.json()["items"]
    assert any(it["approach_speed_kmh"] is not None for it in items)
    for it in items:
        p = want[it["uuid"]]
        assert (it["approach_speed_kmh"], it["through_speed_kmh"], it["stopped_s"], it["stops"]) == (
            p.approach_speed_kmh, p.through_speed_kmh, p.stopped_s, p.stops)


def test_plates_need_the_key(client: TestClient) -> None:
    assert client.get("/api/plates", params={"text": "ABC"}).status_code == 401
    assert client.get("/api/plates", params={"text": "ABC"}, headers={"X-API-Key": "wrong"}).status_code == 401
    res = client.get("/api/plates", params={"text": "abc-10"}, headers={"X-API-Key": API_KEY})
    assert res.status_code == 200, res.text
    texts = sorted(p["plate_text"] for p in res.json())
    assert texts == sorted(p.plate_text for p in PASSAGES if p.plate_text and "ABC-10" in p.plate_text)


def test_plates_disabled_without_configured_key(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path, api_key=None) as c:
        res = c.get("/api/plates", params={"text": "ABC"}, headers={"X-API-Key": "anything"})
    assert res.status_code == 403 and "TRAFFICPRN_API_KEY" in res.json()["detail"]


def test_reads_may_require_the_key(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path, require_key_for_reads=True) as c:
        assert c.get("/api/passages").status_code == 401
        assert c.get("/api/passages", headers={"X-API-Key": API_KEY}).status_code == 200
        assert c.get("/api/health").status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/api/passages", {"from": "2026-03-11", "to": "2026-03-10"}, 422, "after"),
        ("/api/passages", {"from": "yesterday"}, 422, "from"),
        ("/api/passages", {"limit": 0}, 422, "limit"),
        ("/api/passages", {"speed_min": 50, "speed_max": 10}, 422, "speed_max"),
        ("/api/passages", {"movement": "X"}, 422, "movement"),
        ("/api/passages", {"cursor": "not-a-cursor"}, 400, "cursor"),
        ("/api/passages", {"cursor": "\x00"}, 422, "not allowed"),
        ("/api/passages", {"colour": "red\x00"}, 422, "not allowed"),
        ("/api/passages", {"entry_leg": "N\x00"}, 422, "not allowed"),
        ("/api/plates", {"text": "AB\x00C"}, 401, "API key"),
        ("/api/queues", {"camera": "cam-1", "lane": "N-1\x00"}, 422, "not allowed"),
        ("/api/passages", {"camera": "nope"}, 404, "nope"),
        ("/api/counts/movements", {"camera": "nope"}, 404, "nope"),
        ("/api/counts/movements", {}, 422, "camera"),
        ("/api/counts/movements", {"camera": "cam-1", "interval": "7m"}, 422, "interval"),
        ("/api/counts/movements", {"camera": "cam-1", "format": "xml"}, 422, "format"),
        ("/api/counts/movements", {"camera": "cam-1", "from": "2020-01-01", "to": "2026-01-01"}, 422, "400 days"),
        ("/api/counts/movements", {"camera": "cam-1", "interval": "5m", "from": "2026-01-01", "to": "2026-12-01"},
         422, "shorter range"),
        ("/api/queues", {"camera": "cam-1", "step_s": 0}, 422, "step_s"),
        ("/api/queues", {"camera": "cam-1", "step_s": 60, "max_points": 5}, 422, "max_points"),
        ("/api/speeds", {"camera": "cam-1", "bin_kmh": -1}, 422, "bin_kmh"),
        ("/api/cameras/nope/zones", {}, 404, "nope"),
        ("/api/cameras/cam-1/live.mjpg", {}, 404, "live_url"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(client: TestClient, path: str, params: dict[str, object],
                                             status: int, words: str) -> None:
    res = client.get(path, params=params)
    assert res.status_code == status, res.text
    assert words in res.json()["detail"]


def test_cors_closed_by_default_and_configurable(seeded_sqlite: str, site_path: Path) -> None:
    origin = {"Origin": "https://city.example"}
    with make_client(seeded_sqlite, site_path) as c:
        assert "access-control-allow-origin" not in c.get("/api/health", headers=origin).headers
    with make_client(seeded_sqlite, site_path, cors_origins=["https://city.example"]) as c:
        assert c.get("/api/health", headers=origin).headers["access-control-allow-origin"] == "https://city.example"


def test_zones_put_validates_and_writes_the_site(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path) as c:
        zones = c.get("/api/cameras/cam-1/zones").json()
        assert zones["image_size"] == [1280, 720] and "stop_line" in zones["yaml"]
        new = {"legs": zones["legs"][:2], "lanes": [{**zones["lanes"][0], "name": "N-2"}]}
        assert c.put("/api/cameras/cam-1/zones", json=new).status_code == 401
        before = site_path.read_text()
        bad = {"legs": zones["legs"][:1], "lanes": [{**zones["lanes"][1]}]}  # lane on leg S, which is gone
        res = c.put("/api/cameras/cam-1/zones", json=bad, headers={"X-API-Key": API_KEY})
        assert res.status_code == 422 and "leg" in res.json()["detail"]
        assert site_path.read_text() == before
        res = c.put("/api/cameras/cam-1/zones", json=new, headers={"X-API-Key": API_KEY})
        assert res.status_code == 200, res.text
        assert c.get("/api/cameras").json()[0]["lanes"] == ["N-2"]
    site = load_site(site_path)
    assert [leg.name for leg in site.cameras[0].legs] == ["N", "E"]
    assert site.cameras[0].source == "rtsp://127.0.0.1:1/none"
    assert yaml.safe_load(site_path.read_text())["cameras"][0]["lanes"][0]["name"] == "N-2"


def test_live_proxy_unreachable_worker_is_502(seeded_sqlite: str, tmp_path: Path) -> None:
    from trafficprn.store.testing import free_port

    site = seeding.write_site(tmp_path / "site.yaml", live_url=f"http://127.0.0.1:{free_port()}")
    with make_client(seeded_sqlite, site) as c:
        for path in ("/api/cameras/cam-1/live.mjpg", "/api/cameras/cam-1/snapshot.jpg"):
            res = c.get(path)
            assert res.status_code == 502 and "unreachable" in res.json()["detail"]
        status = c.get("/api/cameras/cam-1/worker")
        assert status.status_code == 200
        assert status.json()["reachable"] is False and "unreachable" in status.json()["detail"]


def test_database_down_is_503(site_path: Path) -> None:
    from trafficprn.store.testing import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nope"
    with make_client(url, site_path) as c:
        assert c.get("/api/health").json()["database"] == "unreachable"
        res = c.get("/api/passages")
        assert res.status_code == 503 and "database" in res.json()["detail"]


def test_events_stream_sends_an_update(client: TestClient) -> None:
    with client.stream("GET", "/api/events", params={"max_s": 1, "poll_s": 0.3}) as res:
        text = "".join(res.iter_text())
    assert res.headers["content-type"].startswith("text/event-stream")
    assert "event: update" in text and seeding.CAMERA in text


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    routes = {getattr(r, "path", "") for r in client.app.routes if getattr(r, "include_in_schema", False)}  # type: ignore[attr-defined]
    assert {p for p in routes if p.startswith("/api")} <= paths
    for p in ("/api/health", "/api/cameras", "/api/passages", "/api/counts/movements", "/api/queues",
              "/api/speeds", "/api/plates", "/api/events", "/api/cameras/{name}/live.mjpg",
              "/api/cameras/{name}/snapshot.jpg", "/api/cameras/{name}/zones"):
        assert p in paths


def test_dashboard_is_served(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).status_code in (302, 307)
    page = client.get("/ui/")
    assert page.status_code == 200 and "trafficprn" in page.text
    assert client.get("/ui/js/dashboard.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_example_site_round_trips_through_the_setup_routes(seeded_sqlite: str, tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "site.yaml"
    if not example.is_file():
        pytest.skip("examples/site.yaml is not there yet")
    site_path = tmp_path / "site.yaml"
    site_path.write_text(example.read_text())
    original = load_site(example)
    name = original.cameras[0].name
    with make_client(seeded_sqlite, site_path) as c:
        zones = c.get(f"/api/cameras/{name}/zones").json()
        assert [leg["name"] for leg in zones["legs"]] == [leg.name for leg in original.cameras[0].legs]
        res = c.put(f"/api/cameras/{name}/zones", json={"legs": zones["legs"], "lanes": zones["lanes"]},
                    headers={"X-API-Key": API_KEY})
        assert res.status_code == 200, res.text
    saved = load_site(site_path)
    assert saved.cameras[0].legs == original.cameras[0].legs and saved.cameras[0].lanes == original.cameras[0].lanes
    assert saved.cameras[0].lens == original.cameras[0].lens


def test_passages_as_csv_carry_the_speeds(client: TestClient) -> None:
    import csv as csv_lib
    import io

    res = client.get("/api/passages", params={**DAY, "limit": 200, "format": "csv"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    rows = list(csv_lib.DictReader(io.StringIO(res.text)))
    assert len(rows) == 200 and res.headers["x-next-cursor"]
    want = {p.uuid: p for p in PASSAGES}
    assert any(r["approach_speed_kmh"] for r in rows)
    for r in rows:
        p = want[r["uuid"]]
        for name in ("approach_speed_kmh", "through_speed_kmh", "stopped_s"):
            value = getattr(p, name)
            assert (float(r[name]) if r[name] else None) == value, name
        assert (int(r["stops"]) if r["stops"] else None) == p.stops
