"""``gov import mlflow``: runs, ``mlflow.data`` inputs, registered models, versions and aliases.

What lands where:

* an MLflow run -> a ``Run`` (uuid = the MLflow run id as a UUID; job = the experiment's name in
  namespace ``mlflow``) written by the lineage writer :func:`governance.lineage.write_run`, so it is
  audited (``run.complete``/``run.fail``) and idempotent on the run id.  Params stay params; the
  metrics, tags, run name, experiment and artifact URI go to ``Run.environment["mlflow"]``; the user
  to ``Run.user``; ``mlflow.source.git.commit`` to ``Run.git_commit``;
* each ``mlflow.data`` input -> a ``DatasetVersion`` read by that run: identity from the source's URI
  (OpenLineage naming, the same row a decorated step reading that file uses), else namespace
  ``mlflow`` and the dataset's name; MLflow's digest is the version's content hash with
  ``hash_algo = "mlflow-digest"`` and ``coverage = "sampled"`` (an identity MLflow computed, not a
  full-content fingerprint we can re-verify); the schema's columns become fields; the input's context
  (``training``, ``eval``) is the edge's role;
* a registered model version -> a ``ModelVersion`` with MLflow's number, its artifact digest
  (:mod:`governance.mlflow._digest`, over the files the registry serves), the storage URI, flavor,
  the signature's input names as features, the source run's params and metrics, and an output edge
  from the source run (so ``gov lineage`` reaches the training run and its datasets); the MLflow
  details (source, run id, signature) are in its ``mlflow.model_version.import`` audit event;
* an alias -> the ``ModelAlias`` pointer, moved with a ``PromotionEvent`` of action ``imported``
  (an observation, never a gated promotion: ``gov mlflow reconcile`` reports it unless a PASS matches).

Incremental: per experiment, a watermark (the largest ``end_time`` imported) is stored in the
``mlflow.import`` audit event that closes each import; the next import asks MLflow only for runs that
ended at or after it (ties are skipped by the idempotent writer).  Unfinished runs and versions not
``READY`` are left for a later import.  Model versions already in the catalog are not downloaded
again.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from governance.audit import AuditedTransaction, audited, resolve_actor
from governance.catalog import (
    AuditEvent,
    Catalog,
    Model,
    ModelAlias,
    ModelVersion,
    PromotionEvent,
    Run,
    open_catalog,
)
from governance.config import load_settings
from governance.errors import InputError, NotFoundError
from governance.lineage import DatasetCapture, RunRecord, record_model_version, write_run
from governance.mlflow._client import Connection, connect, first_line
from governance.mlflow._digest import TREE_ALGO, downloaded_model, tree_digest
from governance.openlineage import GraphWriter, dataset_identity

__all__ = ["DATASET_DIGEST_ALGO", "IMPORT_ACTION", "ImportReport", "import_mlflow", "read_watermarks", "run_uuid"]

IMPORT_ACTION = "mlflow.import"
DATASET_DIGEST_ALGO = "mlflow-digest"
NAMESPACE = "mlflow"
_STATUS = {"FINISHED": "COMPLETED", "FAILED": "FAILED", "KILLED": "ABORTED"}
_PAGE = 1000
_SKIP_TAGS = ("mlflow.log-model.history",)  # large JSON documents, kept in MLflow
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")  # the registry's stage names


@dataclass
class ImportReport:
    """Counts of one import; ``problems`` holds ``(where, reason)`` for what was left out."""

    tracking_uri: str
    runs_read: int = 0
    runs_imported: int = 0
    runs_unchanged: int = 0
    datasets: int = 0
    versions_imported: int = 0
    versions_unchanged: int = 0
    aliases_moved: int = 0
    watermarks: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    audit_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "runs": {"read": self.runs_read, "imported": self.runs_imported, "unchanged": self.runs_unchanged},
            "dataset_inputs": self.datasets,
            "model_versions": {"imported": self.versions_imported, "unchanged": self.versions_unchanged},
            "aliases_moved": self.aliases_moved,
            "watermarks": dict(sorted(self.watermarks.items())),
            "problems": [{"where": w, "reason": r} for w, r in self.problems],
        }


def run_uuid(mlflow_run_id: str) -> str:
    """Our run uuid for an MLflow run id (32 hex digits as a UUID; any other id hashed into a UUID)."""
    try:
        return str(uuid.UUID(hex=mlflow_run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlflow-run:{mlflow_run_id}"))


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _schema_fields(text: str | None) -> tuple[list[dict[str, Any]], str | None]:
    if not text:
        return [], None
    try:
        doc = json.loads(text)
    except ValueError:
        return [], None
    specs = doc.get("mlflow_colspec") or [] if isinstance(doc, dict) else []  # tensor specs carry no columns
    fields = [
        {"name": str(spec.get("name", i)), "dtype": str(spec.get("type")), "position": i, "tags": []}
        for i, spec in enumerate(specs) if isinstance(spec, dict)
    ]
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return fields, "sha256:" + hashlib.sha256(canonical).hexdigest()


def _dataset_capture(dataset_input: Any) -> DatasetCapture:
    ds = dataset_input.dataset
    tags = {t.key: t.value for t in (dataset_input.tags or [])}
    try:
        source = json.loads(ds.source) if ds.source else {}
    except ValueError:
        source = {}
    location = next((source.get(k) for k in ("uri", "url", "path") if isinstance(source, dict) and source.get(k)),
                    None)
    namespace, name = NAMESPACE, str(ds.name)
    if isinstance(location, str):
        try:
            namespace, name = dataset_identity(location)
        except (ValueError, InputError):
            location = None
    fields, schema_hash = _schema_fields(ds.schema)
    try:
        rows = json.loads(ds.profile).get("num_rows") if ds.profile else None
    except (ValueError, AttributeError):
        rows = None
    return DatasetCapture(
        role=str(tags.get("mlflow.data.context") or "input"), direction="input", namespace=namespace, name=name,
        kind="table", uri=location if isinstance(location, str) else None, content_hash=str(ds.digest),
        hash_algo=DATASET_DIGEST_ALGO, coverage="sampled", schema_hash=schema_hash,
        row_count=rows if isinstance(rows, int) else None, byte_size=None, fields=fields,
    )


def _run_record(run: Any, experiment: str, tracking_uri: str, actor: str) -> RunRecord | None:
    info = run.info
    status = _STATUS.get(str(info.status))
    if status is None or info.end_time is None:
        return None  # still running: a later import takes it
    tags = {k: v for k, v in run.data.tags.items() if k not in _SKIP_TAGS}
    inputs = list(getattr(run.inputs, "dataset_inputs", None) or []) if run.inputs else []
    datasets = [_dataset_capture(i) for i in inputs if getattr(i, "dataset", None) is not None]
    started = datetime.fromtimestamp((info.start_time or info.end_time) / 1000, UTC)
    return RunRecord(
        run_uuid=run_uuid(info.run_id), job=experiment, namespace=NAMESPACE,
        kind="training" if any(d.role == "training" for d in datasets) else "other",
        status=status, started_at=started, ended_at=_time(info.end_time), actor=actor,
        params=dict(run.data.params),
        environment={"mlflow": {
            "tracking_uri": tracking_uri, "run_id": info.run_id, "run_name": info.run_name,
            "experiment_id": info.experiment_id, "experiment": experiment, "status": str(info.status),
            "artifact_uri": info.artifact_uri, "metrics": dict(run.data.metrics), "tags": tags,
        }},
        user=info.user_id or tags.get("mlflow.user"), source_file=tags.get("mlflow.source.name"),
        git_commit=tags.get("mlflow.source.git.commit"), datasets=datasets,
    )


def _paged(fetch: Any) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _prefetched(fetch: Any) -> Iterator[Any]:
    """Like :func:`_paged`, asking the server for the next page while the caller handles this one."""
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gov-mlflow-page") as pool:
        pending: Future[Any] | None = pool.submit(fetch, None)
        while pending is not None:
            page = pending.result()
            token = getattr(page, "token", None)
            pending = pool.submit(fetch, token) if token else None
            yield from page


def read_watermarks(catalog: Catalog, tracking_uri: str) -> dict[str, int]:
    """Per experiment id, the largest run ``end_time`` (ms) imported from ``tracking_uri`` so far."""
    with catalog.read() as session:
        rows = session.exec(
            select(AuditEvent.payload)
            .where(AuditEvent.action == IMPORT_ACTION, AuditEvent.subject == f"mlflow:{tracking_uri}")
            .order_by(col(AuditEvent.seq).desc())
        ).all()
    marks: dict[str, int] = {}
    for payload in rows:
        data = json.loads(payload).get("data") or {}
        for exp, mark in (data.get("watermarks") or {}).items():
            marks.setdefault(str(exp), int(mark))
    return marks


def _experiments(conn: Connection, names: Sequence[str], models: Sequence[str]) -> list[Any]:
    client = conn.client
    if names:
        found = []
        for name in names:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise NotFoundError(f"--experiment: no experiment {name!r} on {conn.uri}")
            found.append(exp)
        return found
    if models:
        return []  # only the models (and their source runs)
    return list(_paged(lambda token: client.search_experiments(max_results=_PAGE, page_token=token)))


def _import_runs(conn: Connection, catalog: Catalog, actor: str, experiment: Any, since: int,
                 report: ImportReport, page_size: int) -> int:
    mark = since
    name = str(experiment.name)

    def fetch(token: str | None) -> Any:
        return conn.client.search_runs(
            [experiment.experiment_id], filter_string=f"attributes.end_time >= {int(since)}",
            order_by=["attributes.end_time ASC"], max_results=page_size, page_token=token)

    for run in _prefetched(fetch):
        report.runs_read += 1
        record = _run_record(run, name, conn.uri, actor)
        if record is None:
            continue
        if write_run(catalog, record):
            report.runs_imported += 1
            report.datasets += len(record.datasets)
        else:
            report.runs_unchanged += 1
        mark = max(mark, int(run.info.end_time))
    return mark


def _our_run(session: Session, mlflow_run_id: str | None) -> Run | None:
    if not mlflow_run_id:
        return None
    return session.exec(select(Run).where(Run.run_uuid == run_uuid(mlflow_run_id))).first()


def _our_version(session: Session, name: str, version: int) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion).join(Model, Model.id == ModelVersion.model_id)  # type: ignore[arg-type]
        .where(Model.name == name, ModelVersion.version == version)
    ).first()


def _ensure_source_run(conn: Connection, catalog: Catalog, actor: str, run_id: str | None,
                       experiments: dict[str, str], report: ImportReport) -> None:
    """Import a model version's source run when an experiment filter left it out."""
    if not run_id:
        return
    with catalog.read() as session:
        if _our_run(session, run_id) is not None:
            return
    try:
        run = conn.client.get_run(run_id)
    except conn.mlflow.exceptions.MlflowException as exc:
        report.problems.append((f"run {run_id}", f"source run not readable: {str(exc).splitlines()[0]}"))
        return
    exp_id = str(run.info.experiment_id)
    if exp_id not in experiments:
        experiments[exp_id] = str(conn.client.get_experiment(exp_id).name)
    record = _run_record(run, experiments[exp_id], conn.uri, actor)
    if record is not None and write_run(catalog, record):
        report.runs_imported += 1
        report.datasets += len(record.datasets)


