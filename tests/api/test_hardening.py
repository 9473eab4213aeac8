"""A box that hostile or careless clients cannot knock over: each test failed before its fix.

The upload tests talk to a real `trafficprn serve` (uvicorn) in a subprocess, over raw
sockets, so that what is measured is what a client on the network gets."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import seeding
import yaml
from api_helpers import API_KEY, example_site_with_two_cameras, make_client
from fastapi.testclient import TestClient

from trafficprn.api.access_log import RedactQuery, redact
from trafficprn.api.deps import SESSION_COOKIE_NAME, session_token
from trafficprn.config import load_site, parse_site
from trafficprn.demo import _work_site, demo_scene_dir
from trafficprn.live_view import LiveFrames
from trafficprn.settings import Settings
from trafficprn.store.testing import free_port
from trafficprn.worker import WorkerHTTP, WorkerMetrics

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


# ---------------------------------------------------------------- a real server
def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(seeded_sqlite: str, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    site = seeding.write_site(tmp_path / "site.yaml")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "TRAFFICPRN_API_KEY": API_KEY, "TRAFFICPRN_BODY_TIMEOUT_S": "2",
           "TRAFFICPRN_LOG_LEVEL": "INFO"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "trafficprn", "serve", "--db", seeded_sqlite, "--site",
                                 str(site), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as res:
                    if res.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield port, proc, log
    finally:
        proc.terminate()
        proc.wait(10)


def _raw(port: int, head: str, body_bytes: int = 0, chunk: int = 256 * 1024, chunked: bool = False,
         pause_s: float = 0.0) -> tuple[int, bytes, int]:
    """Send `head`, then up to `body_bytes` (as chunks where `chunked`) until the server
    answers or closes; returns (status, response, bytes the server let us send)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.sendall(head.encode())
        sock.settimeout(0.05)
        reply = b""
        data = b"x" * chunk
        while sent < body_bytes:
            if pause_s:
                time.sleep(pause_s)
            try:
                reply += sock.recv(65536)
                if reply:
                    break
            except TimeoutError:
                pass
            try:
                sock.sendall(f"{chunk:x}\r\n".encode() + data + b"\r\n" if chunked else data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        sock.settimeout(15)
        try:
            while b"\r\n\r\n" not in reply or len(reply) < reply.index(b"\r\n\r\n") + 4 + 20:
                more = sock.recv(65536)
                if not more:
                    break
                reply += more
        except (TimeoutError, ConnectionResetError):
            pass
    finally:
        sock.close()
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
    return status, reply, sent


def _put_head(port: int, length: int | None, key: str | None = None) -> str:
    lines = [f"PUT /api/cameras/{seeding.CAMERA}/zones HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if key:
        lines.append(f"X-API-Key: {key}")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_keyless_100mb_puts_are_refused_unread_and_health_stays_fast(server: tuple[int, subprocess.Popen[bytes],
                                                                                     Path]) -> None:
    port, proc, _ = server
    before = _rss_mb(proc.pid)
    results: list[tuple[int, bytes, int]] = []

    def upload() -> None:
        results.append(_raw(port, _put_head(port, 100 * MB), body_bytes=100 * MB))

    threads = [threading.Thread(target=upload) for _ in range(3)]
    for t in threads:
        t.start()
    health_s = []
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as res:
            assert res.status == 200
        health_s.append(time.monotonic() - t0)
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [401, 401, 401]
    assert all(b"API key" in r[1] for r in results)
    assert all(r[2] < 20 * MB for r in results), [r[2] for r in results]  # the server stopped reading
    assert max(health_s) < 1.0, health_s
    assert _rss_mb(proc.pid) - before < 20


def test_bodies_over_the_limit_get_413_and_slow_ones_408(server: tuple[int, subprocess.Popen[bytes], Path]) -> None:
    port, proc, _ = server
    before = _rss_mb(proc.pid)
    status, reply, sent = _raw(port, _put_head(port, 50 * MB, API_KEY), body_bytes=50 * MB)
    assert status == 413 and b"over the limit" in reply and sent < 20 * MB
    status, reply, sent = _raw(port, _put_head(port, None, API_KEY), body_bytes=50 * MB, chunked=True)
    assert status == 413 and b"over the limit" in reply and sent < 20 * MB
    assert _rss_mb(proc.pid) - before < 20
    # 100 bytes announced, 10 sent, then nothing: the 2 s body timeout answers.
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        t0 = time.monotonic()
        sock.sendall((_put_head(port, 100, API_KEY) + '{"legs": [').encode())
        reply = sock.recv(65536)
        waited = time.monotonic() - t0
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408") and 1.5 < waited < 10


def test_access_log_does_not_keep_searched_plates(server: tuple[int, subprocess.Popen[bytes], Path]) -> None:
    port, _, log = server
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/plates?text=QZX-4711&limit=5",
                                 headers={"X-API-Key": API_KEY})
    try:
        urllib.request.urlopen(req, timeout=10).close()
    except urllib.error.HTTPError as exc:  # 409: hashed plates, no secret; logged all the same
        assert exc.code == 409
    deadline = time.monotonic() + 5
    while "/api/plates" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert "/api/plates?text=***&limit=5" in text
    assert "QZX-4711" not in text


def test_redact_filter_on_uvicorn_records() -> None:
    assert redact("/api/plates?limit=3&text=ab%20c&x=1") == "/api/plates?limit=3&text=***&x=1"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "GET", "/api/plates?text=AB1234", "1.1", 200), None)
    assert RedactQuery().filter(record) and "AB1234" not in record.getMessage()


