"""The heartbeat cover of whole past days, kept in memory (one cache per API process).

Why: the cover of a range is a window function over every heartbeat in it (a camera
writes one every 10 s: 259,200 rows in 30 days, ~200 ms on Postgres), and every count
table, TMC report and uptime figure needs it. The cover of a day that is over changes
only when heartbeats of that day arrive late (a box's spool replayed after an outage),
so it is computed once per (site, camera, UTC day, stale_s) and kept.

Staying exact:
- before each use, the heartbeats added lately (ids above the highest id seen at least
  `LAG_S` ago: a transaction may commit a little after another one that drew higher
  ids) are read as (site, camera, earliest ts) and every cached day of that camera that
  such a heartbeat could touch is dropped (a day's cover depends on the beats from
  `stale_s` before its start to `stale_s` after its end);
- a cached day is recomputed after `TTL_S` anyway: a heartbeat committed more than
  `LAG_S` after its id was drawn, or in flight when the process started, shows within it;
- a day is kept only once it ended more than `stale_s` ago by the wall clock;
- the cover of [a, c) is the cover of [a, b) joined to the cover of [b, c): each piece is
  computed over the beats around it with the same `stale_s` margin, so spans meeting at
  a day boundary are merged back into one.
Deleting heartbeats (retention) does not pass through here: `clear()` after it. Bounded:
the least recently used days go first beyond `max_days`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from trafficprn.store.models import HeartbeatRow
from trafficprn.store.sqlexpr import as_epoch

DAY_S = 86400
LAG_S = 60.0  # late commits caught by re-reading the ids of the last minute
TTL_S = 600.0  # the longest a cached day is used before it is computed again
REFRESH_S = 1.0  # new heartbeats are looked for at most this often (a dashboard asks per camera)
Span = tuple[float, float]
DayKey = tuple[str | None, str, int, float]
"""(site or None for any site, camera, UTC day start, stale_s)"""
Compute = Callable[[float, float], list[Span]]
Conn = Connection | Session


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in spans:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class CoverCache:
    """Heartbeat cover per whole past UTC day; thread-safe (the API's sync routes run in
    a thread pool)."""

    def __init__(self, *, max_days: int = 8192, clock: Callable[[], float] = time.time) -> None:
        self.max_days = max_days
        self.clock = clock
        self._days: OrderedDict[DayKey, tuple[float, list[Span]]] = OrderedDict()  # (computed at, spans)
        self._marks: deque[tuple[float, int]] = deque()  # (clock, highest heartbeat id seen then)
        self._last_refresh = -math.inf
        self._generation: dict[str, int] = {}  # per camera name: bumped when its heartbeats arrive
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._days.clear()

    def refresh(self, conn: Conn) -> None:
        """Drop the cached days that heartbeats added since the last look could change
        (at most every REFRESH_S)."""
        now = self.clock()
        with self._lock:
            if self._marks and now - self._last_refresh < REFRESH_S:
                return
            self._last_refresh = now
            while len(self._marks) > 1 and self._marks[1][0] <= now - LAG_S:
                self._marks.popleft()
            floor = self._marks[0][1] if self._marks else None
        if floor is None:
            top = int(conn.execute(select(func.max(HeartbeatRow.id))).scalar() or 0)
            with self._lock:
                self._marks.append((now, top))
            return
        rows = conn.execute(
            select(HeartbeatRow.site, HeartbeatRow.camera, func.min(HeartbeatRow.ts), func.max(HeartbeatRow.id))
            .where(HeartbeatRow.id > floor)
            .group_by(HeartbeatRow.site, HeartbeatRow.camera)
        ).all()
        with self._lock:
            top = max([self._marks[-1][1], *(int(r[3]) for r in rows)])
            if now - self._marks[-1][0] >= 1.0:
                self._marks.append((now, top))
            else:
                self._marks[-1] = (self._marks[-1][0], top)
            for site, camera, first_ts, _ in rows:
                self._drop_from(site, camera, as_epoch(first_ts))

    def _drop_from(self, site: str, camera: str, earliest_ts: float) -> None:
        """Forget the days of a camera whose cover a heartbeat at earliest_ts or later could change."""
        stale = [k for k in self._days if k[1] == camera and k[0] in (None, site) and k[2] + DAY_S + k[3] >= earliest_ts]
        for k in stale:
            del self._days[k]
        self._generation[camera] = self._generation.get(camera, 0) + 1

    def cover(self, site: str | None, camera: str, from_ts: float, to_ts: float, stale_s: float,
              compute: Compute) -> list[Span]:
        """The cover of [from_ts, to_ts): whole past days from the cache (computed by
        `compute(day_start, day_end)` on a miss), the rest by `compute` directly."""
        closed_before = self.clock() - stale_s
        first_day = math.ceil(from_ts / DAY_S) * DAY_S  # the first day boundary at or after from_ts
        spans: list[Span] = []
        cursor = from_ts
        day = first_day
        while day + DAY_S <= to_ts and day + DAY_S <= closed_before:
            if day > cursor:
                spans += compute(cursor, float(day))
            spans += self._day(site, camera, day, stale_s, compute)
            cursor = float(day + DAY_S)
            day += DAY_S
        if cursor < to_ts:
            spans += compute(cursor, to_ts)
        return _merge(spans)

    def _day(self, site: str | None, camera: str, day: int, stale_s: float, compute: Compute) -> list[Span]:
        key: DayKey = (site, camera, day, stale_s)
        now = self.clock()
        with self._lock:
            hit = self._days.get(key)
            if hit is not None and now - hit[0] < TTL_S:
                self._days.move_to_end(key)
                self.hits += 1
                return hit[1]
            generation = self._generation.get(camera, 0)
        spans = compute(float(day), float(day + DAY_S))
        with self._lock:
            self.misses += 1
            if self._generation.get(camera, 0) != generation:
                return spans  # beats of this camera arrived meanwhile: do not keep what may be old
            self._days[key] = (now, spans)
            while len(self._days) > self.max_days:
                self._days.popitem(last=False)
        return spans