def _mlmodel(path: Path) -> tuple[str | None, dict[str, Any] | None, list[str]]:
    """(flavor, signature, input names) from the version's ``MLmodel`` file, when there is one."""
    import yaml

    mlmodel = path / "MLmodel" if path.is_dir() else None
    if mlmodel is None or not mlmodel.is_file():
        return None, None, []
    try:
        doc = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None, None, []
    flavors = [f for f in (doc.get("flavors") or {}) if f != "python_function"]
    signature = doc.get("signature") if isinstance(doc.get("signature"), dict) else None
    names: list[str] = []
    if signature and isinstance(signature.get("inputs"), str):
        try:
            names = [str(s["name"]) for s in json.loads(signature["inputs"]) if isinstance(s, dict) and "name" in s]
        except (ValueError, TypeError):
            names = []
    flavor = flavors[0] if flavors else ("python_function" if doc.get("flavors") else None)
    return flavor, signature, names


def _import_version(conn: Connection, catalog: Catalog, actor: str, mv: Any, report: ImportReport) -> None:
    name, number = str(mv.name), int(mv.version)
    where = f"models:/{name}/{number}"
    if str(mv.status) != "READY":
        report.problems.append((where, f"status {mv.status}; imported once READY"))
        return
    with catalog.read() as session:
        existing = _our_version(session, name, number)
        if existing is not None and existing.hash_algo == TREE_ALGO:
            report.versions_unchanged += 1
            return
    if existing is not None:
        report.problems.append((where, f"the catalog already has {name}@{number} from another source "
                                       f"({existing.hash_algo or 'no artifact hash'}); left as it is"))
        return
    with downloaded_model(conn, name, number) as local:
        digest = tree_digest(local)
        flavor, signature, features = _mlmodel(local)
    storage = conn.client.get_model_version_download_uri(name, str(number))
    with audited(catalog, actor) as tx:
        if _our_version(tx.session, name, number) is not None:  # imported meanwhile by another process
            report.versions_unchanged += 1
            return
        run = _our_run(tx.session, mv.run_id)
        env = dict(run.environment or {}).get("mlflow", {}) if run is not None else {}
        row = record_model_version(
            tx, name, version=number, artifact_hash=digest, hash_algo=TREE_ALGO, artifact_uri=storage,
            flavor=flavor, params=dict(run.params) if run is not None else {},
            metrics=dict(env.get("metrics") or {}), features=features,
            training_run_id=run.id if run is not None else None,
        )
        if run is not None:
            GraphWriter(tx).insert_edges([{"run_id": int(run.id or 0), "artifact_kind": "model",
                                           "artifact_id": int(row.id or 0), "direction": "output",
                                           "role": "model", "created_at": tx.time}])
        tx.record("mlflow.model_version.import", f"model:{name}@{number}", {
            "tracking_uri": conn.uri, "source": mv.source, "run_id": mv.run_id, "artifact_uri": storage,
            "artifact_hash": digest, "hash_algo": TREE_ALGO, "signature": signature,
            "mlflow_user": mv.user_id or None, "created_ms": mv.creation_timestamp,
        })
    report.versions_imported += 1


