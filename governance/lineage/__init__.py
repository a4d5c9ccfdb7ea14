"""Lineage capture: ``@step`` decorators, full-content fingerprints, column statistics, adapters,
lineage queries and the fail-open spool.

Public API (also reachable as ``governance.step``, ``governance.Dataset``, ...):

* :func:`step` - the decorator; :func:`current_run` - the innermost running step;
* :func:`fingerprint` / :class:`Fingerprint` - content hashes (singledispatch, extensible);
* :func:`capture_adapter` - what a step records for a value (singledispatch, extensible), with the
  helpers :func:`table_capture`, :class:`CaptureRole`, :class:`DatasetCapture`, :class:`ModelCapture`;
* :class:`Dataset` - data by URI; :func:`tag` - column tags on a frame;
* :func:`column_stats` / :func:`table_stats` - drift baselines (format in ``_stats``);
* :func:`upstream`, :func:`downstream`, :func:`diff_versions` - lineage queries by reference;
* :func:`record_model_version`, :func:`load_model_artifact` - model versions and verified artifacts;
* :func:`spark_identity`, :func:`delta_snapshot`, :func:`iceberg_snapshot`, :func:`is_spark_frame` - what a
  Spark DataFrame reads (a Delta or Iceberg snapshot, or its plan and files), see ``_spark``, ``_iceberg``;
* :func:`replay_spool` - write spooled runs to the catalog (``gov sync``);
* :func:`verify_dataset` - re-hash data and compare it with a recorded version (``gov lineage verify-data``).
"""

from governance.lineage._adapters import (
    CaptureRole,
    DatasetCapture,
    ModelCapture,
    capture_adapter,
    table_capture,
)
from governance.lineage._artifacts import artifact_digest, load_model_artifact
from governance.lineage._dataset import Dataset
from governance.lineage._fingerprint import ColumnDigest, Fingerprint, fingerprint
from governance.lineage._iceberg import IcebergSnapshot, iceberg_root, iceberg_snapshot, is_iceberg_table
from governance.lineage._model_versions import record_model_version
from governance.lineage._queries import diff_versions, downstream, upstream
from governance.lineage._record import RunRecord, write_run
from governance.lineage._runtime import capture_to, reset_runtime
from governance.lineage._spark import (
    DeltaSnapshot,
    SparkDatasetKey,
    SparkIdentity,
    dataset_key,
    delta_snapshot,
    is_spark_frame,
    spark_identity,
)
from governance.lineage._spool import replay_spool
from governance.lineage._stats import STATS_FORMAT, column_stats, table_stats
from governance.lineage._step import KINDS, StepSpec, current_run, step
from governance.lineage._tags import tag
from governance.lineage._uuid7 import uuid7
from governance.lineage._verify import VerifyResult, verify_dataset

__all__ = [
    "KINDS",
    "STATS_FORMAT",
    "CaptureRole",
    "ColumnDigest",
    "Dataset",
    "DatasetCapture",
    "DeltaSnapshot",
    "Fingerprint",
    "IcebergSnapshot",
    "ModelCapture",
    "RunRecord",
    "SparkDatasetKey",
    "SparkIdentity",
    "StepSpec",
    "VerifyResult",
    "artifact_digest",
    "capture_adapter",
    "capture_to",
    "column_stats",
    "current_run",
    "dataset_key",
    "delta_snapshot",
    "diff_versions",
    "downstream",
    "fingerprint",
    "iceberg_root",
    "iceberg_snapshot",
    "is_iceberg_table",
    "is_spark_frame",
    "load_model_artifact",
    "record_model_version",
    "replay_spool",
    "reset_runtime",
    "spark_identity",
    "step",
    "table_capture",
    "table_stats",
    "tag",
    "upstream",
    "uuid7",
    "verify_dataset",
    "write_run",
]
