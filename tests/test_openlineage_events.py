"""Events built from catalog runs validate against the official OpenLineage schemas, facet by facet."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

import governance.openlineage as ol
from governance.audit import audited
from governance.catalog import Catalog, OutboxEvent
from governance.errors import InputError, NotFoundError
from governance.openlineage._events import wire_time
from tests.test_openlineage_support import (
    facet_locations,
    make_run,
    require_spec,
    schemas,
    validate_event,
    validate_facet,
)


@pytest.fixture(autouse=True)
def _spec() -> None:
    require_spec()


def _outbox(catalog: Catalog) -> list[OutboxEvent]:
    with catalog.read() as session:
        return list(session.exec(sa.select(OutboxEvent).order_by(OutboxEvent.id)).scalars())  # type: ignore[call-overload]


def _documents(catalog: Catalog, rows: list[OutboxEvent]) -> list[dict[str, Any]]:
    with catalog.read() as session:
        docs = ol.outbox_documents(session, rows)
    assert not [d for d in docs if isinstance(d, Exception)]
    return [d for d in docs if not isinstance(d, Exception)]


def test_start_and_complete_are_schema_valid_on_every_backend(catalog: Catalog) -> None:
    made = make_run(catalog, enqueue=("START", "COMPLETE"))
    rows = _outbox(catalog)
    assert [r.event_type for r in rows] == ["START", "COMPLETE"]
    assert all(r.run_uuid == made.run_uuid and r.sent_at is None for r in rows)
    # the step's transaction writes the rows; the documents are built from the run when shipped
    assert [r.payload for r in rows] == [None, None]
    start, complete = _documents(catalog, rows)
    assert start["run"]["facets"]["governance_run"]["status"] == "RUNNING"
    assert complete["run"]["facets"]["governance_run"]["status"] == "COMPLETED"
    # the row's time (delivery order, idempotency keys) is the document's
    assert [wire_time(r.event_time) for r in rows] == [start["eventTime"], complete["eventTime"]]
    for event in (start, complete):
        validate_event(event)
        assert event["schemaURL"] == "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        assert event["producer"] == ol.PRODUCER
        assert event["run"]["runId"] == made.run_uuid
        assert event["job"] == {**event["job"], "namespace": "default", "name": "credit.train"}
    assert start["eventType"] == "START" and complete["eventType"] == "COMPLETE"
    assert rows[1].event_time is not None


def test_complete_event_carries_lineage_facets(sqlite_catalog: Catalog) -> None:
    made = make_run(sqlite_catalog)
    with sqlite_catalog.read() as session:
        event = ol.build_run_event(session, made.run_id, "COMPLETE")
    validate_event(event)
    run_facets, job_facets = event["run"]["facets"], event["job"]["facets"]
    assert run_facets["parent"]["run"]["runId"] == made.parent_uuid
    assert run_facets["parent"]["job"] == {"namespace": "default", "name": "credit.train.pipeline"}
    assert run_facets["processing_engine"]["name"] == "ml-governance"
    assert {p["key"]: p["value"] for p in run_facets["executionParameters"]["parameters"]} == {
        "C": "1.0",
        "penalty": "l2",
    }
    assert run_facets["governance_run"]["codeHash"] == "blake3:abc"
    assert job_facets["jobType"]["jobType"] == "TRAINING"
    assert job_facets["sourceCodeLocation"] == {
        **job_facets["sourceCodeLocation"],
        "type": "git",
        "url": "file:///src/pipeline.py",
        "version": "0123abcd",
    }
    assert "errorMessage" not in run_facets

    (features,) = event["inputs"]
    assert (features["namespace"], features["name"]) == ("governance://default", "credit.train/features")
    assert features["facets"]["version"]["datasetVersion"] == "xxh3_128:00ff"
    assert [
        (f["name"], f["type"], f["ordinal_position"]) for f in features["facets"]["schema"]["fields"]
    ] == [("income", "float64", 1), ("sex", "category", 2), ("approved", "int64", 3)]
    assert {"key": "protected", "value": "true", "source": "ml-governance", "field": "sex"} in features[
        "facets"
    ]["tags"]["tags"]

    scored, model = event["outputs"]
    assert scored["name"] == "credit.train/scored"
    lineage = scored["facets"]["columnLineage"]["fields"]
    assert lineage["income"]["inputFields"] == [
        {
            "namespace": "governance://default",
            "name": "credit.train/features",
            "field": "income",
            "transformations": [{"type": "DIRECT"}],
        }
    ]
    assert lineage["score"]["inputFields"][0]["transformations"] == [{"type": "INDIRECT"}]
    assert scored["outputFacets"]["outputStatistics"] == {
        **scored["outputFacets"]["outputStatistics"],
        "rowCount": 1000,
        "size": 24000,
    }
    assert (model["namespace"], model["name"]) == ("governance://default", "models/credit.train-model")
    facet = model["facets"][ol.MODEL_VERSION_FACET]
    assert facet == {
        **facet,
        "name": "credit.train-model",
        "version": 1,
        "artifactHash": "blake3:feed",
        "flavor": "sklearn",
    }
    assert model["facets"]["datasetType"]["datasetType"] == "MODEL"


def test_start_event_is_lean_and_valid(sqlite_catalog: Catalog) -> None:
    made = make_run(sqlite_catalog, status="RUNNING")
    with sqlite_catalog.read() as session:
        event = ol.build_run_event(session, made.run_id, "START")
    validate_event(event)
    assert event["inputs"] == [] and event["outputs"] == []
    assert "parent" in event["run"]["facets"]


def test_fail_event_has_error_message(catalog: Catalog) -> None:
    made = make_run(catalog, status="FAILED", error=True, enqueue=("FAIL",))
    (row,) = _outbox(catalog)
    (event,) = _documents(catalog, [row])
    validate_event(event)
    error = event["run"]["facets"]["errorMessage"]
    assert error["message"] == "ValueError: labels contain NaN"
    assert error["programmingLanguage"] == "python"
    assert error["stackTrace"].endswith("ValueError: labels contain NaN")
    assert event["run"]["runId"] == made.run_uuid


def test_every_standard_facet_names_the_spec_file_in_shared(sqlite_catalog: Catalog) -> None:
    made = make_run(sqlite_catalog, status="FAILED", error=True)
    with sqlite_catalog.read() as session:
        event = ol.build_run_event(session, made.run_id, "FAIL")
    keys = {key for _, key, _ in facet_locations(event)}
    assert {
        "schema",
        "version",
        "columnLineage",
        "parent",
        "errorMessage",
        "sourceCodeLocation",
        "processing_engine",
        "jobType",
        ol.MODEL_VERSION_FACET,
    } <= keys
    ids = set(schemas().documents)
    for key, url in ol.FACET_SCHEMA_URLS.items():
        assert url.split("#")[0] in ids, (
            f"{key}: {url} is not a schema in shared/openlineage-spec or the package"
        )


def test_policy_result_facet_is_valid_against_its_schema() -> None:
    document = {
        "policy": {"name": "production", "version": "2.0.0", "digest": "sha256:" + "0" * 64},
        "subject": {"model": "credit-scorer", "version": 3},
        "status": "FAIL",
        "results": [
            {
                "id": "fairness.selection_rate_ratio",
                "uses": "fairness.demographic_parity_ratio",
                "status": "FAIL",
                "severity": "block",
                "value": 0.52,
                "assert": {"gte": 0.8},
                "by_group": {"F": {"n": 120}},
            },
            {
                "id": "perf.auc",
                "uses": "performance.roc_auc",
                "status": "PASS",
                "severity": "block",
                "value": None,
            },
        ],
    }
    facet = ol.policy_result_facet(document)
    validate_facet(ol.POLICY_RESULT_FACET, facet)
    assert facet["status"] == "FAIL"
    assert facet["results"][0] == {
        "id": "fairness.selection_rate_ratio",
        "uses": "fairness.demographic_parity_ratio",
        "status": "FAIL",
        "severity": "block",
        "value": 0.52,
    }
    assert "value" not in facet["results"][1]


def test_custom_facet_schema_rejects_a_malformed_facet() -> None:
    facet = ol.policy_result_facet({"policy": {"name": "p"}, "status": "MAYBE", "results": []})
    with pytest.raises(AssertionError, match="MAYBE"):
        validate_facet(ol.POLICY_RESULT_FACET, facet)


def test_events_round_trip_through_the_client_classes(sqlite_catalog: Catalog) -> None:
    from openlineage.client.event_v2 import RunEvent
    from openlineage.client.serde import Serde

    made = make_run(sqlite_catalog)
    with sqlite_catalog.read() as session:
        event = ol.build_run_event(session, made.run_id, "COMPLETE")
    client_event = ol.to_client_event(event)
    assert isinstance(client_event, RunEvent)
    assert Serde.to_dict(client_event) == event
    validate_event(json.loads(Serde.to_json(client_event)))


def test_outbox_row_rolls_back_with_the_run(sqlite_catalog: Catalog) -> None:
    made = make_run(sqlite_catalog)

    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), audited(sqlite_catalog, "tester") as tx:
        ol.enqueue_run_event(tx.session, made.run_id, "COMPLETE")
        tx.record("test.enqueue", "run", {})
        raise BoomError
    assert _outbox(sqlite_catalog) == []


def test_bad_arguments_are_reported(sqlite_catalog: Catalog) -> None:
    made = make_run(sqlite_catalog)
    with sqlite_catalog.write() as session:
        with pytest.raises(InputError, match="event_type: expected one of START, COMPLETE, FAIL"):
            ol.enqueue_run_event(session, made.run_id, "DONE")
        with pytest.raises(NotFoundError, match="run id 999999"):
            ol.enqueue_run_event(session, 999999, "START")


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/data/raw/credit.csv", ("file", "/data/raw/credit.csv")),
        ("file:///data/raw/credit.csv", ("file", "/data/raw/credit.csv")),
        ("s3://bucket/raw/credit.parquet", ("s3://bucket", "raw/credit.parquet")),
        (
            "postgres://warehouse:5432/analytics.public.customers",
            ("postgres://warehouse:5432", "analytics.public.customers"),
        ),
    ],
)
def test_dataset_naming_follows_openlineage_conventions(location: str, expected: tuple[str, str]) -> None:
    assert ol.dataset_identity(location) == expected


def test_relative_paths_become_absolute(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ol.dataset_identity("data/x.csv") == ("file", str(tmp_path.resolve() / "data" / "x.csv"))
    assert ol.memory_namespace("default") == "governance://default"
