"""trafficprn.store: where events are kept.

- `db`: `make_engine(url)`, `upgrade(url)` / `downgrade(url)` (Alembic), `check_database`,
  `wait_for_database`, `explain_error`.
- `models`: the SQLAlchemy tables (vehicle_passages, queue_samples, camera_status,
  plate_reads, cameras).
- `repository`: the write side (batched, idempotent inserts; `write_events`, `upsert_camera`).
- `queries`: the read side for the API (passages with a cursor, movement counts per
  interval, downtime, queues, speeds, plates, cameras).
- `spool` + `sink`: `DatabaseSink(url, spool_dir)`, the pipeline's EventSink.
- `retention`: `purge(conn, retention_days)`.
- `testing`: helpers for tests and benchmarks (fresh Postgres databases, a temporary server).

Nothing is imported here: import the module you need.
"""