def sync_alias(tx: AuditedTransaction, name: str, alias: str, version: int, reason: str) -> bool:
    """Point our ``alias`` of ``name`` at ``version`` as MLflow has it (an ``imported`` event); False
    when it already points there.  Raises :class:`NotFoundError` for a version not in the catalog."""
    session = tx.session
    target = _our_version(session, name, version)
    if target is None:
        raise NotFoundError(f"{name}@{version} is not in the catalog (import its version first)")
    model_id = target.model_id
    current = session.exec(select(ModelAlias).where(ModelAlias.model_id == model_id,
                                                    ModelAlias.alias == alias)).first()
    if current is not None and current.model_version_id == target.id:
        return False
    from_id = None if current is None else current.model_version_id
    if current is None:
        session.add(ModelAlias(model_id=model_id, alias=alias, model_version_id=int(target.id or 0),
                               updated_at=tx.time))
    else:
        current.model_version_id, current.updated_at = int(target.id or 0), tx.time
        session.add(current)
    event = PromotionEvent(model_id=model_id, alias=alias, action="imported", from_version_id=from_id,
                           to_version_id=target.id, actor=tx.actor, reason=reason, created_at=tx.time)
    session.add(event)
    session.flush()
    from_version = None if from_id is None else session.get(ModelVersion, from_id)
    tx.record("promotion.imported", f"model:{name}@{alias}", {
        "event_id": event.id, "version": version, "stage": alias,
        "from_version": None if from_version is None else from_version.version, "reason": reason,
    })
    return True


