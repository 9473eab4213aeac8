"""The queue_minutes rollup: long queue charts read it, and it stays exactly what the
samples say: after replays, retention cuts inside a minute, and when the migration fills
it from samples stored before it existed."""

from __future__ import annotations

from importlib import util
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine

from trafficprn.config import RetentionDays
from trafficprn.events import QueueSample
from trafficprn.store import queries, repository
from trafficprn.store.models import QueueMinuteRow
from trafficprn.store.retention import DAY_S, purge

T0 = 1_780_000_020.0  # on a minute boundary (60 * 29,666,667)


def _samples(seed: int = 4, n: int = 900) -> list[QueueSample]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(rng.choice(np.arange(0, 3 * 3600, 1.0), n, replace=False)) + 0.25
    return [QueueSample("cam-1", ["N-1", "S-1"][i % 2], float(t), round(float(rng.uniform(0, 60)), 1),
                        int(rng.integers(0, 9))) for i, t in enumerate(ts)]


def _reference(samples: list[QueueSample], a: float, b: float, step_s: int) -> dict[tuple[str, float], tuple[int, float, float, int]]:
    out: dict[tuple[str, float], list[QueueSample]] = {}
    for q in samples:
        if a <= q.ts < b:
            out.setdefault((q.lane, float(np.floor(q.ts / step_s) * step_s)), []).append(q)
    return {k: (len(v), float(np.mean([q.length_m for q in v])), max(q.length_m for q in v), max(q.vehicles for q in v))
            for k, v in out.items()}


def _check(engine: Engine, samples: list[QueueSample], a: float, b: float, step_s: int) -> None:
    with engine.connect() as conn:
        got = {(x.lane, x.start_ts): (x.samples, x.length_m_mean, x.length_m_max, x.vehicles_max)
               for x in queries.queues(conn, "cam-1", a, b, step_s=step_s)}
    want = _reference(samples, a, b, step_s)
    assert got.keys() == want.keys()
    for k, (n, mean, mx, v) in want.items():
        assert got[k][0] == n and got[k][1] == pytest.approx(mean) and got[k][2] == pytest.approx(mx)
        assert got[k][3] == v


@pytest.mark.parametrize("step_s", [60, 120, 900, 3600])
def test_rollup_reads_equal_the_samples_even_after_a_replay(db_engine: Engine, step_s: int) -> None:
    samples = _samples()
    with db_engine.begin() as conn:
        repository.write_events(conn, samples)
    with db_engine.begin() as conn:  # the spool replays a batch it already wrote
        repository.write_events(conn, samples[100:400])
    for a, b in ((T0 + 17.5, T0 + 3 * 3600 - 41.3), (T0, T0 + 7200), (T0 + 61.0, T0 + 200.0)):
        _check(db_engine, samples, a, b, step_s)
    with db_engine.connect() as conn:
        stored = conn.execute(select(QueueMinuteRow.samples)).scalars().all()
    assert sum(stored) == len(samples)


def test_retention_rebuilds_the_minute_it_cuts(db_engine: Engine) -> None:
    samples = _samples(seed=5)
    with db_engine.begin() as conn:
        repository.write_events(conn, samples)
    cut = T0 + 3600 + 30.5  # inside a minute
    with db_engine.begin() as conn:
        result = purge(conn, RetentionDays(passages=1, plates=1), now_ts=cut + DAY_S)
    assert result.queue_samples == sum(q.ts < cut for q in samples)
    kept = [q for q in samples if q.ts >= cut]
    _check(db_engine, kept, T0, T0 + 3 * 3600, 60)
    with db_engine.connect() as conn:
        stored = conn.execute(select(QueueMinuteRow.samples)).scalars().all()
    assert sum(stored) == len(kept)


def test_migration_fill_equals_the_incremental_rollup(db_engine: Engine) -> None:
    samples = _samples(seed=6)
    with db_engine.begin() as conn:
        repository.write_events(conn, samples)
    with db_engine.connect() as conn:
        incremental = sorted(tuple(r) for r in conn.execute(select(QueueMinuteRow.__table__)).all())
    spec = util.spec_from_file_location("m0004", Path(__file__).parents[2] / "migrations/versions/0004_queue_minutes.py")
    assert spec and spec.loader
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with db_engine.begin() as conn:
        conn.execute(delete(QueueMinuteRow))
        conn.execute(text(module._FILL_PG if conn.dialect.name == "postgresql" else module._FILL_SQLITE))
    with db_engine.connect() as conn:
        filled = sorted(tuple(r) for r in conn.execute(select(QueueMinuteRow.__table__)).all())
    assert len(filled) == len(incremental)
    for f, i in zip(filled, incremental, strict=True):
        assert f[:5] == i[:5] and f[5] == pytest.approx(i[5]) and f[6:] == i[6:]
