"""The governance server (``gov serve``): a read API, a Marquez-compatible ``POST /api/v1/lineage`` and
a web UI for reviewers and auditors, over the same catalog.  Needs ``pip install 'ml-governance[server]'``.

* :func:`create_app` builds the ASGI app (Starlette) for a catalog; :func:`serve` runs it on uvicorn;
* :class:`ServerConfig` / :func:`load_server_config`: tokens (stored as SHA-256), the trusted proxy
  identity header, the body limit; :func:`hash_token` / :func:`new_token` make tokens;
* :func:`default_inbox_dir`: where the lineage inbox of a catalog lives unless configured.

The server records no governance decision: promotions, approvals and waivers stay with the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.server._config import (
    ServerConfig,
    Token,
    default_inbox_dir,
    hash_token,
    load_server_config,
    new_token,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from governance.catalog import Catalog

__all__ = [
    "ServerConfig",
    "Token",
    "create_app",
    "default_inbox_dir",
    "hash_token",
    "load_server_config",
    "new_token",
    "serve",
]

INSTALL = "pip install 'ml-governance[server]'"


def _require() -> None:
    from governance.errors import ConfigError

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the server needs {exc.name}: {INSTALL}") from None


def create_app(catalog: Catalog, config: ServerConfig | None = None) -> Starlette:
    """The ASGI app serving ``catalog`` (see :mod:`governance.server._app`)."""
    _require()
    from governance.server._app import create_app as build

    return build(catalog, config)


def serve(catalog: Catalog, config: ServerConfig, **options: Any) -> None:
    """Run the server until SIGINT/SIGTERM (``host``, ``port``, ``say``)."""
    _require()
    from governance.server._serve import serve as run

    run(catalog, config, **options)
