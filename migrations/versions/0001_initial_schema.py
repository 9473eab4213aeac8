"""Initial schema: passages, queue samples, camera status, plate reads, cameras.

Revision ID: 0001
Revises:
Create Date: 2026-11-30 05:32:13.088798
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('camera_status',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('up', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_status')),
    sa.UniqueConstraint('camera', 'ts', name='uq_camera_status_camera_ts')
    )
    op.create_table('cameras',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('live_url', sa.String(length=500), nullable=True),
    sa.Column('created_ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cameras'))
    )
    op.create_table('plate_reads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.Uuid(), nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('track_id', sa.BigInteger(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('plate_text', sa.String(length=32), nullable=True),
    sa.Column('plate_hash', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plate_reads')),
    sa.UniqueConstraint('uuid', name=op.f('uq_plate_reads_uuid'))
    )
    op.create_index('ix_plate_reads_plate_hash', 'plate_reads', ['plate_hash'], unique=False)
    op.create_index('ix_plate_reads_plate_text', 'plate_reads', ['plate_text'], unique=False)
    op.create_index('ix_plate_reads_ts', 'plate_reads', ['ts'], unique=False)
    op.create_table('queue_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('lane', sa.String(length=32), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('vehicles', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_samples')),
    sa.UniqueConstraint('camera', 'ts', 'lane', name='uq_queue_samples_camera_ts_lane')
    )
    op.create_index('ix_queue_samples_ts', 'queue_samples', ['ts'], unique=False)
    op.create_table('vehicle_passages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.Uuid(), nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('track_id', sa.BigInteger(), nullable=False),
    sa.Column('passage_ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_seen_ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('vehicle_class', sa.String(length=32), nullable=False),
    sa.Column('class_confidence', sa.Float(), nullable=False),
    sa.Column('colour', sa.String(length=32), nullable=True),
    sa.Column('colour_confidence', sa.Float(), nullable=True),
    sa.Column('entry_leg', sa.String(length=32), nullable=True),
    sa.Column('exit_leg', sa.String(length=32), nullable=True),
    sa.Column('movement', sa.String(length=1), nullable=True),
    sa.Column('speed_median_kmh', sa.Float(), nullable=True),
    sa.Column('speed_max_kmh', sa.Float(), nullable=True),
    sa.Column('speed_flagged', sa.Boolean(), nullable=False),
    sa.Column('plate_text', sa.String(length=32), nullable=True),
    sa.Column('plate_hash', sa.String(length=64), nullable=True),
    sa.Column('plate_confidence', sa.Float(), nullable=True),
    sa.Column('extras', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vehicle_passages')),
    sa.UniqueConstraint('uuid', name=op.f('uq_vehicle_passages_uuid'))
    )
    op.create_index('ix_passages_camera_class_ts', 'vehicle_passages', ['camera', 'vehicle_class', 'passage_ts'], unique=False)
    op.create_index('ix_passages_camera_colour_ts', 'vehicle_passages', ['camera', 'colour', 'passage_ts'], unique=False)
    op.create_index('ix_passages_camera_movement_ts', 'vehicle_passages', ['camera', 'movement', 'passage_ts'], unique=False)
    op.create_index('ix_passages_camera_speed', 'vehicle_passages', ['camera', 'speed_median_kmh'], unique=False)
    op.create_index('ix_passages_camera_ts', 'vehicle_passages', ['camera', 'passage_ts', 'id'], unique=False, postgresql_include=['entry_leg', 'exit_leg', 'movement', 'vehicle_class'])
    op.create_index('ix_passages_plate_hash', 'vehicle_passages', ['plate_hash'], unique=False, postgresql_where=sa.text('plate_hash IS NOT NULL'), sqlite_where=sa.text('plate_hash IS NOT NULL'))
    op.create_index('ix_passages_plate_text', 'vehicle_passages', ['plate_text'], unique=False, postgresql_where=sa.text('plate_text IS NOT NULL'), sqlite_where=sa.text('plate_text IS NOT NULL'))
    op.create_index('ix_passages_ts', 'vehicle_passages', ['passage_ts', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_passages_ts', table_name='vehicle_passages')
    op.drop_index('ix_passages_plate_text', table_name='vehicle_passages', postgresql_where=sa.text('plate_text IS NOT NULL'), sqlite_where=sa.text('plate_text IS NOT NULL'))
    op.drop_index('ix_passages_plate_hash', table_name='vehicle_passages', postgresql_where=sa.text('plate_hash IS NOT NULL'), sqlite_where=sa.text('plate_hash IS NOT NULL'))
    op.drop_index('ix_passages_camera_ts', table_name='vehicle_passages', postgresql_include=['entry_leg', 'exit_leg', 'movement', 'vehicle_class'])
    op.drop_index('ix_passages_camera_speed', table_name='vehicle_passages')
    op.drop_index('ix_passages_camera_movement_ts', table_name='vehicle_passages')
    op.drop_index('ix_passages_camera_colour_ts', table_name='vehicle_passages')
    op.drop_index('ix_passages_camera_class_ts', table_name='vehicle_passages')
    op.drop_table('vehicle_passages')
    op.drop_index('ix_queue_samples_ts', table_name='queue_samples')
    op.drop_table('queue_samples')
    op.drop_index('ix_plate_reads_ts', table_name='plate_reads')
    op.drop_index('ix_plate_reads_plate_text', table_name='plate_reads')
    op.drop_index('ix_plate_reads_plate_hash', table_name='plate_reads')
    op.drop_table('plate_reads')
    op.drop_table('cameras')
    op.drop_table('camera_status')
