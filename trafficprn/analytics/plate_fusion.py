"""Multi-frame plate fusion: read a track's best crops on a bounded worker pool that drops
rather than blocks the frame loop, and vote per character over the reads.

- `fuse_reads(reads, length)`: pure per-character vote, tested on its own.
- `TrackPlateFuser(reader, ...)`: `.offer(track_id, crop, quality)` from the frame loop,
  `.result(track_id)` the fused plate so far.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from trafficprn.errors import ConfigError, InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlateResult:
    """A plate read. text: normalised (A-Z, 0-9); confidence in [0, 1].

    char_confidences: per character of text; reads: how many reads were fused into it;
    quad_px: (4, 2) plate corners in the crop's px when the reader located it.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    reads: int = 1
    quad_px: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "confidence": round(float(self.confidence), 4)}


class PlateReading(Protocol):
    """What the fuser needs of a reader (`plates.PlateReader`)."""

    @property
    def fused_length(self) -> int | None: ...

    def read(self, crop_bgr: np.ndarray | None) -> PlateResult | None: ...

    def warm_up(self) -> None: ...


def fuse_reads(reads: list[PlateResult], length: int | None = None) -> PlateResult | None:
    """Vote per character over reads of one plate, weighted by character confidence.

    Only reads of `length` characters (the template's) vote; without a length, the
    length with the largest total confidence wins. Confidence of the result: the mean
    over positions of (winning weight / all weight at that position) x the winners'
    mean confidence, so disagreement and weak reads both lower it.
    """
    reads = [r for r in reads if r.text]
    if not reads:
        return None
    if length is None:
        totals: dict[int, float] = {}
        for r in reads:
            totals[len(r.text)] = totals.get(len(r.text), 0.0) + r.confidence
        length = max(totals, key=lambda k: totals[k])
    group = [r for r in reads if len(r.text) == length]
    if not group:
        return None
    chars: list[str] = []
    confs: list[float] = []
    for pos in range(length):
        votes: dict[str, list[float]] = {}
        for r in group:
            c = r.char_confidences[pos] if len(r.char_confidences) == length else r.confidence
            votes.setdefault(r.text[pos], []).append(float(c))
        winner = max(votes, key=lambda ch: sum(votes[ch]))
        total = sum(sum(v) for v in votes.values())
        share = sum(votes[winner]) / total if total > 0 else 0.0
        chars.append(winner)
        confs.append(share * float(np.mean(votes[winner])))
    support = len(group) / len(reads)
    return PlateResult("".join(chars), float(np.mean(confs)) * support, tuple(confs), len(group))


@dataclass
class FuserStats:
    offered: int = 0
    submitted: int = 0
    dropped: int = 0
    read: int = 0
    no_plate: int = 0
    failed: int = 0


@dataclass
class _TrackState:
    reads: list[tuple[float, PlateResult]] = field(default_factory=list)  # (quality, read)
    read_qualities: list[float] = field(default_factory=list)  # of every submitted crop
    pending: int = 0
    submitted: int = 0


