"""The passage index led by (site, camera, passage_ts) also carries the speed columns on
Postgres, so the speed distribution (`queries.speed_stats`: one grouped scan of
coalesce(approach, median speed) per camera and range) is an index-only scan instead of
a heap scan: 30 days of one camera (250k passages) went from ~450 ms to ~90 ms
(benchmarks/bench_api_load.py). SQLite has no INCLUDE; nothing changes there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ['site', 'camera', 'passage_ts', 'id']
_COUNTS = ['entry_leg', 'exit_leg', 'movement', 'vehicle_class']
_SPEEDS = ['approach_speed_kmh', 'speed_median_kmh', 'speed_flagged']


def _rebuild(include: list[str]) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_passages_site_camera_ts', table_name='vehicle_passages')
    op.create_index('ix_passages_site_camera_ts', 'vehicle_passages', _KEY, unique=False,
                    postgresql_include=include)


def upgrade() -> None:
    _rebuild([*_COUNTS, *_SPEEDS])


def downgrade() -> None:
    _rebuild(_COUNTS)
