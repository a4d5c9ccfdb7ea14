"""Settings with one documented precedence.

Precedence, highest first:

1. keyword arguments to :func:`load_settings` (the CLI passes its options here);
2. environment variables ``GOVERNANCE_*`` (``GOVERNANCE_CATALOG_URL``, ``GOVERNANCE_ACTOR``,
   ``GOVERNANCE_DISABLED``, ``GOVERNANCE_HOME``, ``GOVERNANCE_NAMESPACE``, ``GOVERNANCE_BUSY_TIMEOUT``,
   ``GOVERNANCE_LOCK_TIMEOUT``, ``GOVERNANCE_ALLOWED_SIGNERS``, ``GOVERNANCE_WAIVER_MAX_DAYS``);
3. ``governance.toml`` in the working directory (or the file named by ``GOVERNANCE_CONFIG``),
   top-level keys or a ``[governance]`` table with the same names in lower case;
4. defaults: the catalog is ``sqlite:///.governance/catalog.db`` under the working directory.

Sign-off settings (section 7a of the design) live in the same file; ``roles`` and ``stages`` come from
the file only, never from the environment or the command line::

    [governance]
    allowed_signers = "allowed_signers"      # OpenSSH allowed_signers (relative to this file)
    waiver_max_days = 90
    [governance.roles]                       # pack role -> principals of the trust store
    model-risk = ["bob"]
    [governance.stages.production]           # the pack a stage requires: digest or minimum version
    pack = "high-risk"                       # the pack's metadata.name
    min_version = "1.0.0"                    # or: digest = "sha256:..."
    source = "policies/high-risk.yaml"       # optional: its file (else a shipped pack of that name)

Nothing is read at import time; :func:`load_settings` reads when called.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from governance.errors import ConfigError

__all__ = ["Settings", "StagePolicy", "load_settings"]

_FILE_ONLY = ("roles", "stages")  # sign-off rules: project configuration only
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class StagePolicy:
    """The pack a stage requires: its name and either an exact digest or a minimum version."""

    pack: str
    digest: str | None = None
    min_version: str | None = None
    source: Path | None = None  # where to load it from when no --policy is given (else: a shipped pack)

    @property
    def location(self) -> str:
        return str(self.source) if self.source is not None else self.pack


@dataclass(frozen=True)
class Settings:
    """Resolved settings.  Build with :func:`load_settings`."""

    home: Path
    catalog_url: str
    actor: str | None = None
    disabled: bool = False
    namespace: str = "default"
    busy_timeout: float = 10.0
    #: seconds a decorated step may wait, in all, for the catalog's locks before its run goes to the spool
    lock_timeout: float = 2.0
    allowed_signers: Path | None = None
    waiver_max_days: int = 90
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    stages: tuple[tuple[str, StagePolicy], ...] = ()

    def role_principals(self, role: str) -> tuple[str, ...] | None:
        """The principals the configuration maps ``role`` to (None: the role is not configured)."""
        for name, principals in self.roles:
            if name == role:
                return principals
        return None

    def stage_policy(self, stage: str) -> StagePolicy | None:
        """The pack the configuration binds to ``stage`` (None: no binding)."""
        for name, policy in self.stages:
            if name == stage:
                return policy
        return None

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


def _parse_positive(name: str, raw: object, kind: type[float] | type[int], what: str) -> float:
    """A positive number of ``kind`` from a setting, or one :class:`ConfigError` naming it."""
    try:
        value = kind(str(raw))
    except ValueError:
        raise ConfigError(f"{name}: expected {what}, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {raw!r}")
    return value


def _parse_float(name: str, raw: object) -> float:
    return float(_parse_positive(name, raw, float, "a number of seconds"))


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
    if "allowed_signers" in section and isinstance(section["allowed_signers"], str):
        signers = Path(section["allowed_signers"])
        section = {**section, "allowed_signers": signers if signers.is_absolute() else path.parent / signers}
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
    toml_path = _gather_file(base, env, values, sources)
    _gather_environment(env, values, sources)
    _gather_overrides(overrides, values, sources)

    home = Path(values.get("home", base / ".governance"))
    if not home.is_absolute():
        home = base / home
    url = values.get("catalog_url") or f"sqlite:///{home / 'catalog.db'}"
    settings = Settings(home=home, catalog_url=_validate_url(str(url), sources.get("catalog_url", "default")))
    return replace(settings, **_parsed(values, sources, base, toml_path))


def _gather_file(base: Path, env: Mapping[str, str], values: dict[str, Any], sources: dict[str, str]) -> Path:
    config_file = env.get("GOVERNANCE_CONFIG")
    toml_path = Path(config_file) if config_file else base / "governance.toml"
    if config_file and not toml_path.is_file():
        raise ConfigError(f"GOVERNANCE_CONFIG: no such file {toml_path}")
    if toml_path.is_file():
        for key, value in _read_toml(toml_path).items():
            values[key] = value
            sources[key] = f"{toml_path} ({key})"
    return toml_path


def _gather_environment(env: Mapping[str, str], values: dict[str, Any], sources: dict[str, str]) -> None:
    for f in fields(Settings):
        if f.name in _FILE_ONLY:
            continue
        raw = env.get(f"GOVERNANCE_{f.name.upper()}")
        if raw is not None and raw != "":
            values[f.name] = raw
            sources[f.name] = f"GOVERNANCE_{f.name.upper()}"


def _gather_overrides(overrides: Mapping[str, Any], values: dict[str, Any], sources: dict[str, str]) -> None:
    for key, value in overrides.items():
        if key not in {f.name for f in fields(Settings)} or key in _FILE_ONLY:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            values[key] = value
            sources[key] = f"argument {key}"


def _parsed(values: Mapping[str, Any], sources: Mapping[str, str], base: Path, toml_path: Path) -> dict[str, Any]:
    """The typed value of every setting given, besides ``home`` and ``catalog_url``."""
    changes: dict[str, Any] = {}
    if "actor" in values:
        changes["actor"] = str(values["actor"]) or None
    if "disabled" in values:
        changes["disabled"] = _parse_bool(sources["disabled"], values["disabled"])
    if "namespace" in values:
        changes["namespace"] = str(values["namespace"])
    for name in ("busy_timeout", "lock_timeout"):
        if name in values:
            changes[name] = _parse_float(sources[name], values[name])
    if "allowed_signers" in values and str(values["allowed_signers"]).strip():
        signers = Path(str(values["allowed_signers"]))
        changes["allowed_signers"] = signers if signers.is_absolute() else base / signers
    if "waiver_max_days" in values:
        changes["waiver_max_days"] = _parse_days(sources["waiver_max_days"], values["waiver_max_days"])
    if "roles" in values:
        changes["roles"] = _parse_roles(sources["roles"], values["roles"])
    if "stages" in values:
        changes["stages"] = _parse_stages(sources["stages"], values["stages"], toml_path.parent)
    return changes


def _parse_days(name: str, raw: object) -> int:
    return int(_parse_positive(name, raw, int, "a whole number of days"))


def _parse_roles(name: str, raw: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a table of role = [principals]")
    out: list[tuple[str, tuple[str, ...]]] = []
    for role, principals in raw.items():
        if not isinstance(principals, list) or not all(isinstance(p, str) and p.strip() for p in principals):
            raise ConfigError(f"{name}: role {role!r} needs a list of principal names, got {principals!r}")
        out.append((str(role), tuple(principals)))
    return tuple(out)


def _parse_stages(name: str, raw: object, base: Path) -> tuple[tuple[str, StagePolicy], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a table of [stages.NAME] tables")
    out: list[tuple[str, StagePolicy]] = []
    for stage, spec in raw.items():
        where = f"{name}: stages.{stage}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a table with pack and digest or min_version")
        unknown = sorted(set(spec) - {"pack", "digest", "min_version", "source"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: pack, digest, min_version, source")
        source = spec.get("source")
        if source is not None and not isinstance(source, str):
            raise ConfigError(f"{where}: source must be a path to the pack file")
        pack, digest, minimum = spec.get("pack"), spec.get("digest"), spec.get("min_version")
        if not isinstance(pack, str) or not pack.strip():
            raise ConfigError(f"{where}: needs pack = \"NAME\"")
        if (digest is None) == (minimum is None):
            raise ConfigError(f"{where}: give exactly one of digest = \"sha256:...\" or min_version = \"X.Y.Z\"")
        if digest is not None and not (isinstance(digest, str) and digest.startswith("sha256:")):
            raise ConfigError(f"{where}: digest must look like sha256:<hex>, got {digest!r}")
        where_from = None if source is None else (Path(source) if Path(source).is_absolute() else base / source)
        out.append((str(stage), StagePolicy(pack.strip(), digest, None if minimum is None else str(minimum),
                                            where_from)))
    return tuple(out)
