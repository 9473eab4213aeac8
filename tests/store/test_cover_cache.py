"""The heartbeat cover of whole past days from `CoverCache` equals the cover computed at
once, on both backends: ranges that start and end inside days, gaps and down beats
across midnight, beats that arrive late for a cached day, and the cache's time limit."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from trafficprn.events import Heartbeat
from trafficprn.store import liveness, repository
from trafficprn.store.cover_cache import DAY_S, REFRESH_S, TTL_S, CoverCache

DAY0 = 1_780_012_800.0  # a UTC midnight
NOW = DAY0 + 10 * DAY_S  # long after the beats: every day of them is over


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _beats(seed: int) -> list[tuple[float, bool]]:
    """Four days of beats with random gaps, plus a gap and a down beat on each midnight."""
    rng = np.random.default_rng(seed)
    gaps = rng.choice([10.0, 10.0, 10.0, 29.0, 31.0, 45.0, 600.0, 3000.0], 2500)
    ts = DAY0 - 500 + np.cumsum(gaps)
    beats = {float(t): bool(u) for t, u in zip(ts[ts < DAY0 + 4 * DAY_S], rng.random(len(ts)) > 0.05, strict=False)}
    for d in range(1, 4):
        midnight = DAY0 + d * DAY_S
        for t in [t for t in beats if abs(t - midnight) < 120]:
            del beats[t]
        beats.update({midnight - 45: True, midnight + 40: True, midnight + 50: False, midnight + 60: True})
    return sorted(beats.items())


def _write(engine: Engine, beats: list[tuple[float, bool]], camera: str = "cam-x") -> None:
    with engine.begin() as conn:
        repository.write_events(conn, [Heartbeat(camera, t, up=u) for t, u in beats])


def _both(engine: Engine, cache: CoverCache, a: float, b: float, stale_s: float = 30.0) -> tuple[list, list]:
    with engine.connect() as conn:
        cached = liveness.heartbeat_cover(conn, "cam-x", a, b, stale_s=stale_s, cache=cache)
        direct = liveness.heartbeat_cover(conn, "cam-x", a, b, stale_s=stale_s)
    return cached, direct


def _same(got: list, want: list) -> bool:
    return bool(np.allclose(np.array(got).reshape(-1, 2), np.array(want).reshape(-1, 2), atol=1e-3))


@pytest.mark.parametrize("seed", [4, 5])
def test_cached_cover_equals_the_cover_computed_at_once(db_engine: Engine, seed: int) -> None:
    _write(db_engine, _beats(seed))
    cache = CoverCache(clock=Clock(NOW))
    rng = np.random.default_rng(seed)
    ranges = [(DAY0 - 3600, DAY0 + 4 * DAY_S), (DAY0, DAY0 + 2 * DAY_S), (DAY0 + 7000.5, DAY0 + 3 * DAY_S - 11.25)]
    ranges += [(a, a + float(rng.uniform(0, 3 * DAY_S))) for a in rng.uniform(DAY0 - 1000, DAY0 + 2 * DAY_S, 6)]
    for rounds in range(2):  # the second round is answered from the cache
        for a, b in ranges:
            for stale_s in (30.0, 60.0):
                cached, direct = _both(db_engine, cache, a, b, stale_s)
                assert _same(cached, direct), (a, b, stale_s, rounds)
    assert cache.hits > 0 and cache.misses > 0


def test_late_beats_of_a_cached_day_replace_its_cover(db_engine: Engine) -> None:
    """A box's spool replays the heartbeats of an outage the next morning: the cached day
    with the hole is dropped and the filled one is computed."""
    day1 = DAY0 + DAY_S
    _write(db_engine, [(t, True) for t in np.arange(DAY0, day1 - 7200, 10.0)])
    _write(db_engine, [(t, True) for t in np.arange(day1 - 3600, day1 + DAY_S, 10.0)])
    clock = Clock(NOW)
    cache = CoverCache(clock=clock)
    before, _ = _both(db_engine, cache, DAY0, day1 + DAY_S)
    assert len(before) == 2  # the two-hour hole before day 1
    _write(db_engine, [(t, True) for t in np.arange(day1 - 7200, day1 - 3600, 10.0)])  # replayed late
    clock.t += REFRESH_S  # new heartbeats are looked for at most every REFRESH_S
    after, direct = _both(db_engine, cache, DAY0, day1 + DAY_S)
    assert _same(after, direct) and len(after) == 1


def test_days_not_over_are_not_kept_and_kept_days_expire(db_engine: Engine) -> None:
    _write(db_engine, [(t, True) for t in np.arange(DAY0, DAY0 + 2 * DAY_S, 10.0)])
    clock = Clock(DAY0 + DAY_S + 5.0)  # day 0 ended 5 s ago: beats within stale_s may still come
    cache = CoverCache(clock=clock)
    _both(db_engine, cache, DAY0, DAY0 + DAY_S)
    assert cache.misses == 0
    clock.t = DAY0 + 3 * DAY_S
    _both(db_engine, cache, DAY0, DAY0 + DAY_S)
    _both(db_engine, cache, DAY0, DAY0 + DAY_S)
    assert (cache.misses, cache.hits) == (1, 1)
    clock.t += TTL_S + 1
    cached, direct = _both(db_engine, cache, DAY0, DAY0 + DAY_S)
    assert cache.misses == 2 and _same(cached, direct)
