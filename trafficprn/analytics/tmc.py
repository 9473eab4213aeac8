"""Turning-movement-count tables: passages per interval (site local clock), movement and class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from trafficprn.events import VehiclePassage
from trafficprn.timebins import interval_start

TmcKey = tuple[float, str, str, str, str]  # interval start (UTC epoch s), entry leg, exit leg, movement, class


def tmc_counts(passages: Iterable[VehiclePassage], tz: str, minutes: int = 15) -> Counter[TmcKey]:
    """Counts of complete passages (entry and exit leg known) keyed by
    (interval_start, entry_leg, exit_leg, movement, vehicle_class), binned by passage_ts."""
    counts: Counter[TmcKey] = Counter()
    for p in passages:
        if p.entry_leg is None or p.exit_leg is None or p.movement is None:
            continue
        start = interval_start(p.passage_ts, tz, minutes)
        counts[(start, p.entry_leg, p.exit_leg, p.movement, p.vehicle_class)] += 1
    return counts


def tmc_table(counts: Counter[TmcKey], by_class: bool = False) -> dict[tuple[float, str, str], dict[str, int]]:
    """Rows (interval_start, entry_leg, exit_leg) -> {movement or class: count}, for printing."""
    table: dict[tuple[float, str, str], dict[str, int]] = {}
    for (start, entry, exit_leg, movement, cls), n in sorted(counts.items()):
        row = table.setdefault((start, entry, exit_leg), {})
        key = cls if by_class else movement
        row[key] = row.get(key, 0) + n
    return table
