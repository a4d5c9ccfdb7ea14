"""@governance.step capture over every catalog backend: runs, datasets, models, tags, nesting, failures."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlmodel import col, select

import governance as gov
from governance.catalog import (
    AuditEvent,
    Catalog,
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Model,
    ModelVersion,
    OutboxEvent,
    Run,
    RunIO,
)
from governance.errors import InputError
from governance.lineage import (
    CaptureRole,
    capture_adapter,
    capture_to,
    current_run,
    load_model_artifact,
    table_capture,
)


@pytest.fixture
def cat(catalog: Catalog, gov_env: Path) -> Any:
    with capture_to(catalog):
        yield catalog


def frame(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "debt": rng.integers(0, 20, n),
            "sex": rng.choice(["f", "m"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def runs(catalog: Catalog) -> list[tuple[Run, Job]]:
    with catalog.read() as s:
        return list(s.exec(select(Run, Job).join(Job, col(Job.id) == Run.job_id).order_by(col(Run.id))).all())


def run_of(catalog: Catalog, job_suffix: str) -> Run:
    found = [r for r, j in runs(catalog) if j.name.endswith(job_suffix)]
    assert len(found) == 1, [j.name for _, j in runs(catalog)]
    return found[0]


def io_of(catalog: Catalog, run: Run) -> list[tuple[RunIO, DatasetVersion | None, Dataset | None]]:
    out = []
    with catalog.read() as s:
        for edge in s.exec(select(RunIO).where(RunIO.run_id == run.id).order_by(col(RunIO.id))).all():
            dv = s.get(DatasetVersion, edge.artifact_id) if edge.artifact_kind == "dataset" else None
            ds = s.get(Dataset, dv.dataset_id) if dv else None
            out.append((edge, dv, ds))
    return out


# ------------------------------------------------------------------------------------- decoration
def test_decorator_validates_when_applied() -> None:
    with pytest.raises(InputError, match="kind"):
        gov.step(kind="training-ish")
    with pytest.raises(InputError, match="expected a function"):
        gov.step(kind="feature")(42)
    with pytest.raises(InputError, match="derived"):
        gov.step(kind="feature", derived={"ratio": []})
    with pytest.raises(InputError, match="derived"):
        gov.step(kind="feature", derived=["ratio"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown tag"):
        gov.step(kind="feature", tags={"secret": ["x"]})
    with pytest.raises(InputError, match="model"):
        gov.step(kind="training", model="a@b")
    with pytest.raises(InputError, match="generator"):

        @gov.step(kind="feature")
        def gen() -> Any:
            yield 1


def test_spec_is_frozen_on_the_function() -> None:
    @gov.step(kind="feature", name="features.v1", derived={"r": {"direct": ["a"], "indirect": ["b"]}})
    def build(df: pd.DataFrame) -> pd.DataFrame:
        return df

    spec = build.__governance_step__  # type: ignore[attr-defined]
    assert spec.kind == "feature" and spec.name == "features.v1"
    assert spec.derived == (("r", "a", "DIRECT"), ("r", "b", "INDIRECT"))
    with pytest.raises(AttributeError):
        spec.kind = "training"


# ------------------------------------------------------------------------------------------- runs
def test_run_records_params_code_environment_and_data(cat: Catalog) -> None:
    @gov.step(kind="feature")
    def build(raw: pd.DataFrame, scale: float = 2.0, cols: tuple[str, ...] = ("income",)) -> pd.DataFrame:
        out = raw.copy()
        out["income"] = out["income"] * scale
        return out

    raw = frame()
    result = build(raw, scale=3.0)
    assert isinstance(result, pd.DataFrame)
    run = run_of(cat, "build")
    assert run.status == "COMPLETED" and run.ended_at is not None
    assert len(run.run_uuid) == 36 and run.run_uuid[14] == "7"  # UUIDv7
    assert run.params == {"scale": 3.0, "cols": ["income"]}
    assert run.code_hash is not None and run.code_hash.startswith("sha256:")
    assert run.source_file == str(Path(__file__).resolve())
    assert run.git_commit is not None and len(run.git_commit) == 40
    assert isinstance(run.git_dirty, bool)
    assert run.environment["python"].count(".") == 2 and "pandas" in run.environment["packages"]
    assert run.user and run.host and run.parent_run_id is None
    edges = io_of(cat, run)
    assert [(e.direction, e.role) for e, _, _ in edges] == [("input", "raw"), ("output", "output")]
    (_, dv_in, ds_in), (_, dv_out, ds_out) = edges
    assert ds_in is not None and ds_in.name.endswith("build.raw")
    assert ds_in.namespace == "governance://default"  # in-memory values: _naming.memory_namespace
    assert ds_out is not None and ds_out.name.endswith("build.output")
    assert dv_in is not None and dv_in.content_hash == gov.fingerprint(raw).hash and dv_in.row_count == 50
    assert dv_out is not None and dv_out.produced_by_run_id == run.id and dv_in.produced_by_run_id is None
    stats = dv_out.stats
    assert stats is not None and stats["row_count"] == 50
    income = stats["columns"]["income"]
    assert income["kind"] == "numeric" and income["count"] == 50 and income["nulls"] == 0
    assert sum(income["bin_counts"]) == 50 and len(income["bin_edges"]) == len(income["bin_counts"]) + 1
    assert stats["columns"]["sex"]["kind"] == "categorical"
    assert sum(stats["columns"]["sex"]["frequencies"].values()) == 50


def test_same_content_reuses_the_version_and_new_content_bumps_it(cat: Catalog) -> None:
    @gov.step(kind="feature")
    def ident(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(z=1)

    a = frame(seed=1)
    ident(a)
    ident(a.copy())
    b = a.copy()
    b.loc[3, "income"] += 1.0
    ident(b)
    with cat.read() as s:
        out = s.exec(select(Dataset).where(col(Dataset.name).endswith("ident.output"))).one()
        versions = s.exec(
            select(DatasetVersion).where(DatasetVersion.dataset_id == out.id).order_by(col(DatasetVersion.version))
        ).all()
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].content_hash != versions[1].content_hash
        creates = s.exec(select(AuditEvent).where(AuditEvent.action == "dataset_version.create")).all()
        assert len(creates) == 4  # input v1, output v1, input v2, output v2


def test_output_of_one_step_is_the_input_version_of_the_next(cat: Catalog) -> None:
    @gov.step(kind="feature")
    def features(raw: pd.DataFrame) -> pd.DataFrame:
        return raw.assign(ratio=raw["income"] / (raw["debt"] + 1))

    @gov.step(kind="training", model="scorer")
    def train(data: pd.DataFrame, C: float = 0.5) -> LogisticRegression:  # noqa: N803 - sklearn spelling
        return LogisticRegression(C=C).fit(data[["income", "debt", "ratio"]], data["y"])

    model = train(features(frame()))
    feat_run, train_run = run_of(cat, "features"), run_of(cat, "train")
    ((_, produced, _),) = [e for e in io_of(cat, feat_run) if e[0].direction == "output"]
    ((_, consumed, _),) = [e for e in io_of(cat, train_run) if e[0].direction == "input"]
    assert produced is not None and consumed is not None and produced.id == consumed.id
    with cat.read() as s:
        mv = s.exec(select(ModelVersion)).one()
        m = s.get(Model, mv.model_id)
        assert m is not None and m.name == "scorer" and mv.version == 1
        assert mv.training_run_id == train_run.id and mv.flavor == "sklearn"
        assert mv.params["C"] == 0.5 and mv.features == ["income", "debt", "ratio"]
        assert [
            e.action for e in s.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("model"))).all()
        ] == ["model.create", "model_version.create"]
        model_edge = s.exec(select(RunIO).where(RunIO.artifact_kind == "model")).one()
        assert (model_edge.run_id, model_edge.direction, model_edge.artifact_id) == (
            train_run.id,
            "output",
            mv.id,
        )
    loaded = load_model_artifact(mv)
    x = frame()[["income", "debt"]].assign(ratio=1.0)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))  # type: ignore[attr-defined]


def test_artifact_that_was_tampered_with_is_refused(cat: Catalog) -> None:
    @gov.step(kind="training", model="tampered")
    def train(data: pd.DataFrame) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression()).fit(data[["income"]], data["y"])

    train(frame())
    with cat.read() as s:
        mv = s.exec(select(ModelVersion)).one()
    assert mv.artifact_uri is not None
    Path(mv.artifact_uri).write_bytes(Path(mv.artifact_uri).read_bytes() + b"\0")
    with pytest.raises(InputError, match="hash mismatch"):
        load_model_artifact(mv)


def test_tags_passthrough_and_proxy_columns(cat: Catalog) -> None:
    @gov.step(kind="feature", derived={"income_per_sex": ["income", "sex"]}, tags={"pii": ["income"]})
    def build(raw: pd.DataFrame) -> pd.DataFrame:
        out = raw.copy()
        out["income_per_sex"] = raw["income"] / raw.groupby("sex")["income"].transform("mean")
        return out

    raw = gov.tag(frame(), protected=["sex"], label="y")
    assert raw.attrs["governance_tags"] == {"sex": ["protected"], "y": ["label"]}
    build(raw)
    run = run_of(cat, "build")
    ((_, out_dv, _),) = [e for e in io_of(cat, run) if e[0].direction == "output"]
    with cat.read() as s:
        fields = {f.name: f for f in s.exec(select(DatasetField).where(DatasetField.dataset_version_id == out_dv.id))}
        assert fields["sex"].tags == ["protected"]
        assert fields["y"].tags == ["label"]
        assert fields["income"].tags == ["pii"]
        assert set(fields["income_per_sex"].tags) == {"proxy:protected", "proxy:pii"}
        lineage = s.exec(select(ColumnLineage).where(ColumnLineage.run_id == run.id)).all()
        by_out: dict[str, set[tuple[str, str]]] = {}
        for edge in lineage:
            out_f, in_f = s.get(DatasetField, edge.output_field_id), s.get(DatasetField, edge.input_field_id)
            assert out_f is not None and in_f is not None
            by_out.setdefault(out_f.name, set()).add((in_f.name, edge.transformation))
    # unchanged columns are detected as passthrough; the derived one has its declared inputs
    assert by_out == {
        "income": {("income", "DIRECT")},
        "debt": {("debt", "DIRECT")},
        "sex": {("sex", "DIRECT")},
        "y": {("y", "DIRECT")},
        "income_per_sex": {("income", "DIRECT"), ("sex", "DIRECT")},
    }


def test_tag_refuses_unknown_columns() -> None:
    with pytest.raises(InputError, match="'nope' is not in the frame"):
        gov.tag(frame(), protected=["nope"])


def test_failing_step_records_failed_and_reraises_the_same_exception(cat: Catalog) -> None:
    boom = ValueError("bad input: debt < 0")

    @gov.step(kind="feature")
    def build(raw: pd.DataFrame) -> pd.DataFrame:
        raise boom

    with pytest.raises(ValueError, match="debt < 0") as info:
        build(frame())
    assert info.value is boom
    run = run_of(cat, "build")
    assert run.status == "FAILED" and run.error_type == "ValueError"
    assert run.error_message == "bad input: debt < 0"
    assert run.error_traceback is not None and "raise boom" in run.error_traceback
    assert [e.direction for e, _, _ in io_of(cat, run)] == ["input"]
    with cat.read() as s:
        assert [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.subject == f"run:{run.run_uuid}"))] == [
            "run.fail"
        ]
        assert [
            o.event_type
            for o in s.exec(
                select(OutboxEvent).where(OutboxEvent.run_uuid == run.run_uuid).order_by(col(OutboxEvent.id))
            )
        ] == ["START", "FAIL"]


def test_every_run_has_start_and_complete_events_in_the_outbox(cat: Catalog) -> None:
    @gov.step(kind="inference")
    def predict(x: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        return x * 2

    predict(np.arange(10.0))
    run = run_of(cat, "predict")
    with cat.read() as s:
        types = [
            o.event_type
            for o in s.exec(
                select(OutboxEvent).where(OutboxEvent.run_uuid == run.run_uuid).order_by(col(OutboxEvent.id))
            )
        ]
    assert types == ["START", "COMPLETE"]


# ---------------------------------------------------------------------------------------- context
def test_nested_steps_record_their_parent(cat: Catalog) -> None:
    seen: list[str | None] = []

    @gov.step(kind="feature")
    def inner(df: pd.DataFrame) -> pd.DataFrame:
        frame_ = current_run()
        seen.append(frame_.parent.run_uuid if frame_ and frame_.parent else None)
        return df.head(5)

    @gov.step(kind="other")
    def outer(df: pd.DataFrame) -> pd.DataFrame:
        return inner(inner(df))

    outer(frame())
    assert current_run() is None
    parent = run_of(cat, "outer")
    children = [r for r, j in runs(cat) if j.name.endswith("inner")]
    assert len(children) == 2
    assert {c.parent_run_id for c in children} == {parent.id}
    assert seen == [parent.run_uuid, parent.run_uuid]
    assert parent.status == "COMPLETED"
    with cat.read() as s:  # the parent row was written RUNNING by its first child, then completed
        actions = [
            e.action
            for e in s.exec(
                select(AuditEvent).where(AuditEvent.subject == f"run:{parent.run_uuid}").order_by(col(AuditEvent.seq))
            )
        ]
        assert actions == ["run.start", "run.complete"]
        assert [
            o.event_type
            for o in s.exec(
                select(OutboxEvent).where(OutboxEvent.run_uuid == parent.run_uuid).order_by(col(OutboxEvent.id))
            )
        ] == ["START", "COMPLETE"]


def test_threads_keep_separate_run_contexts(cat: Catalog) -> None:
    @gov.step(kind="feature")
    def leaf(n: int) -> int:
        return n

    def in_thread() -> None:
        with capture_to(cat):  # the catalog, like the run, is per context: a new thread names its own
            leaf(1)

    @gov.step(kind="other")
    def outer() -> int:
        worker = threading.Thread(target=in_thread)
        worker.start()
        worker.join()
        return leaf(2)

    outer()
    parent = run_of(cat, "outer")
    leaves = {r.params["n"]: r.parent_run_id for r, j in runs(cat) if j.name.endswith("leaf")}
    assert leaves == {1: None, 2: parent.id}


def test_asyncio_tasks_keep_separate_run_contexts(cat: Catalog) -> None:
    @gov.step(kind="feature")
    async def leaf(tag_: str) -> str:
        await asyncio.sleep(0.01)
        return tag_

    @gov.step(kind="other")
    async def outer(tag_: str) -> str:
        await asyncio.sleep(0.005)
        return await leaf(tag_)

    async def main() -> list[str]:
        return list(await asyncio.gather(outer("a"), outer("b")))

    assert asyncio.run(main()) == ["a", "b"]
    outers = {r.params["tag_"]: r.id for r, j in runs(cat) if j.name.endswith("outer")}
    leaves = {r.params["tag_"]: r.parent_run_id for r, j in runs(cat) if j.name.endswith("leaf")}
    assert leaves == outers


# ------------------------------------------------------------------------------------- adapters
class Matrix:
    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows


def test_third_party_adapter_and_unknown_objects(cat: Catalog) -> None:
    @capture_adapter.register(Matrix)
    def _(obj: Matrix, role: CaptureRole) -> Any:
        return table_capture(pd.DataFrame(obj.rows, columns=["a", "b"]), role)

    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    @gov.step(kind="other")
    def use(m: Matrix, thing: Opaque, path: Path) -> dict[str, Any]:
        return {"n": len(m.rows)}

    data = Path("data.bin")
    data.write_bytes(b"\x00\x01" * 100)
    use(Matrix([[1.0, 2.0], [3.0, 4.0]]), Opaque(), data)
    run = run_of(cat, "use")
    assert run.params["thing"] == {"type": f"{Opaque.__module__}.{Opaque.__qualname__}", "repr": "Opaque()"}
    roles = {e.role: (dv, ds) for e, dv, ds in io_of(cat, run)}
    assert set(roles) == {"m", "path"}
    dv, ds = roles["path"]
    assert ds is not None and ds.namespace == "file" and ds.name == str(data.resolve()) and ds.kind == "file"
    assert dv is not None and dv.content_hash == gov.fingerprint(data).hash
    dv_m, _ = roles["m"]
    assert dv_m is not None and dv_m.row_count == 2


def test_governance_dataset_reference(cat: Catalog) -> None:
    @gov.step(kind="feature")
    def load(src: gov.Dataset) -> int:
        return 1

    load(gov.Dataset("s3://bucket/raw/2024/"))
    run = run_of(cat, "load")
    ((_, dv, ds),) = io_of(cat, run)
    assert ds is not None and (ds.namespace, ds.name, ds.kind) == ("s3://bucket", "raw/2024/", "reference")
    assert dv is not None and dv.content_hash is None and dv.coverage == "none"


# ---------------------------------------------------------------------------------- id cache
def _job_of_runs(catalog: Catalog) -> dict[str, str]:
    """run uuid -> name of the job its job_id points to (a dangling id would raise or be missing)."""
    with catalog.read() as s:
        return {r.run_uuid: j.name for r, j in s.exec(select(Run, Job).join(Job, col(Job.id) == Run.job_id)).all()}


def test_cached_ids_follow_the_catalog_written_to(cat: Catalog, tmp_path: Path) -> None:
    """Job and dataset ids learnt on one catalog are never used on another one."""

    def make(name: str) -> Any:
        return gov.step(kind="feature", name=name)(lambda df: df)

    make("a1")(frame())
    make("a2")(frame(seed=1))
    other = Catalog(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with capture_to(other):
            make("x")(frame(seed=2))  # job id 1, dataset ids 1-2 in the other catalog
        make("x")(frame(seed=2))  # back on the first catalog: new rows, not the other catalog's ids
        assert sorted(_job_of_runs(other).values()) == ["x"]
    finally:
        other.dispose()
    assert sorted(_job_of_runs(cat).values()) == ["a1", "a2", "x"]
    with cat.read() as s:
        names = {d.id: d.name for d in s.exec(select(Dataset)).all()}
        edges = s.exec(select(RunIO, DatasetVersion).join(DatasetVersion, col(DatasetVersion.id) == RunIO.artifact_id))
        assert {names[dv.dataset_id] for _, dv in edges.all()} >= {"x.output"}


def test_ids_of_a_rolled_back_write_are_not_cached(cat: Catalog) -> None:
    """A write that fails after inserting its job and datasets rolls back; the next write of the same
    job and dataset must insert them again (PostgreSQL never reuses the rolled-back ids)."""
    from governance.lineage import RunRecord, uuid7, write_run
    from governance.lineage._record import ID_CACHE

    def record(tags: list[Any]) -> RunRecord:
        role = CaptureRole(job="rollback.job", name="df", direction="input", namespace="test")
        cap = table_capture(frame(), role)
        cap.fields[0]["tags"] = tags
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        return RunRecord(
            run_uuid=uuid7(),
            job="rollback.job",
            namespace="test",
            kind="other",
            status="COMPLETED",
            started_at=now,
            ended_at=now,
            actor="tester",
            datasets=[cap],
        )

    ID_CACHE.clear()
    with pytest.raises(TypeError):
        write_run(cat, record([object()]))  # the field's tags cannot be stored as JSON: rollback
    with cat.read() as s:
        assert s.exec(select(Job).where(Job.name == "rollback.job")).first() is None
    good = record(["pii"])
    assert write_run(cat, good)
    assert _job_of_runs(cat) == {good.run_uuid: "rollback.job"}
    with cat.read() as s:
        ((_edge, dv),) = s.exec(
            select(RunIO, DatasetVersion).join(DatasetVersion, col(DatasetVersion.id) == RunIO.artifact_id)
        ).all()
        assert s.get(Dataset, dv.dataset_id) is not None
        fields = s.exec(select(DatasetField).where(DatasetField.dataset_version_id == dv.id)).all()
        assert {f.name: f.tags for f in fields}["income"] == ["pii"]


def test_input_statistics_describe_the_input_before_the_step_mutates_it(cat: Catalog) -> None:
    @gov.step(kind="feature")
    def scrub(df: pd.DataFrame) -> pd.DataFrame:
        df["income"] = 0.0  # in place: the caller's frame changes too
        return df[["income", "debt"]]

    original = frame(seed=5)
    expected_mean = float(original["income"].mean())
    scrub(original)
    assert (original["income"] == 0.0).all()
    ((_, consumed, _),) = [e for e in io_of(cat, run_of(cat, "scrub")) if e[0].direction == "input"]
    assert consumed is not None and consumed.stats is not None
    income = consumed.stats["columns"]["income"]
    assert income["mean"] == pytest.approx(expected_mean) and income["max"] > 0


def test_tags_follow_columns_through_a_row_filter(cat: Catalog) -> None:
    """A train/test split changes every column's content but not what the columns are."""

    @gov.step(kind="feature")
    def holdout(features: pd.DataFrame) -> pd.DataFrame:
        return features[features["income"] > features["income"].median()].reset_index(drop=True)

    @gov.step(kind="feature")
    def renamed(features: pd.DataFrame) -> pd.DataFrame:
        return features.rename(columns={"sex": "gender"})

    raw = gov.tag(frame(), protected=["sex"], label="y")
    part = holdout(raw)
    renamed(part)
    run = run_of(cat, "holdout")
    ((_, out_dv, _),) = [e for e in io_of(cat, run) if e[0].direction == "output"]
    with cat.read() as s:
        fields = {f.name: f for f in s.exec(select(DatasetField).where(DatasetField.dataset_version_id == out_dv.id))}
        assert (fields["sex"].tags, fields["y"].tags, fields["income"].tags) == (["protected"], ["label"], [])
        edges = s.exec(select(ColumnLineage).where(ColumnLineage.run_id == run.id)).all()
        assert len(edges) == len(fields)
        assert {e.transformation for e in edges} == {"DIRECT"}
    # a renamed column is not assumed to be the old one: declare it with derived= to keep lineage
    run = run_of(cat, "renamed")
    ((_, out_dv, _),) = [e for e in io_of(cat, run) if e[0].direction == "output"]
    with cat.read() as s:
        fields = {f.name: f for f in s.exec(select(DatasetField).where(DatasetField.dataset_version_id == out_dv.id))}
        assert fields["gender"].tags == []
        assert fields["y"].tags == ["label"]