def _import_aliases(conn: Connection, catalog: Catalog, actor: str, name: str, aliases: dict[str, str],
                    report: ImportReport) -> None:
    for alias, version in sorted(aliases.items()):
        where = f"models:/{name}@{alias}"
        try:
            if not _ALIAS.match(alias) or alias.lower() == "latest":
                raise InputError(f"alias {alias!r}: the catalog's aliases start with a letter and use letters, "
                                 "digits, '_', '.', '-' (at most 128)")
            with audited(catalog, actor) as tx:
                if sync_alias(tx, name, alias, int(version), f"alias set in MLflow ({conn.uri}), not gated here"):
                    report.aliases_moved += 1
        except InputError as exc:
            report.problems.append((where, str(exc)))


def _import_description(catalog: Catalog, actor: str, name: str, description: str | None) -> None:
    """A registered model's MLflow description fills in ours when we have none (never overwrites)."""
    if not description:
        return
    with audited(catalog, actor) as tx:
        model = tx.session.exec(select(Model).where(Model.name == name)).first()
        if model is None or model.description:
            return
        model.description = description
        tx.session.add(model)
        tx.record("model.update", f"model:{name}", {"description": description, "source": "mlflow"})


def _quoted(name: str) -> str:
    if "'" not in name:
        return f"'{name}'"
    if '"' not in name:
        return f'"{name}"'
    raise InputError(f"--model: MLflow's search cannot name a model with both quote characters: {name!r}")


