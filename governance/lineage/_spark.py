"""Capture of Spark DataFrames, and the version identity of what a DataFrame reads.

Registered lazily on :func:`governance.lineage.capture_adapter` (pyspark is imported only when a Spark
DataFrame reaches a step).  A captured DataFrame records:

* its **schema** (field names and Spark types, from the driver; no job);
* a **row count** only when the Spark conf ``spark.governance.rowCount`` is ``true`` (counting runs a
  job over the data; off by default);
* a **version identity** (:func:`spark_identity`), one of:

  - ``delta``: every file the DataFrame reads (``inputFiles()``) lies in a Delta table and the set of
    files read equals the active file set of one snapshot of that table, found in its ``_delta_log``
    (newest first, up to :data:`MAX_VERSIONS_SEARCHED` versions back).  It proves the DataFrame reads
    exactly that committed snapshot (Delta data files are immutable; a rewrite is a new file and a new
    version).  In the catalog the table's version is the Delta version (``content_hash`` ``"3"``,
    ``hash_algo`` ``delta-version``, see :class:`SparkDatasetKey`); a DataFrame derived from it (a filter,
    a computed column) is versioned ``delta:v<version>:<sha256 of location, version, files and plan>``.
    Neither proves what the step did with the rows after reading them: that is the run's code.
  - ``iceberg``: every file read lies in one Iceberg table and the set equals the data files of one of
    its snapshots (newest first, up to :data:`MAX_VERSIONS_SEARCHED`): the table's version is the snapshot
    id (``hash_algo`` ``iceberg-snapshot``), what the OpenLineage Spark integration reports for Iceberg;
    see :mod:`governance.lineage._iceberg` for what it proves.
  - ``plan+files``: otherwise, SHA-256 over the analysed logical plan (expression ids removed, so it
    is stable across sessions) and each input file's (path, size, modification time) as the file
    system reports them.  It proves the same transformation text ran over files that had the same
    names, sizes and times.  It does not prove content: a file rewritten in place with the same size
    and time, a UDF whose code changed under the same name, or a source that is not a file (JDBC, an
    in-memory relation; then no file is listed and ``coverage`` is ``plan``) are not seen.

Column lineage (outputs only): each output column's input columns, of the step's Spark DataFrame
arguments, and OpenLineage's transformation type and subtype, traced through the analysed logical plan
without running a job (:mod:`governance.lineage._spark_columns` says exactly what is and is not traced).
It is stored in the catalog's column lineage, replacing the by-name matching used for other frames, and
sent in the output's ``columnLineage`` facet.  It costs one JVM call per captured DataFrame (Spark writes
the plan as JSON: a few ms for a short plan, tens of ms for a long one); the Spark conf
``spark.governance.columnLineage`` = ``false`` turns it off (outputs are then linked by column name).

Dataset naming follows the OpenLineage Spark integration: a DataFrame reading one table or directory is
named after it (namespace ``file`` and the absolute path for local files, ``s3://bucket`` and the key
for object stores); a DataFrame built from several sources or none is named after the step and argument.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from governance.errors import ConfigError, InputError
from governance.lineage._iceberg import IcebergSnapshot, iceberg_root, iceberg_snapshots
from governance.lineage._spark_columns import SparkPlan, column_lineage, spark_plan

__all__ = [
    "COLUMN_LINEAGE_CONF",
    "MAX_VERSIONS_SEARCHED",
    "ROW_COUNT_CONF",
    "DeltaSnapshot",
    "SparkDatasetKey",
    "SparkIdentity",
    "dataset_key",
    "delta_root",
    "delta_snapshot",
    "is_spark_frame",
    "spark_capture",
    "spark_identity",
]

ROW_COUNT_CONF = "spark.governance.rowCount"
COLUMN_LINEAGE_CONF = "spark.governance.columnLineage"
MAX_VERSIONS_SEARCHED = 50
_DELTA_INSTALL = "pip install 'ml-governance[spark]'"
_EXPR_ID = re.compile(r"#\d+L?")
_PLAN_ID = re.compile(r", \[plan_id=\d+\]|\[plan_id=\d+\]")


def is_spark_frame(obj: object) -> bool:
    """Whether ``obj`` is a pyspark DataFrame (classic or Connect), without importing pyspark."""
    return any(
        klass.__name__ == "DataFrame" and klass.__module__.startswith("pyspark.sql") for klass in type(obj).__mro__
    )


def _deltalake() -> Any:
    try:
        import deltalake
    except ImportError as exc:
        raise ConfigError(f"Delta tables need the deltalake package: {_DELTA_INSTALL}") from exc
    return deltalake


def _local(uri: str) -> Path | None:
    split = urlsplit(uri)
    if split.scheme == "file":
        return Path(unquote(split.path))
    if split.scheme == "":
        return Path(uri)
    return None


def delta_root(uri: str) -> str | None:
    """The Delta table a data file or directory belongs to (the nearest ancestor with ``_delta_log``)."""
    local = _local(uri)
    if local is None:
        return None
    for candidate in (local, *local.parents):
        if (candidate / "_delta_log").is_dir():
            return str(candidate)
    return None


@dataclass(frozen=True)
class DeltaSnapshot:
    """One committed version of a Delta table: its location, version and active data files."""

    location: str
    version: int
    files: tuple[str, ...]
    reader_features: tuple[str, ...] = ()
    partition_columns: tuple[str, ...] = ()

    def digest(self) -> str:
        body = json.dumps([self.location, self.version, sorted(self.files)], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def _abs_uri(uri: str) -> str:
    local = _local(uri)
    return str(Path(os.path.abspath(local))) if local is not None else uri  # noqa: PTH100 - keeps symlinks


def delta_snapshot(location: str | os.PathLike[str], version: int | None = None) -> DeltaSnapshot:
    """The snapshot of a Delta table (the latest, or ``version``), read from its ``_delta_log`` with
    delta-rs (the ``deltalake`` package); no Spark and no Maven jars are involved."""
    deltalake = _deltalake()
    where = os.fspath(location)
    try:
        table = deltalake.DeltaTable(where, version=version)
    except Exception as exc:  # delta-rs raises its own TableNotFoundError/DeltaError/OSError
        at = "" if version is None else f" at version {version}"
        raise InputError(f"{where}: not a readable Delta table{at}: {exc}") from exc
    protocol = table.protocol()
    features = tuple(protocol.reader_features or ())
    if protocol.min_reader_version >= 2 and not features:
        features = ("columnMapping",)
    meta = table.metadata()
    return DeltaSnapshot(
        location=_abs_uri(where),
        version=int(table.version()),
        files=tuple(sorted(_abs_uri(u) for u in table.file_uris())),
        reader_features=features,
        partition_columns=tuple(meta.partition_columns or ()),
    )


def _match_snapshot(location: str, files: set[str]) -> DeltaSnapshot | None:
    latest = delta_snapshot(location)
    snap = latest
    for back in range(min(MAX_VERSIONS_SEARCHED, latest.version + 1)):
        if back:
            snap = delta_snapshot(location, latest.version - back)
        if set(snap.files) == files:
            return snap
    return None


@dataclass(frozen=True)
class SparkIdentity:
    """What a DataFrame reads, as far as the driver can tell without running a job."""

    kind: str  # delta | iceberg | plan+files
    content_hash: str
    hash_algo: str
    coverage: str  # snapshot | metadata | plan
    plan_hash: str
    files: tuple[dict[str, Any], ...] = ()
    delta: dict[str, Any] | None = None
    sources: tuple[str, ...] = field(default=())
    plain_scan: bool = False
    iceberg: dict[str, Any] | None = None

    @property
    def delta_version(self) -> int | None:
        """The Delta version when the DataFrame reads exactly one snapshot of one table."""
        tables = (self.delta or {}).get("tables") or []
        return int(tables[0]["version"]) if self.kind == "delta" and len(tables) == 1 else None

    @property
    def iceberg_snapshot(self) -> int | None:
        """The Iceberg snapshot id when the DataFrame reads exactly one snapshot of one table."""
        tables = (self.iceberg or {}).get("tables") or []
        return int(tables[0]["snapshot_id"]) if self.kind == "iceberg" and len(tables) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "iceberg": self.iceberg,
            "content_hash": self.content_hash,
            "hash_algo": self.hash_algo,
            "coverage": self.coverage,
            "plan_hash": self.plan_hash,
            "files": len(self.files),
            "delta": self.delta,
            "sources": list(self.sources),
        }


def _is_plain_scan(plan: str) -> bool:
    """The plan only reads (and maybe selects columns): no filter, join or computed column."""
    steps = [line.strip(" +-:") for line in plan.splitlines() if line.strip()]
    return all(step.startswith(("Relation", "Project [")) and "(" not in step.partition("]")[0]
               for step in steps)


def plan_text(df: Any) -> str:
    """The analysed logical plan with expression and plan ids removed (stable across sessions)."""
    raw = str(df._jdf.queryExecution().analyzed().toString())
    return _PLAN_ID.sub("", _EXPR_ID.sub("", raw))


def _file_facts(df: Any, files: Sequence[str]) -> list[dict[str, Any]]:
    """(path, size, modification time) of each file, from Hadoop's file system (local, HDFS, S3...)."""
    jvm = df.sparkSession._jvm
    conf = df.sparkSession._jsc.hadoopConfiguration()
    out = []
    for uri in files:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        status = path.getFileSystem(conf).getFileStatus(path)
        out.append({"path": uri, "size": int(status.getLen()), "mtime": int(status.getModificationTime())})
    return out