# ---------------------------------------------------------------- zones save
def _example_site(tmp_path: Path) -> Path:
    path = example_site_with_two_cameras(tmp_path)
    assert [c.name for c in load_site(path).cameras] == ["fisheye-1", "fisheye-2"]
    return path


def _comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#") or " # " in line]


def test_zones_save_keeps_comments_and_other_cameras(seeded_sqlite: str, tmp_path: Path) -> None:
    site = _example_site(tmp_path)
    original = site.read_text()
    key = {"X-API-Key": API_KEY}
    with make_client(seeded_sqlite, site) as c:
        zones = c.get("/api/cameras/fisheye-1/zones").json()
        res = c.put("/api/cameras/fisheye-1/zones", json={"legs": zones["legs"], "lanes": zones["lanes"]},
                    headers=key)
        assert res.status_code == 200, res.text
        assert site.read_text() == original  # an unchanged save changes nothing at all
        edited = {"legs": zones["legs"], "lanes": [lane for lane in zones["lanes"] if lane["name"] != "W-2"]}
        edited["legs"][0]["entry"][0] = [501.5, 260.0]
        assert c.put("/api/cameras/fisheye-1/zones", json=edited, headers=key).status_code == 200
    after = site.read_text()
    assert _comments(after) == _comments(original)
    old, new = yaml.safe_load(original), yaml.safe_load(after)
    assert new["cameras"][1] == old["cameras"][1]
    assert {k: v for k, v in new["cameras"][0].items() if k not in ("legs", "lanes")} == \
        {k: v for k, v in old["cameras"][0].items() if k not in ("legs", "lanes")}
    assert {k: v for k, v in new.items() if k != "cameras"} == {k: v for k, v in old.items() if k != "cameras"}
    assert [lane["name"] for lane in new["cameras"][0]["lanes"]] == \
        [lane["name"] for lane in old["cameras"][0]["lanes"] if lane["name"] != "W-2"]
    assert new["cameras"][0]["legs"][0]["entry"][0] == [501.5, 260.0]
    assert new["cameras"][0]["legs"][1:] == old["cameras"][0]["legs"][1:]
    # the untouched polygons keep their one-line flow style
    assert after.count("entry: [[") == original.count("entry: [[")


