"""Shipping builds a round's documents from one read per kind of row for all its runs; the documents
are exactly those the one-run-at-a-time builder made (``tests/_openlineage_reference.py``, frozen).

The catalog holds varied runs: a pipeline nested three deep (parent and root facets), a file read
through ``gov.Dataset``, a declared derived column and a protected tag (column lineage, tags), a
model version produced and a model read by another step, parameters, a failed step (errorMessage),
re-runs over unchanged data (dataset versions shared by several runs of one batch) and over changed
data, and a Spark job's ingested event with column-lineage subtypes, masking and dataset-level
entries.  Every run's documents are built in one batch, in an interleaved order with repeats, also
with a read size of two runs (several reads per kind of row), and compared with the reference.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlmodel import select

import governance as gov
import governance.openlineage as ol
from governance.catalog import Catalog, Run, open_catalog
from governance.openlineage import _events
from tests._openlineage_reference import reference_run_events
from tests.test_openlineage_support import isolated_openlineage_env


class _Row(NamedTuple):
    run_uuid: str
    event_type: str
    payload: str | None = None


def _pipeline(source: Path) -> None:
    @gov.step(kind="other", tags={"protected": ["sex"]})
    def load(path: gov.Dataset) -> pd.DataFrame:
        return pd.read_csv(path.uri)

    @gov.step(kind="feature", derived={"ratio": ["income", "debt"], "flag": {"indirect": ["sex"]}})
    def features(frame: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
        return frame.assign(ratio=frame["income"] / frame["debt"] * scale, flag=frame["sex"] == "f")

    @gov.step(kind="training", model="credit-model")
    def train(frame: pd.DataFrame, C: float = 1.0) -> LogisticRegression:  # noqa: N803 - sklearn's name
        return LogisticRegression(C=C).fit(frame[["income", "ratio"]], frame["repaid"])

    @gov.step(kind="evaluation")
    def score(model: LogisticRegression, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(score=model.predict_proba(frame[["income", "ratio"]])[:, 1])

    @gov.step(kind="other")
    def stage(path: gov.Dataset) -> pd.DataFrame:
        frame = features(load(path))
        return score(train(frame), frame)

    @gov.step(kind="other")
    def pipeline(path: gov.Dataset) -> pd.DataFrame:
        return stage(path)

    @gov.step(kind="feature")
    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise ValueError("no column 'limit' in the frame")

    pipeline(gov.Dataset(str(source)))
    pipeline(gov.Dataset(str(source)))  # unchanged data: the same dataset versions again
    frame = pd.read_csv(source)
    for scale in (1.0, 2.0, 2.0):
        features(frame, scale=scale)
    with pytest.raises(ValueError, match="limit"):
        broken(frame)


def _spark_event(run_id: str) -> dict[str, Any]:
    field = {"namespace": "s3://lake", "name": "raw/customers", "field": "income"}
    return {
        "eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id}, "job": {"namespace": "spark", "name": "etl.build_table"},
        "inputs": [{"namespace": "s3://lake", "name": "raw/customers", "facets": {"schema": {
            "_producer": "p", "_schemaURL": "s", "fields": [{"name": "income", "type": "double"},
                                                          {"name": "ssn", "type": "string"}]}}}],
        "outputs": [{"namespace": "s3://lake", "name": "curated/customers", "facets": {
            "schema": {"_producer": "p", "_schemaURL": "s", "fields": [{"name": "income_band", "type": "string"},
                                                                      {"name": "ssn_hash", "type": "string"}]},
            "version": {"_producer": "p", "_schemaURL": "s", "datasetVersion": "7"},
            "columnLineage": {"_producer": "p", "_schemaURL": "s", "fields": {
                "income_band": {"inputFields": [{**field, "transformations": [
                    {"type": "DIRECT", "subtype": "TRANSFORMATION", "description": "bucketed"}]}]},
                "ssn_hash": {"inputFields": [{"namespace": "s3://lake", "name": "raw/customers", "field": "ssn",
                                              "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION",
                                                                   "masking": True}]}]}},
                "dataset": [{**field, "transformations": [{"type": "INDIRECT", "subtype": "FILTER"}]}]}}}],
    }


@pytest.fixture
def varied(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    home = gov_env / "home"
    home.mkdir()
    source = gov_env / "raw.csv"
    source.write_text("income,debt,sex,repaid\n10,2,f,1\n20,5,m,0\n30,1,f,1\n40,9,m,0\n", encoding="utf-8")
    with isolated_openlineage_env(monkeypatch, home):
        _pipeline(source)
    catalog = open_catalog()
    report = ol.ingest_openlineage(catalog, [_spark_event(str(uuid.uuid4()))], "ingester")
    assert report.invalid == []
    return catalog


def _requests(catalog: Catalog) -> list[tuple[Run, tuple[str, ...]]]:
    with catalog.read() as s:
        runs = list(s.exec(select(Run).order_by(Run.id)))  # type: ignore[arg-type]
    out = []
    for run in runs:
        final = {"COMPLETED": ("COMPLETE",), "FAILED": ("FAIL",), "ABORTED": ("ABORT",)}.get(run.status, ())
        out.append((run, ("START", *final)))
    return out


@pytest.mark.parametrize("chunk", [16, 2, 1000])
def test_batched_documents_equal_the_one_run_builder(varied: Catalog, monkeypatch: pytest.MonkeyPatch,
                                                     chunk: int) -> None:
    monkeypatch.setattr(_events, "_CHUNK", chunk)
    requests = _requests(varied)
    statuses = {run.status for run, _ in requests}
    assert statuses == {"COMPLETED", "FAILED"} and len(requests) >= 12
    # outbox order: interleaved runs, a run's events split by another's, one run twice
    rows = [_Row(run.run_uuid, "START") for run, _ in requests]
    rows += [_Row(run.run_uuid, t) for run, types in reversed(requests) for t in types[1:]]
    rows += [_Row(requests[0][0].run_uuid, "START"), _Row(requests[0][0].run_uuid, requests[0][1][-1])]
    with varied.read() as session:
        batched = ol.outbox_documents(session, rows)
        expected: dict[tuple[str, str], dict[str, Any]] = {}
        for run, types in requests:
            assert run.id is not None
            for doc in reference_run_events(session, run.id, types):
                expected[(doc["run"]["runId"], doc["eventType"])] = doc
            assert ol.build_run_events(session, run.id, types) == reference_run_events(session, run.id, types)
    assert len(batched) == len(rows)
    for row, doc in zip(rows, batched, strict=True):
        assert not isinstance(doc, Exception), doc
        assert doc == expected[(row.run_uuid, row.event_type)]
    kinds = {(d["eventType"], bool(d["inputs"] or d["outputs"])) for d in batched if not isinstance(d, Exception)}
    assert ("COMPLETE", True) in kinds and ("FAIL", True) in kinds
    facets = [f for d in batched if not isinstance(d, Exception) for io in (*d["inputs"], *d["outputs"])
              for f in io["facets"]]
    assert {"columnLineage", "tags", "schema", "governance_modelVersion"} <= set(facets)
    runs = [d["run"]["facets"] for d in batched if not isinstance(d, Exception)]
    assert any("root" in r.get("parent", {}) for r in runs) and any("errorMessage" in r for r in runs)


def test_a_missing_run_or_a_bad_event_type_fails_only_its_own_rows(varied: Catalog) -> None:
    (run, types), *_ = _requests(varied)
    rows = [_Row(run.run_uuid, "START"), _Row("6f1c1d9e-0000-4000-8000-000000000000", "START"),
            _Row(run.run_uuid + "x", "COMPLETE"), _Row(run.run_uuid, types[-1])]
    rows.insert(2, _Row(str(uuid.UUID(int=5)), "OTHER"))
    with varied.read() as session:
        docs = ol.outbox_documents(session, rows)
    assert [type(d).__name__ for d in docs] == ["dict", "NotFoundError", "NotFoundError", "NotFoundError", "dict"]
    assert "no such run" in str(docs[1])
    bad_type = [_Row(run.run_uuid, "OTHER")]
    with varied.read() as session:
        (error,) = ol.outbox_documents(session, bad_type)
    assert isinstance(error, Exception) and "event_type" in str(error) and "OTHER" in str(error)


def test_runs_share_job_and_run_facets_only_when_they_serialise_the_same(
    gov_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of one batch share their job entry and run facets (encoded once per round) when their
    parameters are the same JSON: ``1``, ``1.0``, ``true``, ``0.0`` and ``-0.0`` are all different."""
    from governance.openlineage._events import serialised

    @gov.step(kind="feature", name="share.params")
    def step(frame: pd.DataFrame, x: Any = None) -> pd.DataFrame:
        return frame

    values: list[Any] = [1, 1.0, True, 0.0, -0.0, "1", [1], [1], 2.5, 2.5, None]
    home = gov_env / "home"
    home.mkdir()
    with isolated_openlineage_env(monkeypatch, home):
        for x in values:
            step(pd.DataFrame({"a": [1, 2]}), x=x)
    catalog = open_catalog()
    requests = _requests(catalog)
    assert len(requests) == len(values)
    rows = [_Row(run.run_uuid, t) for run, types in requests for t in types]
    with catalog.read() as session:
        docs = ol.outbox_documents(session, rows)
        for run, types in requests:
            assert run.id is not None
            assert ol.build_run_events(session, run.id, types) == reference_run_events(session, run.id, types)
    completes = [d for d in docs if isinstance(d, dict) and d["eventType"] == "COMPLETE"]
    params = [d["run"]["facets"].get("executionParameters", {}).get("parameters") for d in completes]
    assert [p[0]["value"] if p else None for p in params] == ["1", "1.0", "true", "0.0", "-0.0", "1", "[1]",
                                                              "[1]", "2.5", "2.5", "null"]
    facets = [d["run"]["facets"] for d in completes]
    assert len({id(f) for f in facets[:6]}) == 6  # none of the first six is another's
    assert facets[8] is facets[9] and facets[6] == facets[7]
    assert len({id(d["job"]) for d in docs if isinstance(d, dict)}) == 1
    memo: dict[int, tuple[Any, str]] = {}
    assert [serialised(d, memo) for d in docs if isinstance(d, dict)] == [
        json.dumps(d, sort_keys=True) for d in docs if isinstance(d, dict)]
