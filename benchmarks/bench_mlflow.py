"""``gov import mlflow``: runs imported per second from a real MLflow tracking server.

    python -m benchmarks.bench_mlflow [--quick]

Setup: a SQLite MLflow backend with one experiment of N finished runs (10,000; 300 with ``--quick``),
each with 3 params, 2 metrics, 2 tags and one ``mlflow.data`` input (10 distinct datasets with a
schema and a profile).  One template run is logged through MLflow's own ``SqlAlchemyStore``; the
others are written in bulk through MLflow's own SQLAlchemy models (logging 10,000 runs through the
REST API would take longer than the benchmark).  Then ``mlflow server`` serves that backend on
127.0.0.1 (the same launcher as the tests).

Measured: ``import_mlflow`` of the experiment into an empty SQLite file catalog, over HTTP: every run
paged from ``search_runs``, written by the lineage writer (run, job, dataset versions, edges, audit
events, OpenLineage outbox rows), and the closing watermark event.  Target: 10,000 runs in <= 60 s,
i.e. >= 166.7 runs/s.  Peer: the MLflow client alone paging the same runs with ``search_runs`` (the
read part of the import, nothing written), to show what the catalog write adds.  Also measured: a
second, incremental import with nothing new (the watermark makes it ask only for the last run).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from benchmarks._common import Result

__all__ = ["run"]

_DATASETS = 10


def _seed(db_uri: str, artifacts: Path, runs: int) -> str:
    """Create the experiment and ``runs`` finished runs in MLflow's backend; the experiment's name."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
    from mlflow.store.tracking.dbmodels import models as m
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, artifacts.as_uri())
    name = "bench-import"
    exp_id = store.create_experiment(name)
    schema = json.dumps({"mlflow_colspec": [{"type": "double", "name": f"x{i}", "required": True} for i in range(8)]})
    datasets = [Dataset(name=f"features-{d}", digest=f"{d:08x}", source_type="local",
                        source=json.dumps({"uri": f"/data/features-{d}.parquet"}), schema=schema,
                        profile=json.dumps({"num_rows": 10_000, "num_elements": 80_000}))
                for d in range(_DATASETS)]
    template = store.create_run(exp_id, user_id="bench", start_time=0, tags=[], run_name="template")
    for dataset in datasets:  # registers the datasets through MLflow's own code path
        store.log_inputs(template.info.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
    store.log_batch(template.info.run_id, [Metric("auc", 0.8, 0, 0)], [Param("C", "1.0")], [RunTag("team", "risk")])
    store.update_run_info(template.info.run_id, RunStatus.FINISHED, 1, None)
    with store.ManagedSessionMaker() as session:
        uuids = {row.name: row.dataset_uuid for row in session.query(m.SqlDataset).all()}
        base = 1_700_000_000_000
        rows: list[Any] = []
        for i in range(runs - 1):
            run_id = uuid.uuid4().hex
            start = base + i * 1000
            rows.append(m.SqlRun(run_uuid=run_id, name=f"run-{i}", source_type="LOCAL", source_name="train.py",
                                 entry_point_name="", user_id="bench", status="FINISHED", start_time=start,
                                 end_time=start + 500, source_version="", lifecycle_stage="active",
                                 artifact_uri=f"{artifacts.as_uri()}/{exp_id}/{run_id}/artifacts",
                                 experiment_id=int(exp_id)))
            rows += [m.SqlParam(key=k, value=v, run_uuid=run_id)
                     for k, v in (("C", str(i % 7)), ("penalty", "l2"), ("seed", str(i)))]
            for key, value in (("auc", 0.7 + (i % 100) / 1000), ("accuracy", 0.8)):
                rows.append(m.SqlMetric(key=key, value=value, timestamp=start, step=0, is_nan=False, run_uuid=run_id))
                rows.append(m.SqlLatestMetric(key=key, value=value, timestamp=start, step=0, is_nan=False,
                                              run_uuid=run_id))
            rows += [m.SqlTag(key="mlflow.user", value="bench", run_uuid=run_id),
                     m.SqlTag(key="mlflow.source.git.commit", value=f"{i:040x}", run_uuid=run_id)]
            input_id = uuid.uuid4().hex
            rows.append(m.SqlInput(input_uuid=input_id, source_type="DATASET",
                                   source_id=uuids[f"features-{i % _DATASETS}"], destination_type="RUN",
                                   destination_id=run_id))
            rows.append(m.SqlInputTag(input_uuid=input_id, name="mlflow.data.context", value="training"))
        session.bulk_save_objects(rows)
    store.engine.dispose()
    return name


def run(quick: bool = False) -> list[Result]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from governance.catalog import Catalog
    from governance.mlflow import import_mlflow
    from tests._mlflow_support import running_server

    runs = 300 if quick else 10_000
    # the template run counts: it ends first (end_time 1 ms), the bulk ones after it
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        warnings.simplefilter("ignore")  # mlflow's own deprecation and source-resolution warnings
        root = Path(tmp)
        db_uri = f"sqlite:///{root / 'server' / 'mlflow.db'}"
        (root / "server").mkdir()
        experiment = _seed(db_uri, root / "server" / "artifacts", runs)
        with running_server(root / "server", backend=db_uri) as server:
            import mlflow

            client = mlflow.MlflowClient(server.uri)
            exp_id = client.get_experiment_by_name(experiment).experiment_id
            start = time.perf_counter()
            token, seen = None, 0
            while True:
                page = client.search_runs([exp_id], max_results=1000, page_token=token,
                                          order_by=["attributes.end_time ASC"])
                seen += len(page)
                token = page.token
                if not token:
                    break
            peer_seconds = time.perf_counter() - start
            catalog = Catalog(f"sqlite:///{root / 'catalog.db'}")
            start = time.perf_counter()
            report = import_mlflow(server.uri, experiments=[experiment], catalog=catalog, actor="bench")
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            again = import_mlflow(server.uri, experiments=[experiment], catalog=catalog, actor="bench")
            incremental = time.perf_counter() - start
            catalog.dispose()
    if report.runs_imported != runs or seen != runs:
        raise RuntimeError(f"imported {report.runs_imported} and listed {seen} of {runs} runs")
    note = (f"{runs} runs with 3 params, 2 metrics, 2 tags and a dataset input each: {seconds:.1f} s "
            f"(target: 10,000 in <= 60 s); MLflow's search_runs alone: {peer_seconds:.1f} s")
    return [
        Result(f"import {runs} MLflow runs over HTTP", runs / seconds, "runs/s", target=10_000 / 60,
               higher_is_better=True, peer="mlflow search_runs (read only)", peer_measured=runs / peer_seconds,
               note=note),
        Result("incremental import, nothing new", incremental * 1000, "ms",
               note=f"read {again.runs_read} run(s) past the watermark, imported {again.runs_imported}"),
    ]


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result.as_dict())
