"""The lineage inbox's journal: accepted requests as JSON lines in append-only segment files, written
and ``fdatasync``-ed in groups by the server, read back in order by the importer.

Files in the inbox directory:

* ``LOCK``: held (``flock``) by the one server that owns the inbox; a second one is refused.
* ``IMPORTER.LOCK``: held by the one importer working on it (a new one waits for an old one to finish).
* ``CATALOG``: the catalog the inbox belongs to (its URL without password); an inbox is never
  replayed into another catalog.
* ``segment-<first seq>.ndjson``: one line per accepted request,
  ``{"seq":N,"n":EVENTS,"at":UNIX_TIME,"actor":"...","array":BOOL,"events":[...]}``; a segment is closed at
  :data:`SEGMENT_BYTES` and removed once every record in it is imported.
* ``importer.json``: how far the importer got (the last imported ``seq`` and where the next record
  starts) and its counters and last error.  Replaced atomically, not synced: losing it costs a
  re-import, which ingest's idempotence turns into duplicates that are skipped.
* ``refused.ndjson``: events the import refused, with the reason (see :mod:`governance.server._inbox`).

A request is acknowledged only after its line is on disk (``fdatasync``).  A line cut short by a crash
was never acknowledged, so it is cut off when the journal is opened; a reader never reads past the
last complete line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.errors import ConfigError

__all__ = ["SEGMENT_BYTES", "Journal", "JournalError", "Position", "Record", "read_records", "read_state",
           "segments", "write_state"]

SEGMENT_BYTES = 64 * 1024 * 1024
STATE_FILE = "importer.json"
REFUSED_FILE = "refused.ndjson"
_SEGMENT = re.compile(r"^segment-(\d{16})\.ndjson$")
_HEAD = re.compile(rb'^\{"seq":(\d+),"n":(\d+),"at":([0-9.]+),')


class JournalError(Exception):
    """The journal could not store a request durably (disk full, I/O error, closed)."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a record starts: the segment (by the first sequence number it holds) and a byte offset."""

    segment: int
    offset: int


@dataclass(frozen=True)
class Record:
    """One accepted request.  ``events`` is None when the line could not be read (``problem`` says why)."""

    seq: int
    count: int
    at: float
    actor: str
    events: list[Any] | None
    problem: str | None = None
    array: bool = True  # the request's body was a JSON array (paths ``$[i]``), else one event (``$``)

    def path(self, index: int | None) -> str:
        """The JSON path of event ``index`` in the request's body."""
        return "$" if index is None or not self.array else f"$[{index}]"


def segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:016d}.ndjson"


def segments(directory: Path) -> list[int]:
    """The first sequence number of every segment file, in order."""
    try:
        return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _SEGMENT.match(p.name)) is not None)
    except FileNotFoundError:
        return []


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_line(line: bytes, fallback_seq: int) -> Record:
    """A journal line as a :class:`Record`; an unreadable line keeps what its head says, or ``fallback_seq``."""
    head = _HEAD.match(line)
    seq, count, at = (int(head.group(1)), int(head.group(2)), float(head.group(3))) if head else (fallback_seq, 0, 0.0)
    try:
        doc = json.loads(line)
        if not isinstance(doc, dict) or not isinstance(doc.get("events"), list) or not isinstance(doc.get("seq"), int):
            raise ValueError("not an inbox record")
        return Record(int(doc["seq"]), len(doc["events"]), float(doc.get("at", at)), str(doc.get("actor", "")),
                      doc["events"], array=bool(doc.get("array", True)))
    except (ValueError, UnicodeDecodeError) as exc:
        return Record(seq, count, at, "", None, f"inbox record {seq} is unreadable ({str(exc)[:120]})")


def head_of(line: bytes) -> tuple[int, int, float] | None:
    """``(seq, events, accepted at)`` from a line's head, without parsing the events."""
    head = _HEAD.match(line)
    return (int(head.group(1)), int(head.group(2)), float(head.group(3))) if head is not None else None


# ---------------------------------------------------------------------------------- importer state
def read_state(directory: Path) -> dict[str, Any]:
    """The importer's state file (``{}`` before the first import)."""
    try:
        doc = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def state_position(state: dict[str, Any]) -> tuple[int, Position] | None:
    """``(last imported seq, position of the next record)`` from a state, when it has them."""
    try:
        return int(state["seq"]), Position(int(state["segment"]), int(state["offset"]))
    except (KeyError, TypeError, ValueError):
        return None


def write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / f"{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state, default=str), encoding="utf-8")
    tmp.replace(directory / STATE_FILE)


