"""The speeds engineers report, per passage: approach speed, through speed, stopped time
and number of stops (docs/speeds.md). Nullable: passages stored before this revision, and
passages where one of them was not measured, have null.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('vehicle_passages') as batch:
        batch.add_column(sa.Column('approach_speed_kmh', sa.Float(), nullable=True))
        batch.add_column(sa.Column('through_speed_kmh', sa.Float(), nullable=True))
        batch.add_column(sa.Column('stopped_s', sa.Float(), nullable=True))
        batch.add_column(sa.Column('stops', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vehicle_passages') as batch:
        batch.drop_column('stops')
        batch.drop_column('stopped_s')
        batch.drop_column('through_speed_kmh')
        batch.drop_column('approach_speed_kmh')
