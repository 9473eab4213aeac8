"""`serve`, `run`, `process`: the commands, offline processing of a real video into the
database, failures that say what failed, and the compose file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from test_worker import FPS, SECONDS, START_TS, BlobDetector, site_config, write_video  # noqa: E402

from trafficprn.cli import build_parser, main  # noqa: E402
from trafficprn.config import load_site  # noqa: E402
from trafficprn.errors import InputError  # noqa: E402
from trafficprn.services_commands import parse_start, process_video  # noqa: E402
from trafficprn.settings import Settings  # noqa: E402

REPO = Path(__file__).parents[1]


def _site(tmp_path: Path, **camera: object) -> Path:
    data = site_config()
    data["cameras"][0].update(camera)  # type: ignore[index]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    write_video(tmp_path / "video.mp4")
    return path


def test_commands_are_registered() -> None:
    parser = build_parser()
    for argv in (["serve", "--db", "sqlite://"], ["run", "--site", "s.yaml", "--camera", "c"],
                 ["process", "v.mp4", "--site", "s.yaml", "--camera", "c", "--start", "2026-03-10T07:00"]):
        assert callable(parser.parse_args(argv).func)


@pytest.mark.parametrize(
    ("text", "tz", "expected", "error"),
    [
        ("2026-03-10T07:00:00+01:00", "UTC", 1773122400.0, None),
        ("2026-03-10T07:00:00", "Europe/Berlin", 1773122400.0, None),
        ("2026-03-10T06:00:00Z", "Europe/Berlin", 1773122400.0, None),
        ("yesterday", "UTC", None, InputError),
    ],
)
def test_parse_start(text: str, tz: str, expected: float | None, error: type[Exception] | None) -> None:
    if error:
        with pytest.raises(error, match="ISO 8601"):
            parse_start(text, tz)
    else:
        assert parse_start(text, tz) == expected


def test_process_video_into_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trafficprn.store import queries
    from trafficprn.store.db import make_engine, upgrade

    site_path = _site(tmp_path)
    site = load_site(site_path)
    url = f"sqlite:///{tmp_path / 'survey.sqlite'}"
    upgrade(url)
    out = process_video(site, site.cameras[0], tmp_path / "video.mp4", Settings(database_url=url),
                        site_path=str(site_path), start_ts=START_TS, spool_dir=tmp_path / "spool", progress=False,
                        detector=BlobDetector())
    assert out["frames"] == FPS * SECONDS and out["passages"] == 1 and out["pending"] == 0
    assert out["movements"] == {"N->S T": 1} and out["classes"] == {"car": 1}
    printed = capsys.readouterr().out
    assert "passages: 1" in printed and "all written" in printed and "N->S T" in printed
    engine = make_engine(url)
    with engine.connect() as conn:
        items = queries.passages(conn).items
    engine.dispose()
    assert [(p.entry_leg, p.exit_leg) for p in items] == [("N", "S")]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--site", "{site}", "--camera", "nope", "--db", "sqlite://"], "no camera named 'nope'"),
        (["run", "--site", "{bad}", "--camera", "pole-1", "--db", "sqlite://"], "cameras[0].lens"),
        (["run", "--site", "{site}", "--camera", "pole-1", "--db", "mysql://x@y/z"], "unsupported database"),
        (["process", "{missing}", "--site", "{site}", "--camera", "pole-1", "--db", "sqlite://"], "no such video"),
        (["process", "{video}", "--site", "{site}", "--camera", "pole-1", "--db", "sqlite://", "--start", "soon"],
         "ISO 8601"),
        (["serve", "--site", "{bad}", "--db", "sqlite://"], "cameras[0].lens"),
    ],
)
def test_bad_input_says_what_failed(tmp_path: Path, args: list[str], words: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    site = _site(tmp_path)
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(site.read_text())
    data["cameras"][0]["lens"]["model"] = "fishy"
    bad.write_text(yaml.safe_dump(data))
    names = {"site": str(site), "bad": str(bad), "missing": str(tmp_path / "none.mp4"),
             "video": str(tmp_path / "video.mp4")}
    code = main([a.format(**names) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and "Traceback" not in err


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_file_is_valid_and_needs_its_secrets(tmp_path: Path) -> None:
    ok = subprocess.run(["docker-compose", "--env-file", ".env.example", "config", "-q"], cwd=REPO,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    config = yaml.safe_load(subprocess.run(["docker-compose", "--env-file", ".env.example", "config"], cwd=REPO,
                                           capture_output=True, text=True, timeout=60).stdout)
    services = config["services"]
    assert {"db", "migrate", "api"} <= set(services) and any(s.startswith("worker-") for s in services)
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "TRAFFICPRN_"))}
    bad = subprocess.run(["docker-compose", "--env-file", str(empty), "config", "-q"], cwd=REPO,
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode != 0 and "must be set" in bad.stderr
    example = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    needed = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "TRAFFICPRN_API_KEY", "TRAFFICPRN_PLATE_SECRET"}
    assert needed <= example


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_many_site_compose_files_are_valid_and_the_box_writes_the_centre(tmp_path: Path) -> None:
    """docs/deployment.md: the centre runs Postgres, the migration and an API over all sites;
    a box runs only workers (and its own API) against the centre's Postgres, with spools."""
    compose = REPO / "services" / "compose"

    def config(name: str, env_file: Path) -> dict[str, Any]:
        args = ["docker-compose", "-f", str(compose / f"{name}.yml"), "--env-file", str(env_file), "config"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return dict(yaml.safe_load(done.stdout))

    centre = config("centre", compose / "centre.env.example")["services"]
    assert set(centre) == {"db", "migrate", "api"}
    assert "TRAFFICPRN_SITE_PATH" not in centre["api"]["environment"]  # it learns the sites from the data
    box = config("box-to-centre", compose / "box.env.example")["services"]
    assert "db" not in box and "migrate" not in box and any(s.startswith("worker-") for s in box)
    for name, svc in box.items():
        url = svc["environment"]["TRAFFICPRN_DATABASE_URL"]
        assert "@10.8.0.1:5432/" in url and "sslmode=require" in url, name
    worker = next(svc for name, svc in box.items() if name.startswith("worker-"))
    # docker-compose 1.x prints volumes as "source:target:mode"
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in worker["volumes"]]
    assert any(m.startswith("spool-") and ":/var/lib/trafficprn/spool" in m for m in mounts), mounts
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "TRAFFICPRN_"))}
    for name in ("centre", "box-to-centre"):
        bad = subprocess.run(["docker-compose", "-f", str(compose / f"{name}.yml"), "--env-file", str(empty), "config",
                              "-q"], capture_output=True, text=True, timeout=60, env=env)
        assert bad.returncode != 0 and "must be set" in bad.stderr, name


