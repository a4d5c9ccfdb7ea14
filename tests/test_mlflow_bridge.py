"""The MLflow bridge against a real ``mlflow server`` (SQLite backend, local artifacts).

A pipeline logs three training runs to the server with the real client (params, metrics, a git
commit, ``mlflow.data`` inputs for training and evaluation) and registers three versions of one model:
two good ones and one trained on shuffled labels.  The tests import them, evaluate ``models:/``
URIs, promote through the gate with ``--registry mlflow``, roll back, and reconcile an alias moved by
hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlmodel import col, select

from governance.audit import verify_audit
from governance.catalog import (
    AuditEvent,
    Catalog,
    Dataset,
    DatasetField,
    DatasetVersion,
    Evidence,
    Model,
    PromotionEvent,
    Run,
    resolve_model_version,
)
from governance.errors import ConfigError, InputError
from tests._mlflow_support import MlflowServer, mlflow_server  # noqa: F401 - session fixture

pytestmark = [
    pytest.mark.slow,
    # mlflow's own warnings about its own sources and defaults (not ours to fix)
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
]

PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: mlflow-production, version: 1.0.0}
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.8}
"""
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _frame(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    debt = rng.normal(20, 8, n)
    sex = rng.choice(["f", "m"], n)
    y = ((income - 2 * debt + rng.normal(0, 4, n)) > 10).astype(int)
    return pd.DataFrame({"income": income, "debt": debt, "sex": sex, "y": y})


@dataclass
class Pipeline:
    uri: str
    experiment: str
    model: str
    run_ids: list[str]
    train: pd.DataFrame
    holdout: pd.DataFrame
    digests: dict[str, str]


def _log_training(mlflow: Any, train: pd.DataFrame, holdout: pd.DataFrame, model_name: str, c: float,
                  shuffle: bool) -> tuple[str, dict[str, str]]:
    from sklearn.linear_model import LogisticRegression

    labels = train["y"].sample(frac=1.0, random_state=1).to_numpy() if shuffle else train["y"].to_numpy()
    with mlflow.start_run() as run:
        mlflow.log_param("C", c)
        mlflow.set_tag("mlflow.source.git.commit", GIT_COMMIT)
        train_ds = mlflow.data.from_pandas(train, source="/data/credit-train.csv", name="credit-train",
                                           targets="y")
        eval_ds = mlflow.data.from_pandas(holdout, source="/data/credit-holdout.csv", name="credit-holdout",
                                          targets="y")
        mlflow.log_input(train_ds, context="training")
        mlflow.log_input(eval_ds, context="eval")
        model = LogisticRegression(C=c).fit(train[["income", "debt"]], labels)
        mlflow.log_metric("train_accuracy", float(model.score(train[["income", "debt"]], train["y"])))
        signature = mlflow.models.infer_signature(train[["income", "debt"]], model.predict(train[["income", "debt"]]))
        mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name, signature=signature,
                                 pip_requirements=["scikit-learn"])
    return run.info.run_id, {"training": train_ds.digest, "eval": eval_ds.digest}


@pytest.fixture(scope="module")
def pipeline(mlflow_server: MlflowServer) -> Iterator[Pipeline]:  # noqa: F811
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.uri)
    suffix = uuid.uuid4().hex[:8]
    experiment, model_name = f"credit-{suffix}", f"credit-{suffix}"
    mlflow.set_experiment(experiment)
    train, holdout = _frame(0), _frame(1, 300)
    run_ids, digests = [], {}
    for c, shuffle in ((1.0, False), (0.5, False), (1.0, True)):
        run_id, digests = _log_training(mlflow, train, holdout, model_name, c, shuffle)
        run_ids.append(run_id)
    mlflow.MlflowClient().update_registered_model(model_name, description="Scores credit applications.")
    yield Pipeline(mlflow_server.uri, experiment, model_name, run_ids, train, holdout, digests)
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.dispose()


