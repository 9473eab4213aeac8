"""Read side for the API and dashboard: every query is here (one module per resource), none in the routes.

All functions take an open `Connection` or ORM `Session` as first argument (`conn`)
and times as UTC epoch seconds (`*_ts`); ranges are half-open [from_ts, to_ts).
Results are frozen dataclasses with epoch-second times, ready for JSON.

- `passages(conn, PassageFilter(...), limit=, cursor=)` -> `PassagePage` (keyset cursor)
- `movement_counts(conn, camera, from_ts, to_ts, tz=, minutes=)` -> `[MovementCount]`
- `count_intervals(conn, camera, from_ts, to_ts, tz=, minutes=)` -> `[IntervalInfo]`
  (every interval of the range, with camera downtime; `incomplete` when it overlaps)
- `interval_starts(from_ts, to_ts, tz, minutes)` (pure Python) and `downtime(...)`
- `od_matrix(...)`, `queues(...)`, `speed_stats(...)`, `plate_passages(...)`,
  `plate_reads(...)`, `cameras(...)`, `sites(...)`

A camera is a site and a name: two boxes writing one store may both have a `fisheye-1`.
Every camera-scoped query takes `site=`; None matches the name at any site (what a
one-site store needs); the API always passes the site it resolved.
"""

from __future__ import annotations

from trafficprn.store.queries.cameras import (
    CameraInfo,
    SiteInfo,
    camera_keys,
    camera_names,
    cameras,
    site_zones,
    sites,
    totals,
)
from trafficprn.store.queries.counts import (
    IntervalInfo,
    ODCell,
    count_intervals,
    downtime,
    interval_starts,
    movement_counts,
    od_matrix,
)
from trafficprn.store.queries.passages import (
    PassageFilter,
    PassagePage,
    PassageRecord,
    decode_cursor,
    encode_cursor,
    passages,
)
from trafficprn.store.queries.plates import PlateReadRecord, plate_passages, plate_reads
from trafficprn.store.queries.queues import QueueBin, queues
from trafficprn.store.queries.speeds import SpeedBin, SpeedStats, speed_stats
from trafficprn.store.rollup import MovementCount

__all__ = [
    "CameraInfo",
    "IntervalInfo",
    "MovementCount",
    "ODCell",
    "PassageFilter",
    "PassagePage",
    "PassageRecord",
    "PlateReadRecord",
    "QueueBin",
    "SpeedBin",
    "SiteInfo",
    "SpeedStats",
    "camera_keys",
    "camera_names",
    "cameras",
    "count_intervals",
    "decode_cursor",
    "downtime",
    "encode_cursor",
    "interval_starts",
    "movement_counts",
    "od_matrix",
    "passages",
    "plate_passages",
    "plate_reads",
    "queues",
    "site_zones",
    "sites",
    "speed_stats",
    "totals",
]
