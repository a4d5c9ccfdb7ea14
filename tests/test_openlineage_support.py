"""Helpers shared by the OpenLineage tests: the official schemas, catalog runs, a local lineage server.

Schemas are loaded from ``shared/openlineage-spec`` (and our custom facet schemas from the package)
into a local ``referencing`` registry, each under its ``$id``: nothing is fetched from the network
(an unknown ``$ref`` is an error).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import governance.openlineage as ol
from governance.audit import audited
from governance.catalog import (
    Catalog,
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Model,
    ModelVersion,
    Run,
    RunIO,
    utcnow,
)
from tests.conftest import SHARED

SPEC_DIR = SHARED / "openlineage-spec"
CUSTOM_DIR = Path(ol.__file__).parent / "_schemas"


def require_spec() -> Path:
    if not (SPEC_DIR / "OpenLineage.json").is_file():
        pytest.skip(f"OpenLineage spec not found at {SPEC_DIR} (the shared schemas are needed to validate)")
    return SPEC_DIR


@dataclass(frozen=True)
class Schemas:
    registry: Any
    documents: dict[str, dict[str, Any]]  # $id -> schema document


@cache
def schemas() -> Schemas:
    from referencing import Registry, Resource

    files = [
        SPEC_DIR / "OpenLineage.json",
        *sorted((SPEC_DIR / "facets").glob("*.json")),
        *sorted(CUSTOM_DIR.glob("*.json")),
    ]
    documents = {}
    for file in files:
        doc = json.loads(file.read_text(encoding="utf-8"))
        documents[doc["$id"]] = doc
    registry = Registry().with_resources((uri, Resource.from_contents(doc)) for uri, doc in documents.items())
    return Schemas(registry, documents)


def _validator(ref: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker()

    @checker.checks("uri")
    def _uri(value: object) -> bool:  # jsonschema checks "uri" only with an optional package
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and bool(parts.netloc or parts.path)

    return Draft202012Validator({"$ref": ref}, registry=schemas().registry, format_checker=checker)


def facet_locations(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(where, key, facet)`` for every facet of a RunEvent."""
    for key, value in ((event.get("run") or {}).get("facets") or {}).items():
        yield "run", key, value
    for key, value in ((event.get("job") or {}).get("facets") or {}).items():
        yield "job", key, value
    for side in ("inputs", "outputs"):
        for dataset in event.get(side) or []:
            for group in ("facets", "inputFacets", "outputFacets"):
                for key, value in (dataset.get(group) or {}).items():
                    yield f"{side}:{dataset['name']}:{group}", key, value


def validate_facet(key: str, value: dict[str, Any]) -> None:
    """One facet against the schema its ``_schemaURL`` names; the key must be the one that file defines."""
    url = value["_schemaURL"]
    base = url.split("#", 1)[0]
    documents = schemas().documents
    assert base in documents, f"facet {key}: _schemaURL {url} is not one of the local schemas"
    assert key in (documents[base].get("properties") or {}), f"facet {key}: not defined by {base}"
    assert value["_producer"] == ol.PRODUCER
    errors = sorted(_validator(url).iter_errors(value), key=str)
    assert not errors, f"facet {key}: {errors[0].message}"


def validate_event(event: dict[str, Any]) -> None:
    """A RunEvent and each of its facets against the official schemas."""
    require_spec()
    errors = sorted(_validator(ol.RUN_EVENT_SCHEMA_URL).iter_errors(event), key=str)
    assert not errors, f"RunEvent: {errors[0].message} at {list(errors[0].absolute_path)}"
    for _where, key, value in facet_locations(event):
        validate_facet(key, value)


# ------------------------------------------------------------------------------------------ catalog
@dataclass
class MadeRun:
    run_id: int
    run_uuid: str
    parent_uuid: str | None
    ids: dict[str, int] = field(default_factory=dict)


