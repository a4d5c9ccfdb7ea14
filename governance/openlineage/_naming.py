"""Producer, schema URLs and dataset naming (OpenLineage's naming conventions).

Dataset identity in OpenLineage is ``(namespace, name)``:

* local files: namespace ``file``, name the absolute path (``/data/raw/credit.parquet``);
* object stores and warehouses: the datasource URI as namespace (``s3://bucket``,
  ``postgres://host:5432``) and the object/table as name (``path/to/key``, ``db.schema.table``);
* in-memory values (a DataFrame passed between decorated steps): namespace
  ``governance://<settings.namespace>`` (a URI with our own scheme, as the convention asks for a
  datasource URI) and the name the capture layer gives it (``<job>/<argument>``);
* model versions are published as datasets in namespace ``governance://<job namespace>`` named
  ``models/<model name>``, with the custom ``governance_modelVersion`` facet.

The catalog stores ``Dataset.namespace``/``Dataset.name`` already in this form, so events and
ingest use them verbatim: a table written by an Airflow or Spark job and read by one of our steps is
the same catalog row when both sides follow the convention.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "FACET_SCHEMA_BASE",
    "MODEL_VERSION_FACET",
    "POLICY_RESULT_FACET",
    "PRODUCER",
    "RUN_EVENT_SCHEMA_URL",
    "RUN_FACET",
    "SPEC_VERSION",
    "dataset_identity",
    "dataset_uri",
    "local_path",
    "memory_namespace",
    "model_dataset",
]

SPEC_VERSION = "2-0-2"
RUN_EVENT_SCHEMA_URL = f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json#/$defs/RunEvent"
PRODUCER = "https://pypi.org/project/ml-governance/0.1.0/"
FACET_SCHEMA_BASE = "https://pypi.org/project/ml-governance/0.1.0/openlineage/facets/"

#: custom facet keys (prefixed as the spec recommends for non-standard facets)
MODEL_VERSION_FACET = "governance_modelVersion"
POLICY_RESULT_FACET = "governance_policyResult"
RUN_FACET = "governance_run"


def memory_namespace(namespace: str) -> str:
    """Namespace of in-memory datasets of a governance namespace (``governance://default``)."""
    return f"governance://{namespace}"


def model_dataset(job_namespace: str, model_name: str) -> tuple[str, str]:
    """``(namespace, name)`` under which a model's versions appear as OpenLineage datasets."""
    namespace = job_namespace if "://" in job_namespace else memory_namespace(job_namespace)
    return namespace, f"models/{model_name}"


def dataset_identity(location: str | os.PathLike[str]) -> tuple[str, str]:
    """``(namespace, name)`` of a file path or URI by OpenLineage's naming conventions.

    ``/data/x.csv`` and ``file:///data/x.csv`` -> ``("file", "/data/x.csv")`` (a relative path is made
    absolute against the working directory; ``..`` is normalised, symlinks are kept);
    ``s3://bucket/key`` -> ``("s3://bucket", "key")``; ``postgres://h:5432/db.s.t`` ->
    ``("postgres://h:5432", "db.s.t")``.  Capture (``gov.Dataset``, a ``pathlib.Path`` argument) and
    ingest use this one function, so a table a Spark job wrote and a step read are one catalog row.
    """
    text = os.fspath(location)
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and os.name == "nt"):
        path = unquote(parts.path) if parts.scheme == "file" else text
        return "file", os.path.abspath(Path(path).expanduser())  # noqa: PTH100 - keeps symlinks
    name = str(PurePosixPath(parts.path.lstrip("/"))) if parts.path.strip("/") else ""
    return f"{parts.scheme}://{parts.netloc}", name


def dataset_uri(namespace: str, name: str) -> str:
    """A well-formed URI of the dataset ``(namespace, name)``: ``("file", "/tmp/x/data.csv")`` ->
    ``file:///tmp/x/data.csv``; ``("s3://bucket", "key")`` -> ``s3://bucket/key``;
    ``("postgres://h:5432", "db.s.t")`` -> ``postgres://h:5432/db.s.t``."""
    if namespace == "file" or namespace.startswith("file:"):
        path = name if name.startswith("/") else f"/{name}"
        return "file://" + quote(path, safe="/:@!$&'()*+,;=~-._")
    if "://" not in namespace:  # a bare namespace (an Airflow connection id, a Kafka cluster name)
        return f"{namespace}://{quote(name.lstrip('/'), safe='/:@!$&()*+,;=~-._')}"
    return f"{namespace.rstrip('/')}/{name.lstrip('/')}"


def local_path(uri: str | None) -> Path | None:
    """The local path of a ``file://`` URI or a plain path, else None (a remote URI)."""
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if "://" in uri:
        return None
    return Path(uri)
