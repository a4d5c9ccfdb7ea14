"""Facet builders: plain dictionaries in the wire shape of the OpenLineage spec (2-0-2).

Built as dictionaries rather than through openlineage-python's attrs classes because an event is
built inside the step's catalog transaction and must cost tens of microseconds (the client's classes
run validators and ``attr.asdict`` on every nested object); the shipper turns the stored document
back into the client's ``RunEvent`` before handing it to a transport.  Every facet carries
``_producer`` and a ``_schemaURL`` pointing at the exact spec file version in ``shared/openlineage-spec``
(standard facets) or at the schema shipped in ``governance/openlineage/_schemas`` (custom facets).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from governance.openlineage._naming import FACET_SCHEMA_BASE, PRODUCER

__all__ = [
    "FACET_SCHEMA_URLS",
    "Transformation",
    "column_lineage_facet",
    "data_source_facet",
    "dataset_type_facet",
    "dataset_version_facet",
    "error_message_facet",
    "execution_parameters_facet",
    "facet",
    "job_type_facet",
    "model_version_facet",
    "output_statistics_facet",
    "parent_facet",
    "policy_result_facet",
    "processing_engine_facet",
    "run_facet",
    "schema_facet",
    "source_code_location_facet",
    "tags_dataset_facet",
]

_SPEC = "https://openlineage.io/spec/facets/"



def _spec(version: str, name: str) -> str:
    return f"{_SPEC}{version}/{name}.json#/$defs/{name}"


def _ours(name: str) -> str:
    return f"{FACET_SCHEMA_BASE}{name}.json#/$defs/{name}"


FACET_SCHEMA_URLS: dict[str, str] = {
    "schema": _spec("1-2-0", "SchemaDatasetFacet"),
    "version": _spec("1-0-1", "DatasetVersionDatasetFacet"),
    "columnLineage": _spec("1-2-0", "ColumnLineageDatasetFacet"),
    "datasetType": _spec("1-0-1", "DatasetTypeDatasetFacet"),
    "dataSource": _spec("1-0-1", "DatasourceDatasetFacet"),
    "tags": _spec("1-0-0", "TagsDatasetFacet"),
    "outputStatistics": _spec("1-0-2", "OutputStatisticsOutputDatasetFacet"),
    "parent": _spec("1-2-0", "ParentRunFacet"),
    "errorMessage": _spec("1-0-1", "ErrorMessageRunFacet"),
    "executionParameters": _spec("1-0-0", "ExecutionParametersRunFacet"),
    "processing_engine": _spec("1-1-1", "ProcessingEngineRunFacet"),
    "sourceCodeLocation": _spec("1-1-0", "SourceCodeLocationJobFacet"),
    "jobType": _spec("2-0-4", "JobTypeJobFacet"),
    "governance_modelVersion": _ours("ModelVersionDatasetFacet"),
    "governance_policyResult": _ours("PolicyResultRunFacet"),
    "governance_run": _ours("GovernanceRunFacet"),
}


def facet(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the base facet fields for the facet registered under ``key``."""
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMA_URLS[key], **body}


def schema_facet(fields: Iterable[tuple[str, str | None, int]]) -> dict[str, Any]:
    """Columns as ``(name, dtype, position)``; ``ordinal_position`` is 1-indexed as the spec says."""
    out = []
    for name, dtype, position in fields:
        item: dict[str, Any] = {"name": name, "ordinal_position": position + 1}
        if dtype is not None:
            item["type"] = dtype
        out.append(item)
    return facet("schema", {"fields": out})


def dataset_version_facet(version: str) -> dict[str, Any]:
    return facet("version", {"datasetVersion": version})


def output_statistics_facet(row_count: int | None, size: int | None) -> dict[str, Any]:
    body = {k: v for k, v in (("rowCount", row_count), ("size", size)) if v is not None}
    return facet("outputStatistics", body)


def dataset_type_facet(dataset_type: str) -> dict[str, Any]:
    return facet("datasetType", {"datasetType": dataset_type})


def tags_dataset_facet(tags: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """Tags as ``(tag, field or None)``: ``protected`` on ``sex`` becomes key ``protected``, field ``sex``."""
    items = []
    for tag, field in tags:
        item = {"key": tag, "value": "true", "source": "ml-governance"}
        if field is not None:
            item["field"] = field
        items.append(item)
    return facet("tags", {"tags": items})


class Transformation(NamedTuple):
    """One input field of an output field (or of the whole output when the output field is None)."""

    namespace: str
    name: str
    field: str
    type: str  # DIRECT | INDIRECT
    subtype: str | None = None
    description: str | None = None
    masking: bool | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type}
        for key, value in (("subtype", self.subtype), ("description", self.description),
                           ("masking", self.masking)):
            if value is not None:
                body[key] = value
        return {"namespace": self.namespace, "name": self.name, "field": self.field, "transformations": [body]}


