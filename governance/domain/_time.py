"""UTC times: the one reading of "a naive time is UTC", its ISO spelling, and the column type that
keeps naive times out of the catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["UTCDateTime", "as_utc", "iso", "parse_utc"]


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime: a naive one is taken as UTC (what the catalog stores)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z`` (``None`` stays ``None``)."""
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """ISO-8601 text (``Z`` or an offset; none means UTC) as an aware UTC datetime.

    Raises :class:`ValueError` on text that is not ISO-8601."""
    return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that binds and returns aware UTC datetimes on every backend.

    SQLite keeps no zone and returns naive values; a naive value bound on PostgreSQL is read in the
    session's zone.  This type converts on the way in (naive means UTC; an aware time in another zone is
    converted, where SQLite would have stored its wall-clock digits) and attaches UTC on the way out, so
    no naive time leaves the catalog.  The stored bytes of UTC times are what ``DateTime`` stored, so row
    digests of existing catalogs (:mod:`governance.audit`) do not change.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return as_utc(value) if isinstance(value, datetime) else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a value read through a text-typed expression
            return parse_utc(value)
        return as_utc(value)
