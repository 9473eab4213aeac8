"""Passage counts per camera and 15-minute UTC bucket (rollup for long count tables),
filled from the passages already stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of trafficprn.store.rollup's recount, without a time range.
_FILL_PG = """
INSERT INTO passage_counts (camera, bucket_s, counts)
SELECT camera, b, json_agg(json_build_array(entry_leg, exit_leg, movement, vehicle_class, n))::text
FROM (SELECT camera, (floor(extract(epoch FROM passage_ts) / 900) * 900)::bigint AS b,
             entry_leg, exit_leg, movement, vehicle_class, count(*) AS n
      FROM vehicle_passages GROUP BY 1, 2, 3, 4, 5, 6) g
GROUP BY camera, b
"""
_FILL_SQLITE = """
INSERT INTO passage_counts (camera, bucket_s, counts)
SELECT camera, b, json_group_array(json_array(entry_leg, exit_leg, movement, vehicle_class, n))
FROM (SELECT camera, (CAST(strftime('%s', passage_ts) AS INTEGER) / 900) * 900 AS b,
             entry_leg, exit_leg, movement, vehicle_class, count(*) AS n
      FROM vehicle_passages GROUP BY 1, 2, 3, 4, 5, 6) g
GROUP BY camera, b
"""


def upgrade() -> None:
    op.create_table('passage_counts',
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('bucket_s', sa.BigInteger(), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('camera', 'bucket_s', name=op.f('pk_passage_counts'))
    )
    op.execute(_FILL_PG if op.get_bind().dialect.name == 'postgresql' else _FILL_SQLITE)


def downgrade() -> None:
    op.drop_table('passage_counts')