def column_lineage_facet(fields: Mapping[str | None, list[Transformation]]) -> dict[str, Any]:
    """``{output field: [input transformations]}``; the key None holds dataset-level entries (inputs that
    affect the whole output: filters, join keys).  Each output field also carries the older
    ``transformationType``/``transformationDescription`` that consumers such as Marquez read."""
    out: dict[str, Any] = {}
    for name, inputs in fields.items():
        if name is None:
            continue
        types = [t.type for t in inputs]
        described = [t.description or t.subtype or t.type for t in inputs]
        if any(t.masking for t in inputs):
            legacy = "MASKED"
        elif inputs and all(t.type == "DIRECT" and t.subtype == "IDENTITY" for t in inputs):
            legacy = "IDENTITY"
        else:
            legacy = "DIRECT" if "DIRECT" in types else "INDIRECT"
        out[name] = {
            "inputFields": [t.to_json() for t in inputs],
            "transformationType": legacy,
            "transformationDescription": "; ".join(dict.fromkeys(described)),
        }
    body: dict[str, Any] = {"fields": out}
    if fields.get(None):
        body["dataset"] = [t.to_json() for t in fields[None]]
    return facet("columnLineage", body)


def data_source_facet(namespace: str) -> dict[str, Any]:
    """The datasource a dataset belongs to, named after its namespace (``s3://bucket``, ``file``,
    ``governance://default``), so consumers group datasets by their real source."""
    uri = "file:///" if namespace == "file" else namespace if ":" in namespace else f"{namespace}://"
    return facet("dataSource", {"name": namespace, "uri": uri})


def parent_facet(run_uuid: str, job_namespace: str, job_name: str,
                 root: tuple[str, str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"run": {"runId": run_uuid}, "job": {"namespace": job_namespace, "name": job_name}}
    if root is not None:
        body["root"] = {"run": {"runId": root[0]}, "job": {"namespace": root[1], "name": root[2]}}
    return facet("parent", body)


def error_message_facet(message: str, stack_trace: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "programmingLanguage": "python"}
    if stack_trace:
        body["stackTrace"] = stack_trace
    return facet("errorMessage", body)


def execution_parameters_facet(params: Mapping[str, Any]) -> dict[str, Any]:
    items = [{"key": str(k), "value": v if isinstance(v, str) else json.dumps(v, default=str)}
             for k, v in params.items()]
    return facet("executionParameters", {"parameters": items})


@cache
def _versions() -> tuple[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    return version("ml-governance"), version("openlineage-python")


def processing_engine_facet() -> dict[str, Any]:
    ours, client = _versions()
    return facet("processing_engine", {"name": "ml-governance", "version": ours,
                                       "openlineageAdapterVersion": client})


def source_code_location_facet(source_file: str, git_commit: str | None) -> dict[str, Any]:
    path = Path(source_file)
    body: dict[str, Any] = {"type": "git" if git_commit else "file",
                            "url": path.as_uri() if path.is_absolute() else source_file,
                            "path": source_file}
    if git_commit:
        body["version"] = git_commit
    return facet("sourceCodeLocation", body)


def job_type_facet(kind: str) -> dict[str, Any]:
    return facet("jobType", {"processingType": "BATCH", "integration": "ML_GOVERNANCE",
                             "jobType": kind.upper()})


def run_facet(*, status: str, code_hash: str | None, git_dirty: bool | None, user: str | None,
              host: str | None) -> dict[str, Any]:
    """Custom run facet: what the catalog knows about the run beyond the standard facets."""
    body: dict[str, Any] = {"status": status}
    for key, value in (("codeHash", code_hash), ("gitDirty", git_dirty), ("user", user), ("host", host)):
        if value is not None:
            body[key] = value
    return facet("governance_run", body)


def model_version_facet(*, name: str, version: int, artifact_hash: str | None, hash_algo: str | None,
                        flavor: str | None, artifact_uri: str | None) -> dict[str, Any]:
    """Custom output dataset facet describing the model version a run produced (or read)."""
    body: dict[str, Any] = {"name": name, "version": version}
    for key, value in (("artifactHash", artifact_hash), ("hashAlgorithm", hash_algo), ("flavor", flavor),
                       ("artifactUri", artifact_uri)):
        if value is not None:
            body[key] = value
    return facet("governance_modelVersion", body)


def policy_result_facet(document: dict[str, Any]) -> dict[str, Any]:
    """Custom run facet from a policy evaluation's JSON document (``gov check --format json``).

    Keeps the policy identity, the subject, the overall status and per-check ``id``/``status``/
    ``severity``/``value`` (per-group detail stays in the catalog).
    """
    policy = document.get("policy") or {}
    results = []
    for item in document.get("results") or []:
        entry = {k: item[k] for k in ("id", "uses", "status", "severity") if item.get(k) is not None}
        if isinstance(item.get("value"), int | float) and not isinstance(item.get("value"), bool):
            entry["value"] = item["value"]
        results.append(entry)
    body: dict[str, Any] = {
        "policy": {k: str(policy[k]) for k in ("name", "version", "digest") if policy.get(k) is not None},
        "status": str(document.get("status", "ERROR")),
        "results": results,
    }
    if isinstance(document.get("subject"), dict):
        body["subject"] = document["subject"]
    return facet("governance_policyResult", body)
