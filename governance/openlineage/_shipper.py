"""The bounded background shipper: one daemon thread per catalog per process, only while there is work.

:func:`kick_shipper` is what a step calls after its transaction committed.  It costs a few
environment lookups when OpenLineage is not configured (then it does nothing and prints nothing) and
otherwise wakes or starts the catalog's :class:`Shipper`.  The thread drains due outbox rows in
rounds (:func:`ship_round`), sleeps until the next row is due after a failure (exponential backoff),
and exits when the outbox is empty, when the next retry is more than ``max_idle`` seconds away, or
after ``max_failures`` failed rounds in a row: a dead backend never keeps a thread spinning, and the
rows it could not deliver stay in the outbox for the next step or ``gov sync``.  Daemon threads never
hold up interpreter exit; at exit the shipper gets ``exit_grace`` seconds to finish a round.

Failures to load the configuration or build the transport are logged once per shipper (the standard
``logging`` module, logger ``governance.openlineage``), never raised into the pipeline.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from governance.audit import resolve_actor
from governance.catalog import Catalog, utcnow
from governance.errors import GovernanceError
from governance.openlineage._config import configured, load_transport_config, make_transport
from governance.openlineage._outbox import close_emitter, emitter, ship_round

__all__ = ["Shipper", "ShipperLimits", "forget_shippers", "kick_shipper", "shipper_for"]

log = logging.getLogger("governance.openlineage")


@dataclass(frozen=True)
class ShipperLimits:
    """``linger``: seconds a woken shipper waits for more steps to commit before a round, so that one
    round (one read, one bookkeeping transaction with its audit event) ships the events of many
    steps instead of two; it bounds how late an event reaches the backend.  At interpreter exit the
    linger is cut short (the round starts at once), so it never delays a script's exit.  A longer
    linger and larger rounds cost less CPU per event (0.4 s and 200 events: ~13% less shipper CPU
    per step than 0.2 s and 100 in ``benchmarks/bench_capture.py``)."""

    batch_size: int = 200
    max_failures: int = 5
    max_idle: float = 30.0
    exit_grace: float = 1.0
    linger: float = 0.4


class Shipper:
    """Drains one catalog's outbox from a daemon thread; started and woken by :func:`kick_shipper`."""

    def __init__(self, catalog: Catalog, limits: ShipperLimits | None = None) -> None:
        self.catalog = catalog
        self.limits = limits or ShipperLimits()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._exiting = threading.Event()  # set at interpreter exit: stop lingering, ship now
        self._thread: threading.Thread | None = None
        self._kicked = False
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def kick(self) -> None:
        """Wake the thread, or start it if it is not running.  Never blocks on I/O."""
        with self._lock:
            self._kicked = True
            if self._thread is not None and self._thread.is_alive():
                self._wake.set()
                return
            self._thread = threading.Thread(target=self._run, name="governance-openlineage-shipper",
                                            daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to finish its work; True if it is no longer running."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def hurry(self) -> None:
        """Stop lingering before rounds (interpreter exit): what is pending ships at once."""
        self._exiting.set()

    def _should_exit(self) -> bool:
        with self._lock:
            if self._kicked:  # a step committed since we last looked: go round again
                self._kicked = False
                return False
            self._thread = None
            return True

    def _run(self) -> None:
        try:
            config = load_transport_config()
            if config is None:
                with self._lock:
                    self._thread = None
                return
            transport = make_transport(config)
        except Exception as exc:  # noqa: BLE001 - a background thread must never print into the pipeline
            # a configuration error, or the client's import failing at interpreter shutdown (its
            # modules register exit hooks, refused then): the events wait in the outbox
            self.last_error = str(exc) if isinstance(exc, GovernanceError) else f"{type(exc).__name__}: {exc}"
            log.warning("OpenLineage shipper not started: %s", exc)
            with self._lock:
                self._thread = None
            return
        kind = str(config.transport.get("type"))
        emit = emitter(transport)
        actor = resolve_actor()
        failures = 0
        try:
            lingered = False
            while True:
                if not lingered and self.limits.linger > 0:
                    self._exiting.wait(self.limits.linger)  # let the steps running now commit their rows too
                lingered = True
                with self._lock:
                    self._kicked = False
                self._wake.clear()
                result = ship_round(self.catalog, emit, actor=actor, transport_type=kind,
                                    batch_size=self.limits.batch_size)
                self.sent += result.sent
                self.failed += result.failed
                if result.error is not None:
                    self.last_error = result.error
                    failures += 1
                    if failures >= self.limits.max_failures:
                        log.warning("OpenLineage backend failing (%s); events stay in the outbox",
                                    result.error)
                        if self._should_exit():
                            return
                        failures = 0
                elif result.sent == self.limits.batch_size:
                    continue
                else:
                    failures = 0
                if not self._wait(result.next_due) and self._should_exit():
                    return
                lingered = result.error is not None  # kicked again: gather that burst before shipping
        except Exception as exc:  # noqa: BLE001 - a background thread must never print into the pipeline
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("OpenLineage shipper stopped (events stay in the outbox): %s", self.last_error)
            with self._lock:
                self._thread = None
        finally:
            close_emitter(emit)
            transport.close(0)

    def _wait(self, until: datetime | None) -> bool:
        """Sleep until ``until`` or a kick; False when there is nothing worth waiting for."""
        if until is None:
            return False
        wait = (until - utcnow()).total_seconds()
        if wait > self.limits.max_idle:
            return False
        if wait > 0:
            self._wake.wait(wait)
        return True


class _Shippers:
    """The per-process map catalog -> shipper (weak keys: a disposed catalog takes its shipper along)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[Catalog, Shipper] = weakref.WeakKeyDictionary()
        self._atexit = False

    def get(self, catalog: Catalog) -> Shipper:
        with self._lock:
            shipper = self._items.get(catalog)
            if shipper is None:
                shipper = self._items[catalog] = Shipper(catalog)
            if not self._atexit:
                atexit.register(self._drain_at_exit)
                self._atexit = True
            return shipper

    def forget(self) -> None:
        """Drop every shipper (a running one finishes its batch and exits on its own)."""
        with self._lock:
            self._items = weakref.WeakKeyDictionary()

    def _drain_at_exit(self) -> None:
        with self._lock:
            shippers = list(self._items.values())
        deadline = utcnow() + timedelta(seconds=max((s.limits.exit_grace for s in shippers), default=0))
        for shipper in shippers:
            shipper.hurry()
        for shipper in shippers:
            shipper.join(max((deadline - utcnow()).total_seconds(), 0))


_SHIPPERS = _Shippers()


def shipper_for(catalog: Catalog) -> Shipper:
    """The shipper of ``catalog`` in this process (created on first use, not started)."""
    return _SHIPPERS.get(catalog)


class _ConfiguredCache:
    """:func:`configured` for the step's hot path: the answer is kept for ``TTL`` seconds while the
    variables it reads (``OPENLINEAGE_DISABLED``/``_URL``/``_CONFIG``, ``HOME``), the number of
    environment variables (an added or removed ``OPENLINEAGE__*`` changes it) and the working
    directory stay the same; the full scan and the two file checks run at most once per ``TTL``."""

    TTL = 1.0

    def __init__(self) -> None:
        self._entry: tuple[tuple[object, ...], float, bool] | None = None

    def __call__(self) -> bool:
        environ = os.environ
        try:
            cwd: str | None = os.getcwd()  # noqa: PTH109 - hot path: a str key, no Path built
        except OSError:  # the working directory was removed: no ./openlineage.yml to find
            cwd = None
        key = (len(environ), environ.get("OPENLINEAGE_DISABLED"), environ.get("OPENLINEAGE_URL"),
               environ.get("OPENLINEAGE_CONFIG"), environ.get("HOME"), cwd)
        now = time.monotonic()
        entry = self._entry
        if entry is not None and entry[0] == key and now - entry[1] < self.TTL:
            return entry[2]
        answer = configured(cwd=None if cwd is None else Path(cwd))
        self._entry = (key, now, answer)
        return answer

    def clear(self) -> None:
        self._entry = None


_CONFIGURED = _ConfiguredCache()


def forget_shippers() -> None:
    """Forget the shippers of this process and the cached answer to "is a transport configured?"
    (:func:`governance.testing.reset`)."""
    _SHIPPERS.forget()
    _CONFIGURED.clear()


def kick_shipper(catalog: Catalog) -> None:
    """Make sure pending outbox rows of ``catalog`` get shipped in the background, if configured.

    Non-blocking.  With no OpenLineage configuration, or ``OPENLINEAGE_DISABLED=true``, it does
    nothing and prints nothing: the events stay in the outbox for ``gov sync``.
    """
    if not _CONFIGURED():
        return
    _SHIPPERS.get(catalog).kick()