def _output_fields(catalog: Catalog, run: Run) -> dict[str, DatasetField]:
    ((_, out_dv, _),) = [e for e in io_of(catalog, run) if e[0].direction == "output"]
    assert out_dv is not None
    with catalog.read() as s:
        return {f.name: f for f in s.exec(select(DatasetField).where(DatasetField.dataset_version_id == out_dv.id))}


def test_a_proxy_stays_a_proxy_through_later_steps(cat: Catalog) -> None:
    """A feature derived from a protected column is still flagged after a train/test split."""

    @gov.step(kind="feature", derived={"income_rank_by_sex": ["income", "sex"]})
    def build(raw: pd.DataFrame) -> pd.DataFrame:
        return raw.assign(income_rank_by_sex=raw.groupby("sex")["income"].rank())

    @gov.step(kind="feature")
    def split(features: pd.DataFrame) -> pd.DataFrame:
        return features.iloc[: len(features) // 2].drop(columns=["sex"])

    split(build(gov.tag(frame(), protected=["sex"])))
    assert _output_fields(cat, run_of(cat, "build"))["income_rank_by_sex"].tags == ["proxy:protected"]
    after = _output_fields(cat, run_of(cat, "split"))
    assert "sex" not in after
    assert after["income_rank_by_sex"].tags == ["proxy:protected"]


def test_pyarrow_tables_and_directories_are_captured_through_a_step(cat: Catalog, tmp_path: Path) -> None:
    import pyarrow as pa

    @gov.step(kind="feature")
    def combine(table: pa.Table, folder: Path) -> pa.Table:
        return table.append_column("files", pa.array([len(list(folder.iterdir()))] * table.num_rows))

    folder = tmp_path / "shards"
    folder.mkdir()
    for i in range(3):
        (folder / f"part-{i}.csv").write_text(f"a,b\n{i},{i * 2}\n")
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    out = combine(table, folder)
    run = run_of(cat, "combine")
    by_role = {e.role: (e.direction, dv, ds) for e, dv, ds in io_of(cat, run)}
    direction, dv, ds = by_role["table"]
    assert direction == "input" and dv is not None and dv.content_hash == gov.fingerprint(table).hash
    assert dv.row_count == 3 and [f["name"] for f in dv.schema_fields or []] == ["a", "b"]
    direction, dv, ds = by_role["folder"]
    assert ds is not None and ds.kind == "directory" and ds.name == str(folder.resolve())
    assert dv is not None and dv.content_hash == gov.fingerprint(folder).hash and dv.row_count == 3
    direction, dv, _ = by_role["output"]
    assert direction == "output" and dv is not None and dv.content_hash == gov.fingerprint(out).hash


def test_an_adapter_that_raises_makes_the_value_a_parameter(
    cat: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    class Fragile:
        def __repr__(self) -> str:
            return "Fragile()"

    @capture_adapter.register(Fragile)
    def _(obj: Fragile, role: CaptureRole) -> Any:
        raise RuntimeError("adapter bug")

    @gov.step(kind="other")
    def use(thing: Fragile, n: int) -> int:
        return n + 1

    with caplog.at_level("DEBUG", logger="governance"):  # the first failure in a process is a warning
        assert use(Fragile(), 41) == 42  # the step's result is untouched
    run = run_of(cat, "use")
    assert run.status == "COMPLETED"
    assert run.params["thing"] == {"type": f"{Fragile.__module__}.{Fragile.__qualname__}", "repr": "Fragile()"}
    assert run.params["n"] == 41
    assert "adapter bug" in caplog.text


def test_an_async_step_reraises_the_same_exception(cat: Catalog) -> None:
    boom = KeyError("missing column")

    @gov.step(kind="feature")
    async def build(raw: pd.DataFrame) -> pd.DataFrame:
        await asyncio.sleep(0)
        raise boom

    with pytest.raises(KeyError) as info:
        asyncio.run(build(frame()))
    assert info.value is boom
    run = run_of(cat, "build")
    assert run.status == "FAILED" and run.error_type == "KeyError"


def test_a_pipeline_is_versioned_with_its_parameters(cat: Catalog) -> None:
    @gov.step(kind="training", model="piped")
    def train(data: pd.DataFrame) -> Any:
        model = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.25, max_iter=200))
        return model.fit(data[["income", "debt"]], data["y"])

    train(frame())
    with cat.read() as s:
        mv = s.exec(select(ModelVersion)).one()
    assert mv.params["standardscaler__with_mean"] is False
    assert mv.params["logisticregression__C"] == 0.25 and mv.params["logisticregression__max_iter"] == 200
    assert mv.features == ["income", "debt"] and mv.flavor == "sklearn"
