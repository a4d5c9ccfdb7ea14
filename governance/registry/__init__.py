"""Model registry and the policy gate: versions, stages, promotion, rollback, waivers, sign-off,
monitoring, and the CI output formats."""

from governance.registry._approvals import ApprovalStatus, approve, list_approvals
from governance.registry._document import CARD_FIELDS, DocumentedVersion, document
from governance.registry._gate import GateReport, check
from governance.registry._lookup import version_of
from governance.registry._monitor import MonitorReport, monitor
from governance.registry._output import FORMATS, GithubOutput, render, render_github, summary_line
from governance.registry._promote import (
    OBSERVE,
    PromotionConflict,
    Rollback,
    history,
    promote,
    refusal_error,
    rollback,
    stage_version,
)
from governance.registry._queries import version_approvals, version_facts, version_promotions, version_waivers
from governance.registry._records import (
    Approval,
    DecisionSignature,
    Promotion,
    RegisteredVersion,
    SignedDecision,
    VersionFacts,
    Waiver,
    WaiverSignatures,
)
from governance.registry._register import register_model
from governance.registry._signoff import decision_signatures, signed_decisions
from governance.registry._verdict import Outcome, classify, exit_code
from governance.registry._waivers import (
    approve_waiver,
    list_waivers,
    revoke_waiver,
    waive,
    waiver_signatures,
    waiver_verdicts,
)

__all__ = [
    "CARD_FIELDS",
    "FORMATS",
    "OBSERVE",
    "Approval",
    "ApprovalStatus",
    "DecisionSignature",
    "DocumentedVersion",
    "GateReport",
    "GithubOutput",
    "MonitorReport",
    "Outcome",
    "Promotion",
    "PromotionConflict",
    "RegisteredVersion",
    "Rollback",
    "SignedDecision",
    "VersionFacts",
    "Waiver",
    "WaiverSignatures",
    "approve",
    "approve_waiver",
    "check",
    "classify",
    "decision_signatures",
    "document",
    "exit_code",
    "history",
    "list_approvals",
    "list_waivers",
    "monitor",
    "promote",
    "refusal_error",
    "register_model",
    "render",
    "render_github",
    "revoke_waiver",
    "rollback",
    "signed_decisions",
    "stage_version",
    "summary_line",
    "version_approvals",
    "version_facts",
    "version_of",
    "version_promotions",
    "version_waivers",
    "waive",
    "waiver_signatures",
    "waiver_verdicts",
]