def make_run(
    catalog: Catalog,
    *,
    status: str = "COMPLETED",
    error: bool = False,
    enqueue: tuple[str, ...] = (),
    namespace: str = "default",
    job_name: str = "credit.train",
    input_identity: tuple[str, str] = ("governance://default", "credit.train/features"),
    input_hash: str = "xxh3_128:00ff",
) -> MadeRun:
    """A training run with a parent, one input frame (3 fields, one protected), one output frame with
    column lineage, and a model version; optionally enqueue events in the same transaction."""
    with audited(catalog, "tester") as tx:
        s = tx.session
        job = Job(namespace=namespace, name=job_name, kind="training", source_file="/src/pipeline.py")
        pipeline = Job(namespace=namespace, name=f"{job_name}.pipeline", kind="other")
        s.add_all([job, pipeline])
        s.flush()
        parent = Run(run_uuid=str(uuid.uuid4()), job_id=pipeline.id)
        s.add(parent)
        s.flush()
        run = Run(
            run_uuid=str(uuid.uuid4()),
            job_id=job.id,
            parent_run_id=parent.id,
            status=status,
            params={"C": 1.0, "penalty": "l2"},
            code_hash="blake3:abc",
            git_commit="0123abcd",
            git_dirty=False,
            user="tester",
            host="ci-1",
            ended_at=utcnow(),
        )
        if error:
            run.error_type, run.error_message = "ValueError", "labels contain NaN"
            run.error_traceback = "Traceback (most recent call last):\n  ...\nValueError: labels contain NaN"
        s.add(run)
        s.flush()
        features = s.exec(_dataset_query(*input_identity)).first()
        if features is None:
            features = Dataset(namespace=input_identity[0], name=input_identity[1], kind="frame")
            s.add(features)
            s.flush()
        scored = Dataset(namespace=f"governance://{namespace}", name=f"{job_name}/scored", kind="frame")
        s.add(scored)
        s.flush()
        v_in = s.exec(_version_query(features.id, input_hash)).first()
        if v_in is None:
            number = max((v.version for v in s.exec(_version_query(features.id, None))), default=0) + 1
            v_in = DatasetVersion(
                dataset_id=features.id,
                version=number,
                content_hash=input_hash,
                hash_algo="xxh3_128",
                row_count=1000,
            )
        v_out = DatasetVersion(
            dataset_id=scored.id,
            version=1,
            content_hash="xxh3_128:0a0b",
            hash_algo="xxh3_128",
            row_count=1000,
            byte_size=24000,
            produced_by_run_id=run.id,
        )
        s.add_all([v_in, v_out])
        s.flush()
        from sqlmodel import select

        in_fields = list(
            s.exec(
                select(DatasetField)
                .where(DatasetField.dataset_version_id == v_in.id)
                .order_by(DatasetField.position)
            )
        )
        if not in_fields:
            in_fields = [
                DatasetField(dataset_version_id=v_in.id, name=n, dtype=t, position=i, tags=tags)
                for i, (n, t, tags) in enumerate(
                    [
                        ("income", "float64", ["feature"]),
                        ("sex", "category", ["protected"]),
                        ("approved", "int64", ["label"]),
                    ]
                )
            ]
        out_fields = [
            DatasetField(dataset_version_id=v_out.id, name=n, dtype=t, position=i)
            for i, (n, t) in enumerate([("income", "float64"), ("score", "float64")])
        ]
        s.add_all([*in_fields, *out_fields])
        s.flush()
        s.add_all(
            [
                ColumnLineage(
                    run_id=run.id, output_field_id=out_fields[0].id, input_field_id=in_fields[0].id
                ),
                ColumnLineage(
                    run_id=run.id,
                    output_field_id=out_fields[1].id,
                    input_field_id=in_fields[0].id,
                    transformation="INDIRECT",
                ),
            ]
        )
        model = Model(name=f"{job_name}-model")
        s.add(model)
        s.flush()
        mv = ModelVersion(
            model_id=model.id,
            version=1,
            artifact_hash="blake3:feed",
            hash_algo="blake3",
            flavor="sklearn",
            artifact_uri="file:///models/1.pkl",
            training_run_id=run.id,
        )
        s.add(mv)
        s.flush()
        s.add_all(
            [
                RunIO(
                    run_id=run.id,
                    artifact_kind="dataset",
                    artifact_id=v_in.id,
                    direction="input",
                    role="features",
                ),
                RunIO(
                    run_id=run.id,
                    artifact_kind="dataset",
                    artifact_id=v_out.id,
                    direction="output",
                    role="scored",
                ),
                RunIO(
                    run_id=run.id, artifact_kind="model", artifact_id=mv.id, direction="output", role="return"
                ),
            ]
        )
        s.flush()
        tx.record("test.run", f"run:{run.run_uuid}", {})
        for event_type in enqueue:
            ol.enqueue_run_event(s, run.id, event_type)
        assert run.id is not None
        return MadeRun(
            run.id,
            run.run_uuid,
            parent.run_uuid,
            {"v_in": v_in.id or 0, "v_out": v_out.id or 0, "features": features.id or 0},
        )


def _version_query(dataset_id: int | None, content_hash: str | None) -> Any:
    from sqlmodel import select

    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
    return stmt if content_hash is None else stmt.where(DatasetVersion.content_hash == content_hash)


def _dataset_query(namespace: str, name: str) -> Any:
    from sqlmodel import select

    return select(Dataset).where(Dataset.namespace == namespace, Dataset.name == name)


# ------------------------------------------------------------------------------------- HTTP server
class LineageServer:
    """A local OpenLineage receiver on 127.0.0.1: mode ``ok`` (200), ``error`` (500) or ``hang``."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.release = threading.Event()
        self.entered = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests += 1
                server.entered.set()
                if server.mode == "hang":
                    server.release.wait(10)
                    return
                if server.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                server.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LineageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_env(monkeypatch: pytest.MonkeyPatch, url: str, timeout: float = 0.5) -> None:
    """Configure the client's http transport through OPENLINEAGE__* (no client-side retries)."""
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", url)
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TIMEOUT", str(timeout))
    monkeypatch.setenv(
        "OPENLINEAGE__TRANSPORT__RETRY", json.dumps({"total": 0, "connect": 0, "read": 0, "status": 0})
    )


@contextmanager
def isolated_openlineage_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[None]:
    """No OpenLineage configuration at all: variables cleared, HOME and cwd without openlineage.yml."""
    import os

    for key in list(os.environ):
        if key.startswith("OPENLINEAGE"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    yield