def _group_by_table(files: Iterable[str]) -> tuple[dict[str, set[str]], dict[str, set[str]], list[str]]:
    """Files by the Delta table, and by the Iceberg table, they lie in; the rest loose."""
    tables: dict[str, set[str]] = {}
    icebergs: dict[str, set[str]] = {}
    loose: list[str] = []
    roots: dict[str, tuple[str, str] | None] = {}
    for uri in files:
        parent = uri.rsplit("/", 1)[0]
        if parent not in roots:
            delta = delta_root(parent)
            iceberg = None if delta is not None else iceberg_root(parent)
            roots[parent] = ("delta", delta) if delta is not None else ("iceberg", iceberg) if iceberg else None
        root = roots[parent]
        if root is None:
            loose.append(uri)
        else:
            (tables if root[0] == "delta" else icebergs).setdefault(root[1], set()).add(_abs_uri(uri))
    return tables, icebergs, loose


def _match_iceberg(location: str, files: set[str]) -> IcebergSnapshot | None:
    for snap in iceberg_snapshots(location, MAX_VERSIONS_SEARCHED):
        if set(snap.files) == files:
            return snap
    return None


def _iceberg_identity(icebergs: dict[str, set[str]], plan: str, plan_hash: str) -> SparkIdentity | None:
    snaps = [_match_iceberg(root, chosen) for root, chosen in sorted(icebergs.items())]
    found = [s for s in snaps if s is not None]
    if len(found) != len(snaps):
        return None
    body = json.dumps([[s.location, s.snapshot_id, sorted(s.files)] for s in found] + [plan_hash])
    ids = ",".join(f"s{s.snapshot_id}" for s in found)
    return SparkIdentity(
        kind="iceberg",
        content_hash=f"iceberg:{ids}:{hashlib.sha256(body.encode()).hexdigest()[:40]}",
        hash_algo="iceberg-snapshot-plan",
        coverage="snapshot",
        plan_hash=plan_hash,
        iceberg={"tables": [s.to_dict() for s in found]},
        sources=tuple(s.location for s in found),
        plain_scan=_is_plain_scan(plan),
    )