def test_runtime_image_has_no_torch() -> None:
    dockerfile = (REPO / "services" / "Dockerfile").read_text()
    assert "torch" not in dockerfile.split("pip install --no-cache-dir /wheels")[1].split("&&")[0]
    deps = " ".join(__import__("tomllib").loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    assert "torch" not in deps


def test_process_with_the_database_down_spools_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trafficprn.store.testing import free_port

    site_path = _site(tmp_path)
    site = load_site(site_path)
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/trafficprn"
    out = process_video(site, site.cameras[0], tmp_path / "video.mp4", Settings(database_url=url),
                        site_path=str(site_path), start_ts=START_TS, spool_dir=tmp_path / "spool", progress=False,
                        detector=BlobDetector(), drain_timeout_s=0.5)
    assert out["passages"] == 1 and out["written"] == 0 and out["pending"] >= 1
    printed = capsys.readouterr().out
    assert "still in the spool" in printed and "unreachable" in printed
    assert any((tmp_path / "spool").iterdir())


def test_run_command_on_a_video_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`trafficprn run` wiring: site, source, pipeline, sink, HTTP endpoint, status; the
    camera's model is swapped for the blob detector (the model is not under test here)."""
    from trafficprn.detect import runtime
    from trafficprn.store import queries
    from trafficprn.store.db import make_engine, upgrade

    monkeypatch.setattr(runtime, "load_detector", lambda *a, **k: BlobDetector())
    site = _site(tmp_path)
    url = f"sqlite:///{tmp_path / 'run.sqlite'}"
    upgrade(url)
    code = main(["run", "--site", str(site), "--camera", "pole-1", "--db", url, "--http-host", "127.0.0.1",
                 "--http-port", "0", "--spool-dir", str(tmp_path / "spool")])
    assert code == 0
    engine = make_engine(url)
    with engine.connect() as conn:
        items = queries.passages(conn).items
        cams = queries.cameras(conn, now_ts=time.time() + 60)  # a file runs faster than its own clock
    engine.dispose()
    assert [(p.entry_leg, p.exit_leg, p.movement) for p in items] == [("N", "S", "T")]
    assert [(c.name, c.status) for c in cams] == [("pole-1", "down")]


def test_worker_keeps_retrying_an_unreachable_camera_and_database(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import threading
    import urllib.request

    from trafficprn.services_commands import run_worker
    from trafficprn.store.testing import free_port

    site_path = _site(tmp_path, source=f"rtsp://127.0.0.1:{free_port()}/stream1")
    site = load_site(site_path)
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/trafficprn"
    stop = threading.Event()
    ports: list[int] = []
    result: list[int] = []
    caplog.set_level(logging.INFO)
    thread = threading.Thread(target=lambda: result.append(run_worker(
        site, site.cameras[0], Settings(database_url=url), site_path=str(site_path), http_host="127.0.0.1",
        http_port=0, spool_dir=tmp_path / "spool", stop=stop, detector=BlobDetector(), ready=ports.append)))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not ports and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)
        assert thread.is_alive()  # still retrying
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=5) as res:
            metrics = res.read().decode()
        assert 'trafficprn_camera_up{camera="pole-1"} 0' in metrics
        assert 'trafficprn_frames_total{camera="pole-1"} 0' in metrics
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and result == [0]
    text = caplog.text
    assert "camera pole-1:" in text and "reconnecting" in text
    assert "database" in text and "unreachable" in text


def test_container_entrypoint_migrates(tmp_path: Path) -> None:
    from trafficprn.store.db import current_revision, head_revision

    url = f"sqlite:///{tmp_path / 'box.sqlite'}"
    env = {**os.environ, "TRAFFICPRN_DATABASE_URL": url,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run(["sh", str(REPO / "services" / "entrypoint.sh"), "migrate"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert current_revision(url) == head_revision()
    res = subprocess.run(["sh", str(REPO / "services" / "entrypoint.sh"), "worker"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode != 0 and "usage: worker CAMERA" in res.stderr
