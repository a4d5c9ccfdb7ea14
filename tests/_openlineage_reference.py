"""The OpenLineage document builder as it was before shipping built a round's documents from one
read per kind of row (``governance/openlineage/_events.py`` at commit b7e9853): one run at a time,
four to five precompiled reads per run.  Kept frozen as the reference the batched builder must
match, document for document (``tests/test_openlineage_batch_build.py``); not used by the library.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from governance.catalog import (
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Model,
    ModelVersion,
    RawConnection,
    Run,
    RunIO,
    Statement,
    utcnow,
)
from governance.errors import InputError, NotFoundError
from governance.openlineage._facets import (
    Transformation,
    column_lineage_facet,
    data_source_facet,
    dataset_type_facet,
    dataset_version_facet,
    error_message_facet,
    execution_parameters_facet,
    job_type_facet,
    model_version_facet,
    output_statistics_facet,
    parent_facet,
    processing_engine_facet,
    run_facet,
    schema_facet,
    source_code_location_facet,
    tags_dataset_facet,
)
from governance.openlineage._naming import PRODUCER, RUN_EVENT_SCHEMA_URL, model_dataset

__all__ = ["reference_run_events"]


EVENT_TYPES = ("START", "COMPLETE", "FAIL", "ABORT")

_r = sa.inspect(Run).local_table
_j = sa.inspect(Job).local_table
_io = sa.inspect(RunIO).local_table
_dv = sa.inspect(DatasetVersion).local_table
_d = sa.inspect(Dataset).local_table
_mv = sa.inspect(ModelVersion).local_table
_m = sa.inspect(Model).local_table
_f = sa.inspect(DatasetField).local_table
_cl = sa.inspect(ColumnLineage).local_table
_pr = _r.alias("parent_run")
_pj = _j.alias("parent_job")
_fo = _f.alias("out_field")
_fi = _f.alias("in_field")
_dvi = _dv.alias("in_version")
_di = _d.alias("in_dataset")

_DATASET: sa.ColumnElement[str] = sa.literal_column("'dataset'")
_MODEL: sa.ColumnElement[str] = sa.literal_column("'model'")

_RUN_QUERY = Statement(
    sa.select(
        _r.c.run_uuid, _r.c.status, _r.c.started_at, _r.c.ended_at, _r.c.params, _r.c.user, _r.c.host,
        _r.c.code_hash, _r.c.source_file, _r.c.git_commit, _r.c.git_dirty, _r.c.error_type,
        _r.c.error_message, _r.c.error_traceback,
        _j.c.namespace, _j.c.name, _j.c.kind, _j.c.source_file.label("job_source_file"),
        _pr.c.run_uuid.label("parent_uuid"), _pr.c.parent_run_id.label("grandparent_id"),
        _pj.c.namespace.label("parent_ns"), _pj.c.name.label("parent_name"),
    )
    .select_from(_r.join(_j, _j.c.id == _r.c.job_id)
                 .outerjoin(_pr, _pr.c.id == _r.c.parent_run_id)
                 .outerjoin(_pj, _pj.c.id == _pr.c.job_id))
    .where(_r.c.id == sa.bindparam("run_id"))
)

_IO_QUERY = Statement(
    sa.select(
        _io.c.direction, _io.c.artifact_kind,
        _dv.c.id.label("dv_id"), _dv.c.version.label("dv_version"), _dv.c.content_hash, _dv.c.row_count,
        _dv.c.byte_size, _d.c.namespace.label("ds_ns"), _d.c.name.label("ds_name"),
        _d.c.kind.label("ds_kind"),
        _mv.c.version.label("mv_version"), _mv.c.artifact_hash, _mv.c.hash_algo.label("mv_algo"),
        _mv.c.artifact_uri, _mv.c.flavor, _m.c.name.label("model_name"),
    )
    .select_from(
        _io.outerjoin(_dv, sa.and_(_io.c.artifact_kind == _DATASET, _dv.c.id == _io.c.artifact_id))
        .outerjoin(_d, _d.c.id == _dv.c.dataset_id)
        .outerjoin(_mv, sa.and_(_io.c.artifact_kind == _MODEL, _mv.c.id == _io.c.artifact_id))
        .outerjoin(_m, _m.c.id == _mv.c.model_id)
    )
    .where(_io.c.run_id == sa.bindparam("run_id"))
    .order_by(_io.c.id)
)

_FIELDS_QUERY = Statement(
    sa.select(_f.c.dataset_version_id, _f.c.name, _f.c.dtype, _f.c.position, _f.c.tags)
    .where(_f.c.dataset_version_id.in_(
        sa.select(_io.c.artifact_id)
        .where(_io.c.run_id == sa.bindparam("run_id"), _io.c.artifact_kind == _DATASET)
        .scalar_subquery()))
    .order_by(_f.c.dataset_version_id, _f.c.position, _f.c.id)
)

_COLUMN_LINEAGE_QUERY = Statement(
    sa.select(sa.func.coalesce(_fo.c.dataset_version_id, _cl.c.output_version_id).label("dataset_version_id"),
              _fo.c.name.label("out_field"), _di.c.namespace, _di.c.name,
              _fi.c.name.label("in_field"), _cl.c.transformation, _cl.c.subtype, _cl.c.description, _cl.c.masking)
    .select_from(_cl.outerjoin(_fo, _fo.c.id == _cl.c.output_field_id)
                 .join(_fi, _fi.c.id == _cl.c.input_field_id)
                 .join(_dvi, _dvi.c.id == _fi.c.dataset_version_id)
                 .join(_di, _di.c.id == _dvi.c.dataset_id))
    .where(_cl.c.run_id == sa.bindparam("run_id"))
    .order_by(_cl.c.id)
)

_ANCESTOR = Statement(
    sa.select(_r.c.run_uuid, _r.c.parent_run_id, _j.c.namespace, _j.c.name)
    .select_from(_r.join(_j, _j.c.id == _r.c.job_id)).where(_r.c.id == sa.bindparam("run_id"))
)
_MAX_DEPTH = 1000  # a cycle in parent links (a damaged catalog) must not loop forever


_DATASET_TYPES = {"file": "FILE", "table": "TABLE", "frame": "TABLE", "model": "MODEL"}

def wire_time(value: datetime) -> str:
    """ISO 8601 with an explicit UTC offset (SQLite hands back naive UTC datetimes)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")



