"""A bounded on-disk FIFO of outgoing messages, modelled on `store.spool` (which the
outputs may not import): append-only `segment-<n>.jsonl` files, one message a line
({"t": topic, "p": payload, "r": retain}), and `committed.json` saying how far the
broker has acknowledged. Messages survive a broker outage and a restart of the worker;
a torn last line (a crash mid-write) is cut when the queue opens. When `max_messages`
wait, new ones are refused and counted (`dropped`); `.lock` keeps a second process out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from trafficprn.errors import ConfigError

log = logging.getLogger(__name__)

Position = tuple[int, int]  # segment number, byte offset


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    next_pos: Position  # where the message after this one starts


class DiskQueue:
    """Thread-safe: the publishing thread puts, the sender thread reads and commits."""

    def __init__(self, folder: str | Path, max_messages: int, *, segment_bytes: int = 4 * 1024 * 1024,
                 fsync: bool = True) -> None:
        self.folder = Path(folder)
        self.max_messages, self.segment_bytes, self.fsync = max_messages, segment_bytes, fsync
        self.dropped = 0
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.folder / ".lock", "a+b")  # noqa: SIM115 (held open for the lock)
        except OSError as exc:
            raise ConfigError(f"cannot use the MQTT queue folder {self.folder}: {exc.strerror}",
                              field="outputs.mqtt.queue_dir") from None
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise ConfigError(f"MQTT queue folder {self.folder} is in use by another process",
                              field="outputs.mqtt.queue_dir") from None
        self._committed = self._read_committed()
        self._end = self._recover()
        self._pending = self._count(self._committed, self._end)
        self._out: BinaryIO = open(self._path(self._end[0]), "ab")  # noqa: SIM115

    # ------------------------------------------------------------ opening
    def _path(self, segment: int) -> Path:
        return self.folder / f"segment-{segment:012d}.jsonl"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("segment-*.jsonl"))

    def _read_committed(self) -> Position:
        path = self.folder / "committed.json"
        try:
            doc = json.loads(path.read_text())
            return int(doc["segment"]), int(doc["offset"])
        except FileNotFoundError:
            return 0, 0
        except (ValueError, KeyError, TypeError, OSError) as exc:
            log.warning("MQTT queue %s: damaged offset file (%s); sending everything still there", path, exc)
            return 0, 0

    def _recover(self) -> Position:
        segments = self._segments() or [self._committed[0]]
        last = self._path(segments[-1])
        last.touch()
        size = last.stat().st_size
        if size:
            data = last.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep != size:
                log.warning("MQTT queue %s: cutting a torn last line (%d bytes)", last, size - keep)
                os.truncate(last, keep)
                size = keep
        if self._committed < (segments[0], 0):
            self._committed = (segments[0], 0)
        end = (segments[-1], size)
        if self._committed > end:
            self._committed = (segments[-1], 0)
        return end

    def _count(self, start: Position, end: Position) -> int:
        n = 0
        for seg in self._segments():
            if start[0] <= seg <= end[0]:
                data = self._path(seg).read_bytes()
                lo = start[1] if seg == start[0] else 0
                hi = end[1] if seg == end[0] else len(data)
                n += data[lo:hi].count(b"\n")
        return n

    # ------------------------------------------------------------ state
    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    @property
    def committed(self) -> Position:
        with self._lock:
            return self._committed

    # ------------------------------------------------------------ writing
    def put(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Append a message (written through to disk); False when the queue is full or the
        disk refuses it (counted in `dropped`)."""
        line = json.dumps({"t": topic, "p": payload.decode("utf-8"), "r": retain}, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            if self._pending >= self.max_messages:
                self.dropped += 1
                return False
            try:
                if self._end[1] >= self.segment_bytes:
                    self._out.close()
                    self._end = (self._end[0] + 1, 0)
                    self._out = open(self._path(self._end[0]), "ab")  # noqa: SIM115
                self._out.write(data)
                self._out.flush()
                if self.fsync:
                    os.fdatasync(self._out.fileno())
            except OSError as exc:
                self.dropped += 1
                log.error("MQTT queue %s: cannot write (%s); message dropped", self.folder, exc.strerror)
                self._cut_back()
                return False
            self._end = (self._end[0], self._end[1] + len(data))
            self._pending += 1
            return True

    def _cut_back(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        with contextlib.suppress(OSError):
            os.truncate(self._path(self._end[0]), self._end[1])
        self._out = open(self._path(self._end[0]), "ab")  # noqa: SIM115

    # ------------------------------------------------------------ reading
    def read(self, start: Position, max_messages: int) -> list[Message]:
        """Up to `max_messages` messages from `start` (a `next_pos` or `committed`)."""
        with self._lock:
            end = self._end
        out: list[Message] = []
        seg, offset = start
        while len(out) < max_messages and (seg, offset) < end:
            try:
                with open(self._path(seg), "rb") as f:
                    f.seek(offset)
                    while len(out) < max_messages and (seg, offset) < end:
                        line = f.readline()
                        if not line.endswith(b"\n"):
                            break
                        offset += len(line)
                        doc = json.loads(line)
                        out.append(Message(doc["t"], doc["p"].encode("utf-8"), bool(doc["r"]), (seg, offset)))
            except FileNotFoundError:
                pass
            if len(out) >= max_messages or seg >= end[0]:
                break
            seg, offset = seg + 1, 0
            if out:
                out[-1] = Message(out[-1].topic, out[-1].payload, out[-1].retain, (seg, 0))
        return out

    def commit(self, position: Position, n_messages: int) -> None:
        """The broker has everything before `position` (`n_messages` messages)."""
        path = self.folder / "committed.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segment": position[0], "offset": position[1]}))
        os.replace(tmp, path)
        with self._lock:
            self._committed = position
            self._pending = max(0, self._pending - n_messages)
            current = self._end[0]
        for seg in self._segments():
            if seg < position[0] and seg < current:
                self._path(seg).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._out.close()
            if not self._lock_file.closed:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()
