"""One catalog contract suite, run on SQLite (memory and file) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from governance.audit import audited
from governance.catalog import (
    Catalog,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Model,
    ModelAlias,
    ModelVersion,
    Run,
    RunIO,
    parse_ref,
    resolve_dataset_version,
    resolve_model_version,
)
from governance.catalog._engine import _script_head
from governance.catalog._views import (
    describe_model_version,
    describe_run,
    list_datasets,
    list_models,
    list_runs,
)
from governance.errors import InputError, NotFoundError


def _seed(catalog: Catalog) -> dict[str, int]:
    """A small pipeline: a feature run reads raw and writes features; training reads features."""
    started = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    with audited(catalog, "alice") as tx:
        s = tx.session
        raw = Dataset(namespace="ns", name="raw", uri="file:///data/raw.csv", tags=["source"])
        feats = Dataset(namespace="ns", name="features")
        job_f = Job(namespace="ns", name="build_features", kind="feature")
        job_t = Job(namespace="ns", name="train", kind="training")
        s.add_all([raw, feats, job_f, job_t])
        s.flush()
        run_f = Run(run_uuid="0190d5a0-0000-7000-8000-000000000001", job_id=job_f.id, status="COMPLETED",
                    started_at=started, ended_at=started + timedelta(seconds=2), params={"k": 3, "xs": [1.5, None]})
        s.add(run_f)
        s.flush()
        raw_v1 = DatasetVersion(dataset_id=raw.id, version=1, content_hash="aa" * 16, hash_algo="blake3",
                                row_count=10, schema_fields=[{"name": "age", "type": "int64"}])
        feats_v1 = DatasetVersion(dataset_id=feats.id, version=1, content_hash="bb" * 16, hash_algo="blake3",
                                  produced_by_run_id=run_f.id, stats={"columns": {"age": {"kind": "numeric"}}})
        s.add_all([raw_v1, feats_v1])
        s.flush()
        s.add_all([
            DatasetField(dataset_version_id=feats_v1.id, name="age", dtype="int64", position=0, tags=["feature"]),
            DatasetField(dataset_version_id=feats_v1.id, name="sex", dtype="category", position=1, tags=["protected"]),
        ])
        run_t = Run(run_uuid="0190d5a0-0000-7000-8000-000000000002", job_id=job_t.id, status="COMPLETED",
                    started_at=started + timedelta(seconds=3), ended_at=started + timedelta(seconds=5),
                    parent_run_id=None, code_hash="c" * 64, git_commit="abc123", git_dirty=False)
        s.add(run_t)
        s.flush()
        model = Model(name="credit-scorer", owner="risk-team", risk_tier="high")
        s.add(model)
        s.flush()
        mv1 = ModelVersion(model_id=model.id, version=1, artifact_hash="dd" * 16, flavor="sklearn",
                           training_run_id=run_t.id, params={"C": 1.0}, metrics={"auc": 0.81},
                           card={"intended_use": "credit decisions"})
        mv2 = ModelVersion(model_id=model.id, version=2, artifact_hash="ee" * 16, flavor="sklearn")
        s.add_all([mv1, mv2])
        s.flush()
        s.add_all([
            RunIO(run_id=run_f.id, artifact_kind="dataset", artifact_id=raw_v1.id, direction="input", role="raw"),
            RunIO(run_id=run_f.id, artifact_kind="dataset", artifact_id=feats_v1.id, direction="output", role="return"),
            RunIO(run_id=run_t.id, artifact_kind="dataset", artifact_id=feats_v1.id, direction="input",
                  role="features"),
            RunIO(run_id=run_t.id, artifact_kind="model", artifact_id=mv1.id, direction="output", role="return"),
            ModelAlias(model_id=model.id, alias="production", model_version_id=mv1.id),
        ])
        tx.record("seed", "test", {"runs": 2})
        return {"model": int(model.id or 0), "mv1": int(mv1.id or 0), "run_t": int(run_t.id or 0)}


def test_schema_is_at_head(catalog: Catalog) -> None:
    assert catalog.current_revision() == _script_head()


def test_round_trip_preserves_types(catalog: Catalog) -> None:
    ids = _seed(catalog)
    with catalog.read() as s:
        run = s.get(Run, ids["run_t"])
        assert run is not None
        assert run.git_dirty is False
        assert run.code_hash == "c" * 64
        f_run = s.exec(select(Run).where(Run.run_uuid.endswith("1"))).one()  # type: ignore[union-attr]
        assert f_run.params == {"k": 3, "xs": [1.5, None]}
        started = f_run.started_at if f_run.started_at.tzinfo else f_run.started_at.replace(tzinfo=UTC)
        assert started == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        dv = s.exec(select(DatasetVersion).where(
            DatasetVersion.version == 1, DatasetVersion.produced_by_run_id.is_not(None))).one()  # type: ignore[union-attr]
        assert dv.stats == {"columns": {"age": {"kind": "numeric"}}}


def test_views_are_identical_across_backends(catalog: Catalog) -> None:
    _seed(catalog)
    with catalog.read() as s:
        runs = list_runs(s)
        assert [r["job"] for r in runs] == ["train", "build_features"]
        assert runs[0]["duration_s"] == 2.0
        assert runs[1]["started_at"] == "2026-01-02T03:04:05.123456Z"
        shown = describe_run(s, "0190d5a0-0000-7000-8000-000000000001")
        assert [(io["direction"], io["name"], io["version"]) for io in shown["io"]] == [
            ("input", "raw", 1), ("output", "features", 1)]
        assert list_datasets(s) == [
            {"namespace": "ns", "name": "features", "kind": "table", "latest_version": 1, "versions": 1, "uri": None},
            {"namespace": "ns", "name": "raw", "kind": "table", "latest_version": 1, "versions": 1,
             "uri": "file:///data/raw.csv"},
        ]
        assert list_models(s) == [{"name": "credit-scorer", "owner": "risk-team", "risk_tier": "high",
                                   "latest_version": 2, "aliases": {"production": 1}}]
        card = describe_model_version(s, "credit-scorer@production")
        assert (card["version"], card["metrics"], card["training_run"]) == (
            1, {"auc": 0.81}, "0190d5a0-0000-7000-8000-000000000002")


def test_refs_resolve_numbers_aliases_and_latest(catalog: Catalog) -> None:
    _seed(catalog)
    with catalog.read() as s:
        assert resolve_model_version(s, "credit-scorer@1")[1].artifact_hash == "dd" * 16
        assert resolve_model_version(s, "credit-scorer@production")[1].version == 1
        assert resolve_model_version(s, "credit-scorer")[1].version == 2
        assert resolve_dataset_version(s, "features@1")[1].content_hash == "bb" * 16
        with pytest.raises(NotFoundError, match="has no version 7 \\(latest: 2\\)"):
            resolve_model_version(s, "credit-scorer@7")
        with pytest.raises(NotFoundError, match="no alias 'staging'; aliases: production"):
            resolve_model_version(s, "credit-scorer@staging")
        with pytest.raises(NotFoundError, match="unknown model 'other'; known models: credit-scorer"):
            resolve_model_version(s, "other@1")


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected NAME@VERSION"), ("m@", "nothing after '@'"), ("m@0", "versions start at 1"),
    ("m@bad alias", "neither a version number nor an alias"),
])
def test_bad_refs_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_ref(text)


def test_unique_constraints_hold(catalog: Catalog) -> None:
    _seed(catalog)
    with pytest.raises(IntegrityError), audited(catalog, "bob") as tx:
        tx.session.add(Model(name="credit-scorer"))
        tx.record("model.create", "model:credit-scorer")


def test_failed_write_leaves_nothing_behind(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError, match="boom"), audited(catalog, "bob") as tx:
        tx.session.add(Model(name="ghost"))
        tx.session.flush()
        tx.record("model.create", "model:ghost")
        raise RuntimeError("boom")
    with catalog.read() as s:
        assert s.exec(select(Model)).all() == []
        assert s.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one() == 0


def test_lineage_edges_are_indexed_both_ways(catalog: Catalog) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(catalog.engine).get_indexes("run_io")}
    assert indexes["ix_run_io_run"][0] == "run_id"
    assert indexes["ix_run_io_artifact"][:2] == ["artifact_kind", "artifact_id"]


def test_dataset_names_shared_by_namespaces_need_the_namespace(catalog: Catalog) -> None:
    with audited(catalog, "alice") as tx:
        for ns in ("warehouse", "lake"):
            ds = Dataset(namespace=ns, name="customers")
            tx.session.add(ds)
            tx.session.flush()
            tx.session.add(DatasetVersion(dataset_id=ds.id, version=1, content_hash=ns))
        tx.record("seed", "test")
    with catalog.read() as s:
        with pytest.raises(InputError, match="exists in several namespaces \\(lake, warehouse\\)"):
            resolve_dataset_version(s, "customers@1")
        assert resolve_dataset_version(s, "lake/customers@1")[1].content_hash == "lake"
        assert resolve_dataset_version(s, "warehouse/customers")[1].content_hash == "warehouse"
        with pytest.raises(NotFoundError, match="unknown dataset 'sea/customers'"):
            resolve_dataset_version(s, "sea/customers@1")
