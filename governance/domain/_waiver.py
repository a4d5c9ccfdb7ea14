"""Waiver states: one vocabulary for the registry, the engine, the outputs and the reports."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from governance.domain._time import as_utc

__all__ = ["WaiverState", "waiver_state"]


class WaiverState(StrEnum):
    """Where a waiver stands at a given time.  Only an ``active`` waiver waives a check."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @classmethod
    def parse(cls, text: object) -> WaiverState | None:
        """A stored state; ``valid`` (the engine's word before 0.x documents were unified) is ``active``.
        Anything else is None (not a state anyone can rely on: the waiver does not apply)."""
        value = str(text).strip().lower() if text is not None else ""
        if value == "valid":
            return cls.ACTIVE
        try:
            return cls(value)
        except ValueError:
            return None


def waiver_state(expires_at: datetime, revoked_at: datetime | None, now: datetime) -> WaiverState:
    """``revoked`` once revoked (at or before ``now``), else ``expired`` at or after ``expires_at``, else
    ``active``.  Naive times are UTC."""
    current = as_utc(now)
    if revoked_at is not None and as_utc(revoked_at) <= current:
        return WaiverState.REVOKED
    return WaiverState.EXPIRED if as_utc(expires_at) <= current else WaiverState.ACTIVE
