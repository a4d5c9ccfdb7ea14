"""Our emitted events follow the consumers' conventions and re-ingest into the same graph.

A real pipeline of decorated steps (three levels of nesting, a file read through ``gov.Dataset``,
in-memory frames, a declared derived column, a model version) is shipped through openlineage-python's
file transport; every event validates against the official schemas, carries the conventions Marquez
and other consumers read, and imported into a fresh catalog gives the same runs, datasets, versions,
edges, column lineage and model versions, with no phantom dataset for the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from governance import openlineage as ol
from governance.catalog import Catalog, Model, ModelVersion, Run, RunIO
from tests._interop_support import canonical_graph
from tests.test_openlineage_support import isolated_openlineage_env, validate_event


@pytest.fixture
def no_ol_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    home = tmp_path / "home"
    home.mkdir()
    with isolated_openlineage_env(monkeypatch, home):
        yield home


def _models(catalog: Catalog) -> set[tuple[Any, ...]]:
    with catalog.read() as s:
        uuids = {r.id: r.run_uuid for r in s.exec(select(Run))}
        names = {m.id: m.name for m in s.exec(select(Model))}
        versions = {v.id: (names[v.model_id], v.version, v.artifact_hash, uuids.get(v.training_run_id or 0))
                    for v in s.exec(select(ModelVersion))}
        edges = {(uuids[e.run_id], e.direction, versions[e.artifact_id])
                 for e in s.exec(select(RunIO)) if e.artifact_kind == "model"}
    return set(versions.values()) | edges


def _comparable(graph: dict[str, Any]) -> dict[str, Any]:
    """Ingest gives in-memory datasets a uri (``governance://default/NAME``) the capture did not have."""
    return {**graph, "datasets": {d[:2] for d in graph["datasets"]}}


@pytest.fixture
def shipped(gov_env: Path, no_ol_config: Path) -> tuple[Catalog, list[dict[str, Any]]]:
    """Run the pipeline script in its own process and ship its events to an NDJSON file."""
    package = gov_env / "credit"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    raw = gov_env / "raw.csv"
    raw.write_text("income,debt,sex,repaid\n10,2,f,1\n20,5,m,0\n30,1,f,1\n40,9,m,0\n", encoding="utf-8")
    (package / "pipeline.py").write_text(textwrap.dedent(f"""
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        import governance as gov

        @gov.step(kind="other")
        def load(source: gov.Dataset) -> pd.DataFrame:
            return pd.read_csv(source.uri)

        @gov.step(kind="feature", derived={{"ratio": ["income", "debt"]}})
        def features(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.assign(ratio=frame["income"] / frame["debt"])

        @gov.step(kind="training", model="credit-model")
        def train(frame: pd.DataFrame) -> LogisticRegression:
            return LogisticRegression().fit(frame[["income", "ratio"]], frame["repaid"])

        @gov.step(kind="other")
        def stage(source: gov.Dataset) -> LogisticRegression:
            return train(features(load(source)))

        @gov.step(kind="other")
        def pipeline(source: gov.Dataset) -> LogisticRegression:
            return stage(source)

        if __name__ == "__main__":
            pipeline(gov.Dataset({str(raw)!r}))
    """), encoding="utf-8")
    subprocess.run([sys.executable, str(package / "pipeline.py")], cwd=gov_env, check=True, timeout=120)
    catalog = Catalog(f"sqlite:///{gov_env / '.governance' / 'catalog.db'}")
    target = gov_env / "events.ndjson"
    report = ol.sync(catalog, config=ol.TransportConfig({"type": "file", "log_file_path": str(target),
                                                         "append": True}, "test"))
    assert report.pending == 0 and report.sent == 10
    events = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    return catalog, events


def test_emitted_events_follow_the_consumers_conventions(shipped: tuple[Catalog, list[dict[str, Any]]]) -> None:
    catalog, events = shipped
    catalog.dispose()
    for event in events:
        validate_event(event)
    jobs = {e["job"]["name"] for e in events}
    # job names from the module path, not __main__ (the script ran as a file in package `credit`)
    assert jobs == {"credit.pipeline.pipeline", "credit.pipeline.stage", "credit.pipeline.load",
                    "credit.pipeline.features", "credit.pipeline.train"}
    assert {e["job"]["namespace"] for e in events} == {"default"}
    completes = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    root = completes["credit.pipeline.pipeline"]["run"]["runId"]
    for name in ("credit.pipeline.stage", "credit.pipeline.load", "credit.pipeline.features",
                 "credit.pipeline.train"):
        parent = completes[name]["run"]["facets"]["parent"]
        assert parent["root"] == {"run": {"runId": root},
                                  "job": {"namespace": "default", "name": "credit.pipeline.pipeline"}}
    assert completes["credit.pipeline.train"]["run"]["facets"]["parent"]["job"]["name"] == "credit.pipeline.stage"
    datasets = [d for e in events for d in (*e["inputs"], *e["outputs"])]
    assert datasets
    for item in datasets:
        source = item["facets"]["dataSource"]
        assert source["name"] == item["namespace"]
        assert item["namespace"] in ("file", "governance://default")
    frames = [d for d in datasets if d["namespace"] == "governance://default"]
    assert {d["name"] for d in frames} >= {"credit.pipeline.features.output", "models/credit-model"}
    lineage = next(d["facets"]["columnLineage"] for d in completes["credit.pipeline.features"]["outputs"])
    assert lineage["fields"]["ratio"]["transformationType"] == "DIRECT"
    assert {(f["name"], f["field"]) for f in lineage["fields"]["ratio"]["inputFields"]} == {
        ("credit.pipeline.load.output", "income"), ("credit.pipeline.load.output", "debt")}
    assert lineage["fields"]["income"]["transformationType"] == "DIRECT"


def test_the_file_lines_are_what_the_clients_file_transport_writes(
    shipped: tuple[Catalog, list[dict[str, Any]]], gov_env: Path
) -> None:
    from openlineage.client.serde import Serde

    from governance.openlineage._outbox import serialised

    catalog, events = shipped
    catalog.dispose()
    lines = (gov_env / "events.ndjson").read_text(encoding="utf-8").splitlines()
    assert lines == [Serde.to_json(event) for event in events]
    assert [serialised(event) for event in events] == lines
    memo: dict[int, tuple[Any, str]] = {}  # the shipper's way: shared dataset entries encoded once
    assert [serialised(event, memo) for event in events] == lines


def test_our_events_reingested_give_the_same_graph(
    shipped: tuple[Catalog, list[dict[str, Any]]], tmp_path: Path
) -> None:
    catalog, events = shipped
    fresh = Catalog(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        report = ol.ingest_openlineage(fresh, events, "ingester")
        assert (report.invalid, report.unlinked, report.inferred_inputs) == ([], {}, 0)
        original, again = canonical_graph(catalog), canonical_graph(fresh)
        assert _comparable(again) == _comparable(original)
        assert _models(fresh) == _models(catalog)
        assert not any(name.startswith("models/") for _, name in _comparable(again)["datasets"])
    finally:
        fresh.dispose()
        catalog.dispose()
