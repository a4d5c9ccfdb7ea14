"""Small shared pieces of the registry: catalog and actor resolution, stage names, time parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from governance.audit import resolve_actor
from governance.catalog import Catalog, open_catalog
from governance.config import load_settings
from governance.domain import as_utc
from governance.errors import InputError

__all__ = ["parse_expiry", "resolve_catalog", "resolve_who", "validate_stage"]

_STAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
_RESERVED = {"latest"}
_RELATIVE = re.compile(r"^\+?(\d+)([dhw])$")


def resolve_catalog(catalog: Catalog | None) -> Catalog:
    """``catalog`` or the configured one."""
    return catalog if catalog is not None else open_catalog(load_settings())


def resolve_who(actor: str | None) -> str:
    """The acting identity: ``actor``, else settings/env/CI/OS user."""
    return actor if actor else resolve_actor(None, load_settings())


def validate_stage(stage: str, what: str = "--to") -> str:
    """A stage or alias name: a letter, then letters, digits, ``_ . -`` (at most 128)."""
    name = (stage or "").strip()
    if not _STAGE.match(name):
        raise InputError(f"{what}: stage/alias names start with a letter and use letters, digits, "
                         f"'_', '.', '-' (at most 128), got {stage!r}")
    if name.lower() in _RESERVED:
        raise InputError(f"{what}: {name!r} is reserved (MODEL alone already means the latest version)")
    return name


def _expiry_value(raw: str, relative: re.Match[str] | None, current: datetime) -> datetime:
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return current + {"d": timedelta(days=amount), "h": timedelta(hours=amount),
                          "w": timedelta(weeks=amount)}[unit]
    if len(raw) == 10:
        day = datetime.fromisoformat(raw).date()
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return as_utc(value)


def parse_expiry(text: str | datetime, *, now: datetime | None = None, what: str = "--expires") -> datetime:
    """An expiry: an ISO date (valid through that day, UTC), an ISO datetime, or ``30d``/``12h``/``2w``.

    The result must lie in the future.
    """
    current = now or datetime.now(UTC)
    if isinstance(text, datetime):
        value = as_utc(text)
    else:
        raw = text.strip()
        relative = _RELATIVE.match(raw)
        try:
            value = _expiry_value(raw, relative, current)
        except ValueError:
            raise InputError(f"{what}: expected a date (2025-12-31), a datetime (2025-12-31T18:00Z) "
                             f"or a duration (30d, 12h, 2w), got {text!r}") from None
        except OverflowError:
            raise InputError(f"{what}: {text!r} is too far in the future to be a date") from None
    value = value.astimezone(UTC)
    if value <= current:
        raise InputError(f"{what}: the expiry {value.isoformat()} is not in the future")
    return value