def spark_identity(df: Any) -> SparkIdentity:
    """The version identity of what ``df`` reads (see the module docstring for what it proves)."""
    files = sorted(str(f) for f in df.inputFiles())
    plan = plan_text(df)
    plan_hash = hashlib.sha256(plan.encode()).hexdigest()
    tables, icebergs, loose = _group_by_table(files)
    if icebergs and not tables and not loose:
        found_iceberg = _iceberg_identity(icebergs, plan, plan_hash)
        if found_iceberg is not None:
            return found_iceberg
    if tables and not icebergs and not loose:
        snaps = [_match_snapshot(root, chosen) for root, chosen in sorted(tables.items())]
        if all(s is not None for s in snaps):
            found = [s for s in snaps if s is not None]
            body = json.dumps([[s.location, s.version, s.digest()] for s in found] + [plan_hash])
            version_text = ",".join(f"v{s.version}" for s in found)
            return SparkIdentity(
                kind="delta",
                content_hash=f"delta:{version_text}:{hashlib.sha256(body.encode()).hexdigest()[:40]}",
                hash_algo="delta-snapshot",
                coverage="snapshot",
                plan_hash=plan_hash,
                delta={"tables": [{"location": s.location, "version": s.version, "files": len(s.files)}
                                  for s in found]},
                sources=tuple(s.location for s in found),
                plain_scan=_is_plain_scan(plan),
            )
    facts = _file_facts(df, files)
    body = json.dumps({"plan": plan_hash, "files": facts}, sort_keys=True, separators=(",", ":"))
    sources = tuple(sorted(tables)) + tuple(sorted(icebergs)) + tuple(sorted({f.rsplit("/", 1)[0] for f in loose}))
    return SparkIdentity(
        kind="plan+files",
        content_hash=hashlib.sha256(body.encode()).hexdigest(),
        hash_algo="spark-plan-files",
        coverage="metadata" if files else "plan",
        plan_hash=plan_hash,
        files=tuple(facts),
        sources=sources,
        plain_scan=_is_plain_scan(plan),
    )


