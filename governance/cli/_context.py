"""State the root command hands to subcommands (settings, actor, output helpers)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from governance._display import printable
from governance.config import Settings, load_settings
from governance.errors import InputError

if TYPE_CHECKING:  # pragma: no cover - the catalog (SQLAlchemy) is imported when a command needs it
    from governance.catalog import Catalog

__all__ = ["CliState", "emit_json", "say", "state"]


@dataclass
class CliState:
    verbose: bool = False
    catalog_url: str | None = None
    actor: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(catalog_url=self.catalog_url, actor=self.actor)
        return self._settings

    def catalog(self, *, read_only: bool = False) -> Catalog:
        from governance.catalog import open_catalog

        return open_catalog(self.settings, read_only=read_only)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # invoked without the root callback (library use)
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def say(line: str, *, err: bool = False) -> None:
    """Print one line of a message; whatever data it names is shown inert (see :mod:`governance._display`)."""
    typer.echo(printable(line), err=err)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def check_format(value: str, allowed: tuple[str, ...], option: str = "--format") -> str:
    if value not in allowed:
        raise InputError(f"{option}: expected one of {', '.join(allowed)}, got {value!r}")
    return value
