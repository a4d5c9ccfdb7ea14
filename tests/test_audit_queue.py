"""The audit queue's turn (``<db>.audit-lock``) waited for in the main thread under a one-shot alarm.

A real process holds the queue's file lock.  A writer in the main thread waits for it with a blocking
``flock`` bounded by ``ITIMER_REAL``; these tests pin what that must never do to the host process:
leave its ``SIGALRM`` disposition or timer changed, call or replace a handler the application set, or
give up on a turn that is handed over within the bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.audit import list_events
from governance.catalog import Catalog

_HOLDER = """
import fcntl, os, sys, time
fd = os.open({path!r}, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep({seconds!r})
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield cat
    cat.dispose()


def _hold(catalog: Catalog, seconds: float) -> subprocess.Popen[str]:
    code = textwrap.dedent(_HOLDER.format(path=f"{catalog.sqlite_path}.audit-lock", seconds=seconds))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


# The writer runs in a process of its own: pytest-timeout keeps SIGALRM in the test process (which
# makes a writer there wait on the waiter thread, as with any application handler).
_WRITER = """
import json, signal, sys, time
sys.path.insert(0, {root!r})
from governance.audit import audited
from governance.catalog import Catalog, bounded_lock_wait
from governance.errors import CatalogError
calls = []
if {own_handler!r}:
    def handler(signum, frame):
        calls.append(signum)
    signal.signal(signal.SIGALRM, handler)
before = signal.getsignal(signal.SIGALRM)
catalog = Catalog({url!r})
outcome = "written"
if {interrupt!r}:
    import os, threading
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
began = time.monotonic()
try:
    with bounded_lock_wait({bound!r}), audited(catalog, "alice") as tx:
        tx.record("test.write", {subject!r})
except CatalogError as exc:
    outcome = str(exc)
except KeyboardInterrupt:
    outcome = "interrupted"
print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - began, "calls": calls,
                  "handler_kept": signal.getsignal(signal.SIGALRM) is before,
                  "default": signal.getsignal(signal.SIGALRM) is signal.SIG_DFL,
                  "timer": list(signal.getitimer(signal.ITIMER_REAL))}}))
"""

ROOT = Path(__file__).resolve().parents[1]


def _write(catalog: Catalog, subject: str, bound: float, *, own_handler: bool = False,
           interrupt: bool = False) -> dict[str, Any]:
    code = textwrap.dedent(_WRITER.format(root=str(ROOT), url=catalog.url, bound=bound, subject=subject,
                                          own_handler=own_handler, interrupt=interrupt))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _subjects(catalog: Catalog) -> list[str]:
    with catalog.read() as session:
        return [e.subject for e in list_events(session)]


def test_a_bounded_wait_in_the_main_thread_gives_up_and_leaves_sigalrm_as_it_was(catalog: Catalog) -> None:
    holder = _hold(catalog, 60)
    try:
        refused = _write(catalog, "refused", 0.5)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert "held its lock" in refused["outcome"]
    assert refused["seconds"] < 30  # bounded: it gave up instead of waiting for the holder
    assert refused["default"] and refused["timer"] == [0.0, 0.0]
    assert _write(catalog, "after", 5)["outcome"] == "written"
    assert _subjects(catalog) == ["after"]


def test_an_application_sigalrm_handler_is_neither_called_nor_replaced(catalog: Catalog) -> None:
    holder = _hold(catalog, 60)
    try:
        refused = _write(catalog, "refused", 0.5, own_handler=True)  # waits on the waiter thread instead
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert "held its lock" in refused["outcome"]
    assert refused["handler_kept"] and refused["calls"] == []


def test_a_turn_handed_over_within_the_bound_is_taken(catalog: Catalog) -> None:
    holder = _hold(catalog, 1.0)
    try:
        written = _write(catalog, "waited", 60)
    finally:
        holder.communicate(timeout=30)
    assert written["outcome"] == "written" and written["timer"] == [0.0, 0.0] and written["default"]
    assert _subjects(catalog) == ["waited"]


def test_an_interrupted_wait_leaves_no_alarm_armed(catalog: Catalog) -> None:
    holder = _hold(catalog, 60)
    try:
        interrupted = _write(catalog, "interrupted", 30, interrupt=True)  # Ctrl-C while queued
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert interrupted["outcome"] == "interrupted"
    assert interrupted["timer"] == [0.0, 0.0] and interrupted["default"]  # no SIGALRM left to end the process
