"""A live ``gov serve`` app in a thread (real uvicorn, real sockets) and small HTTP helpers."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the server tests need the [server] extra: pip install 'ml-governance[server]'")
uvicorn = pytest.importorskip("uvicorn", reason="the server tests need the [server] extra")

from governance.catalog import Catalog  # noqa: E402
from governance.server import ServerConfig, create_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Live:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(req, timeout=60) as resp:
                return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, headers=headers)

    def imported(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the lineage inbox has imported every accepted request; its status then (``/healthz``)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get("/healthz").json()["lineage_inbox"]
            if status["pending_requests"] == 0:
                return dict(status)
            if time.monotonic() > deadline:
                raise AssertionError(f"the lineage inbox did not catch up in {timeout} s: {status}")
            time.sleep(0.05)

    def post_json(self, path: str, doc: Any, token: str | None = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("POST", path, json.dumps(doc).encode(), headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextmanager
def live_server(catalog: Catalog, config: ServerConfig | None = None) -> Iterator[Live]:
    """Serve ``catalog`` on a free port until the block ends (uvicorn's own shutdown path).  Without an
    ``inbox_dir`` in ``config``, the lineage inbox is a temporary directory."""
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lineage-inbox-") as inbox:
        settings = config if config is not None else ServerConfig()
        if settings.inbox_dir is None:
            settings = dataclasses.replace(settings, inbox_dir=Path(inbox))
        with _live(catalog, settings) as live:
            yield live


@contextmanager
def _live(catalog: Catalog, config: ServerConfig) -> Iterator[Live]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(catalog, config), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def run_event(run_id: str, event_type: str = "COMPLETE", *, job: str = "etl.orders",
              inputs: list[str] | None = None, outputs: list[str] | None = None,
              time_: str = "2026-05-01T10:00:00+00:00") -> dict[str, Any]:
    """An OpenLineage RunEvent as a producer (Airflow, Spark) sends it."""
    def ds(name: str) -> dict[str, Any]:
        return {"namespace": "postgres://warehouse:5432", "name": name,
                "facets": {"schema": {"_producer": "https://example.test/producer",
                                      "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
                                      "fields": [{"name": "id", "type": "BIGINT"},
                                                 {"name": "amount", "type": "DECIMAL"}]}}}
    return {
        "eventType": event_type, "eventTime": time_,
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "airflow", "name": job, "facets": {}},
        "inputs": [ds(n) for n in inputs or []],
        "outputs": [ds(n) for n in outputs or []],
    }


def seed_catalog(catalog: Catalog, name: str = "credit-scorer", **kwargs: Any) -> Any:
    """``seed_model`` (the report tests' catalog) plus the training run's output edge to the model
    version, as capture records it, so lineage reaches the model."""
    from sqlmodel import select

    from governance.audit import audited
    from governance.catalog import Model, ModelVersion, RunIO
    from tests.test_report_seed import seed_model

    seeded = seed_model(catalog, name=name, **kwargs)
    with audited(catalog, "alice") as tx:
        mv = tx.session.exec(select(ModelVersion).join(Model, Model.id == ModelVersion.model_id)
                             .where(Model.name == name)).one()
        tx.session.add(RunIO(run_id=mv.training_run_id, artifact_kind="model", artifact_id=mv.id,
                             direction="output", created_at=mv.created_at))
        tx.record("lineage.link", f"model:{name}@{mv.version}", {"run": mv.training_run_id})
    return seeded
