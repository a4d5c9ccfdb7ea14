"""SQLModel tables of the catalog.

One module for the schema so that migrations have one place to compare against.  Every change here
needs an alembic migration in ``governance/catalog/migrations/versions`` (a test compares them).

Conventions: integer surrogate keys (fast joins for lineage), UTC timestamps (:class:`~governance.domain.UTCDateTime`:
aware UTC in, aware UTC out, on every backend), JSON columns for
open-ended documents (params, statistics, card fields), and the indexes the lineage and audit queries
need written next to the table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.domain import UTCDateTime

__all__ = [
    "STATE_TABLES",
    "Approval",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditState",
    "AuditStateNode",
    "AuditTouch",
    "CheckResult",
    "ColumnLineage",
    "Dataset",
    "DatasetField",
    "DatasetVersion",
    "Evidence",
    "IngestedEvent",
    "Job",
    "Model",
    "ModelAlias",
    "ModelVersion",
    "OutboxEvent",
    "PolicyEvaluation",
    "PromotionEvent",
    "Run",
    "RunIO",
    "SignedStatement",
    "Waiver",
    "state_table",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the catalog stores UTC everywhere)."""
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _json(default: Any = None) -> Any:
    if default is None:
        return Field(default=None, sa_type=sa.JSON, nullable=True)
    return Field(default_factory=default, sa_type=sa.JSON, nullable=False)