def _gov(args: list[str], catalog: Catalog, cwd: Path, *,
         capsys: pytest.CaptureFixture[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``gov ARGS`` in the catalog as ``ci-bot``: in this process through the CLI's ``main`` (with
    ``capsys``), else as a real subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "MLFLOW_"))}
    env.update(GOVERNANCE_CATALOG_URL=catalog.url, GOVERNANCE_ACTOR="ci-bot")
    if capsys is None:
        return subprocess.run([sys.executable, "-m", "governance.cli", *args], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=180, check=False)
    from governance.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVERNANCE_CATALOG_URL", catalog.url)
        patch.setenv("GOVERNANCE_ACTOR", "ci-bot")
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def _actions(catalog: Catalog) -> list[str]:
    with catalog.read() as session:
        return list(session.exec(select(AuditEvent.action).order_by(col(AuditEvent.seq))).all())


def test_import_is_audited_idempotent_incremental_and_reaches_the_training_data(pipeline: Pipeline,
                                                                               shared_catalog_url: str) -> None:
    """On a SQLite file and on PostgreSQL."""
    import mlflow

    from governance.lineage import upstream
    from governance.mlflow import import_mlflow, read_watermarks

    cat = Catalog(shared_catalog_url)
    client = mlflow.MlflowClient(pipeline.uri)
    exp = client.get_experiment_by_name(pipeline.experiment)
    finished = len(client.search_runs([exp.experiment_id]))  # the pipeline's 3, and a late run per earlier leg

    first = import_mlflow(pipeline.uri, experiments=[pipeline.experiment], catalog=cat, actor="importer")
    assert (first.runs_imported, first.datasets, first.versions_imported, first.problems) == (finished, 6, 3, [])
    with cat.read() as session:
        runs = {r.run_uuid: r for r in session.exec(select(Run)).all()}
        run = runs[str(uuid.UUID(hex=pipeline.run_ids[0]))]
        assert run.status == "COMPLETED"
        assert run.params == {"C": "1.0"}
        assert run.git_commit == GIT_COMMIT
        assert run.user
        mlflow_env = run.environment["mlflow"]
        assert mlflow_env["run_id"] == pipeline.run_ids[0]
        assert 0.8 < mlflow_env["metrics"]["train_accuracy"] <= 1.0
        versions = session.exec(select(Dataset.namespace, Dataset.name, DatasetVersion.content_hash,
                                       DatasetVersion.hash_algo, DatasetVersion.row_count, DatasetVersion.id)
                                .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)).all()
        by_name = {(ns, name): (digest, algo, rows, dv_id) for ns, name, digest, algo, rows, dv_id in versions}
        assert set(by_name) == {("file", "/data/credit-train.csv"), ("file", "/data/credit-holdout.csv")}
        train_digest, algo, rows, train_dv = by_name[("file", "/data/credit-train.csv")]
        assert (train_digest, algo, rows) == (pipeline.digests["training"], "mlflow-digest", 400)
        fields = session.exec(select(DatasetField.name).where(DatasetField.dataset_version_id == train_dv)
                              .order_by(col(DatasetField.position))).all()
        assert list(fields) == ["income", "debt", "sex", "y"]
        _, mv = resolve_model_version(session, f"{pipeline.model}@3")
        assert mv.hash_algo == "sha256-tree" and len(mv.artifact_hash or "") == 64
        assert mv.features == ["income", "debt"]
        assert mv.training_run_id == runs[str(uuid.UUID(hex=pipeline.run_ids[2]))].id
        assert session.exec(select(Model.description).where(Model.name == pipeline.model)).one() == (
            "Scores credit applications.")
    graph = upstream(f"{pipeline.model}@1", catalog=cat).to_json()
    labels = json.dumps(graph)
    assert pipeline.run_ids[0][:8] in labels.replace("-", "")
    assert "/data/credit-train.csv" in labels and "/data/credit-holdout.csv" in labels
    assert verify_audit(cat).ok
    actions = _actions(cat)
    assert actions.count("run.complete") == finished
    assert actions.count("mlflow.model_version.import") == 3
    assert actions[-1] == "mlflow.import"

    again = import_mlflow(pipeline.uri, experiments=[pipeline.experiment], catalog=cat, actor="importer")
    assert (again.runs_imported, again.versions_imported, again.aliases_moved) == (0, 0, 0)
    assert again.versions_unchanged == 3
    assert _actions(cat).count("run.complete") == finished

    late = client.create_run(exp.experiment_id)
    client.log_param(late.info.run_id, "note", "late")
    client.set_terminated(late.info.run_id)
    marks = read_watermarks(cat, pipeline.uri)
    third = import_mlflow(pipeline.uri, experiments=[pipeline.experiment], catalog=cat, actor="importer")
    # only what ended at or after the watermark was asked for: the newest run imported before, and the late one
    assert (third.runs_read, third.runs_unchanged, third.runs_imported) == (2, 1, 1)
    assert read_watermarks(cat, pipeline.uri)[exp.experiment_id] > marks[exp.experiment_id]
    with cat.read() as session:
        late_row = session.exec(select(Run).where(Run.run_uuid == str(uuid.UUID(hex=late.info.run_id)))).one()
        assert late_row.params == {"note": "late"}
    assert verify_audit(cat).ok
    cat.dispose()