@pytest.mark.parametrize(("edit", "field"), [
    (lambda z: z["legs"][0]["entry"].__setitem__(0, ["NaN", 1.0]), "legs.0.entry"),
    (lambda z: z["legs"][0]["exit"].__setitem__(1, [1.0, "Infinity"]), "legs.0.exit"),
    (lambda z: z["legs"][1].__setitem__("name", "E\u0000"), "legs.1.name"),
    (lambda z: z["legs"][1].__setitem__("name", "E\nW"), "legs.1.name"),
    (lambda z: z["legs"][2].__setitem__("name", "S" * 10_000), "legs.2.name"),
    (lambda z: z["lanes"][0].__setitem__("leg", "N" * 33), "lanes.0.leg"),
    (lambda z: z["legs"][0].__setitem__("entry", [[float(i), float(i % 7)] for i in range(500)]), "legs.0.entry"),
])
def test_zones_refuse_non_finite_points_and_bad_names(seeded_sqlite: str, site_path: Path, edit: object,
                                                       field: str) -> None:
    before = site_path.read_text()
    with make_client(seeded_sqlite, site_path) as c:
        zones = c.get(f"/api/cameras/{seeding.CAMERA}/zones").json()
        body = {"legs": zones["legs"], "lanes": zones["lanes"]}
        edit(body)  # type: ignore[operator]
        raw = json.dumps(body).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
        res = c.put(f"/api/cameras/{seeding.CAMERA}/zones", content=raw,
                    headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    assert field in res.json()["detail"]
    assert site_path.read_text() == before


def test_broken_site_yaml_gives_409_not_500_and_reads_go_on(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path) as c:
        zones = c.get(f"/api/cameras/{seeding.CAMERA}/zones").json()
        site_path.write_text(site_path.read_text() + "\n  : [unclosed\n")
        res = c.put(f"/api/cameras/{seeding.CAMERA}/zones", json={"legs": zones["legs"], "lanes": zones["lanes"]},
                    headers={"X-API-Key": API_KEY})
        assert res.status_code == 409 and "fix it by hand" in res.json()["detail"]
        assert c.get(f"/api/cameras/{seeding.CAMERA}/zones").status_code == 200  # the last good config
        site_path.write_text("cameras: 3\n")
        res = c.put(f"/api/cameras/{seeding.CAMERA}/zones", json={"legs": zones["legs"], "lanes": zones["lanes"]},
                    headers={"X-API-Key": API_KEY})
        assert res.status_code == 409 and "field required" in res.json()["detail"]


def test_reads_do_not_wait_for_a_save_in_progress(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path) as c:
        holder = c.app.state.ctx.site  # type: ignore[attr-defined]
        assert c.get(f"/api/cameras/{seeding.CAMERA}/zones").status_code == 200
        site_path.touch()  # the next read wants a reload ...
        with holder._write_lock, holder._read_lock:  # ... while a save holds both locks
            t0 = time.monotonic()
            res = c.get(f"/api/cameras/{seeding.CAMERA}/zones")
            assert res.status_code == 200 and time.monotonic() - t0 < 1.0


def test_demo_setup_edits_a_copy_in_its_work_folder(tmp_path: Path) -> None:
    scene = demo_scene_dir()
    shipped = (scene / "site.yaml").read_text()
    copy = _work_site(scene, tmp_path)
    assert copy.parent == tmp_path and (scene / "site.yaml").read_text() == shipped
    site = load_site(copy)
    assert Path(site.cameras[0].source).is_file()  # the video is found from the copy


# ---------------------------------------------------------------- the worker endpoint
def _live_worker(token: str | None, max_viewers: int = 2) -> WorkerHTTP:
    camera = parse_site(seeding.site_dict()).cameras[0]
    live = LiveFrames(camera, ["car"])
    live.update(np.full((720, 1280, 3), 90, np.uint8), None)
    return WorkerHTTP(live, WorkerMetrics(camera.name), port=0, token=token, max_viewers=max_viewers).start()


def _status(url: str, headers: dict[str, str] | None = None, read: int = 0) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as res:
            res.read(read) if read else res.read()
            return int(res.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_worker_listens_on_loopback_and_requires_its_token() -> None:
    http = _live_worker("w-token")
    try:
        assert http.server.server_address[0] == "127.0.0.1"
        base = f"http://127.0.0.1:{http.port}"
        for path in ("/metrics", "/health", "/snapshot.jpg"):
            assert _status(base + path) == 401
            assert _status(base + path, {"Authorization": "Bearer wrong"}) == 401
            assert _status(base + path, {"Authorization": "Bearer w-token"}) == 200
        assert _status(base + "/live.mjpg") == 401
    finally:
        http.close()


def test_anonymous_viewers_cannot_take_the_dashboards_live_view(seeded_sqlite: str, tmp_path: Path) -> None:
    http = _live_worker("w-token", max_viewers=2)
    base = f"http://127.0.0.1:{http.port}"
    streams = []
    try:
        for _ in range(4):  # anonymous viewers straight at the worker
            assert _status(base + "/live.mjpg") == 401
        # a token holder that is not the proxy gets all but the kept slot
        direct = urllib.request.urlopen(urllib.request.Request(
            base + "/live.mjpg", headers={"Authorization": "Bearer w-token"}), timeout=5)
        streams.append(direct)
        assert _status(base + "/live.mjpg", {"Authorization": "Bearer w-token"}, read=10) == 503
        site = seeding.write_site(tmp_path / "site.yaml", live_url=base)
        with make_client(seeded_sqlite, site, worker_token="w-token") as c:
            with c.stream("GET", f"/api/cameras/{seeding.CAMERA}/live.mjpg") as res:
                assert res.status_code == 200
                first = next(res.iter_raw())
                assert b"image/jpeg" in first
            assert c.get(f"/api/cameras/{seeding.CAMERA}/snapshot.jpg").status_code == 200
        with make_client(seeded_sqlite, site) as c:  # an API without the token gets nothing either
            assert c.get(f"/api/cameras/{seeding.CAMERA}/snapshot.jpg").status_code == 502
    finally:
        for s in streams:
            s.close()
        http.close()


def test_snapshot_follows_the_read_rule_and_the_session_cookie_opens_it(seeded_sqlite: str, tmp_path: Path) -> None:
    http = _live_worker("w-token")
    try:
        site = seeding.write_site(tmp_path / "site.yaml", live_url=f"http://127.0.0.1:{http.port}")
        with make_client(seeded_sqlite, site, worker_token="w-token", require_key_for_reads=True) as c:
            snap = f"/api/cameras/{seeding.CAMERA}/snapshot.jpg"
            assert c.get(snap).status_code == 401
            assert c.get("/api/events", params={"max_s": 1}).status_code == 401
            assert c.post("/api/session").status_code == 401
            res = c.post("/api/session", headers={"X-API-Key": API_KEY})
            assert res.status_code == 200
            cookie = res.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
            assert c.get(snap).status_code == 200  # the cookie, as an <img> would send it
            with c.stream("GET", "/api/events", params={"max_s": 1, "poll_s": 0.3}) as ev:
                assert ev.status_code == 200 and "event: update" in "".join(ev.iter_text())
            assert c.get("/api/plates", params={"text": "ABC"}).status_code == 401  # plates: header only
            c.cookies.set(SESSION_COOKIE_NAME, "9999999999.forged")
            assert c.get(snap).status_code == 401
            expired, _ = session_token(Settings(api_key=API_KEY, session_hours=1), now=time.time() - 7200)
            c.cookies.set(SESSION_COOKIE_NAME, expired)
            assert c.get(snap).status_code == 401
    finally:
        http.close()


def test_worker_errors_do_not_show_internal_addresses(seeded_sqlite: str, tmp_path: Path) -> None:
    port = free_port()
    site = seeding.write_site(tmp_path / "site.yaml", live_url=f"http://10.11.12.13:{port}")
    with make_client(seeded_sqlite, site) as c:
        for path in ("live.mjpg", "snapshot.jpg"):
            res = c.get(f"/api/cameras/{seeding.CAMERA}/{path}")
            assert res.status_code in (502, 504)
            assert "10.11.12.13" not in res.text and str(port) not in res.text
        assert "10.11.12.13" not in c.get(f"/api/cameras/{seeding.CAMERA}/worker").text


# ---------------------------------------------------------------- the cases of item 4
@pytest.mark.parametrize("cursor", ["WzFlMzA4LDFd", "WzEsIDFlMzBd", "WzEsMTAwMDAwMDAwMDAwMDAwMDAwMDAwXQ",
                                    "WyJOYU4iLDFd", "W10"])
def test_forged_cursors_are_400(client: TestClient, cursor: str) -> None:
    res = client.get("/api/passages", params={"cursor": cursor})
    assert res.status_code == 400 and "cursor" in res.json()["detail"]


def test_hashed_plates_without_a_secret_refuse_and_warn(seeded_sqlite: str, site_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trafficprn.api.app"), make_client(seeded_sqlite, site_path) as c:
        res = c.get("/api/plates", params={"text": "XYZ-0000"}, headers={"X-API-Key": API_KEY})
    assert res.status_code == 409 and "TRAFFICPRN_PLATE_SECRET" in res.json()["detail"]
    assert any("TRAFFICPRN_PLATE_SECRET" in r.getMessage() for r in caplog.records)
    with make_client(seeded_sqlite, site_path, plate_secret="s3cret") as c:
        res = c.get("/api/plates", params={"text": "XYZ-0000"}, headers={"X-API-Key": API_KEY})
    assert res.status_code == 200 and res.json() == []


def test_422_bodies_match_the_documented_schema(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schema = doc["components"]["schemas"]["HTTPValidationError"]
    ref = doc["paths"]["/api/passages"]["get"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert ref == {"$ref": "#/components/schemas/HTTPValidationError"}
    for params in ({"limit": "many"}, {"speed_min": "fast", "limit": -1}, {"from": "yesterday-ish"}):
        res = client.get("/api/passages", params=params)
        assert res.status_code == 422
        jsonschema.validate(res.json(), schema)
    res = client.put(f"/api/cameras/{seeding.CAMERA}/zones", json={"legs": "none"}, headers={"X-API-Key": API_KEY})
    assert res.status_code == 422
    jsonschema.validate(res.json(), schema)


def test_keyless_write_is_refused_before_validation(client: TestClient) -> None:
    res = client.put(f"/api/cameras/{seeding.CAMERA}/zones", content=b"{not json")
    assert res.status_code == 401  # not 422: the body was never parsed
    with make_client("sqlite://", None, api_key=None) as c:
        assert c.put("/api/cameras/x/zones", content=b"{}").status_code == 403


def test_long_queue_ranges_get_a_coarser_step_not_43200_points(client: TestClient) -> None:
    day0 = seeding.DAY0
    res = client.get("/api/queues", params={"camera": seeding.CAMERA, "from": day0 - 29 * 86400,
                                            "to": day0 + 86400, "step_s": 60})
    assert res.status_code == 200
    body = res.json()
    assert body["step_s"] == 1800  # 30 days / 1500 points -> the next step of the ladder
    for lane in body["lanes"]:
        assert 0 < len(lane["ts"]) <= 1500
        steps = np.diff([t for t, v in zip(lane["ts"], lane["length_m"], strict=True) if v is not None])
        assert (steps % 1800 == 0).all()
    short = client.get("/api/queues", params={"camera": seeding.CAMERA, "from": day0, "to": day0 + 3600,
                                              "step_s": 60}).json()
    assert short["step_s"] == 60
