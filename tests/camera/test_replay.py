"""ReplaySource: a real video file decoded through open_source, looped with each loop a new
time window; pacing decisions checked on a controlled clock (no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from trafficprn.camera.replay import MAX_LAG_S, ReplaySource, video_length_s
from trafficprn.errors import SourceError

FPS, N = 10, 10


def write_video(path: Path) -> Path:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 48))
    for i in range(N):
        out.write(np.full((48, 64, 3), i * 20, np.uint8))
    out.release()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4")


def test_loops_are_new_time_windows(video: Path) -> None:
    assert video_length_s(video) == pytest.approx(1.0)
    with ReplaySource(str(video), "cam", start_ts=1000.0, speed=1000.0, loops=3) as src:
        frames = list(src)
    assert len(frames) == 3 * N and src.loop == 3
    assert [m.index for _, m in frames] == list(range(3 * N))
    ts = np.array([m.ts for _, m in frames]).reshape(3, N)
    np.testing.assert_allclose(ts[1] - ts[0], 1.0, atol=1e-3)  # shifted by the video's length
    np.testing.assert_allclose(ts[2] - ts[0], 2.0, atol=1e-3)
    np.testing.assert_allclose(ts[0], 1000.0 + np.arange(N) / FPS, atol=1e-3)
    assert [int(f[0].mean()) for f, _ in frames[:N]] == [int(f[0].mean()) for f, _ in frames[N : 2 * N]]
    assert src.stats.delivered == 3 * N and src.stats.frames == 3 * N


def test_length_can_be_given_and_close_stops_an_endless_replay(video: Path) -> None:
    src = ReplaySource(str(video), "cam", start_ts=0.0, length_s=60.0, speed=1000.0)
    got = []
    for _, meta in src:
        got.append(meta.ts)
        if len(got) == N + 2:
            src.close()
        if len(got) > 3 * N:
            break
    assert len(got) == N + 2  # nothing after close()
    assert got[N] == pytest.approx(60.0, abs=1e-3)  # the second loop starts 60 s later


def test_pacing_reanchors_when_the_consumer_falls_behind(video: Path) -> None:
    now = [100.0]
    src = ReplaySource(str(video), "cam", start_ts=0.0, speed=2.0, clock=lambda: now[0])
    anchor = src._pace(0.0, None)
    assert anchor == 100.0
    now[0] = 100.0 + 1.0 + MAX_LAG_S / 2  # a little late for offset 1 s: keep the pace, catch up
    assert src._pace(1.0, anchor) == anchor
    now[0] = 100.0 + 2.0 + 3 * MAX_LAG_S  # far behind: play on from here instead of bursting
    assert src._pace(2.0, anchor) == pytest.approx(now[0] - 2.0)


@pytest.mark.parametrize(("kwargs", "match"), [({"speed": 0.0}, "speed"), ({"loops": 0}, "loops"),
                                               ({"length_s": -1.0}, "length_s")])
def test_rejects_bad_settings(video: Path, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(SourceError, match=match):
        ReplaySource(str(video), "cam", start_ts=0.0, **kwargs)  # type: ignore[arg-type]


def test_missing_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        ReplaySource(str(tmp_path / "nope.mp4"), "cam", start_ts=0.0, length_s=1.0)