def _dataset_name(uri: str) -> tuple[str, str]:
    """OpenLineage naming as the Spark integration does it (``file`` + absolute path; ``s3://b`` + key)."""
    split = urlsplit(uri)
    if split.scheme in ("", "file"):
        return "file", _abs_uri(uri)
    authority = f"{split.scheme}://{split.netloc}" if split.netloc else f"{split.scheme}:"
    return authority, split.path.lstrip("/") or "/"


def _conf_flag(df: Any, key: str, default: str) -> bool:
    value = df.sparkSession.conf.get(key, default)
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _row_count_enabled(df: Any) -> bool:
    return _conf_flag(df, ROW_COUNT_CONF, "false")


@dataclass(frozen=True)
class SparkDatasetKey:
    """How a DataFrame is named and versioned in the catalog and in OpenLineage events.

    A DataFrame that reads one table or directory is that dataset when it is an input (OpenLineage
    names a job's inputs after the tables it reads, whatever it does with them), or when it is an output
    that only reads it (no filter or computed column).  A Delta table's version is then the Delta version
    as a string, the ``datasetVersion`` the OpenLineage Spark integration sends, so events from Spark jobs
    meet these versions on ingest.  Anything else is named after the step and argument, versioned by the
    full identity hash.
    """

    namespace: str | None
    name: str | None
    uri: str | None
    content_hash: str
    hash_algo: str
    coverage: str
    identity: SparkIdentity


