"""Per-process capture runtime: caches, catalog health, fail-open recording to the catalog or the spool.

Fail-open: when the catalog cannot be opened or written (unreachable server, a lock held by another
process for longer than ``lock_timeout`` (2 s by default: every lock wait of the write counts against
it), a broken database, any error in the write), the run goes to the local spool
and one warning is logged on the ``governance`` logger for the outage (not one per call).  For
``RETRY_AFTER`` seconds after a failure, runs go straight to the spool so a dead catalog does not
cost every step a connection timeout; then the catalog is tried again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from governance._display import printable
from governance.catalog import Catalog, active_catalog, bounded_lock_wait, open_catalog, use_catalog
from governance.config import Settings
from governance.lineage._environment import CodeInfoCache, EnvironmentCache
from governance.lineage._record import ID_CACHE, RunRecord, write_run
from governance.lineage._settings import SettingsCache
from governance.lineage._spool import spool_write

__all__ = ["RETRY_AFTER", "CatalogHealth", "Runtime", "capture_to", "reset_runtime", "runtime"]

_LOG = logging.getLogger("governance")
RETRY_AFTER = 30.0


@contextmanager
def capture_to(catalog: Catalog) -> Iterator[Catalog]:
    """Record the runs of steps to ``catalog`` instead of the configured one, in this context (thread
    or asyncio task) until the block ends: :func:`governance.catalog.use_catalog`, the one answer to
    "which catalog?"."""
    with use_catalog(catalog):
        yield catalog


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class CatalogHealth:
    """Which catalog URLs failed recently; logs once per outage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_until: dict[str, float] = {}

    def is_down(self, url: str) -> bool:
        until = self._down_until.get(url)
        return until is not None and time.monotonic() < until

    def mark_down(self, url: str, display: str, exc: BaseException, spool: str) -> None:
        with self._lock:
            first = url not in self._down_until
            self._down_until[url] = time.monotonic() + RETRY_AFTER
        if first:
            _LOG.warning(
                "governance: lineage catalog %s is unavailable (%s); runs are written to the spool %s "
                "(replay with `gov sync`)",
                printable(display),
                printable(_first_line(exc)),
                printable(spool),
            )

    def mark_up(self, url: str, display: str) -> None:
        if url in self._down_until:
            with self._lock:
                was_down = self._down_until.pop(url, None) is not None
            if was_down:
                _LOG.info("governance: lineage catalog %s is available again", display)

    def reset(self) -> None:
        with self._lock:
            self._down_until.clear()


class Runtime:
    """Everything capture keeps per process, behind one object."""

    def __init__(self) -> None:
        self.settings = SettingsCache()
        self.environment = EnvironmentCache()
        self.code = CodeInfoCache()
        self.health = CatalogHealth()
        self._warned_capture = False

    def reset(self) -> None:
        """Forget what capture learnt in this process: settings, environment, code and catalog ids,
        catalog health, the capture-failure warning (:func:`governance.testing.reset`)."""
        self.settings = SettingsCache()
        self.environment = EnvironmentCache()
        self.code = CodeInfoCache()
        self.health = CatalogHealth()
        self._warned_capture = False
        ID_CACHE.clear()

    @staticmethod
    def target() -> Catalog | None:
        """The catalog of the innermost :func:`capture_to` block (None: the configured catalog)."""
        return active_catalog()

    def record(self, record: RunRecord, settings: Settings) -> str:
        """Write the run to the catalog, else to the spool.  Returns ``"catalog"``, ``"spool"`` or
        ``"lost"`` (the spool could not be written either; logged)."""
        target = active_catalog()
        url = settings.catalog_url if target is None else f"{target.url}#{id(target)}"
        display = url if target is None else target.display_url
        if not self.health.is_down(url):
            try:
                with bounded_lock_wait(settings.lock_timeout):
                    catalog = open_catalog(settings) if target is None else target
                    display = catalog.display_url
                    write_run(catalog, record)
            except Exception as exc:  # noqa: BLE001 - fail-open: the run is spooled and the outage logged
                self.health.mark_down(url, display, exc, str(settings.spool_dir))
            else:
                self.health.mark_up(url, display)
                return "catalog"
        try:
            spool_write(settings.spool_dir, record, timeout=settings.lock_timeout)
        except OSError as exc:
            _LOG.error(
                "governance: could not write run %s to the spool %s: %s",
                printable(record.run_uuid),
                printable(settings.spool_dir),
                printable(_first_line(exc)),
            )
            return "lost"
        return "spool"

    def capture_failed(self, what: str, exc: BaseException) -> None:
        """An adapter or the capture machinery failed: log (first time with the traceback)."""
        if not self._warned_capture:
            self._warned_capture = True
            _LOG.warning("governance: lineage capture failed (%s): %s", printable(what), printable(_first_line(exc)),
                         exc_info=exc)
        else:
            _LOG.debug("governance: lineage capture failed (%s): %s", printable(what), printable(_first_line(exc)))


_RUNTIME = Runtime()


def runtime() -> Runtime:
    """The process's capture runtime."""
    return _RUNTIME


def reset_runtime() -> None:
    """Forget what capture keeps per process (:meth:`Runtime.reset`; :func:`governance.testing.reset`)."""
    _RUNTIME.reset()
