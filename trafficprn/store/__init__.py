"""trafficprn.store: where events are kept.

- `db`: `make_engine(url)`, `upgrade(url)` / `downgrade(url)` (Alembic), `check_database`,
  `wait_for_database`, `explain_error`.
- `models`: the SQLAlchemy tables (vehicle_passages, queue_samples, camera_status,
  plate_reads, cameras, passage_counts).
- `repository`: the write side (batched, idempotent inserts; `write_events`, `upsert_camera`).
- `queries`: the read side for the API (passages with a cursor, movement counts per
  interval, downtime, queues, speeds, plates, cameras).
- `rollup`: passage counts per camera and 15-minute UTC bucket, kept by the write
  side, read by `queries.movement_counts` where it is exact.
- `sqlexpr`: SQL for epoch seconds and the interval rule (per row, or per fixed-offset
  segment of a range).
- `spool` + `sink`: `DatabaseSink(url, spool_dir)`, the pipeline's EventSink.
- `retention`: `purge(conn, retention_days)`.
- `testing`: helpers for tests and benchmarks (fresh Postgres databases, a temporary server).

Nothing is imported here: import the module you need.
"""