def reference_run_events(session: Session, run_id: int, event_types: Sequence[str]) -> list[dict[str, Any]]:
    """The ``RunEvent``s of ``event_types`` for run ``run_id``, in that order, from one read of its rows
    (the run and job facets are built once and shared by the documents)."""
    for event_type in event_types:
        if event_type not in EVENT_TYPES:
            raise InputError(f"event_type: expected one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
    raw = RawConnection(session)
    found = _RUN_QUERY.all(raw, run_id=run_id)
    if not found:
        raise NotFoundError(f"run id {run_id}: no such run in the catalog")
    run = found[0]

    job_facets: dict[str, Any] = {"jobType": job_type_facet(run.kind)}
    source_file = run.source_file or run.job_source_file
    if source_file:
        job_facets["sourceCodeLocation"] = source_code_location_facet(source_file, run.git_commit)

    run_facets: dict[str, Any] = {
        "processing_engine": processing_engine_facet(),
        "governance_run": run_facet(status=run.status, code_hash=run.code_hash, git_dirty=run.git_dirty,
                                    user=run.user, host=run.host),
    }
    if run.params:
        run_facets["executionParameters"] = execution_parameters_facet(run.params)
    if run.parent_uuid is not None:
        root = (run.parent_uuid, run.parent_ns, run.parent_name)
        ancestor, hops = run.grandparent_id, 0
        while ancestor is not None and hops < _MAX_DEPTH:  # the outermost run, however deep the nesting
            up = _ANCESTOR.first(raw, run_id=ancestor)
            if up is None:
                break
            root, ancestor, hops = (up.run_uuid, up.namespace, up.name), up.parent_run_id, hops + 1
        run_facets["parent"] = parent_facet(run.parent_uuid, run.parent_ns, run.parent_name, root)
    job = {"namespace": run.namespace, "name": run.name, "facets": job_facets}
    started_facets = {**run_facets, "governance_run": run_facet(
        status="RUNNING", code_hash=run.code_hash, git_dirty=run.git_dirty, user=run.user, host=run.host)}

    io: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
    docs: list[dict[str, Any]] = []
    for event_type in event_types:
        facets = run_facets
        if event_type == "FAIL" and (run.error_message or run.error_type):
            message = f"{run.error_type}: {run.error_message}" if run.error_type else str(run.error_message)
            facets = {**run_facets, "errorMessage": error_message_facet(message, run.error_traceback)}
        if event_type == "START":
            facets = started_facets  # RUNNING, whenever the document is built
            inputs: list[dict[str, Any]] = []
            outputs: list[dict[str, Any]] = []
        else:
            if io is None:
                io = _datasets(raw, run_id, run.namespace)
            inputs, outputs = io
        when = run.started_at if event_type == "START" else (run.ended_at or utcnow())
        docs.append({
            "eventType": event_type,
            "eventTime": wire_time(when),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT_SCHEMA_URL,
            "run": {"runId": run.run_uuid, "facets": facets},
            "job": job,
            "inputs": inputs,
            "outputs": outputs,
        })
    return docs


def _datasets(raw: RawConnection, run_id: int, job_namespace: str,
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    edges = _IO_QUERY.all(raw, run_id=run_id)
    if not edges:
        return [], []
    fields: dict[int, list[Any]] = defaultdict(list)
    if any(e.dv_id is not None for e in edges):
        for row in _FIELDS_QUERY.all(raw, run_id=run_id):
            fields[row.dataset_version_id].append(row)
    lineage: dict[int, dict[str | None, list[Transformation]]] = defaultdict(lambda: defaultdict(list))
    if any(e.direction == "output" and e.dv_id is not None for e in edges):
        for row in _COLUMN_LINEAGE_QUERY.all(raw, run_id=run_id):
            lineage[row.dataset_version_id][row.out_field].append(Transformation(
                row.namespace, row.name, row.in_field, row.transformation, row.subtype, row.description,
                row.masking))

    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for edge in edges:
        if edge.dv_id is not None:
            doc = _dataset_doc(edge, fields.get(edge.dv_id, []), lineage.get(edge.dv_id) if edge.direction ==
                               "output" else None)
        elif edge.model_name is not None:
            doc = _model_doc(edge, job_namespace)
        else:
            continue  # an edge to a row that no longer exists: nothing truthful to say
        key = (edge.direction, doc["namespace"], doc["name"], doc["facets"]["version"]["datasetVersion"])
        if key in seen:
            continue
        seen.add(key)
        (outputs if edge.direction == "output" else inputs).append(doc)
    return inputs, outputs


def _dataset_doc(edge: Any, fields: list[Any], lineage: dict[str | None, list[Transformation]] | None,
                 ) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "version": dataset_version_facet(edge.content_hash or str(edge.dv_version)),
        "datasetType": dataset_type_facet(_DATASET_TYPES.get(edge.ds_kind, "TABLE")),
        "dataSource": data_source_facet(edge.ds_ns),
    }
    if fields:
        facets["schema"] = schema_facet((f.name, f.dtype, f.position) for f in fields)
        tags = [(tag, f.name) for f in fields for tag in (f.tags or ())]
        if tags:
            facets["tags"] = tags_dataset_facet(tags)
    if lineage:
        facets["columnLineage"] = column_lineage_facet(lineage)
    doc: dict[str, Any] = {"namespace": edge.ds_ns, "name": edge.ds_name, "facets": facets}
    if edge.direction == "output" and (edge.row_count is not None or edge.byte_size is not None):
        doc["outputFacets"] = {"outputStatistics": output_statistics_facet(edge.row_count, edge.byte_size)}
    return doc


def _model_doc(edge: Any, job_namespace: str) -> dict[str, Any]:
    namespace, name = model_dataset(job_namespace, edge.model_name)
    facets = {
        "version": dataset_version_facet(str(edge.mv_version)),
        "datasetType": dataset_type_facet("MODEL"),
        "dataSource": data_source_facet(namespace),
        "governance_modelVersion": model_version_facet(
            name=edge.model_name, version=edge.mv_version, artifact_hash=edge.artifact_hash,
            hash_algo=edge.mv_algo, flavor=edge.flavor, artifact_uri=edge.artifact_uri),
    }
    return {"namespace": namespace, "name": name, "facets": facets}

