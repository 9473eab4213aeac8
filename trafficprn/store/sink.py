"""`DatabaseSink`: the pipeline's `EventSink` for the database, with a spool.

`emit(event)` appends the event to the local spool and fsyncs it; when `emit` returns
the event is acknowledged: it reaches the database even if the process dies right
after. A background thread reads the spool in batches (at most `batch_size` events in
memory), writes each batch in one transaction (idempotent by uuid), then moves the
committed offset. While the database is unreachable the spool grows and the writer
retries with exponential backoff (logging what failed); when it comes back the spool
is replayed. A replay after a crash never duplicates: the database skips known keys.

Events the database refuses for their content (not for being down) are moved to the
spool's `rejected.jsonl` so that one bad event never blocks the others.

When the spool cannot be written (disk full, any OSError) the sink degrades instead of
failing the camera: events wait in a bounded memory buffer (`max_memory_events`), which
goes to the spool when it takes writes again, or straight to the database when that is
up. What overflows the buffer is dropped and counted (`stats.dropped`, the worker's
`trafficprn_events_dropped_total`), and the first loss per camera is recorded as a down
status ("events lost"), with an up status when events are kept again, so the intervals
in between read incomplete. The writer thread survives any error: it logs, backs off,
retries and reports it (`stats.writer_ok`, `stats.last_error`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from trafficprn.errors import InputError, StoreError
from trafficprn.events import CameraStatus, Event
from trafficprn.store.db import check_database, describe_url, explain_error, is_retryable, make_engine
from trafficprn.store.repository import upsert_site, write_events
from trafficprn.store.spool import Position, Spool, SpooledEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkStats:
    """Counters for the worker's /metrics.

    spooled: events acknowledged by this sink since it started.
    written: events committed to the database since it started (replays included).
    pending: events in the spool not yet in the database (also from earlier runs).
    spool_bytes: bytes of spool holding those events.
    lag_s: age of the oldest pending event, 0 when none is pending.
    db_ok: whether the last database attempt succeeded.
    last_error: what failed last time ("" when the last attempt succeeded).
    retries: failed write attempts; rejected: events the database refused.
    held: events waiting in memory because the spool cannot be written;
    dropped: events lost since start (the spool unwritable and the memory buffer full);
    spool_ok: whether the last spool write succeeded; writer_ok: whether the writer
    thread's last round ended without an unexpected error.
    """

    spooled: int
    written: int
    pending: int
    spool_bytes: int
    lag_s: float
    db_ok: bool
    last_error: str
    retries: int
    rejected: int
    held: int = 0
    dropped: int = 0
    spool_ok: bool = True
    writer_ok: bool = True


@dataclass
class _WriterState:
    """Where the writer thread is in the spool, and its current retry delay."""

    position: Position
    backoff: float = 0.0


class DatabaseSink:
    """EventSink writing to the database at `url` through a spool in `spool_dir`.

    batch_size: most events per transaction; flush_s: longest wait before a partial
    batch is written; max_backoff_s: cap of the retry delay while the database is down.
    require_db: raise StoreError at start when the database check fails (otherwise the
    failure is logged and the sink spools and keeps retrying). site_zone: (site name,
    time zone), recorded with the first batch stored (`repository.upsert_site`), so an
    API serving many sites bins each one's counts on its own clock.
    Raises StoreError at once for an invalid URL or an unusable spool folder.
    """

    def __init__(
        self,
        url: str | URL,
        spool_dir: str | Path,
        *,
        batch_size: int = 500,
        flush_s: float = 1.0,
        max_backoff_s: float = 30.0,
        require_db: bool = False,
        engine: Engine | None = None,
        max_memory_events: int = 20_000,
        site_zone: tuple[str, str] | None = None,
    ):
        if batch_size < 1:
            raise StoreError(f"batch_size must be >= 1, got {batch_size}")
        if not flush_s > 0:
            raise StoreError(f"flush_s must be > 0, got {flush_s}")
        self.url = url
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.max_backoff_s = max_backoff_s
        self._own_engine = engine is None
        self.engine = engine if engine is not None else make_engine(url)
        self.spool = Spool(spool_dir)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._spooled = 0
        self._written = 0
        self._retries = 0
        self._rejected = 0
        self._db_ok = False
        self._last_error = ""
        self._oldest_pending_ts: float | None = None
        self._closed = False
        self.max_memory_events = max_memory_events
        self._memory: deque[Event] = deque()
        self._memory_lock = threading.Lock()
        self._dropped = 0
        self._spool_ok = True
        self._writer_ok = True
        self._losing: dict[str, float] = {}  # camera -> ts of its first lost event, while losing
        self._marks: list[Event] = []  # loss statuses not yet stored (few: one per loss)
        self._site_zone = site_zone  # None once stored
        try:
            check_database(self.engine)
            self._db_ok = True
        except StoreError as exc:
            if require_db:
                self.spool.close()
                raise
            self._last_error = str(exc)
            log.warning("%s; spooling to %s and retrying", exc, self.spool.folder)
        if self.spool.pending:
            log.info("spool %s holds %d events from an earlier run; replaying", self.spool.folder, self.spool.pending)
        self._thread = threading.Thread(target=self._run, name="trafficprn-db-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ EventSink
    def emit(self, event: Event) -> None:
        """Spool one event (fsynced). Raises StoreError when the spool cannot take it."""
        self.emit_many([event])

    def emit_many(self, events: Sequence[Event]) -> None:
        """Spool several events with one fsync; acknowledged (crash-safe) when this
        returns with the spool healthy. With the spool unwritable the events are held in
        memory or, past its bound, dropped and counted; this never raises for that."""
        if self._closed:
            raise StoreError("the database sink is closed")
        with self._memory_lock:
            if self._memory or self._marks:
                events = [*self._marks, *self._memory, *events]
                self._marks.clear()
                self._memory.clear()
            try:
                self.spool.append(events)
            except StoreError as exc:
                self._hold(events, exc)
                return
            if not self._spool_ok:
                log.info("spool %s takes writes again; %d held events written to it", self.spool.folder, len(events))
            self._spool_ok = True
            self._spooled += len(events)
            self._recovered(events)
        if self.spool.pending >= self.batch_size:
            self._wake.set()

    def _hold(self, events: Sequence[Event], exc: StoreError) -> None:
        """Keep `events` in memory (caller holds _memory_lock); drop and count what overflows."""
        if self._spool_ok:
            log.error("%s; holding events in memory (up to %d), the camera keeps counting", exc, self.max_memory_events)
        self._spool_ok = False
        self._last_error = str(exc)
        marks = [e for e in events if isinstance(e, CameraStatus) and e.reason == "events lost: spool full"]
        self._marks.extend(marks)
        self._memory.extend(e for e in events if not (isinstance(e, CameraStatus) and e in marks))
        overflow = len(self._memory) - self.max_memory_events
        if overflow > 0:
            lost = [self._memory.popleft() for _ in range(overflow)]
            self._dropped += overflow
            for ev in lost:
                camera = getattr(ev, "camera", None)
                if isinstance(camera, str) and camera not in self._losing:
                    ts = float(getattr(ev, "ts", None) or getattr(ev, "passage_ts", None) or time.time())
                    self._losing[camera] = ts
                    log.error("camera %s: events lost (spool unwritable, memory buffer full); %d dropped so far",
                              camera, self._dropped)
                    # the loss is a status change (its intervals read incomplete), never dropped itself
                    self._marks.append(CameraStatus(camera, ts, False, "events lost: spool full",
                                                    site=str(getattr(ev, "site", ""))))
        self._wake.set()

    def _recovered(self, events: Sequence[Event]) -> None:
        """Events of losing cameras were kept again: close their loss with an up status."""
        if not self._losing:
            return
        for camera in list(self._losing):
            kept = [e for e in events if getattr(e, "camera", None) == camera and not isinstance(e, CameraStatus)]
            if not kept:
                continue
            first = kept[0]
            ts = float(getattr(first, "ts", None) or getattr(first, "passage_ts", None) or time.time())
            del self._losing[camera]
            status = CameraStatus(camera, ts, True, "events kept again",
                                  site=str(getattr(first, "site", "")))
            try:
                self.spool.append([status])
                self._spooled += 1
            except StoreError as exc:
                self._hold([status], exc)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every spooled event is in the database; False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._idle:
            while self.spool.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.1))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is pending (up to `timeout_s`), stop the writer, release the spool.
        Anything left stays in the spool and is replayed by the next sink."""
        if self._closed:
            return
        drained = self.flush(timeout_s)
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, timeout_s))
        if not drained:
            log.warning("closing with %d events left in spool %s", self.spool.pending, self.spool.folder)
        self._write_held()
        left = len(self._memory) + len(self._marks)
        if left:
            self._dropped += left
            log.error("closing with %d events held in memory that neither the spool nor the database took: lost",
                      left)
        self.spool.close()
        if self._own_engine:
            self.engine.dispose()

    @property
    def stats(self) -> SinkStats:
        oldest = self._oldest_pending_ts
        pending = self.spool.pending
        lag = max(0.0, time.time() - oldest) if (pending and oldest is not None) else 0.0
        return SinkStats(
            spooled=self._spooled,
            written=self._written,
            pending=pending,
            spool_bytes=self.spool.size_bytes(),
            lag_s=lag,
            db_ok=self._db_ok,
            last_error=self._last_error,
            retries=self._retries,
            rejected=self._rejected,
            held=len(self._memory) + len(self._marks),
            dropped=self._dropped,
            spool_ok=self._spool_ok,
            writer_ok=self._writer_ok,
        )

    # ------------------------------------------------------------ writer thread
    def _run(self) -> None:
        """The writer thread: never dies while the sink is open (see `_round`)."""
        state = _WriterState(self.spool.committed)
        while not self._stop.is_set():
            try:
                if self._round(state):
                    return
                self._writer_ok = True
            except Exception as exc:  # never let the writer die: log, report, back off, retry
                log.exception("database writer: unexpected error; retrying")
                self._writer_ok = False
                self._last_error = f"writer: {type(exc).__name__}: {exc}"
                state.backoff = min(self.max_backoff_s, max(0.25, state.backoff * 2))
                self._stop.wait(state.backoff)

    def _round(self, state: _WriterState) -> bool:
        """The writer loop; True when the sink is stopping. An exception leaves `state`
        at the last committed position, so the round after it starts there."""
        position = state.position
        backoff = state.backoff
        while True:
            if backoff:
                self._stop.wait(backoff)
            elif not self.spool.pending:
                self._wake.wait(self.flush_s)
            if self._stop.is_set():
                return True
            self._write_held()  # first: held events are the ones a crash would lose
            if not self.spool.pending:
                self._wake.clear()
                self._notify_idle()
                continue
            if not backoff and self.spool.pending < self.batch_size:
                self._wake.wait(self.flush_s)  # let a partial batch fill up a little
                if self._stop.is_set():
                    return True
            self._wake.clear()
            batch, after = self.spool.read(position, self.batch_size)
            if batch:
                self._oldest_pending_ts = min((b.appended_ts for b in batch if b.event), default=None)
            try:
                ok = self._write(batch)
            except Exception as exc:  # never let the writer die: log, back off, retry
                log.exception("unexpected error writing to %s", describe_url(self.url))
                self._failed(exc)
                ok = False
            if ok:
                self.spool.commit(after, len(batch))  # may raise: _run logs it, the batch is written again
                position = after
                state.position = position
                self._written += len(batch)
                backoff = 0.0
                self._notify_idle()
            else:
                backoff = min(self.max_backoff_s, max(0.25, backoff * 2))
            state.backoff = backoff

    def _write_held(self) -> None:
        """With the spool unwritable and the database up: write the events held in
        memory straight to the database (idempotent), so they are not lost."""
        if self._spool_ok or not (self._memory or self._marks):
            return
        with self._memory_lock:
            marks, held = list(self._marks), list(self._memory)
            self._marks.clear()
            self._memory.clear()
        try:
            with self.engine.begin() as conn:
                write_events(conn, [*marks, *held])
        except (InputError, SQLAlchemyError) as exc:
            with self._memory_lock:
                self._marks[:0] = marks
                self._memory.extendleft(reversed(held))
                while len(self._memory) > self.max_memory_events:  # what came meanwhile still counts
                    self._memory.popleft()
                    self._dropped += 1
            if isinstance(exc, SQLAlchemyError):
                self._failed(exc)
            return
        held = [*marks, *held]
        self._written += len(held)
        self._db_ok = True

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    def _write(self, batch: list[SpooledEvent]) -> bool:
        """Store one batch; True when it may be committed in the spool."""
        events = [b.event for b in batch if b.event is not None]
        bad = [(b.raw, f"undecodable spool line: {b.error}") for b in batch if b.event is None]
        try:
            with self.engine.begin() as conn:
                write_events(conn, events)
                if self._site_zone is not None:
                    upsert_site(conn, *self._site_zone)
            self._site_zone = None
        except (InputError, SQLAlchemyError) as exc:
            if isinstance(exc, SQLAlchemyError) and is_retryable(exc):
                self._failed(exc)
                return False
            ok, refused = self._write_one_by_one([b for b in batch if b.event is not None])
            if not ok:
                return False
            bad += refused
        if bad:
            self._rejected += len(bad)
            self.spool.reject(bad)
            log.error("database refused %d events; kept in %s/rejected.jsonl: %s", len(bad), self.spool.folder, bad[0][1])
        if not self._db_ok:
            log.info("database %s is back; writing the spool", describe_url(self.url))
        self._db_ok = True
        self._last_error = ""
        return True

    def _write_one_by_one(self, batch: list[SpooledEvent]) -> tuple[bool, list[tuple[bytes, str]]]:
        refused: list[tuple[bytes, str]] = []
        for item in batch:
            if item.event is None:
                continue
            try:
                with self.engine.begin() as conn:
                    write_events(conn, [item.event])
            except InputError as exc:
                refused.append((item.raw, str(exc)))
            except SQLAlchemyError as exc:
                if is_retryable(exc):
                    self._failed(exc)
                    return False, []
                refused.append((item.raw, explain_error(exc, self.url)))
        return True, refused

    def _failed(self, exc: BaseException) -> None:
        message = explain_error(exc, self.url)
        self._retries += 1
        if self._db_ok or message != self._last_error:
            log.warning("%s; %d events wait in the spool, retrying", message, self.spool.pending)
        self._db_ok = False
        self._last_error = message