# --------------------------------------------------------------------------------------------- data
class Dataset(SQLModel, table=True):
    __tablename__ = "dataset"
    __table_args__ = (sa.UniqueConstraint("namespace", "name", name="uq_dataset_name"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=512)
    name: str = Field(max_length=1024)
    kind: str = Field(default="table", max_length=32)
    uri: str | None = None
    description: str | None = None
    owner: str | None = None
    tags: list[str] = _json(list)
    created_at: datetime = _ts()


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    __table_args__ = (
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_version"),
        sa.Index("ix_dataset_version_hash", "dataset_id", "content_hash"),
        sa.Index("ix_dataset_version_content", "content_hash"),  # inputs reuse a producer's version
        sa.Index("ix_dataset_version_time", "dataset_id", "created_at"),  # ingest binds inputs by time
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    version: int
    content_hash: str | None = Field(default=None, max_length=128)
    hash_algo: str | None = Field(default=None, max_length=32)
    coverage: str = Field(default="full", max_length=16)
    schema_hash: str | None = Field(default=None, max_length=128)
    schema_fields: list[dict[str, Any]] | None = _json()
    row_count: int | None = None
    byte_size: int | None = None
    stats: dict[str, Any] | None = _json()
    uri: str | None = None
    produced_by_run_id: int | None = Field(default=None, foreign_key="run.id", index=True)
    created_at: datetime = _ts()


class DatasetField(SQLModel, table=True):
    """A column of one dataset version, with tags such as ``protected`` or ``label``."""

    __tablename__ = "dataset_field"
    __table_args__ = (sa.UniqueConstraint("dataset_version_id", "name", name="uq_field_name"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_version_id: int = Field(foreign_key="dataset_version.id", index=True)
    name: str
    dtype: str | None = None
    position: int = 0
    tags: list[str] = _json(list)


class ColumnLineage(SQLModel, table=True):
    """Output field <- input field, recorded by the run that made the output.

    ``transformation`` is OpenLineage's type (DIRECT | INDIRECT), ``subtype`` its subtype (IDENTITY,
    TRANSFORMATION, AGGREGATION, JOIN, FILTER, GROUP_BY, SORT, WINDOW, CONDITIONAL...), ``masking``
    whether the transformation masks the input.  A dataset-level entry (the facet's ``dataset`` list:
    an input field that affects the whole output, such as a filter or join key) has no output field
    and names the output version in ``output_version_id``.
    """

    __tablename__ = "column_lineage"
    __table_args__ = (
        sa.Index("ix_column_lineage_out", "output_field_id"),
        sa.Index("ix_column_lineage_in", "input_field_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="run.id", index=True)
    output_field_id: int | None = Field(default=None, foreign_key="dataset_field.id")
    output_version_id: int | None = Field(default=None, foreign_key="dataset_version.id")
    input_field_id: int = Field(foreign_key="dataset_field.id")
    transformation: str = Field(default="DIRECT", max_length=16)  # DIRECT | INDIRECT
    subtype: str | None = Field(default=None, max_length=32)
    masking: bool | None = None
    description: str | None = None


# ---------------------------------------------------------------------------------------- jobs/runs
class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (sa.UniqueConstraint("namespace", "name", name="uq_job_name"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=512)
    name: str = Field(max_length=1024)
    kind: str = Field(default="other", max_length=32)
    description: str | None = None
    source_file: str | None = None
    created_at: datetime = _ts()


class Run(SQLModel, table=True):
    __tablename__ = "run"
    __table_args__ = (
        sa.Index("ix_run_job_started", "job_id", "started_at"),
        sa.Index("ix_run_started", "started_at"),  # ingest re-binds inputs of runs started since a time
    )

    id: int | None = Field(default=None, primary_key=True)
    run_uuid: str = Field(max_length=36, unique=True)
    job_id: int = Field(foreign_key="job.id")
    parent_run_id: int | None = Field(default=None, foreign_key="run.id", index=True)
    status: str = Field(default="RUNNING", max_length=16)  # RUNNING | COMPLETED | FAILED | ABORTED
    started_at: datetime = _ts()
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    params: dict[str, Any] = _json(dict)
    environment: dict[str, Any] = _json(dict)
    user: str | None = None
    host: str | None = None
    code_hash: str | None = Field(default=None, max_length=128)
    source_file: str | None = None
    git_commit: str | None = Field(default=None, max_length=64)
    git_dirty: bool | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    producer: str | None = None  # set for runs ingested from other OpenLineage producers


class RunIO(SQLModel, table=True):
    """One edge between a run and an artifact version it read or wrote.

    ``artifact_kind`` is ``dataset`` (``dataset_version.id``) or ``model`` (``model_version.id``).
    Indexed both ways so downstream queries are as fast as upstream ones.
    """

    __tablename__ = "run_io"
    __table_args__ = (
        sa.Index("ix_run_io_run", "run_id", "direction", "artifact_kind", "artifact_id"),
        sa.Index("ix_run_io_artifact", "artifact_kind", "artifact_id", "direction", "run_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id")
    artifact_kind: str = Field(max_length=16)
    artifact_id: int
    direction: str = Field(max_length=8)  # input | output
    role: str | None = None
    #: an ingested input without a version facet is bound to the version current when its run started
    #: (``time``) and re-bound when an earlier version arrives; None: the exact version is known
    binding: str | None = Field(default=None, max_length=8)
    created_at: datetime = _ts()


# ------------------------------------------------------------------------------------------ models
class Model(SQLModel, table=True):
    __tablename__ = "model"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=512, unique=True)
    owner: str | None = None
    description: str | None = None
    risk_tier: str | None = Field(default=None, max_length=32)
    tags: list[str] = _json(list)
    created_at: datetime = _ts()


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (sa.UniqueConstraint("model_id", "version", name="uq_model_version"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    version: int
    artifact_hash: str | None = Field(default=None, max_length=128)
    hash_algo: str | None = Field(default=None, max_length=32)
    artifact_uri: str | None = None
    flavor: str | None = None
    params: dict[str, Any] = _json(dict)
    metrics: dict[str, Any] = _json(dict)
    card: dict[str, Any] = _json(dict)
    features: list[str] = _json(list)
    training_run_id: int | None = Field(default=None, foreign_key="run.id", index=True)
    created_at: datetime = _ts()


class ModelAlias(SQLModel, table=True):
    """The current pointer of a stage or alias; its history is in :class:`PromotionEvent`."""

    __tablename__ = "model_alias"
    __table_args__ = (sa.UniqueConstraint("model_id", "alias", name="uq_model_alias"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id")
    alias: str = Field(max_length=128)
    model_version_id: int = Field(foreign_key="model_version.id")
    updated_at: datetime = _ts()


class PromotionEvent(SQLModel, table=True):
    """Append-only history of alias moves (promotions and rollbacks)."""

    __tablename__ = "promotion_event"
    __table_args__ = (sa.Index("ix_promotion_model_alias", "model_id", "alias", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id")
    alias: str = Field(max_length=128)
    action: str = Field(max_length=16)  # promote | rollback | refused
    from_version_id: int | None = Field(default=None, foreign_key="model_version.id")
    to_version_id: int | None = Field(default=None, foreign_key="model_version.id")
    actor: str
    reason: str | None = None
    evaluation_id: int | None = Field(default=None, foreign_key="policy_evaluation.id")
    created_at: datetime = _ts()


# ------------------------------------------------------------------------------------------- policy
class Evidence(SQLModel, table=True):
    """What an evaluation computed for a model version on one dataset version.

    ``data`` holds predictions-derived summaries (per-group confusion counts, metrics, importances,
    drift statistics) so that a gate can assert a pack later without the raw data.
    """

    __tablename__ = "evidence"
    __table_args__ = (sa.Index("ix_evidence_model_version", "model_version_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int | None = Field(default=None, foreign_key="model_version.id")
    dataset_version_id: int | None = Field(default=None, foreign_key="dataset_version.id")
    run_id: int | None = Field(default=None, foreign_key="run.id")
    kind: str = Field(default="evaluation", max_length=32)
    data: dict[str, Any] = _json(dict)
    created_at: datetime = _ts()


class PolicyEvaluation(SQLModel, table=True):
    __tablename__ = "policy_evaluation"
    __table_args__ = (sa.Index("ix_policy_evaluation_mv", "model_version_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int | None = Field(default=None, foreign_key="model_version.id")
    subject: dict[str, Any] = _json(dict)
    policy_name: str
    policy_version: str
    policy_digest: str = Field(max_length=80)
    purpose: str = Field(default="check", max_length=16)  # check | promote | monitor
    status: str = Field(max_length=32)
    actor: str
    inputs: dict[str, Any] = _json(dict)
    created_at: datetime = _ts()


class CheckResult(SQLModel, table=True):
    __tablename__ = "check_result"

    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="policy_evaluation.id", index=True)
    check_id: str
    uses: str
    check_version: str | None = None
    status: str = Field(max_length=32)
    severity: str = Field(default="block", max_length=8)
    value: float | None = None
    assertion: dict[str, Any] | None = _json()
    measurement: dict[str, Any] | None = _json()
    message: str | None = None
    waiver_id: int | None = Field(default=None, foreign_key="waiver.id")
    maps_to: list[str] = _json(list)


class Waiver(SQLModel, table=True):
    __tablename__ = "waiver"
    __table_args__ = (sa.Index("ix_waiver_model_check", "model_id", "check_id"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id")
    versions: list[int] | None = _json()  # None: every version
    check_id: str
    reason: str
    ticket: str | None = None
    requester: str
    approver: str | None = None  # set when the waiver is approved (signed: `gov waivers approve`)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str | None = None
    created_at: datetime = _ts()


class Approval(SQLModel, table=True):
    __tablename__ = "approval"
    __table_args__ = (sa.Index("ix_approval_mv_stage", "model_version_id", "stage"),)

    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="model_version.id")
    stage: str = Field(max_length=128)
    approver: str
    role: str | None = None
    comment: str | None = None
    created_at: datetime = _ts()


class SignedStatement(SQLModel, table=True):
    """A decision as the person made it: the canonical statement bytes and their SSHSIG signature.

    ``kind`` is ``approval``, ``waiver.request``, ``waiver.approval``, ``promotion`` or ``rollback``;
    ``target_id`` is the approval, waiver or promotion event it belongs to.  ``signature`` is None for an
    unsigned decision (counted only where the pack says ``signatures: optional``).  The gate re-verifies
    the statement against the trust store every time: nothing here is believed as stored.
    """

    __tablename__ = "signed_statement"
    __table_args__ = (sa.Index("ix_signed_statement_target", "kind", "target_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    target_id: int
    statement: str = Field(sa_type=sa.Text)
    signature: str | None = Field(default=None, sa_type=sa.Text)
    key_fingerprint: str | None = Field(default=None, max_length=80)
    principal: str | None = None
    trust_digest: str | None = Field(default=None, max_length=80)
    created_at: datetime = _ts()


# -------------------------------------------------------------------------------------------- audit
class AuditEvent(SQLModel, table=True):
    """One link of the hash chain.  ``payload`` holds the exact canonical JSON bytes that were hashed."""

    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    time: datetime = Field(sa_type=UTCDateTime, index=True)  # audit log/report --since
    actor: str
    action: str = Field(max_length=64, index=True)
    subject: str = Field(index=True)
    payload: bytes = Field(sa_type=sa.LargeBinary)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed head of the chain that was exported (kept here as a record; the file is the proof)."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    hash: str = Field(max_length=64)
    algorithm: str = Field(max_length=16)
    key_id: str | None = None
    signature: str
    created_at: datetime = _ts()


class AuditState(SQLModel, table=True):
    """The state projection at the newest ``audit.snapshot`` event: each bound row's digest and the seq of
    the event that last wrote it.  Derived from the log and checked against the snapshot's Merkle root
    (:mod:`governance.audit._index`); never trusted on its own."""

    __tablename__ = "audit_state"
    __table_args__ = (sa.Index("ix_audit_state_bucket", "bucket"),)

    tbl: str = Field(primary_key=True, max_length=64)
    row_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    bucket: int
    seq: int
    digest: str = Field(max_length=64)


class AuditStateNode(SQLModel, table=True):
    """Inner nodes of the snapshot's Merkle tree (level 1: buckets, level 2: groups of buckets)."""

    __tablename__ = "audit_state_node"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    digest: str = Field(max_length=64)


class AuditTouch(SQLModel, table=True):
    """PostgreSQL: the state rows a transaction wrote, recorded by triggers (migration 0006) and read
    back by the transaction before it commits.  Unused on SQLite (TEMP triggers on the writer's own
    connection)."""

    __tablename__ = "audit_touch"
    __table_args__ = (sa.Index("ix_audit_touch_xid", "xid"),)

    id: int | None = Field(default=None, primary_key=True)
    xid: str = Field(max_length=32)
    tbl: str = Field(max_length=64)
    row_id: int = Field(sa_type=sa.BigInteger)


#: The tables whose rows are bound to the audit log (the gate's facts and the lineage graph).
STATE_TABLES: tuple[str, ...] = (
    "approval", "check_result", "column_lineage", "dataset", "dataset_field", "dataset_version", "evidence",
    "job", "model", "model_alias", "model_version", "policy_evaluation", "promotion_event", "run", "run_io",
    "signed_statement", "waiver",
)


def state_table(name: str) -> sa.Table:
    """The :class:`sqlalchemy.Table` of a state table by name."""
    if name not in STATE_TABLES:
        raise KeyError(name)
    return SQLModel.metadata.tables[name]


# -------------------------------------------------------------------------------------- openlineage
class OutboxEvent(SQLModel, table=True):
    """An OpenLineage event waiting to be shipped; written in the same transaction as its run.

    ``payload`` is the event document.  A decorated step writes only the row (run, type, time) and
    leaves ``payload`` empty; the shipper builds the document from the run's catalog rows when it
    first handles the row and stores it then (see :mod:`governance.openlineage._outbox`).
    """

    __tablename__ = "ol_outbox"
    __table_args__ = (sa.Index("ix_outbox_pending", "sent_at", "next_attempt_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_uuid: str = Field(max_length=36, index=True)
    event_type: str = Field(max_length=16)
    event_time: datetime = Field(sa_type=UTCDateTime)
    payload: str | None = Field(default=None, sa_type=sa.Text)
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = _ts()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _ts()


class IngestedEvent(SQLModel, table=True):
    """Key of an OpenLineage event imported from another producer (makes ingest idempotent)."""

    __tablename__ = "ol_ingested"
    __table_args__ = (sa.UniqueConstraint("run_uuid", "event_type", "event_time", name="uq_ingested"),)

    id: int | None = Field(default=None, primary_key=True)
    run_uuid: str = Field(max_length=64)
    event_type: str = Field(max_length=16)
    event_time: str = Field(max_length=64)
    producer: str | None = None
    created_at: datetime = _ts()
