"""The lazily imported MLflow client, and the one error raised when mlflow is not installed."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from governance.errors import ConfigError, InputError

__all__ = ["INSTALL_HINT", "Connection", "connect", "first_line", "require_mlflow"]

INSTALL_HINT = "pip install 'ml-governance[mlflow]'"


def require_mlflow() -> Any:
    """The ``mlflow`` module, or :class:`ConfigError` naming the install command."""
    try:
        return importlib.import_module("mlflow")
    except ModuleNotFoundError as exc:
        if exc.name not in ("mlflow", None) and not str(exc.name).startswith("mlflow"):
            raise
        raise ConfigError(f"the MLflow bridge needs mlflow: {INSTALL_HINT}") from exc


@dataclass(frozen=True)
class Connection:
    """A tracking server: its URI, the ``mlflow`` module and an ``MlflowClient`` on it."""

    uri: str
    mlflow: Any
    client: Any


def connect(tracking_uri: str | None) -> Connection:
    """A connection to ``tracking_uri`` (also the registry URI); else MLflow's own default
    (``MLFLOW_TRACKING_URI``)."""
    mlflow = require_mlflow()
    uri = (tracking_uri or "").strip() or mlflow.get_tracking_uri()
    if not uri:
        raise InputError("--tracking-uri: expected the MLflow tracking server URI (or set MLFLOW_TRACKING_URI)")
    if uri.startswith(("http://", "https://")):
        _check_reachable(uri)
    return Connection(uri, mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri))


def _check_reachable(uri: str, timeout: float = 10) -> None:
    """Fail in seconds, with one line, where MLflow's client would retry for minutes."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):  # noqa: S310 - http(s) only
            return
    except urllib.error.HTTPError:
        return  # it answers (a proxy may guard /health); the client reports what follows
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"--tracking-uri {uri}: no MLflow tracking server answers there ({reason})") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
