"""A local, append-only, fsynced event spool with a committed offset.

Layout of the spool folder:
- `segment-<n>.jsonl`: events, one JSON line each ({"k": kind, "t": append time, "e": event}).
  A segment is closed when it passes `segment_bytes`; a new one is started.
- `committed.json`: {"segment": n, "offset": bytes}: everything before it is in the
  database. Written atomically (temp file, fsync, rename).
- `rejected.jsonl`: events the database refused for their content (kept for people).
- `spool.lock`: an exclusive lock, so two processes never share a spool.

`append` returns only after the bytes are fsynced: that is the sink's acknowledgement.
A torn last line (a crash mid-append, never acknowledged) is cut off when the spool opens.
Reading never holds more than `max_events` events in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from trafficprn.errors import StoreError
from trafficprn.events import CameraStatus, Event, Heartbeat, PlateRead, QueueSample, VehiclePassage

log = logging.getLogger(__name__)

KINDS: dict[str, type[Any]] = {
    "passage": VehiclePassage,
    "queue": QueueSample,
    "plate_read": PlateRead,
    "camera_status": CameraStatus,
    "heartbeat": Heartbeat,
}
KIND_OF: dict[type[Any], str] = {v: k for k, v in KINDS.items()}


@dataclass(frozen=True, order=True)
class Position:
    """A place in the spool: segment number and byte offset inside it."""

    segment: int
    offset: int


@dataclass(frozen=True)
class SpooledEvent:
    event: Event | None  # None: the line could not be decoded
    appended_ts: float
    raw: bytes
    error: str = ""


def encode(event: Event, appended_ts: float) -> bytes:
    kind = KIND_OF.get(type(event))
    if kind is None:
        raise StoreError(f"cannot spool events of type {type(event).__name__}")
    line = json.dumps({"k": kind, "t": round(appended_ts, 6), "e": event.to_dict()}, separators=(",", ":"))
    return line.encode("utf-8") + b"\n"


def decode(raw: bytes) -> SpooledEvent:
    try:
        doc = json.loads(raw)
        cls = KINDS[doc["k"]]
        return SpooledEvent(cls(**doc["e"]), float(doc["t"]), raw)
    except (ValueError, KeyError, TypeError) as exc:
        return SpooledEvent(None, 0.0, raw, f"{type(exc).__name__}: {exc}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The spool in `folder` (created if missing). Thread-safe: one thread appends
    while another reads and commits."""

    def __init__(self, folder: str | Path, *, segment_bytes: int = 64 * 1024 * 1024, max_bytes: int = 4 * 1024**3):
        self.folder = Path(folder)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.folder / "spool.lock", "a+b")  # noqa: SIM115 (held open for the lock)
        except OSError as exc:
            raise StoreError(f"cannot use spool folder {self.folder}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise StoreError(f"spool folder {self.folder} is in use by another process") from None
        try:
            self._committed = self._read_committed()
            self._recover()
            self._pending = self._count_lines(self._committed, self._end)
        except BaseException:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            raise
        self._out: BinaryIO | None = None
        self._approx_bytes = self.size_bytes()

    # ------------------------------------------------------------ opening
    def _segment_path(self, n: int) -> Path:
        return self.folder / f"segment-{n:012d}.jsonl"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("segment-*.jsonl"))

    def _read_committed(self) -> Position:
        path = self.folder / "committed.json"
        if not path.exists():
            return Position(0, 0)
        try:
            doc = json.loads(path.read_text())
            return Position(int(doc["segment"]), int(doc["offset"]))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise StoreError(f"spool offset file {path} is damaged ({exc}); move it away to replay everything") from None

    def _recover(self) -> None:
        """Cut a torn last line; make the committed position point at an existing place."""
        segments = self._segments()
        if not segments:
            start = max(self._committed.segment, 0)
            self._segment_path(start).touch()
            segments = [start]
        last = self._segment_path(segments[-1])
        data_len = last.stat().st_size
        if data_len:
            with open(last, "rb") as f:
                f.seek(max(0, data_len - 1))
                if f.read(1) != b"\n":
                    f.seek(0)
                    keep = f.read().rfind(b"\n") + 1
                    log.warning("spool %s: cutting a torn last line (%d bytes)", last, data_len - keep)
                    os.truncate(last, keep)
                    data_len = keep
        if self._committed.segment < segments[0]:
            self._committed = Position(segments[0], 0)
        self._end = Position(segments[-1], data_len)
        if self._committed > self._end:
            log.warning("spool %s: committed offset is past the end; replaying the last segment", self.folder)
            self._committed = Position(segments[-1], 0)

    def _count_lines(self, start: Position, end: Position) -> int:
        n = 0
        for seg in self._segments():
            if seg < start.segment or seg > end.segment:
                continue
            with open(self._segment_path(seg), "rb") as f:
                f.seek(start.offset if seg == start.segment else 0)
                limit = end.offset if seg == end.segment else None
                n += (f.read() if limit is None else f.read(limit - f.tell())).count(b"\n")
        return n

    # ------------------------------------------------------------ state
    @property
    def committed(self) -> Position:
        return self._committed

    @property
    def end(self) -> Position:
        with self._lock:
            return self._end

    @property
    def pending(self) -> int:
        """Events appended but not committed yet."""
        with self._lock:
            return self._pending

    def size_bytes(self) -> int:
        """Bytes on disk of the segments still holding uncommitted events."""
        total = 0
        for seg in self._segments():
            if seg >= self._committed.segment:
                try:
                    total += self._segment_path(seg).stat().st_size
                except FileNotFoundError:
                    continue
        return total - self._committed.offset

    # ------------------------------------------------------------ writing
    def append(self, events: Sequence[Event]) -> None:
        """Append events and fsync: when this returns they survive a crash."""
        if not events:
            return
        now = time.time()
        data = b"".join(encode(e, now) for e in events)
        with self._lock:
            if self._approx_bytes + len(data) > self.max_bytes:
                raise StoreError(f"spool {self.folder} is full ({self.max_bytes} bytes); the database is not catching up")
            try:
                if self._out is None or self._end.offset >= self.segment_bytes:
                    self._rotate()
            except OSError as exc:
                raise StoreError(f"cannot write spool {self.folder}: {exc.strerror}") from None
            out = self._out
            if out is None:
                raise StoreError("spool is closed")
            try:
                out.write(data)
                out.flush()
                os.fdatasync(out.fileno())
            except OSError as exc:
                self._cut_back(out)
                raise StoreError(f"cannot write spool {self.folder}: {exc.strerror}") from None
            self._end = Position(self._end.segment, self._end.offset + len(data))
            self._pending += len(events)
            self._approx_bytes += len(data)

    def _cut_back(self, out: BinaryIO) -> None:
        """After a failed write (disk full): drop what of it reached the file, so the next
        append starts on a line boundary. The file object goes first (closing retries its
        buffer), then the file is cut back to the last whole line."""
        with contextlib.suppress(OSError):  # its unwritten buffer is what failed
            out.close()
        path = self._segment_path(self._end.segment)
        try:
            os.truncate(path, self._end.offset)
        except OSError as exc:
            log.error("spool %s: cannot cut back a failed write: %s", self.folder, exc.strerror)
        self._out = open(path, "ab")  # noqa: SIM115

    def _rotate(self) -> None:
        if self._out is not None:
            self._out.close()
            self._end = Position(self._end.segment + 1, 0)
            self._segment_path(self._end.segment).touch()
            _fsync_dir(self.folder)
        self._out = open(self._segment_path(self._end.segment), "ab")  # noqa: SIM115

    # ------------------------------------------------------------ reading
    def read(self, start: Position, max_events: int) -> tuple[list[SpooledEvent], Position]:
        """Up to `max_events` complete events from `start`, and the position after them."""
        end = self.end
        out: list[SpooledEvent] = []
        pos = start
        while len(out) < max_events and pos < end:
            limit = end.offset if pos.segment == end.segment else None
            offset = pos.offset
            try:
                with open(self._segment_path(pos.segment), "rb") as f:
                    f.seek(offset)
                    while len(out) < max_events and (limit is None or offset < limit):
                        line = f.readline()
                        if not line.endswith(b"\n"):
                            break
                        offset += len(line)
                        out.append(decode(line))
            except FileNotFoundError:
                pass
            pos = Position(pos.segment, offset)
            if len(out) >= max_events or pos.segment >= end.segment:
                break
            later = [seg for seg in self._segments() if seg > pos.segment]
            pos = Position(later[0], 0) if later else end
        return out, pos

    def commit(self, position: Position, n_events: int) -> None:
        """Everything before `position` (`n_events` events) is stored: persist the offset
        and delete segments that are wholly behind it."""
        path = self.folder / "committed.json"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"segment": position.segment, "offset": position.offset}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.folder)
        with self._lock:
            self._committed = position
            self._pending = max(0, self._pending - n_events)
            current = self._end.segment
        for seg in self._segments():
            if seg < position.segment and seg < current:
                self._segment_path(seg).unlink(missing_ok=True)
        size = self.size_bytes()
        with self._lock:
            self._approx_bytes = size

    def reject(self, items: Sequence[tuple[bytes, str]]) -> None:
        """Keep events the database refused, with the reason, in rejected.jsonl."""
        with open(self.folder / "rejected.jsonl", "ab") as f:
            for raw, reason in items:
                f.write(json.dumps({"reason": reason, "line": raw.decode("utf-8", "replace").rstrip("\n")}).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
