"""Lineage queries (recursive CTEs) on every backend, identical results, and the lineage CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import governance as gov
from governance.catalog import Catalog, Dataset, DatasetVersion, Job, Model, ModelVersion, Run, RunIO
from governance.catalog._graph import downstream, upstream
from governance.cli import main
from tests.conftest import create_pg_database, drop_pg_database, postgres_base_url

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build_chain(catalog: Catalog, stages: int = 6, fan: int = 3) -> None:
    """raw datasets -> stage runs -> ... -> model; each run reads `fan` artifacts of the previous stage.

    Also a cycle (a run reading its own output) to prove walks terminate.
    """
    with catalog.engine.begin() as conn:
        conn.execute(sa.insert(Job), [{"id": 1, "namespace": "ns", "name": "job", "kind": "other", "created_at": T0}])
        conn.execute(
            sa.insert(Dataset),
            [{"id": 1, "namespace": "ns", "name": "d", "kind": "table", "tags": [], "created_at": T0}],
        )
        dvs, runs, edges = [], [], []
        dv_id = run_id = 0
        previous: list[int] = []
        for _ in range(fan):
            dv_id += 1
            dvs.append(dv_id)
            previous.append(dv_id)
        for stage in range(stages):
            current = []
            for k in range(fan):
                run_id += 1
                runs.append((run_id, T0 + timedelta(hours=stage)))
                for src in previous[k:] + previous[:k][: max(0, fan - 1 - len(previous[k:]))]:
                    edges.append((run_id, "dataset", src, "input", T0 + timedelta(hours=stage)))
                dv_id += 1
                dvs.append(dv_id)
                current.append(dv_id)
                edges.append((run_id, "dataset", dv_id, "output", T0 + timedelta(hours=stage)))
            previous = current
        run_id += 1
        runs.append((run_id, T0 + timedelta(hours=stages)))
        for src in previous:
            edges.append((run_id, "dataset", src, "input", T0 + timedelta(hours=stages)))
        edges.append((run_id, "model", 1, "output", T0 + timedelta(hours=stages)))
        edges.append((run_id, "dataset", previous[0], "output", T0 + timedelta(hours=stages)))  # a cycle
        conn.execute(
            sa.insert(DatasetVersion),
            [
                {
                    "id": d,
                    "dataset_id": 1,
                    "version": d,
                    "content_hash": f"h{d}",
                    "coverage": "full",
                    "created_at": T0,
                }
                for d in dvs
            ],
        )
        conn.execute(
            sa.insert(Run),
            [
                {
                    "id": r,
                    "run_uuid": f"00000000-0000-7000-8000-{r:012d}",
                    "job_id": 1,
                    "status": "COMPLETED",
                    "started_at": t,
                    "params": {},
                    "environment": {},
                }
                for r, t in runs
            ],
        )
        conn.execute(sa.insert(Model), [{"id": 1, "name": "m", "tags": [], "created_at": T0}])
        conn.execute(
            sa.insert(ModelVersion),
            [
                {
                    "id": 1,
                    "model_id": 1,
                    "version": 1,
                    "params": {},
                    "metrics": {},
                    "card": {},
                    "features": [],
                    "training_run_id": run_id,
                    "created_at": T0,
                }
            ],
        )
        conn.execute(
            sa.insert(RunIO),
            [
                {
                    "run_id": r,
                    "artifact_kind": k,
                    "artifact_id": a,
                    "direction": d,
                    "role": f"{d}{a}",
                    "created_at": t,
                }
                for r, k, a, d, t in edges
            ],
        )


def queries(catalog: Catalog) -> dict[str, Any]:
    out = {}
    with catalog.read() as s:
        for depth in (None, 0, 1, 2, 3):
            out[f"up{depth}"] = upstream(s, "model", 1, depth=depth).to_json()
            out[f"down{depth}"] = downstream(s, "dataset", 1, depth=depth).to_json()
        out["asof"] = upstream(s, "model", 1, as_of=T0 + timedelta(hours=2)).to_json()
        out["asof_down"] = downstream(s, "dataset", 1, as_of=T0 + timedelta(hours=2, minutes=30)).to_json()
    return out


def test_walks_bounded_unbounded_as_of_and_cycles(catalog: Catalog) -> None:
    build_chain(catalog)
    result = queries(catalog)
    assert result["up0"]["nodes"] == [result["up0"]["nodes"][0]] and result["up0"]["edges"] == []
    up1 = result["up1"]
    assert {n["kind"] for n in up1["nodes"]} == {"model", "run", "dataset"}
    assert max(n["depth"] for n in up1["nodes"]) == 1
    runs_by_depth = [
        sorted(n["id"] for n in result["upNone"]["nodes"] if n["kind"] == "run" and n["depth"] == d)
        for d in range(1, 9)
    ]
    assert runs_by_depth[0] == [19] and [len(r) for r in runs_by_depth[1:7]] == [3] * 6
    all_datasets = {n["id"] for n in result["upNone"]["nodes"] if n["kind"] == "dataset"}
    assert all_datasets == set(range(1, 22))
    # as_of before the model existed: nothing upstream of it was recorded yet
    assert result["asof"]["edges"] == []
    down_late = {n["id"] for n in result["downNone"]["nodes"] if n["kind"] == "run"}
    down_early = {n["id"] for n in result["asof_down"]["nodes"] if n["kind"] == "run"}
    assert down_early < down_late and max(down_early) <= 9
    for edge in result["up2"]["edges"]:  # data flows input -> run -> output
        assert edge["source"].startswith("run:") != edge["target"].startswith("run:")


def test_identical_results_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    base = postgres_base_url()
    pg_url = create_pg_database(base)
    try:
        sqlite = Catalog(f"sqlite:///{tmp_path / 'a.db'}")
        pg = Catalog(pg_url)
        build_chain(sqlite)
        build_chain(pg)
        assert queries(sqlite) == queries(pg)
        sqlite.dispose()
        pg.dispose()
    finally:
        drop_pg_database(base, pg_url)


def test_sqlite_walk_keeps_index_seeks_after_analyze(tmp_path: Path) -> None:
    """With ANALYZE statistics SQLite would build a Bloom filter over run_io on every recursive step
    (a full scan each); the walk's planner hint keeps both hops covering-index seeks, same results."""
    from governance.catalog._graph import _reach

    catalog = Catalog(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        build_chain(catalog)
        before = queries(catalog)
        with catalog.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar_one() > 0
        assert queries(catalog) == before
        with catalog.engine.connect() as conn:
            for up, depth in ((True, 3), (False, None)):
                sql = str(
                    _reach("dataset", 1, depth, None, up, sqlite=True).compile(
                        dialect=conn.dialect, compile_kwargs={"literal_binds": True}
                    )
                )
                plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
                assert not [p for p in plan if "BLOOM" in p], plan
                assert len([p for p in plan if "USING COVERING INDEX ix_run_io_" in p]) == 2, plan
    finally:
        catalog.dispose()


# ------------------------------------------------------------------------------------- real runs
@pytest.fixture
def trained(gov_env: Path) -> Path:
    rng = np.random.default_rng(0)
    raw = pd.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80), "y": rng.integers(0, 2, 80)})

    @gov.step(kind="feature", name="demo.features")
    def features(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(xz=df["x"] * df["z"])

    @gov.step(kind="training", name="demo.train", model="demo-model")
    def train(df: pd.DataFrame, C: float = 1.0) -> LogisticRegression:  # noqa: N803 - sklearn spelling
        return LogisticRegression(C=C).fit(df[["x", "z", "xz"]], df["y"])

    @gov.step(kind="inference", name="demo.score")
    def score(model: LogisticRegression, df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"p": model.predict_proba(df[["x", "z", "xz"]])[:, 1]})

    feats = features(raw)
    m1 = train(feats, C=1.0)
    score(m1, feats)
    raw2 = raw.copy()
    raw2.loc[0, "x"] = 9.0
    train(features(raw2), C=0.1)
    feats.to_parquet(gov_env / "features.parquet")
    return gov_env


