"""`trafficprn db ...` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafficprn.cli import main
from trafficprn.store import db as store_db

SITE = """
site: {name: t, timezone: Europe/Berlin}
privacy: {retention_days: {passages: 10, plates: 2}}
cameras:
  - name: cam-1
    source: video.mp4
    lens: {model: pinhole, image_size: [640, 480], fx: 500, fy: 500, cx: 320, cy: 240}
    calibration:
      points:
        - {image_px: [0, 0], ground_m: [0, 0]}
        - {image_px: [100, 0], ground_m: [1, 0]}
        - {image_px: [100, 100], ground_m: [1, 1]}
        - {image_px: [0, 100], ground_m: [0, 1]}
"""


def test_upgrade_current_downgrade_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert store_db.current_revision(url) == store_db.head_revision()
    assert main(["db", "current", "--db", url]) == 0
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    assert main(["db", "purge", "--db", url, "--site", str(site)]) == 0
    assert "purged 0 passages" in capsys.readouterr().out
    assert main(["db", "downgrade", "--db", url, "--revision", "base"]) == 0
    assert store_db.current_revision(url) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["db", "upgrade", "--db", "postgresql://postgres@127.0.0.1:1/x"], "unreachable"),
        (["db", "upgrade", "--db", "bogus://"], "database"),
        (["db", "upgrade"], "no database URL"),
    ],
)
def test_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAFFICPRN_DATABASE_URL", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
