"""Server settings: API tokens (stored hashed), the trusted proxy header, limits.

Read from the ``[server]`` table of ``governance.toml`` (the file :func:`governance.config.load_settings`
reads, or ``GOVERNANCE_CONFIG``), then from ``GOVERNANCE_SERVER_*`` environment variables, which win::

    [server]
    max_body_bytes = 16777216
    inbox_dir = "/var/lib/governance/lineage-inbox"   # accepted lineage waiting to be imported
    max_inbox_bytes = 1073741824           # past this backlog POST /api/v1/lineage answers 503
    proxy_header = "X-Forwarded-User"      # trust this identity header ...
    trusted_proxies = ["127.0.0.1"]        # ... only from these peer addresses
    proxy_scopes = ["read"]

    [[server.tokens]]
    name = "airflow"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    scopes = ["write"]

``inbox_dir`` defaults to ``<catalog file>.lineage-inbox`` next to a SQLite catalog, and to
``.governance/lineage-inbox/`` for other catalogs (see :func:`governance.server.default_inbox_dir`);
a relative one is taken from the directory the server starts in.

``GOVERNANCE_SERVER_MLFLOW_WEBHOOK_SECRET`` (environment only: it is a usable secret, so it never goes in
the file) turns on ``POST /api/v1/mlflow/webhook``, the receiver of MLflow's registry webhooks.

``GOVERNANCE_SERVER_TOKENS`` holds the same tokens as ``name:scope+scope:sha256hex`` separated by
commas.  Only the SHA-256 of a token is stored (``gov serve-token NAME`` makes one): tokens are 256
random bits, so a fast hash is enough and the configuration never holds a usable secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import ConfigError

if TYPE_CHECKING:
    from governance.catalog import Catalog

__all__ = ["SCOPES", "ServerConfig", "Token", "default_inbox_dir", "hash_token", "load_server_config", "new_token"]

SCOPES = ("read", "write")
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_INBOX = 1024 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def hash_token(token: str) -> str:
    """The stored form of a token: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return "gov_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Token:
    name: str
    sha256: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class ServerConfig:
    """What the server needs beyond the catalog settings.  Build with :func:`load_server_config`."""

    tokens: tuple[Token, ...] = ()
    proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    proxy_scopes: frozenset[str] = field(default_factory=lambda: frozenset({"read"}))
    max_body_bytes: int = DEFAULT_MAX_BODY
    #: where accepted lineage waits to be imported (None: the default for the catalog)
    inbox_dir: Path | None = None
    #: backlog (bytes of accepted, not yet imported requests) past which POST /api/v1/lineage answers 503
    max_inbox_bytes: int = DEFAULT_MAX_INBOX
    #: the HMAC secret MLflow signs its webhook deliveries with (None: the receiver is off)
    mlflow_webhook_secret: str | None = field(default=None, repr=False)

    @property
    def open_access(self) -> bool:
        """No tokens and no proxy: only allowed on a loopback address (local use)."""
        return not self.tokens and self.proxy_header is None

    def match(self, presented: str) -> Token | None:
        """The configured token whose hash matches ``presented`` (constant-time comparisons)."""
        digest = hash_token(presented)
        found = None
        for token in self.tokens:
            if hmac.compare_digest(token.sha256, digest):
                found = token
        return found


def _scopes(source: str, raw: Any) -> frozenset[str]:
    items = raw.split("+") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{source}: scopes: expected a list out of {', '.join(SCOPES)}, got {raw!r}")
    bad = [s for s in items if s not in SCOPES]
    if bad:
        raise ConfigError(f"{source}: unknown scope {bad[0]!r}; expected {' or '.join(SCOPES)}")
    return frozenset(str(s) for s in items)


def _token(source: str, name: Any, digest: Any, scopes: Any) -> Token:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}: name: expected a non-empty string")
    if not isinstance(digest, str) or not _HEX.match(digest.lower()):
        raise ConfigError(f"{source}: sha256: expected 64 hex digits (the SHA-256 of the token, "
                          "see `gov serve-token`), got a value of length "
                          f"{len(digest) if isinstance(digest, str) else 0}")
    return Token(name.strip(), digest.lower(), _scopes(source, scopes))


