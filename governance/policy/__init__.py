"""Policy packs, the engine that runs them, evidence and stored evaluations.

pack = load_pack("baseline")                       # shipped pack by name, or a path
ctx = context_for_predictions("preds.csv", label="y", prediction="yhat", sensitive=["sex"])
result = run_pack(pack, ctx)                        # EvaluationResult; result.to_document() is the JSON
"""

from governance.policy._engine import (
    CheckOutcome,
    EvaluationResult,
    Status,
    WaiverInfo,
    assert_measurement,
    overall_status,
    run_pack,
)
from governance.policy._evaluate import EvidenceRecord, evaluate
from governance.policy._inputs import (
    context_for_frame,
    context_for_model_version,
    context_for_predictions,
    read_table,
    read_table_with_fingerprint,
)
from governance.policy._loader import list_packs, load_pack, pack_digest, parse_pack
from governance.policy._queries import (
    StoredCheck,
    StoredEvaluation,
    StoredEvidence,
    evaluation_detail,
    version_evaluations,
    version_evidence,
)
from governance.policy._schema import AppliesTo, Approvals, Assertion, CheckSpec, Metadata, PolicyPack
from governance.policy._store import load_measurements, store_evaluation

__all__ = [
    "AppliesTo",
    "Approvals",
    "Assertion",
    "CheckOutcome",
    "CheckSpec",
    "EvaluationResult",
    "EvidenceRecord",
    "Metadata",
    "PolicyPack",
    "Status",
    "StoredCheck",
    "StoredEvaluation",
    "StoredEvidence",
    "WaiverInfo",
    "assert_measurement",
    "context_for_frame",
    "context_for_model_version",
    "context_for_predictions",
    "evaluate",
    "evaluation_detail",
    "list_packs",
    "load_measurements",
    "load_pack",
    "overall_status",
    "pack_digest",
    "parse_pack",
    "read_table",
    "read_table_with_fingerprint",
    "run_pack",
    "store_evaluation",
    "version_evaluations",
    "version_evidence",
]
