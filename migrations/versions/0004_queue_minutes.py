"""Queue samples per lane and UTC minute (rollup for long queue charts), filled from the
samples already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of trafficprn.store.queue_rollup's counting, over every stored sample.
_FILL_PG = """
INSERT INTO queue_minutes (site, camera, lane, minute_s, samples, length_sum_m, length_max_m, vehicles_max)
SELECT site, camera, lane, (floor(extract(epoch FROM ts) / 60) * 60)::bigint, count(*), sum(length_m),
       max(length_m), max(vehicles)
FROM queue_samples GROUP BY 1, 2, 3, 4
"""
_FILL_SQLITE = """
INSERT INTO queue_minutes (site, camera, lane, minute_s, samples, length_sum_m, length_max_m, vehicles_max)
SELECT site, camera, lane, (CAST(strftime('%s', ts) AS INTEGER) / 60) * 60, count(*), sum(length_m),
       max(length_m), max(vehicles)
FROM queue_samples GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    op.create_table('queue_minutes',
    sa.Column('site', sa.String(length=64), server_default='', nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('lane', sa.String(length=32), nullable=False),
    sa.Column('minute_s', sa.BigInteger(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('length_sum_m', sa.Float(), nullable=False),
    sa.Column('length_max_m', sa.Float(), nullable=False),
    sa.Column('vehicles_max', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('site', 'camera', 'lane', 'minute_s', name=op.f('pk_queue_minutes'))
    )
    op.create_index('ix_queue_minutes_camera_minute', 'queue_minutes', ['camera', 'minute_s'], unique=False)
    op.execute(_FILL_PG if op.get_bind().dialect.name == 'postgresql' else _FILL_SQLITE)


def downgrade() -> None:
    op.drop_index('ix_queue_minutes_camera_minute', table_name='queue_minutes')
    op.drop_table('queue_minutes')