def dataset_key(df: Any, direction: str = "input") -> SparkDatasetKey:
    """The catalog name and version of ``df`` seen as an ``input`` or ``output`` (see the class doc)."""
    ident = spark_identity(df)
    if len(ident.sources) == 1 and (direction == "input" or ident.plain_scan):
        namespace, name = _dataset_name(ident.sources[0])
        if ident.delta_version is not None:
            return SparkDatasetKey(namespace, name, ident.sources[0], str(ident.delta_version), "delta-version",
                                   "snapshot", ident)
        if ident.iceberg_snapshot is not None:
            return SparkDatasetKey(namespace, name, ident.sources[0], str(ident.iceberg_snapshot),
                                   "iceberg-snapshot", "snapshot", ident)
        return SparkDatasetKey(namespace, name, ident.sources[0], ident.content_hash, ident.hash_algo,
                               ident.coverage, ident)
    return SparkDatasetKey(None, None, None, ident.content_hash, ident.hash_algo, ident.coverage, ident)


def spark_capture(df: Any, role: Any) -> Any:
    """A :class:`~governance.lineage.DatasetCapture` of a Spark DataFrame (see the module docstring)."""
    from governance.lineage._adapters import DatasetCapture
    from governance.openlineage import memory_namespace

    key = dataset_key(df, role.direction)
    ident = key.identity
    schema = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    schema_hash = hashlib.sha256(json.dumps(schema, separators=(",", ":")).encode()).hexdigest()
    tags = dict(role.tags)
    fields = [
        {"name": name, "dtype": dtype, "position": i, "hash": None, "tags": list(tags.get(name, ()))}
        for i, (name, dtype) in enumerate(schema)
    ]
    if key.name is not None and key.namespace is not None:
        namespace, name, uri, reuse = key.namespace, key.name, key.uri, False
    else:
        # an in-memory (plan-only) frame is named like any in-memory dataset: governance://NAMESPACE
        namespace = role.namespace if "://" in role.namespace else memory_namespace(role.namespace)
        name, uri, reuse = role.dataset_name, None, role.direction == "input"
    rows = int(df.count()) if _row_count_enabled(df) else None
    plan = spark_plan(df) if _conf_flag(df, COLUMN_LINEAGE_CONF, "true") else None
    lineage = None
    if role.direction == "output" and plan is not None:
        lineage = _plan_lineage(plan, [name for name, _ in schema], role.inputs)
    return DatasetCapture(
        role=role.name,
        direction=role.direction,
        namespace=namespace,
        name=name,
        kind="table",
        uri=uri,
        content_hash=key.content_hash,
        hash_algo=key.hash_algo,
        coverage=key.coverage,
        schema_hash="sha256:" + schema_hash,
        row_count=rows,
        byte_size=sum(int(f["size"]) for f in ident.files) or None,
        fields=fields,
        reuse_any=reuse,
        column_lineage=lineage,
        _spark_plan=plan if role.direction == "input" else None,
    )


def _plan_lineage(plan: SparkPlan, columns: Sequence[str], inputs: Sequence[Any]) -> list[dict[str, Any]] | None:
    """Column lineage of an output to the step's Spark inputs (see ``_spark_columns``), as the
    capture's ``column_lineage`` entries (each input named by its catalog namespace and name); other
    inputs (pandas, Arrow) are linked by column name, as the capture writer links them for any frame.
    None when no input is a Spark DataFrame (the writer then links every input by name)."""
    keyed = {f"{i}": cap for i, cap in enumerate(inputs) if getattr(cap, "_spark_plan", None) is not None}
    if not keyed:
        return None
    links = column_lineage(plan, [(key, cap._spark_plan) for key, cap in keyed.items()])
    out: list[dict[str, Any]] = []
    for link in links:
        cap = keyed[link.input]
        out.append({"output": link.output, "namespace": cap.namespace, "name": cap.name, "field": link.field,
                    "type": link.transform.type, "subtype": link.transform.subtype,
                    "masking": link.transform.masking})
    wanted = set(columns)
    for cap in inputs:
        if getattr(cap, "_spark_plan", None) is None:
            out.extend({"output": f["name"], "namespace": cap.namespace, "name": cap.name, "field": f["name"],
                        "type": "DIRECT", "subtype": None, "masking": None}
                       for f in cap.fields if f["name"] in wanted)
    return out