class TrackPlateFuser:
    """Reads plates of tracks in the background and fuses them per track.

    offer() never blocks: a crop is submitted only when it would be among the track's
    `reads_per_track` best by quality, the track has no read in flight, and fewer than
    `max_pending` reads wait in the pool; otherwise it is dropped (and counted). Each
    track submits at most 2 x reads_per_track crops. State is bounded (`max_tracks`,
    least recently offered evicted); call forget() when a track ends. With warm_up the
    reader's models load on the worker right away. Worker threads run at `worker_nice`
    (Linux per-thread nice), so the frame loop wins the CPU when both want it.
    """

    def __init__(
        self,
        reader: PlateReading,
        *,
        max_workers: int = 1,
        max_pending: int = 8,
        reads_per_track: int = 3,
        min_quality: float = 0.0,
        max_tracks: int = 512,
        warm_up: bool = True,
        worker_nice: int = 10,
    ) -> None:
        if max_workers < 1 or max_pending < 1 or reads_per_track < 1:
            raise ConfigError(
                f"expected max_workers, max_pending and reads_per_track >= 1, got "
                f"{max_workers}, {max_pending}, {reads_per_track}"
            )
        self.reader = reader
        self.max_pending = max_pending
        self.reads_per_track = reads_per_track
        self.min_quality = min_quality
        self.max_tracks = max_tracks
        self.stats = FuserStats()
        self.worker_nice = worker_nice
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="plate-ocr", initializer=self._lower_priority
        )
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._pending = 0
        self._tracks: OrderedDict[int, _TrackState] = OrderedDict()
        self._closed = False
        if warm_up:  # load the models on the worker, not on the first offer's critical path
            self._pool.submit(self._warm_up)

    def _lower_priority(self) -> None:
        """Run OCR threads at a lower OS priority (Linux: per-thread nice), so that under
        load the frame loop keeps its core and OCR takes what is left (and drops)."""
        if self.worker_nice <= 0 or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.worker_nice)
        except OSError:  # not permitted here: run at normal priority
            log.debug("could not lower the plate OCR thread's priority")

    def _warm_up(self) -> None:
        try:
            self.reader.warm_up()
        except Exception:  # reported again, with its cause, by the first real read
            log.exception("plate reader warm-up failed")

    def offer(self, track_id: int, crop_bgr: np.ndarray, quality: float) -> bool:
        """Offer a crop of a track; True when it was queued for reading. Never blocks."""
        with self._lock:
            if self._closed:
                raise InputError("TrackPlateFuser is closed")
            self.stats.offered += 1
            state = self._tracks.get(track_id)
            if state is None:
                state = self._tracks[track_id] = _TrackState()
                while len(self._tracks) > self.max_tracks:
                    self._tracks.popitem(last=False)
            else:
                self._tracks.move_to_end(track_id)
            if not self._wanted(state, quality):
                return False
            if self._pending >= self.max_pending:
                self.stats.dropped += 1
                return False
            state.pending += 1
            state.submitted += 1
            state.read_qualities.append(float(quality))
            self._pending += 1
            self.stats.submitted += 1
        crop = np.array(crop_bgr, copy=True)
        future = self._pool.submit(self.reader.read, crop)
        future.add_done_callback(lambda f: self._finish(track_id, state, float(quality), f))
        return True

    def _wanted(self, state: _TrackState, quality: float) -> bool:
        if quality < self.min_quality or state.pending > 0 or state.submitted >= 2 * self.reads_per_track:
            return False
        best = sorted(state.read_qualities, reverse=True)[: self.reads_per_track]
        if len(best) < self.reads_per_track:
            # while filling up, only crops clearly better than the last one
            return not best or quality > 1.25 * state.read_qualities[-1]
        return quality > 1.25 * best[-1]

    def _finish(self, track_id: int, state: _TrackState, quality: float, future: Future[PlateResult | None]) -> None:
        with self._lock:
            self._pending -= 1
            state.pending -= 1
            try:
                result = None if future.cancelled() else future.result()
            except Exception:  # a bad crop must not kill the worker
                log.exception("plate read failed for track %s", track_id)
                self.stats.failed += 1
                result = None
            if result is None:
                self.stats.no_plate += 1
            else:
                self.stats.read += 1
                if self._tracks.get(track_id) is state:
                    state.reads.append((quality, result))
            self._done.notify_all()

    def result(self, track_id: int, *, wait_s: float = 0.0) -> PlateResult | None:
        """The fused plate of a track so far (None: no plate yet). wait_s > 0 waits up
        to that long for the track's reads in flight (offline processing)."""
        with self._lock:
            state = self._tracks.get(track_id)
            if state is None:
                return None
            if wait_s > 0:
                self._done.wait_for(lambda: state.pending == 0, timeout=wait_s)
            best = sorted(state.reads, key=lambda qr: -qr[0])[: self.reads_per_track]
        return fuse_reads([r for _, r in best], self.reader.fused_length)

    def forget(self, track_id: int) -> None:
        """Drop a track's state; reads still in flight for it are discarded."""
        with self._lock:
            self._tracks.pop(track_id, None)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until no read is in flight; True if that happened within timeout_s."""
        with self._lock:
            return self._done.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self) -> None:
        """Stop the pool: queued reads are cancelled, running ones finish."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TrackPlateFuser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
