"""Many sites in one store: `site` in the keys of `cameras` and `passage_counts`, a
`sites` table (each site's time zone, written by its workers), and the passage index
led by the site.

Rows stored with site '' (one-site boxes before this revision) take the site name given
to the upgrade (`trafficprn db upgrade --site site.yaml`, or alembic `-x site=NAME`);
without one they keep ''. The rollup is rebuilt from the passages per site.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SITE_TABLES = ('vehicle_passages', 'queue_samples', 'queue_minutes', 'camera_status', 'camera_heartbeats',
                'plate_reads')

# A frozen copy of trafficprn.store.rollup's counting, over every stored passage.
_FILL_COUNTS_PG = """
INSERT INTO passage_counts (site, camera, bucket_s, counts)
SELECT site, camera, b, json_agg(json_build_array(entry_leg, exit_leg, movement, vehicle_class, n))::text
FROM (SELECT site, camera, (floor(extract(epoch FROM passage_ts) / 900) * 900)::bigint AS b,
             entry_leg, exit_leg, movement, vehicle_class, count(*) AS n
      FROM vehicle_passages GROUP BY 1, 2, 3, 4, 5, 6, 7) g
GROUP BY site, camera, b
"""
_FILL_COUNTS_SQLITE = """
INSERT INTO passage_counts (site, camera, bucket_s, counts)
SELECT site, camera, b, json_group_array(json_array(entry_leg, exit_leg, movement, vehicle_class, n))
FROM (SELECT site, camera, (CAST(strftime('%s', passage_ts) AS INTEGER) / 900) * 900 AS b,
             entry_leg, exit_leg, movement, vehicle_class, count(*) AS n
      FROM vehicle_passages GROUP BY 1, 2, 3, 4, 5, 6, 7) g
GROUP BY site, camera, b
"""
# Every (site, camera) that wrote anything, with the live URL and creation time of its old row.
_FILL_CAMERAS = """
INSERT INTO cameras (site, name, live_url, created_ts)
SELECT k.site, k.camera, o.live_url, COALESCE(o.created_ts, k.first_ts)
FROM (SELECT site, camera, MIN(ts) AS first_ts FROM (
        SELECT site, camera, passage_ts AS ts FROM vehicle_passages
        UNION ALL SELECT site, camera, ts FROM camera_status
        UNION ALL SELECT site, camera, ts FROM camera_heartbeats) e
      GROUP BY site, camera) k
LEFT JOIN cameras_old o ON o.name = k.camera
UNION ALL
SELECT '', o.name, o.live_url, o.created_ts FROM cameras_old o
WHERE NOT EXISTS (SELECT 1 FROM vehicle_passages p WHERE p.camera = o.name)
  AND NOT EXISTS (SELECT 1 FROM camera_status s WHERE s.camera = o.name)
  AND NOT EXISTS (SELECT 1 FROM camera_heartbeats h WHERE h.camera = o.name)
"""


def _site_name() -> str:
    name = context.config.attributes.get('site_name') or context.get_x_argument(as_dictionary=True).get('site')
    return str(name or '')


def upgrade() -> None:
    name = _site_name()
    if name:
        for table in _SITE_TABLES:
            op.execute(sa.text(f"UPDATE {table} SET site = :name WHERE site = ''").bindparams(name=name))
    op.create_table('sites',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('updated_ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sites'))
    )
    op.execute("INSERT INTO sites (name, timezone, updated_ts) SELECT site, NULL, MAX(ts) FROM camera_heartbeats "
               "GROUP BY site")

    # copied aside without its constraints, so the new table takes the old names
    op.execute('CREATE TABLE cameras_old AS SELECT name, live_url, created_ts FROM cameras')
    op.drop_table('cameras')
    op.create_table('cameras',
    sa.Column('site', sa.String(length=64), server_default='', nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('live_url', sa.String(length=500), nullable=True),
    sa.Column('created_ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('site', 'name', name=op.f('pk_cameras'))
    )
    op.execute(_FILL_CAMERAS)
    op.drop_table('cameras_old')

    op.drop_table('passage_counts')
    op.create_table('passage_counts',
    sa.Column('site', sa.String(length=64), server_default='', nullable=False),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('bucket_s', sa.BigInteger(), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('site', 'camera', 'bucket_s', name=op.f('pk_passage_counts'))
    )
    op.execute(_FILL_COUNTS_PG if op.get_bind().dialect.name == 'postgresql' else _FILL_COUNTS_SQLITE)

    op.drop_index('ix_passages_camera_ts', table_name='vehicle_passages')
    op.create_index('ix_passages_site_camera_ts', 'vehicle_passages', ['site', 'camera', 'passage_ts', 'id'],
                    unique=False, postgresql_include=['entry_leg', 'exit_leg', 'movement', 'vehicle_class'])
    op.drop_index('ix_camera_heartbeats_camera_ts', table_name='camera_heartbeats')


def downgrade() -> None:
    op.create_index('ix_camera_heartbeats_camera_ts', 'camera_heartbeats', ['camera', 'ts'], unique=False)
    op.drop_index('ix_passages_site_camera_ts', table_name='vehicle_passages')
    op.create_index('ix_passages_camera_ts', 'vehicle_passages', ['camera', 'passage_ts', 'id'], unique=False,
                    postgresql_include=['entry_leg', 'exit_leg', 'movement', 'vehicle_class'])
    op.execute('CREATE TABLE passage_counts_new AS SELECT camera, bucket_s, counts FROM passage_counts')
    op.drop_table('passage_counts')
    op.create_table('passage_counts',
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('bucket_s', sa.BigInteger(), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('camera', 'bucket_s', name=op.f('pk_passage_counts'))
    )
    # counts of all sites of a camera merge again, as before this revision: the fill
    # above over the per-site rollup, summed per (camera, bucket) in Python (few rows)
    merged: dict[tuple[str, int], dict[tuple[object, ...], int]] = {}
    for camera, bucket, counts in op.get_bind().execute(sa.text('SELECT camera, bucket_s, counts FROM passage_counts_new')):
        cell = merged.setdefault((camera, int(bucket)), {})
        for e, x, m, c, n in json.loads(counts):
            cell[(e, x, m, c)] = cell.get((e, x, m, c), 0) + int(n)
    table = sa.table('passage_counts', sa.column('camera'), sa.column('bucket_s'), sa.column('counts'))
    rows = [{'camera': cam, 'bucket_s': b, 'counts': json.dumps([[*k, n] for k, n in cells.items()])}
            for (cam, b), cells in merged.items()]
    if rows:
        op.bulk_insert(table, rows)
    op.drop_table('passage_counts_new')
    op.execute('CREATE TABLE cameras_new AS SELECT name, live_url, created_ts FROM cameras')
    op.drop_table('cameras')
    op.create_table('cameras',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('live_url', sa.String(length=500), nullable=True),
    sa.Column('created_ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cameras'))
    )
    op.execute("INSERT INTO cameras (name, live_url, created_ts) SELECT name, MAX(live_url), MIN(created_ts) "
               "FROM cameras_new GROUP BY name")
    op.drop_table('cameras_new')
    op.drop_table('sites')