def import_mlflow(
    tracking_uri: str | None,
    *,
    experiments: Sequence[str] = (),
    models: Sequence[str] = (),
    catalog: Catalog | None = None,
    actor: str | None = None,
    page_size: int = _PAGE,
) -> ImportReport:
    """Import from an MLflow tracking server into the catalog (see the module docstring).

    ``experiments`` limits runs to those experiments (by name; default all active ones, or none when
    only ``models`` are given) and, without ``models``, the registry part to the versions trained in
    them; ``models`` limits the registry part to those registered models (default all).  A model
    version's source run is imported even when its experiment was left out.
    """
    conn = connect(tracking_uri)
    settings = load_settings()
    cat = catalog if catalog is not None else open_catalog(settings)
    who = actor or resolve_actor(None, settings)
    try:
        return _import(conn, cat, who, experiments, models, page_size)
    except conn.mlflow.exceptions.MlflowException as exc:
        raise InputError(f"MLflow at {conn.uri}: {first_line(exc)}") from exc


def _import(conn: Connection, cat: Catalog, who: str, experiments: Sequence[str], models: Sequence[str],
            page_size: int) -> ImportReport:
    report = ImportReport(conn.uri)
    marks = read_watermarks(cat, conn.uri)
    exp_names: dict[str, str] = {}
    for exp in _experiments(conn, experiments, models):
        exp_id = str(exp.experiment_id)
        exp_names[exp_id] = str(exp.name)
        report.watermarks[exp_id] = _import_runs(conn, cat, who, exp, marks.get(exp_id, 0), report, page_size)
    client = conn.client
    if models:
        names = []
        for name in models:
            if not client.search_registered_models(filter_string=f"name = {_quoted(name)}"):
                raise NotFoundError(f"--model: no registered model {name!r} on {conn.uri}")
            names.append(name)
    else:
        names = [m.name for m in _paged(lambda t: client.search_registered_models(max_results=_PAGE, page_token=t))]
    for name in names:
        model = client.get_registered_model(name)
        versions = sorted(
            _paged(lambda t, n=name: client.search_model_versions(filter_string=f"name = {_quoted(n)}",
                                                                  max_results=_PAGE, page_token=t)),
            key=lambda v: int(v.version))
        for mv in versions:
            if experiments and not models:  # only the versions trained in those experiments
                with cat.read() as session:
                    if _our_run(session, mv.run_id) is None:
                        continue
            _ensure_source_run(conn, cat, who, mv.run_id, exp_names, report)
            _import_version(conn, cat, who, mv, report)
        _import_description(cat, who, name, getattr(model, "description", None))
        _import_aliases(conn, cat, who, name, dict(getattr(model, "aliases", None) or {}), report)
    with audited(cat, who) as tx:
        link = tx.record(IMPORT_ACTION, f"mlflow:{conn.uri}", {
            **report.as_dict(), "experiments": sorted(exp_names.values()), "models": sorted(names),
        })
        report.audit_seq = link.seq
    return report