# ------------------------------------------------------------------------------------------ reading
def read_records(directory: Path, position: Position, max_events: int) -> tuple[list[Record], Position]:
    """Complete records from ``position`` on, whole records up to about ``max_events`` events (at least
    one), and the position after them.  At the end of a segment that a later one follows, moves on."""
    listed = segments(directory)  # listed before reading: a later segment exists only once this one is full
    if position.segment not in listed:  # removed, or a state older than the oldest segment
        later = [s for s in listed if s > position.segment]
        if not later:
            return [], position
        position = Position(later[0], 0)
    records: list[Record] = []
    offset = position.offset
    events = 0
    at_end = False
    try:
        handle = (directory / segment_name(position.segment)).open("rb")
    except FileNotFoundError:
        return [], position
    with handle:
        handle.seek(offset)
        while events < max_events:
            line = handle.readline()
            if not line.endswith(b"\n"):  # end of what is written (or a line still being written)
                at_end = True
                break
            record = parse_line(line, records[-1].seq + 1 if records else 0)
            records.append(record)
            offset += len(line)
            events += record.count
    following = [s for s in listed if s > position.segment]
    if at_end and following and offset == (directory / segment_name(position.segment)).stat().st_size:
        return records, Position(following[0], 0)
    return records, Position(position.segment, offset)


def pending_heads(directory: Path, position: Position, after_seq: int) -> list[tuple[int, int, float]]:
    """``(seq, events, accepted at)`` of every record from ``position`` on with a ``seq`` above
    ``after_seq``, from the lines' heads only (start-up: how much is waiting)."""
    heads = []
    for first in segments(directory):
        if first < position.segment:
            continue
        with (directory / segment_name(first)).open("rb") as handle:
            if first == position.segment:
                handle.seek(position.offset)
            for line in handle:
                head = head_of(line)
                if head is not None and head[0] > after_seq and line.endswith(b"\n"):
                    heads.append(head)
    return heads


class Journal:
    """The writing side: :meth:`write` appends a group of requests with one ``fdatasync`` and returns
    their sequence numbers.  One writer at a time (the server's group committer)."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._segment = 0
        self._size = 0
        self._last_seq = 0
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self.dropped_tail = 0

    # ---------------------------------------------------------------------------------- opening
    def open(self, catalog_label: str) -> None:
        """Lock the directory, check it belongs to ``catalog_label``, cut a torn last line."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"lineage inbox {self.directory}: cannot create it ({exc.strerror}); set "
                              "[server] inbox_dir to a writable directory") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise ConfigError(f"lineage inbox {self.directory}: another gov serve is using it; stop that server "
                              "or give this one its own [server] inbox_dir") from None
        self._lock_fd = lock_fd
        try:
            self._check_owner(catalog_label)
            self._recover()
        except OSError as exc:
            self._unlock()
            raise ConfigError(f"lineage inbox {self.directory}: cannot open it ({exc.strerror})") from exc
        except BaseException:
            self._unlock()
            raise

    def _check_owner(self, label: str) -> None:
        owner = self.directory / "CATALOG"
        if owner.exists():
            found = owner.read_text(encoding="utf-8").strip()
            if found != label:
                raise ConfigError(f"lineage inbox {self.directory}: it holds events for {found}, not {label}; "
                                  "serve that catalog until the inbox is empty, or set [server] inbox_dir")
        else:
            owner.write_text(label + "\n", encoding="utf-8")

    def _recover(self) -> None:
        listed = segments(self.directory)
        done = state_position(read_state(self.directory))
        last_seq = done[0] if done else 0
        if not listed:
            self._last_seq = last_seq
            self._new_segment()
            return
        path = self.directory / segment_name(listed[-1])
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a write cut short by a crash: never acknowledged
            self.dropped_tail = len(data) - end
            with path.open("r+b") as handle:
                handle.truncate(end)
                os.fsync(handle.fileno())
        last_seq = max(last_seq, listed[-1] - 1)
        start = data.rfind(b"\n", 0, max(end - 1, 0)) + 1
        if end:
            last_seq = max(last_seq, parse_line(data[start:end], listed[-1]).seq)
        self._last_seq = last_seq
        self._segment, self._size = listed[-1], end
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _new_segment(self) -> None:
        first = self._last_seq + 1
        fd = os.open(self.directory / segment_name(first), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _fsync_dir(self.directory)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment, self._size = fd, first, 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    # ------------------------------------------------------------------------------------ writing
    def write(self, requests: list[tuple[str, list[bytes], bool]]) -> list[tuple[int, int, float]]:
        """Append ``(actor, events as one-line JSON texts, whether the body was an array)`` per request and
        make them durable; returns
        ``(seq, events, accepted at)`` per request.  Raises :class:`JournalError` (nothing is kept)."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise JournalError("the server is shutting down; retry")
            now = round(time.time(), 3)
            seq = self._last_seq
            lines: list[bytes] = []
            heads: list[tuple[int, int, float]] = []
            for actor, texts, array in requests:
                seq += 1
                lines += (f'{{"seq":{seq},"n":{len(texts)},"at":{now},"actor":{json.dumps(actor)},'
                          f'"array":{"true" if array else "false"},"events":['.encode(), b",".join(texts), b"]}\n")
                heads.append((seq, len(texts), now))
            data = b"".join(lines)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fdatasync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._size)
                raise JournalError(f"the lineage inbox could not store the events ({exc.strerror}); retry") from exc
            self._last_seq = seq
            self._size += len(data)
            if self._size >= self.segment_bytes:
                with contextlib.suppress(OSError):  # else keep appending here; the next write tries again
                    self._new_segment()
            return heads

    # ------------------------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop writing and release the directory."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
