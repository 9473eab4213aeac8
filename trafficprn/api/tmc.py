"""Turning-movement-count (TMC) table: pure shaping of per-interval counts.

The store returns counts grouped by (interval start, entry leg, exit leg, movement, class)
and the camera's downtime; this module lays them out the way traffic engineers expect:
one row per interval (every interval of the range, zeros included), one column per
leg x movement x class, the peak hour, its peak-hour factor (PHF), the heavy-vehicle
share (bus + truck) and intervals that overlap camera downtime flagged incomplete.
Times are UTC epoch seconds; interval starts follow `trafficprn.timebins.interval_start`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from trafficprn.timebins import interval_label

MOVEMENTS = ("L", "T", "R", "U")
CLASSES = ("car", "bus", "truck", "motorcycle", "bicycle")
HEAVY = frozenset({"bus", "truck"})


class CountCell(Protocol):
    """One group of the store's movement counts (`trafficprn.store.queries.MovementCount`)."""

    @property
    def interval_start_ts(self) -> float: ...
    @property
    def entry_leg(self) -> str | None: ...
    @property
    def exit_leg(self) -> str | None: ...
    @property
    def movement(self) -> str | None: ...
    @property
    def vehicle_class(self) -> str: ...
    @property
    def count(self) -> int: ...


class Interval(Protocol):
    """One count interval (`trafficprn.store.queries.IntervalInfo`)."""

    @property
    def start_ts(self) -> float: ...
    @property
    def end_ts(self) -> float: ...
    @property
    def incomplete(self) -> bool: ...


@dataclass
class TmcRow:
    """One interval. `counts` holds the columns with vehicles only (a 30-day hourly table
    has 720 rows of 80 columns, most of them 0): read a column with `count(column)`, or
    `full_counts(columns)` for every column."""

    start_ts: float
    end_ts: float
    start: str
    counts: dict[str, int]
    by_movement: dict[str, int]
    total: int
    heavy: int
    complete: bool
    by_class: dict[str, int] = field(default_factory=dict)

    def count(self, column: str) -> int:
        return self.counts.get(column, 0)

    def full_counts(self, columns: Sequence[str]) -> dict[str, int]:
        got = self.counts
        return {c: got.get(c, 0) for c in columns}


@dataclass
class PeakHour:
    start_ts: float
    end_ts: float
    start: str
    volume: int
    phf: float | None


@dataclass
class TmcTable:
    camera: str
    timezone: str
    interval_minutes: int
    columns: list[str]
    rows: list[TmcRow]
    totals: dict[str, int]
    total: int
    heavy_share: float | None
    peak_hour: PeakHour | None
    legs: list[str]
    od_matrix: list[list[int]] = field(default_factory=list)
    unassigned: int = 0


def column_name(leg: str, movement: str, vehicle_class: str) -> str:
    return f"{leg}_{movement}_{vehicle_class}"


def _peak_hour(rows: list[TmcRow], per_hour: int, tz: str) -> PeakHour | None:
    best: PeakHour | None = None
    for i in range(len(rows) - per_hour + 1):
        window = rows[i : i + per_hour]
        if not all(r.complete for r in window):
            continue
        volume = sum(r.total for r in window)
        if volume == 0 or (best is not None and volume <= best.volume):
            continue
        top = max(r.total for r in window)
        phf = volume / (per_hour * top) if top else None
        best = PeakHour(window[0].start_ts, window[-1].end_ts, interval_label(window[0].start_ts, tz), volume, phf)
    return best


def build_table(
    camera: str,
    cells: Iterable[CountCell],
    intervals: Sequence[Interval],
    *,
    tz: str,
    minutes: int,
    legs: Sequence[str] = (),
) -> TmcTable:
    """Lay out counts as a TMC table over `intervals` (every interval of the range, in
    order). `legs` fixes the column order (the site's legs first)."""
    cells = list(cells)
    seen = [leg for c in cells for leg in (c.entry_leg, c.exit_leg) if leg]
    leg_names = list(dict.fromkeys([*legs, *seen]))
    classes = list(dict.fromkeys([*CLASSES, *(c.vehicle_class for c in cells)]))
    columns = [column_name(leg, m, k) for leg in leg_names for m in MOVEMENTS for k in classes]
    rows: dict[float, TmcRow] = {}
    for iv in intervals:
        rows[iv.start_ts] = TmcRow(iv.start_ts, iv.end_ts, interval_label(iv.start_ts, tz), {},
                                   dict.fromkeys(MOVEMENTS, 0), 0, 0, complete=not iv.incomplete,
                                   by_class=dict.fromkeys(classes, 0))
    od = [[0] * len(leg_names) for _ in leg_names]
    leg_index = {leg: i for i, leg in enumerate(leg_names)}
    totals = dict.fromkeys(columns, 0)
    unassigned = 0
    for c in cells:
        row = rows.get(c.interval_start_ts)
        if row is None:
            continue
        n = c.count
        if c.entry_leg is None or c.movement not in MOVEMENTS:
            unassigned += n
            continue
        col = column_name(c.entry_leg, str(c.movement), c.vehicle_class)
        row.counts[col] = row.counts.get(col, 0) + n
        totals[col] += n
        row.by_movement[str(c.movement)] += n
        row.by_class[c.vehicle_class] += n
        row.total += n
        row.heavy += n if c.vehicle_class in HEAVY else 0
        if c.exit_leg is not None:
            od[leg_index[c.entry_leg]][leg_index[c.exit_leg]] += n
    ordered = list(rows.values())
    total = sum(r.total for r in ordered)
    heavy = sum(r.heavy for r in ordered)
    return TmcTable(
        camera=camera,
        timezone=tz,
        interval_minutes=minutes,
        columns=columns,
        rows=ordered,
        totals=totals,
        total=total,
        heavy_share=heavy / total if total else None,
        peak_hour=_peak_hour(ordered, max(1, 60 // minutes), tz),
        legs=leg_names,
        od_matrix=od,
        unassigned=unassigned,
    )


def to_csv(table: TmcTable) -> str:
    """The table as CSV: header, one line per interval, a TOTAL line, then the summary."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["interval_start", "interval_end", "complete", *table.columns, "total", "heavy"])
    for r in table.rows:
        w.writerow([r.start, interval_label(r.end_ts, table.timezone), int(r.complete),
                    *(r.count(c) for c in table.columns), r.total, r.heavy])
    w.writerow(["TOTAL", "", "", *(table.totals[c] for c in table.columns), table.total,
                sum(r.heavy for r in table.rows)])
    w.writerow([])
    peak = table.peak_hour
    w.writerow(["peak_hour_start", peak.start if peak else ""])
    w.writerow(["peak_hour_volume", peak.volume if peak else ""])
    w.writerow(["peak_hour_factor", f"{peak.phf:.3f}" if peak and peak.phf is not None else ""])
    w.writerow(["heavy_vehicle_share", f"{table.heavy_share:.4f}" if table.heavy_share is not None else ""])
    w.writerow(["incomplete_intervals", sum(not r.complete for r in table.rows)])
    return buf.getvalue()
