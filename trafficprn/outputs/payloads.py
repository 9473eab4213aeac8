"""What the outputs publish, as JSON-ready dicts, and the bookkeeping behind them. Pure: no
I/O, no clocks of its own (time is the events' `ts`, footage or wall).

- `passage_payload`: one per passage, the REST API's passage keys (`api.schemas.PassageOut`)
  plus `site`.
- `CountsBook`: per-interval (site clock, `timebins.interval_start`) counts per movement and
  class, and whether the worker watched the whole interval: complete only where up
  heartbeats cover it (each up heartbeat covers the time to the next one, if that came
  within `stale_s`) and no status change marked the camera down in it, the rule of
  `store.liveness`, applied to the events the worker emits. An interval is published
  `delay_s` after its end (passages are emitted when a vehicle leaves the view, after its
  passage time); a passage that still comes later republishes its interval.
- `QueueBook`: per-lane queue summary every `period_s`.

Every payload has a `uuid`. Passages keep theirs; counts and queue summaries derive theirs
from what they describe (so re-processing the same footage repeats them); a counts
message that changes (a late passage) gets a new one, and consumers keep the latest per
(camera, interval_start_ts).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid as uuid_lib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from trafficprn.events import EVENT_NAMESPACE, CameraStatus, Heartbeat, QueueSample, VehiclePassage, new_uuid
from trafficprn.timebins import interval_label, interval_start

# The REST API's passage keys (trafficprn.api.schemas.PassageOut) but `site`, which the payload sets
# from the event or the box; a test holds them equal.
PASSAGE_KEYS = (
    "uuid", "camera", "track_id", "passage_ts", "first_seen_ts", "last_seen_ts", "vehicle_class", "class_confidence",
    "entry_leg", "exit_leg", "movement", "speed_median_kmh", "speed_max_kmh", "speed_flagged",
    "approach_speed_kmh", "through_speed_kmh", "stopped_s", "stops", "colour",
)
COVER_EPS_S = 1e-6
MAX_GAP_INTERVALS = 96  # a longer jump of the clock is not filled with empty intervals
Payload = dict[str, Any]
Span = tuple[float, float]


def derived_uuid(*parts: object) -> str:
    return str(uuid_lib.uuid5(EVENT_NAMESPACE, "|".join(str(p) for p in parts)))


def passage_payload(p: VehiclePassage, site: str) -> Payload:
    out: Payload = {key: getattr(p, key) for key in PASSAGE_KEYS}
    out["site"] = p.site or site
    return out


def availability_payload(site: str, camera: str, state: str, ts: float, reason: str = "") -> Payload:
    return {"uuid": new_uuid(), "site": site, "camera": camera, "state": state, "ts": ts, "reason": reason}


# ---------------------------------------------------------------- coverage
class Coverage:
    """Which time the worker watched, from its heartbeats and status changes."""

    def __init__(self, stale_s: float) -> None:
        self.stale_s = stale_s
        self._spans: list[Span] = []  # sorted, merged
        self._downs: list[Span] = []
        self._down_since: float | None = None
        self._last_beat: tuple[float, bool] | None = None

    def heartbeat(self, ts: float, up: bool) -> None:
        if self._last_beat is not None:
            last_ts, last_up = self._last_beat
            if last_up and 0 < ts - last_ts <= self.stale_s:
                self._add(self._spans, (last_ts, ts))
        self._last_beat = (ts, up)

    def status(self, ts: float, up: bool) -> None:
        if not up and self._down_since is None:
            self._down_since = ts
        elif up and self._down_since is not None:
            if ts > self._down_since:
                self._add(self._downs, (self._down_since, ts))
            self._down_since = None

    @staticmethod
    def _add(spans: list[Span], span: Span) -> None:
        if spans and span[0] <= spans[-1][1] + COVER_EPS_S:
            spans[-1] = (spans[-1][0], max(spans[-1][1], span[1]))
        else:
            spans.append(span)

    def covered_s(self, start: float, end: float) -> float:
        """Seconds of [start, end) watched: heartbeat spans minus down windows."""
        downs = [*self._downs, *([(self._down_since, math.inf)] if self._down_since is not None else [])]
        total = 0.0
        for a, b in self._spans:
            a, b = max(a, start), min(b, end)
            if b <= a:
                continue
            total += b - a
            for da, db in downs:
                total -= max(0.0, min(b, db) - max(a, da))
        return max(0.0, total)

    def forget_before(self, ts: float) -> None:
        """Drop spans wholly before `ts` (state stays bounded)."""
        self._spans = [s for s in self._spans if s[1] > ts]
        self._downs = [s for s in self._downs if s[1] > ts]


# ---------------------------------------------------------------- counts
@dataclass
class _Interval:
    start_ts: float
    end_ts: float
    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # entry, exit, movement, class
    unassigned: int = 0
    published: bool = False


class CountsBook:
    """Passages per interval; `closed(now_ts)` gives the payloads of intervals that ended
    at least `delay_s` before `now_ts`. Keeps the open intervals and the last `keep_closed`
    published ones (for late passages)."""

    def __init__(self, site: str, camera: str, tz: str, minutes: int, *, delay_s: float = 60.0,
                 stale_s: float = 30.0, keep_closed: int = 4) -> None:
        self.site, self.camera, self.tz, self.minutes = site, camera, tz, minutes
        self.delay_s, self.keep_closed = delay_s, keep_closed
        self.coverage = Coverage(stale_s)
        self._intervals: dict[float, _Interval] = {}
        self._next_start: float | None = None  # the first interval not created yet
        self.late_dropped = 0

    def _interval(self, ts: float) -> _Interval:
        start = interval_start(ts, self.tz, self.minutes)
        if start not in self._intervals:
            end = interval_start(start + self.minutes * 60 + 1, self.tz, self.minutes)  # next start (DST-safe)
            self._intervals[start] = _Interval(start, end)
        return self._intervals[start]

    def _seen(self, ts: float) -> None:
        """Time has reached `ts`: every interval from the first one seen up to it exists
        (empty ones too: zero traffic where watched, missing where not)."""
        if self._next_start is None:
            self._next_start = interval_start(ts, self.tz, self.minutes)
        if ts - self._next_start > MAX_GAP_INTERVALS * self.minutes * 60:  # a clock jump: skip, do not fill
            self._next_start = interval_start(ts, self.tz, self.minutes)
        while self._next_start <= ts:
            self._next_start = self._interval(self._next_start).end_ts

    def passage(self, p: VehiclePassage) -> list[Payload]:
        """Count a passage; a payload when it lands in an interval already published."""
        start = interval_start(p.passage_ts, self.tz, self.minutes)
        if start not in self._intervals and self._intervals and start < min(self._intervals):
            self.late_dropped += 1  # older than every interval still kept
            return []
        iv = self._interval(p.passage_ts)
        if p.entry_leg is None or p.exit_leg is None or p.movement is None:
            iv.unassigned += 1
        else:
            iv.counts[(p.entry_leg, p.exit_leg, p.movement, p.vehicle_class)] += 1
        return [self._payload(iv)] if iv.published else []

    def heartbeat(self, hb: Heartbeat) -> list[Payload]:
        self._seen(hb.ts)
        self.coverage.heartbeat(hb.ts, hb.up)
        return self.closed(hb.ts)

    def status(self, st: CameraStatus) -> list[Payload]:
        self._seen(st.ts)
        self.coverage.status(st.ts, st.up)
        return self.closed(st.ts)

    def tick(self, ts: float) -> list[Payload]:
        self._seen(ts)
        return self.closed(ts)

    def closed(self, now_ts: float) -> list[Payload]:
        """Payloads of the intervals that ended at least `delay_s` before `now_ts`, each once."""
        out = []
        for iv in sorted(self._intervals.values(), key=lambda i: i.start_ts):
            if not iv.published and iv.end_ts + self.delay_s <= now_ts:
                iv.published = True
                out.append(self._payload(iv))
        self._prune()
        return out

    def flush(self) -> list[Payload]:
        """At a clean stop: the intervals not yet published, as they stand (incomplete
        where the worker did not watch them to the end)."""
        out = []
        for iv in sorted(self._intervals.values(), key=lambda i: i.start_ts):
            if not iv.published and (iv.counts or iv.unassigned or self.coverage.covered_s(iv.start_ts, iv.end_ts)):
                iv.published = True
                out.append(self._payload(iv))
        return out

    def _prune(self) -> None:
        published = sorted(s for s, iv in self._intervals.items() if iv.published)
        for start in published[: max(0, len(published) - self.keep_closed)]:
            del self._intervals[start]
        if self._intervals:
            self.coverage.forget_before(min(self._intervals))

    def _payload(self, iv: _Interval) -> Payload:
        covered = self.coverage.covered_s(iv.start_ts, iv.end_ts)
        complete = covered >= iv.end_ts - iv.start_ts - COVER_EPS_S
        rows = [{"entry_leg": e, "exit_leg": x, "movement": m, "vehicle_class": c, "count": n}
                for (e, x, m, c), n in sorted(iv.counts.items())]
        by_movement: Counter[str] = Counter()
        columns: Counter[str] = Counter()
        for (entry, _exit, movement, cls), n in iv.counts.items():
            by_movement[f"{entry}_{movement}"] += n
            columns[f"{entry}_{movement}_{cls}"] += n  # the REST TMC column names (api.tmc.column_name)
        body: Payload = {
            "site": self.site, "camera": self.camera, "interval_start_ts": iv.start_ts, "interval_end_ts": iv.end_ts,
            "start": interval_label(iv.start_ts, self.tz), "interval_minutes": self.minutes,
            "complete": complete, "covered_s": round(covered, 3), "movements": rows,
            "counts": dict(sorted(columns.items())), "by_movement": dict(sorted(by_movement.items())),
            "total": sum(iv.counts.values()), "unassigned": iv.unassigned,
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        return {"uuid": derived_uuid("counts", self.site, self.camera, iv.start_ts, digest), **body}


# ---------------------------------------------------------------- queues
@dataclass
class _LaneSummary:
    length_m: float
    vehicles: int
    length_m_max: float
    vehicles_max: int
    samples: int = 1


class QueueBook:
    """Queue samples (1 s, per lane) summed up per `period_s` of their time."""

    def __init__(self, site: str, camera: str, period_s: float = 5.0) -> None:
        self.site, self.camera, self.period_s = site, camera, period_s
        self._period: float | None = None
        self._lanes: dict[str, _LaneSummary] = {}

    def sample(self, q: QueueSample) -> list[Payload]:
        period = math.floor(q.ts / self.period_s) * self.period_s
        out = []
        if self._period is not None and period > self._period:
            out = self.flush()
        if self._period is None:
            self._period = period
        lane = self._lanes.get(q.lane)
        if lane is None:
            self._lanes[q.lane] = _LaneSummary(q.length_m, q.vehicles, q.length_m, q.vehicles)
        else:
            lane.length_m, lane.vehicles, lane.samples = q.length_m, q.vehicles, lane.samples + 1
            lane.length_m_max, lane.vehicles_max = max(lane.length_m_max, q.length_m), max(lane.vehicles_max, q.vehicles)
        return out

    def flush(self) -> list[Payload]:
        if self._period is None or not self._lanes:
            return []
        start = self._period
        lanes = [{"lane": name, "length_m": round(s.length_m, 2), "length_m_max": round(s.length_m_max, 2),
                  "vehicles": s.vehicles, "vehicles_max": s.vehicles_max, "samples": s.samples}
                 for name, s in sorted(self._lanes.items())]
        self._period, self._lanes = None, {}
        return [{"uuid": derived_uuid("queue", self.site, self.camera, start), "site": self.site, "camera": self.camera,
                 "from_ts": start, "to_ts": start + self.period_s, "lanes": lanes}]
