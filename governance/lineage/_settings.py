"""Per-process settings cache for the decorator's hot path.

The decorator must cost almost nothing when capture is disabled, so it reads only the
``GOVERNANCE_DISABLED`` variable on each call and keeps the resolved :class:`Settings` in a small cache
object, re-resolved when the working directory or a ``GOVERNANCE_*`` variable it depends on changes.
"""

from __future__ import annotations

import os
import threading

from governance.config import Settings, load_settings

__all__ = ["SettingsCache", "env_disabled"]

_TRUE = frozenset({"1", "true", "yes", "on", "TRUE", "True", "YES", "ON"})
_KEYS = (
    "GOVERNANCE_CONFIG",
    "GOVERNANCE_CATALOG_URL",
    "GOVERNANCE_HOME",
    "GOVERNANCE_NAMESPACE",
    "GOVERNANCE_ACTOR",
    "GOVERNANCE_BUSY_TIMEOUT",
    "GOVERNANCE_DISABLED",
)


def env_disabled() -> bool:
    """``GOVERNANCE_DISABLED`` is set to a true value (the only per-call check when capture is off)."""
    raw = os.environ.get("GOVERNANCE_DISABLED")
    return raw is not None and (raw in _TRUE or raw.strip().lower() in _TRUE)


class SettingsCache:
    """The resolved settings for the current directory and environment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str | None, ...] | None = None
        self._settings: Settings | None = None

    def get(self) -> Settings:
        getenv = os.environ.get
        key = (os.getcwd(), *(getenv(k) for k in _KEYS))  # noqa: PTH109 - hot path, a str key
        settings = self._settings
        if settings is not None and key == self._key:
            return settings
        with self._lock:
            settings = load_settings()
            self._settings, self._key = settings, key
            return settings

    def clear(self) -> None:
        with self._lock:
            self._settings, self._key = None, None
