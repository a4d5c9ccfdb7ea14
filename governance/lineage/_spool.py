"""The local spool: runs that could not be written to the catalog, as JSON lines.

Each process appends to its own file ``<spool_dir>/<host>-<pid>.jsonl`` (one JSON document per
line, under an exclusive ``flock``).  :func:`replay_spool` moves each file aside before reading it,
writes every run through the normal (idempotent, ``run_uuid``-keyed) path, and puts the lines it
could not write back into the spool, so a replay can be repeated or interrupted safely.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from governance.catalog import Catalog
from governance.lineage._record import RunRecord, write_run

__all__ = ["replay_spool", "spool_files", "spool_write"]

_LOG = logging.getLogger("governance")
_REPLAYING = ".replaying-"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: single-writer files are still safe enough
    fcntl = None  # type: ignore[assignment]


@contextmanager
def _locked(handle: IO[Any], timeout: float | None = None) -> Iterator[bool]:
    """``flock`` the file for the block; yields whether it was taken (within ``timeout`` seconds when
    given: polled, so a stopped replayer holding the file cannot hang a step)."""
    if fcntl is None:  # pragma: no cover
        yield True
        return
    if timeout is None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    elif not _poll_lock(handle.fileno(), timeout):
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _poll_lock(fd: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.01)


def _own_file(spool_dir: Path) -> Path:
    return spool_dir / f"{socket.gethostname()}-{os.getpid()}.jsonl"


def spool_write(spool_dir: Path, record: RunRecord, *, timeout: float | None = None) -> Path:
    """Append one run to this process's spool file; returns the file.

    With ``timeout``, a spool file another process (a stopped ``gov sync``) keeps locked longer than
    that is left alone: the run goes to a new file of its own, which no one else can hold.
    """
    line = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = _own_file(spool_dir)
    while True:
        with path.open("a", encoding="utf-8") as handle, _locked(handle, timeout) as taken:
            if not taken:
                break
            try:
                same = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
            except FileNotFoundError:
                same = False
            if same:  # the replayer did not move the file away between open and lock
                handle.write(line)
                handle.flush()
                return path
    alone = path.with_name(f"{path.stem}-{uuid.uuid4().hex[:12]}.jsonl")
    with alone.open("x", encoding="utf-8") as handle:
        handle.write(line)
    return alone


def spool_files(spool_dir: Path) -> list[Path]:
    """Spool files waiting for replay (including ones an interrupted replay left aside)."""
    if not spool_dir.is_dir():
        return []
    return sorted(p for p in spool_dir.iterdir() if p.is_file() and (p.suffix == ".jsonl" or _REPLAYING in p.name))


def replay_spool(catalog: Catalog, *, spool_dir: Path | None = None, actor: str | None = None) -> int:
    """Write spooled runs to ``catalog``; returns how many runs were newly written.

    Each run is recorded under the identity replaying it (``actor``, else the resolved actor); the
    identity the spool line claims is kept as data.  Idempotent: a run already in the catalog (same
    ``run_uuid``) is skipped and dropped from the spool.  Lines that fail to write stay in the spool;
    malformed lines are kept aside in ``*.bad`` files and logged.
    """
    from governance.audit import resolve_actor
    from governance.lineage._settings import SettingsCache

    settings = SettingsCache().get()
    if spool_dir is None:
        spool_dir = settings.spool_dir
    replayer = resolve_actor(actor, settings)
    written = 0
    for path in spool_files(spool_dir):
        if _REPLAYING in path.name:
            work = path
        else:
            work = path.with_name(f"{path.name}{_REPLAYING}{uuid.uuid4().hex[:8]}")
            try:
                path.replace(work)
            except FileNotFoundError:
                continue
        with work.open("r+", encoding="utf-8") as handle, _locked(handle):
            lines = handle.read().splitlines()
        failed: list[str] = []
        bad: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                record = RunRecord.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                _LOG.warning("governance: spool %s: skipping a malformed line (%s)", work.name, exc)
                bad.append(line)
                continue
            if failed:  # the catalog failed on an earlier line: keep order, don't hammer it
                failed.append(line)
                continue
            try:
                written += int(write_run(catalog, record, replayed_by=replayer))
            except Exception as exc:  # noqa: BLE001 - the line stays in the spool and the error is logged
                _LOG.warning("governance: spool replay stopped at run %s: %s", record.run_uuid, exc)
                failed.append(line)
        if bad:
            with work.with_suffix(".bad").open("a", encoding="utf-8") as out:
                out.write("\n".join(bad) + "\n")
        if failed:
            retry = spool_dir / f"retry-{uuid.uuid4().hex[:12]}.jsonl"
            retry.write_text("\n".join(failed) + "\n", encoding="utf-8")
        work.unlink(missing_ok=True)
        if failed:
            break
    return written