def _file_section(cwd: Path, env: dict[str, str] | os._Environ[str]) -> tuple[dict[str, Any], str]:
    config_file = env.get("GOVERNANCE_CONFIG")
    path = Path(config_file) if config_file else cwd / "governance.toml"
    if not path.is_file():
        return {}, str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot read the [server] table: {exc}") from exc
    section = data.get("server", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [server] must be a table")
    known = {"tokens", "proxy_header", "trusted_proxies", "proxy_scopes", "max_body_bytes", "inbox_dir",
             "max_inbox_bytes"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{path}: [server]: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return section, f"{path} [server]"


def load_server_config(cwd: Path | None = None, environ: dict[str, str] | None = None) -> ServerConfig:
    """``GOVERNANCE_SERVER_*`` environment > ``[server]`` of ``governance.toml`` > defaults."""
    env = os.environ if environ is None else environ
    section, where = _file_section(Path.cwd() if cwd is None else cwd, env)
    tokens: list[Token] = []
    raw_tokens = section.get("tokens", [])
    if not isinstance(raw_tokens, list):
        raise ConfigError(f"{where}: tokens: expected an array of tables ([[server.tokens]])")
    for i, item in enumerate(raw_tokens):
        source = f"{where} tokens[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: expected a table with name, sha256, scopes")
        tokens.append(_token(source, item.get("name"), item.get("sha256"), item.get("scopes", ["read"])))
    env_tokens = env.get("GOVERNANCE_SERVER_TOKENS", "")
    if env_tokens.strip():
        tokens = []
        for i, spec in enumerate(t.strip() for t in env_tokens.split(",") if t.strip()):
            parts = spec.split(":")
            if len(parts) != 3:
                raise ConfigError(f"GOVERNANCE_SERVER_TOKENS item {i + 1}: expected name:scope+scope:sha256hex")
            tokens.append(_token(f"GOVERNANCE_SERVER_TOKENS item {i + 1}", parts[0], parts[2], parts[1]))
    names = [t.name for t in tokens]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{where}: token name {duplicate!r} is used twice")

    header = env.get("GOVERNANCE_SERVER_PROXY_HEADER") or section.get("proxy_header")
    if header is not None and (not isinstance(header, str) or not _HEADER.match(header)):
        raise ConfigError(f"proxy_header: expected an HTTP header name such as X-Forwarded-User, got {header!r}")
    proxies_raw: Any = env.get("GOVERNANCE_SERVER_TRUSTED_PROXIES")
    proxies = proxies_raw.split(",") if proxies_raw else section.get("trusted_proxies", ["127.0.0.1", "::1"])
    if not isinstance(proxies, list) or not all(isinstance(p, str) and p.strip() for p in proxies):
        raise ConfigError(f"trusted_proxies: expected a list of IP addresses, got {proxies!r}")
    scopes_raw: Any = env.get("GOVERNANCE_SERVER_PROXY_SCOPES") or section.get("proxy_scopes", ["read"])
    limit_raw: Any = env.get("GOVERNANCE_SERVER_MAX_BODY_BYTES") or section.get("max_body_bytes", DEFAULT_MAX_BODY)
    try:
        limit = int(limit_raw)
    except (TypeError, ValueError):
        raise ConfigError(f"max_body_bytes: expected a number of bytes, got {limit_raw!r}") from None
    if limit < 1024:
        raise ConfigError(f"max_body_bytes: expected at least 1024, got {limit}")
    inbox_raw: Any = env.get("GOVERNANCE_SERVER_INBOX_DIR") or section.get("inbox_dir")
    if inbox_raw is not None and (not isinstance(inbox_raw, str) or not inbox_raw.strip()):
        raise ConfigError(f"inbox_dir: expected a directory path, got {inbox_raw!r}")
    backlog_raw: Any = env.get("GOVERNANCE_SERVER_MAX_INBOX_BYTES") or section.get("max_inbox_bytes", DEFAULT_MAX_INBOX)
    try:
        backlog = int(backlog_raw)
    except (TypeError, ValueError):
        raise ConfigError(f"max_inbox_bytes: expected a number of bytes, got {backlog_raw!r}") from None
    if backlog < 1024 * 1024:
        raise ConfigError(f"max_inbox_bytes: expected at least 1048576 (1 MiB), got {backlog}")
    return ServerConfig(
        tokens=tuple(tokens),
        proxy_header=header.lower() if isinstance(header, str) else None,
        trusted_proxies=tuple(p.strip() for p in proxies),
        proxy_scopes=_scopes("proxy_scopes", scopes_raw),
        max_body_bytes=limit,
        inbox_dir=None if inbox_raw is None else (Path.cwd() if cwd is None else cwd) / Path(inbox_raw.strip()),
        max_inbox_bytes=backlog,
        mlflow_webhook_secret=env.get("GOVERNANCE_SERVER_MLFLOW_WEBHOOK_SECRET") or None,
    )


def default_inbox_dir(catalog: Catalog, home: Path | None = None) -> Path:
    """Next to a SQLite catalog file (``catalog.lineage-inbox``); a new temporary directory for an
    in-memory catalog (nothing outlives it anyway); for other catalogs under ``home`` (the project's
    ``.governance``), one directory per catalog URL."""
    if catalog.sqlite_path is not None:
        return catalog.sqlite_path.with_name(catalog.sqlite_path.stem + ".lineage-inbox")
    import hashlib

    if catalog.backend == "sqlite":
        import tempfile

        return Path(tempfile.mkdtemp(prefix="governance-lineage-inbox-"))
    tag = hashlib.sha256(catalog.display_url.encode()).hexdigest()[:12]
    return (home if home is not None else Path.cwd() / ".governance") / "lineage-inbox" / f"{catalog.backend}-{tag}"
