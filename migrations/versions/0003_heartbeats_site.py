"""Heartbeats (liveness and interval completeness) and the site of every event row; the
unique keys of queue samples and status rows include the site.

Rows stored before this revision get site '' (they came from a one-site box).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SITE_TABLES = ('vehicle_passages', 'queue_samples', 'camera_status', 'plate_reads')


def upgrade() -> None:
    op.create_table('camera_heartbeats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('site', sa.String(length=64), server_default='', nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('up', sa.Boolean(), nullable=False),
    sa.Column('frames_seen', sa.BigInteger(), nullable=False),
    sa.Column('frames_processed', sa.BigInteger(), nullable=False),
    sa.Column('events_pending', sa.BigInteger(), nullable=False),
    sa.Column('events_dropped', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_heartbeats')),
    sa.UniqueConstraint('site', 'camera', 'ts', name='uq_camera_heartbeats_site_camera_ts')
    )
    op.create_index('ix_camera_heartbeats_camera_ts', 'camera_heartbeats', ['camera', 'ts'], unique=False)
    for table in _SITE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('site', sa.String(length=64), server_default='', nullable=False))
    with op.batch_alter_table('queue_samples') as batch:
        batch.drop_constraint('uq_queue_samples_camera_ts_lane', type_='unique')
        batch.create_unique_constraint('uq_queue_samples_site_camera_ts_lane', ['site', 'camera', 'ts', 'lane'])
    with op.batch_alter_table('camera_status') as batch:
        batch.drop_constraint('uq_camera_status_camera_ts', type_='unique')
        batch.create_unique_constraint('uq_camera_status_site_camera_ts', ['site', 'camera', 'ts'])


def downgrade() -> None:
    with op.batch_alter_table('camera_status') as batch:
        batch.drop_constraint('uq_camera_status_site_camera_ts', type_='unique')
        batch.create_unique_constraint('uq_camera_status_camera_ts', ['camera', 'ts'])
    with op.batch_alter_table('queue_samples') as batch:
        batch.drop_constraint('uq_queue_samples_site_camera_ts_lane', type_='unique')
        batch.create_unique_constraint('uq_queue_samples_camera_ts_lane', ['camera', 'ts', 'lane'])
    for table in reversed(_SITE_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('site')
    op.drop_index('ix_camera_heartbeats_camera_ts', table_name='camera_heartbeats')
    op.drop_table('camera_heartbeats')
