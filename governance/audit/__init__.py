"""Tamper-evident audit trail: the audited write API, the hash chain, checkpoints, verification."""

from governance.audit._actor import resolve_actor
from governance.audit._chain import (
    ALGORITHM,
    GENESIS_HASH,
    ChainHead,
    VerifyReport,
    canonical_json,
    link_hash,
    verify_events,
)
from governance.audit._write import AuditedTransaction, audited

__all__ = [
    "ALGORITHM",
    "GENESIS_HASH",
    "AuditedTransaction",
    "ChainHead",
    "VerifyReport",
    "audited",
    "canonical_json",
    "link_hash",
    "resolve_actor",
    "verify_events",
]