def test_python_api_by_reference(trained: Path) -> None:
    up = gov.upstream("demo-model@1")
    labels = {n.label for n in up.nodes}
    assert "demo-model@1" in labels and "demo.features.output@1" in labels and "demo.features.df@1" in labels
    down = gov.downstream("demo-model@1", depth=1)
    assert any(n.kind == "dataset" and n.label.startswith("demo.score.output") for n in down.nodes)
    diff = gov.diff_versions("demo-model@1", "demo-model@2")
    assert diff.changed
    assert [d["change"] for d in diff.data] == ["changed"]
    assert diff.run_params == {"C": {"a": 1.0, "b": 0.1, "in_a": True, "in_b": True}}
    assert diff.params["C"]["a"] == 1.0 and not diff.code["code_hash"]["changed"]
    same = gov.diff_versions("demo-model@1", "demo-model@1")
    assert not same.changed


def test_cli_lineage_formats(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", "demo-model@1", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["direction"] == "upstream" and doc["root"].startswith("model:")
    assert main(["lineage", "demo-model@1", "--format", "dot", "--depth", "1"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph lineage {") and "demo.features.output@1" in dot and "demo.features.df@1" not in dot
    assert main(["lineage", "demo-model@1", "--downstream"]) == 0
    assert "demo.score.output@1" in capsys.readouterr().out
    assert main(["lineage", "demo-model@1", "--as-of", "2000-01-01"]) == 0
    assert "1 nodes, 0 edges" in capsys.readouterr().out
    assert main(["lineage", "demo-model@1", "--as-of", "yesterday"]) == 2
    assert "--as-of" in capsys.readouterr().err
    assert main(["lineage", "demo-model@7"]) == 2
    assert main(["lineage", "demo-model@1", "--upstream", "--downstream"]) == 2


def test_cli_lineage_text_is_a_tree_following_the_data(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", "demo-model@1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "upstream of demo-model@1"
    body = lines[1:-1]
    # model <- training run <- its input <- the run that produced it <- that run's input
    labels = [line.strip()[2:].split()[1] for line in body]
    depths = [(len(line) - len(line.lstrip())) // 2 for line in body]
    assert labels[:4] == ["demo.train", "demo.features.output@1", "demo.features", "demo.features.df@1"]
    assert depths[:4] == [1, 2, 3, 4]
    assert lines[-1].endswith("edges")


def test_cli_diff(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "demo-model@1", "demo-model@2"]) == 0
    text = capsys.readouterr().out
    assert "data df: changed (demo.features.output@1 -> demo.features.output@2)" in text
    assert "run_params C: 1.0 -> 0.1" in text
    assert main(["diff", "demo-model@1", "demo-model@2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True


def test_cli_verify_data(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parquet = trained / "features.parquet"
    assert main(["verify-data", "demo.features.output@1", str(parquet)]) == 0
    assert capsys.readouterr().out.startswith("match:")
    assert main(["verify-data", "demo.features.output@2", str(parquet)]) == 1
    assert capsys.readouterr().out.startswith("mismatch:")
    assert main(["verify-data", "demo.features.output@1", str(trained / "nope.parquet")]) == 2
    # a file dataset re-hashed from its own uri
    data = trained / "raw.bin"
    data.write_bytes(b"abc" * 100)

    @gov.step(kind="feature", name="demo.read")
    def read(path: Path) -> int:
        return len(path.read_bytes())

    read(data)
    name = str(data.resolve())
    assert main(["verify-data", f"{name}@1"]) == 0
    data.write_bytes(b"abd" * 100)
    assert main(["verify-data", f"{name}@1"]) == 1


def test_cli_as_a_real_subprocess(trained: Path) -> None:
    argv = [sys.executable, "-m", "governance.cli"]
    done = subprocess.run(
        [*argv, "lineage", "demo-model@2", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=trained,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nodes"][0]["label"] == "demo-model@2"


def test_diff_names_a_code_change_on_every_backend(
    catalog: Catalog, gov_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two versions trained by different code of one job, on the same data: only the code differs,
    and the CLI prints the change; the same answer on SQLite and PostgreSQL."""
    from governance.lineage import capture_to

    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})

    @gov.step(kind="training", name="code.train", model="code-model")
    def first(df: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(df[["x"]], df["y"])

    @gov.step(kind="training", name="code.train", model="code-model")
    def second(df: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression(fit_intercept=True, tol=1e-5).fit(df[["x"]], df["y"])

    with capture_to(catalog):
        first(data)
        second(data)
    diff = gov.diff_versions("code-model@1", "code-model@2", catalog=catalog)
    assert diff.changed
    assert diff.code["code_hash"]["changed"] and diff.code["code_hash"]["a"] != diff.code["code_hash"]["b"]
    assert not diff.code["source_file"]["changed"]
    assert [d["change"] for d in diff.data] == ["same"]
    assert (diff.params["tol"]["a"], diff.params["tol"]["b"]) == (1e-4, 1e-5)
    if catalog.url != "sqlite://":  # the CLI opens the catalog itself: not possible for an in-memory one
        assert main(["--catalog", catalog.url, "diff", "code-model@1", "code-model@2"]) == 0
        text = capsys.readouterr().out
        a, b = diff.code["code_hash"]["a"], diff.code["code_hash"]["b"]
        assert f"code code_hash: {a} -> {b}" in text


def test_diff_lists_only_real_changes(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An absent parameter and a None one are the same; NaN equals NaN; only `c` changed."""
    from governance.catalog import open_catalog
    from governance.cli import main
    from governance.registry import register_model

    catalog = open_catalog()
    register_model("m", params={"a": None, "b": float("nan"), "c": 1, "nested": {"x": None}}, catalog=catalog,
                   actor="t")
    register_model("m", params={"b": float("nan"), "c": 2}, catalog=catalog, actor="t")
    diff = gov.diff_versions("m@1", "m@2", catalog=catalog)
    assert list(diff.params) == ["c"]
    capsys.readouterr()
    assert main(["diff", "m@1", "m@2"]) == 0
    out = capsys.readouterr().out
    assert "None -> None" not in out and "params c: 1 -> 2" in out
