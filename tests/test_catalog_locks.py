"""Named try-locks on a catalog: exclusive across connections, threads and processes, never waiting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from governance.catalog import Catalog


def test_a_held_lock_is_refused_and_free_again_after_release(catalog: Catalog) -> None:
    with catalog.try_lock("work") as first:
        assert first
        seen: list[bool] = []

        def other() -> None:  # another thread: in-memory, flock and advisory locks all exclude it
            with catalog.try_lock("work") as taken:
                seen.append(taken)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30)
        assert seen == [False]
        with catalog.try_lock("other-work") as unrelated:  # names are separate locks
            assert unrelated
    with catalog.try_lock("work") as again:
        assert again


_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
import pytest

from governance.catalog import Catalog
catalog = Catalog({url!r})
with catalog.try_lock("work") as taken:
    print("taken" if taken else "busy", flush=True)
    sys.stdin.readline()
"""


def _holder(url: str) -> subprocess.Popen[str]:
    root = str(Path(__file__).resolve().parents[1])
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLDER.format(root=root, url=url))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_another_process_holding_the_lock_makes_it_busy(shared_catalog_url: str) -> None:
    catalog = Catalog(shared_catalog_url)
    try:
        with _holder(shared_catalog_url) as proc:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().strip() == "taken"
            with catalog.try_lock("work") as taken:
                assert not taken
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.wait(30) == 0
        with catalog.try_lock("work") as taken:  # released when the holder left its block
            assert taken
        with _holder(shared_catalog_url) as proc:  # and a holder killed mid-block releases it too
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "taken"
            proc.kill()
            proc.wait(30)
        with catalog.try_lock("work") as taken:
            assert taken
    finally:
        catalog.dispose()


def test_flock_waiter_bounds_the_wait_and_passes_an_abandoned_turn_on(tmp_path: Path) -> None:
    """A wait that runs out leaves its descriptor to the waiter, which releases it as soon as it gets
    the lock, so the next writer is not blocked by a writer who already gave up."""
    import fcntl
    import os

    from governance.catalog import FlockWaiter

    path = tmp_path / "queue-lock"
    path.touch()
    waiter = FlockWaiter()
    holder = os.open(path, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    gave_up = os.open(path, os.O_RDWR)
    assert waiter.acquire(gave_up, 0.2) is False  # held: the bound runs out
    os.close(holder)  # the holder lets go: the waiter takes the abandoned turn and passes it on
    nxt = os.open(path, os.O_RDWR)
    try:
        assert waiter.acquire(nxt, 10) is True
        probe = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nxt holds it now
        finally:
            os.close(probe)
    finally:
        os.close(nxt)
