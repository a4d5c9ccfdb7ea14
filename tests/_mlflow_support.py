"""A real MLflow tracking server for the bridge's tests and benchmark.

``mlflow server`` runs as a child process of this interpreter (``sys.executable -m mlflow``) with a
SQLite backend and a local artifact root, on 127.0.0.1 and a free port.  Tests skip when mlflow is
not installed, unless ``GOVERNANCE_REQUIRE_MLFLOW=1`` (set by ``.ci/run``) turns that into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

__all__ = ["MlflowServer", "free_port", "mlflow_server", "require_mlflow", "running_server"]

REQUIRE_ENV = "GOVERNANCE_REQUIRE_MLFLOW"
# a fixed Fernet key so that webhook secrets stored by the server can be read back by it
_WEBHOOK_KEY = "4GAJAJcBvBLxFHp_eT9H7Y3wmDHE3DqkGCPo6lUQzjM="


def require_mlflow() -> None:
    """Skip (or fail under GOVERNANCE_REQUIRE_MLFLOW=1) when mlflow is not installed."""
    if importlib.util.find_spec("mlflow") is None:
        reason = "mlflow is not installed: pip install 'ml-governance[mlflow]' to run the MLflow bridge tests"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    def __init__(self, uri: str, root: Path, process: subprocess.Popen[bytes]) -> None:
        self.uri = uri
        self.root = root
        self.process = process

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"


@contextmanager
def running_server(root: Path, *, backend: str | None = None, timeout: float = 120) -> Iterator[MlflowServer]:
    """Start ``mlflow server`` under ``root`` (or on ``backend``), wait for /health, stop it afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": _WEBHOOK_KEY,
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        # no background job workers (GenAI scorers, trace archival): they only compete for the CPU
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    log = (root / "server.log").open("wb")
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend or f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {process.returncode}: "
                                   + (root / "server.log").read_text(errors="replace")[-2000:])
            with suppress(OSError), urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health in time: "
                                   + (root / "server.log").read_text(errors="replace")[-2000:])
            time.sleep(0.3)
        yield MlflowServer(uri, root, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real MLflow tracking server for the whole test session."""
    require_mlflow()
    with running_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server
