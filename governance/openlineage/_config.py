"""Where events go: OpenLineage's own configuration conventions, resolved without side effects.

Sources, as openlineage-python resolves them (highest first):

1. ``OPENLINEAGE_DISABLED=true`` (also ``1``/``yes``): nothing is shipped; events stay in the outbox;
2. ``openlineage.yml``: the file named by ``OPENLINEAGE_CONFIG``, else ``./openlineage.yml``, else
   ``~/.openlineage/openlineage.yml``; deep-merged over
3. ``OPENLINEAGE__*`` variables (``OPENLINEAGE__TRANSPORT__TYPE=http``,
   ``OPENLINEAGE__TRANSPORT__URL=...``; values are parsed as JSON when they are JSON);
4. ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_ENDPOINT``, ``OPENLINEAGE_API_KEY``): an http transport.

Transports are the client's (``http``, ``kafka``, ``file``, ``console``, ``composite``, ...), built by
its ``TransportFactory``.  Unlike ``OpenLineageClient()``, nothing here rewrites ``os.environ`` and
"no configuration" means no transport (the client would fall back to printing to the console): the
events simply wait in the outbox.  The client's event filters, tags and environment facets are not
applied (our events carry their facets already).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from governance.errors import ConfigError

__all__ = ["TransportConfig", "configured", "load_transport_config", "make_transport"]

_PREFIX = "OPENLINEAGE__"
_TRUE = {"true", "1", "yes", "on"}


def _disabled(env: Mapping[str, str]) -> bool:
    return env.get("OPENLINEAGE_DISABLED", "").strip().lower() in _TRUE


def _candidates(cwd: Path | None) -> tuple[Path, Path]:
    return (cwd or Path.cwd()) / "openlineage.yml", Path.home() / ".openlineage" / "openlineage.yml"


def _config_path(env: Mapping[str, str], cwd: Path | None) -> Path | None:
    explicit = env.get("OPENLINEAGE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"OPENLINEAGE_CONFIG: no such file {path}")
        return path
    for candidate in _candidates(cwd):
        if candidate.is_file():
            return candidate
    return None


def configured(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> bool:
    """Cheap test (no file parsing, no imports): could a transport be configured at all?"""
    environ = os.environ if env is None else env
    if _disabled(environ):
        return False
    if environ.get("OPENLINEAGE_URL") or environ.get("OPENLINEAGE_CONFIG"):
        return True
    if any(key.startswith(_PREFIX) for key in environ):
        return True
    return any(candidate.is_file() for candidate in _candidates(cwd))


@dataclass(frozen=True)
class TransportConfig:
    """The resolved ``transport`` section and where it came from (for messages)."""

    transport: dict[str, Any]
    source: str


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, raw in sorted(env.items(), reverse=True):
        if not key.startswith(_PREFIX):
            continue
        value: Any = raw
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = config
        path = [part.lower() for part in key[len(_PREFIX):].split("__")]
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return config


def load_transport_config(env: Mapping[str, str] | None = None,
                          cwd: Path | None = None) -> TransportConfig | None:
    """The transport configuration by OpenLineage's conventions, or None (disabled or not configured)."""
    environ = os.environ if env is None else env
    if _disabled(environ):
        return None
    config = _from_env(environ)
    source = "OPENLINEAGE__* environment"
    path = _config_path(environ, cwd)
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read OpenLineage configuration: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping with a `transport` section")
        config = _deep_merge(config, loaded)
        source = str(path)
    transport = config.get("transport")
    if isinstance(transport, dict) and transport.get("type"):
        return TransportConfig(transport, source)
    if environ.get("OPENLINEAGE_URL"):
        http: dict[str, Any] = {"type": "http", "url": environ["OPENLINEAGE_URL"],
                                "endpoint": environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage")}
        if environ.get("OPENLINEAGE_API_KEY"):
            http["auth"] = {"type": "api_key", "apiKey": environ["OPENLINEAGE_API_KEY"]}
        return TransportConfig(http, "OPENLINEAGE_URL")
    if transport is not None:
        raise ConfigError(f"{source}: OpenLineage `transport` needs a `type` (http, kafka, file, console, "
                          "composite, ...)")
    return None


def make_transport(config: TransportConfig) -> Any:
    """Build the client's transport for ``config`` (imports openlineage-python on first use)."""
    from openlineage.client.transport import get_default_factory

    try:
        return get_default_factory().create(json.loads(json.dumps(config.transport)))
    except (TypeError, ValueError, KeyError, ImportError) as exc:
        raise ConfigError(f"{config.source}: invalid OpenLineage transport {config.transport.get('type')!r}: "
                          f"{exc}") from exc