def _tags(client: Any, model: str, version: int) -> dict[str, str]:
    mv = client.get_model_version(model, str(version))
    return {k: v for k, v in mv.tags.items() if k.startswith("governance.")}


def test_promotion_through_the_gate_sets_mlflow_only_on_pass_and_reconcile_flags_a_hand_move(
        pipeline: Pipeline, cat: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow

    import governance as gov
    from governance.mlflow import evidence_digest

    client = mlflow.MlflowClient(pipeline.uri)
    name = pipeline.model
    pack = tmp_path / "pack.yaml"
    pack.write_text(PACK, encoding="utf-8")
    assert _gov(["import", "mlflow", "--tracking-uri", pipeline.uri, "--model", name], cat, tmp_path,
                capsys=capsys).returncode == 0
    for version in (1, 2, 3):
        record = gov.evaluate(f"models:/{name}/{version}", pipeline.holdout, label="y", sensitive=["sex"],
                              catalog=cat, tracking_uri=pipeline.uri, actor="evaluator")
        with cat.read() as session:
            _, mv = resolve_model_version(session, f"{name}@{version}")
            stored = session.get(Evidence, record.evidence_id)
            assert stored is not None and stored.model_version_id == mv.id
            assert stored.data["artifact"]["digest"] == mv.artifact_hash
            assert stored.data["artifact"]["uri"] == f"models:/{name}/{version}"
    promote = ["promote", "--to", "production", "--policy", str(pack), "--registry", "mlflow",
               "--tracking-uri", pipeline.uri, "--format", "json"]

    ok = _gov([*promote[:1], f"{name}@1", *promote[1:]], cat, tmp_path)
    assert ok.returncode == 0, ok.stderr
    document = json.loads(ok.stdout)
    assert client.get_model_version_by_alias(name, "production").version == "1"
    tags = _tags(client, name, 1)
    with cat.read() as session:
        seq = session.exec(select(AuditEvent.seq).where(AuditEvent.action == "promotion.promote")).one()
        _, mv1 = resolve_model_version(session, f"{name}@1")
    assert tags["governance.gate"] == "PASS"
    assert tags["governance.audit_seq"] == str(seq)
    assert tags["governance.policy_digest"] == document["policy"]["digest"]
    assert tags["governance.evidence_digest"] == evidence_digest(cat, int(mv1.id or 0))
    assert tags["governance.stage"] == "production" and tags["governance.actor"] == "ci-bot"

    refused = _gov([*promote[:1], f"{name}@3", *promote[1:]], cat, tmp_path, capsys=capsys)
    assert refused.returncode == 1
    assert "blocked by policy" in refused.stderr
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert _tags(client, name, 3) == {}

    assert _gov([*promote[:1], f"{name}@2", *promote[1:]], cat, tmp_path, capsys=capsys).returncode == 0
    assert client.get_model_version_by_alias(name, "production").version == "2"

    back = _gov(["rollback", name, "--stage", "production", "--registry", "mlflow", "--tracking-uri",
                 pipeline.uri], cat, tmp_path, capsys=capsys)
    assert back.returncode == 0, back.stderr
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert _tags(client, name, 1)["governance.action"] == "rollback"

    clean = _gov(["mlflow", "reconcile", "--tracking-uri", pipeline.uri, "--model", name], cat, tmp_path,
                 capsys=capsys)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    client.set_registered_model_alias(name, "production", "3")  # around the gate
    flagged = _gov(["mlflow", "reconcile", "--tracking-uri", pipeline.uri, "--model", name, "--format", "json"],
                   cat, tmp_path, capsys=capsys)
    assert flagged.returncode == 1
    report = json.loads(flagged.stdout)
    assert report["findings"] == [{
        "model": name, "alias": "production", "kind": "ungated", "mlflow_version": 3, "gated_version": 1,
        "message": f"{name}@production -> version 3 in MLflow without a matching PASS "
                   "(the last gated promotion was version 1)"}]
    assert "1 MLflow alias(es) moved without a matching PASS" in flagged.stderr

    # a later import mirrors the hand move as an observation, never as a gated promotion
    assert _gov(["import", "mlflow", "--tracking-uri", pipeline.uri, "--model", name], cat, tmp_path,
                capsys=capsys).returncode == 0
    with cat.read() as session:
        actions = session.exec(select(PromotionEvent.action).order_by(col(PromotionEvent.id))).all()
    assert actions == ["promote", "refused", "promote", "rollback", "imported"]
    assert _gov(["mlflow", "reconcile", "--tracking-uri", pipeline.uri, "--model", name], cat,
                tmp_path, capsys=capsys).returncode == 1

    from governance.reporting import render_audit_report

    audit = json.loads(render_audit_report(catalog=cat, format="json"))
    assert [f["kind"] for f in audit["mlflow_reconcile"][0]["findings"]] == ["ungated"]
    assert "moved without a matching PASS" in str(render_audit_report(catalog=cat, format="html"))
    assert verify_audit(cat).ok
    client.set_registered_model_alias(name, "production", "1")


def test_changed_artifacts_are_refused_before_any_evidence_or_promotion(pipeline: Pipeline, cat: Catalog,
                                                                        tmp_path: Path,
                                                                        mlflow_server: MlflowServer) -> None:  # noqa: F811
    import mlflow

    import governance as gov
    from governance.mlflow import MlflowRegistry, import_mlflow

    import_mlflow(pipeline.uri, models=[pipeline.model], catalog=cat, actor="importer")
    client = mlflow.MlflowClient(pipeline.uri)
    location = client.get_model_version_download_uri(pipeline.model, "2")
    relative = location.split("mlflow-artifacts:/", 1)[1]
    target = mlflow_server.artifacts / relative / "requirements.txt"
    original = target.read_bytes()
    before = client.get_model_version_by_alias(pipeline.model, "production").version
    try:
        target.write_bytes(original + b"# edited after import\n")
        with pytest.raises(InputError, match="differ from the version imported"):
            gov.evaluate(f"models:/{pipeline.model}/2", pipeline.holdout, label="y", sensitive=["sex"],
                         catalog=cat, tracking_uri=pipeline.uri)
        with pytest.raises(InputError, match="changed since import"):
            MlflowRegistry(pipeline.uri, cat).preflight(f"{pipeline.model}@2")
    finally:
        target.write_bytes(original)
    with cat.read() as session:
        assert session.exec(select(Evidence)).all() == []
    assert client.get_model_version_by_alias(pipeline.model, "production").version == before


def test_without_mlflow_the_bridge_names_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    from governance.cli import main
    from governance.mlflow import import_mlflow

    monkeypatch.setitem(sys.modules, "mlflow", None)  # makes `import mlflow` raise ModuleNotFoundError
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ConfigError) as caught:
        import_mlflow("http://127.0.0.1:9", catalog=catalog)
    assert str(caught.value) == "the MLflow bridge needs mlflow: pip install 'ml-governance[mlflow]'"
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", catalog.url)
    assert main(["import", "mlflow", "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert main(["promote", "m@1", "--to", "production", "--policy", "baseline", "--registry", "mlflow"]) == 2
    catalog.dispose()


def test_an_unreachable_server_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests._mlflow_support import free_port, require_mlflow

    require_mlflow()
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    uri = f"http://127.0.0.1:{free_port()}"
    for args in (["import", "mlflow"], ["mlflow", "reconcile"]):
        result = _gov([*args, "--tracking-uri", uri], catalog, tmp_path, capsys=capsys)
        assert result.returncode == 2
        assert result.stderr.startswith(f"gov: error: --tracking-uri {uri}: no MLflow tracking server answers there")
        assert len(result.stderr.splitlines()) == 1
    catalog.dispose()
