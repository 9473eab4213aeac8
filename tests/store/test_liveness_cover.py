"""The database computes heartbeat cover from the pairs that break it (window function);
checked against the plain definition (every pair of successive heartbeats where the first
is up and the next came within stale_s) on random heartbeat series, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from trafficprn.events import Heartbeat
from trafficprn.store import liveness, repository

T0 = 1_780_000_000.0


def _reference(beats: list[tuple[float, bool]], from_ts: float, to_ts: float, stale_s: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for (a, up), (b, _) in zip(beats, beats[1:], strict=False):
        if not up or b - a > stale_s:
            continue
        lo, hi = max(a, from_ts), min(b, to_ts)
        if hi <= lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cover_from_breaks_equals_the_pairwise_definition(db_engine: Engine, seed: int) -> None:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([10.0, 10.0, 10.0, 9.5, 29.0, 31.0, 45.0, 600.0], 400)
    ts = T0 + np.cumsum(gaps)
    ups = rng.random(len(ts)) > 0.05
    beats = [(float(t), bool(u)) for t, u in zip(ts, ups, strict=True)]
    with db_engine.begin() as conn:
        repository.write_events(conn, [Heartbeat("cam-x", t, up=u) for t, u in beats])
    for _ in range(8):
        a = float(rng.uniform(ts[0] - 100, ts[-1]))
        b = float(rng.uniform(a, ts[-1] + 100))
        for stale_s in (30.0, 60.0):
            with db_engine.connect() as conn:
                got = liveness.heartbeat_cover(conn, "cam-x", a, b, stale_s=stale_s)
            want = _reference([x for x in beats if a - stale_s <= x[0] <= b + stale_s], a, b, stale_s)
            assert np.allclose(np.array(got).reshape(-1, 2), np.array(want).reshape(-1, 2), atol=1e-3), (a, b, stale_s)
