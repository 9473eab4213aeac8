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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from trafficprn.errors import InputError, StoreError
from trafficprn.events import Event
from trafficprn.store.db import check_database, describe_url, explain_error, is_retryable, make_engine
from trafficprn.store.repository import write_events
from trafficprn.store.spool import Spool, SpooledEvent

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


class DatabaseSink:
    """EventSink writing to the database at `url` through a spool in `spool_dir`.

    batch_size: most events per transaction; flush_s: longest wait before a partial
    batch is written; max_backoff_s: cap of the retry delay while the database is down.
    require_db: raise StoreError at start when the database check fails (otherwise the
    failure is logged and the sink spools and keeps retrying).
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
        """Spool several events with one fsync; acknowledged when this returns."""
        if self._closed:
            raise StoreError("the database sink is closed")
        self.spool.append(events)
        self._spooled += len(events)
        if self.spool.pending >= self.batch_size:
            self._wake.set()

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
        )

    # ------------------------------------------------------------ writer thread
    def _run(self) -> None:
        position = self.spool.committed
        backoff = 0.0
        while True:
            if backoff:
                self._stop.wait(backoff)
            elif not self.spool.pending:
                self._wake.wait(self.flush_s)
            if self._stop.is_set():
                return
            if not self.spool.pending:
                self._wake.clear()
                self._notify_idle()
                continue
            if not backoff and self.spool.pending < self.batch_size:
                self._wake.wait(self.flush_s)  # let a partial batch fill up a little
                if self._stop.is_set():
                    return
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
                self.spool.commit(after, len(batch))
                position = after
                self._written += len(batch)
                backoff = 0.0
                self._notify_idle()
            else:
                backoff = min(self.max_backoff_s, max(0.25, backoff * 2))

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
