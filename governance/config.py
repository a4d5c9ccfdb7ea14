"""Settings with one documented precedence.

Precedence, highest first:

1. keyword arguments to :func:`load_settings` (the CLI passes its options here);
2. environment variables ``GOVERNANCE_*`` (``GOVERNANCE_CATALOG_URL``, ``GOVERNANCE_ACTOR``,
   ``GOVERNANCE_DISABLED``, ``GOVERNANCE_HOME``, ``GOVERNANCE_NAMESPACE``, ``GOVERNANCE_BUSY_TIMEOUT``);
3. ``governance.toml`` in the working directory (or the file named by ``GOVERNANCE_CONFIG``),
   top-level keys or a ``[governance]`` table with the same names in lower case;
4. defaults: the catalog is ``sqlite:///.governance/catalog.db`` under the working directory.

Nothing is read at import time; :func:`load_settings` reads when called.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from governance.errors import ConfigError

__all__ = ["Settings", "load_settings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Resolved settings.  Build with :func:`load_settings`."""

    home: Path
    catalog_url: str
    actor: str | None = None
    disabled: bool = False
    namespace: str = "default"
    busy_timeout: float = 10.0

    @property
    def spool_dir(self) -> Path:
        """Where capture writes runs it could not store (replayed by ``gov sync``)."""
        return self.home / "spool"


def _parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: expected true/false (1/0), got {raw!r}")


def _parse_float(name: str, raw: object) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {raw!r}")
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    section = data.get("governance", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [governance] must be a table")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(section) - known - {"governance", "server"})  # [server]: governance.server
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return {k: v for k, v in section.items() if k in known}


def _validate_url(url: str, source: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{source}: malformed catalog URL {url!r}; expected e.g. sqlite:///path/catalog.db "
            "or postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(f"{source}: unsupported catalog backend {backend!r}; use sqlite or postgresql")
    if backend == "postgresql" and parsed.get_driver_name() in {"psycopg2", "pg8000", "asyncpg"}:
        raise ConfigError(f"{source}: use the psycopg 3 driver: postgresql+psycopg://...")
    return url


def load_settings(cwd: Path | None = None, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Resolve settings: ``overrides`` > ``GOVERNANCE_*`` environment > ``governance.toml`` > defaults.

    ``None`` values in ``overrides`` are ignored, so CLI options that were not given fall through.
    """
    base = Path.cwd() if cwd is None else cwd
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    config_file = env.get("GOVERNANCE_CONFIG")
    toml_path = Path(config_file) if config_file else base / "governance.toml"
    if config_file and not toml_path.is_file():
        raise ConfigError(f"GOVERNANCE_CONFIG: no such file {toml_path}")
    if toml_path.is_file():
        for key, value in _read_toml(toml_path).items():
            values[key] = value
            sources[key] = f"{toml_path} ({key})"

    for f in fields(Settings):
        raw = env.get(f"GOVERNANCE_{f.name.upper()}")
        if raw is not None and raw != "":
            values[f.name] = raw
            sources[f.name] = f"GOVERNANCE_{f.name.upper()}"

    for key, value in overrides.items():
        if key not in {f.name for f in fields(Settings)}:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            values[key] = value
            sources[key] = f"argument {key}"

    home = Path(values.get("home", base / ".governance"))
    if not home.is_absolute():
        home = base / home
    url = values.get("catalog_url") or f"sqlite:///{home / 'catalog.db'}"
    settings = Settings(home=home, catalog_url=_validate_url(str(url), sources.get("catalog_url", "default")))
    changes: dict[str, Any] = {}
    if "actor" in values:
        changes["actor"] = str(values["actor"]) or None
    if "disabled" in values:
        changes["disabled"] = _parse_bool(sources["disabled"], values["disabled"])
    if "namespace" in values:
        changes["namespace"] = str(values["namespace"])
    if "busy_timeout" in values:
        changes["busy_timeout"] = _parse_float(sources["busy_timeout"], values["busy_timeout"])
    return replace(settings, **changes)
