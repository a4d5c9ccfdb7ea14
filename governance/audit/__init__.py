"""Tamper-evident audit trail: the audited write API, the hash chain, checkpoints, verification.

* :func:`audited` opens the one write path: changes and their :class:`AuditEvent` rows commit
  together.  Appends serialise per chain (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
  advisory lock on PostgreSQL, ``UNIQUE(seq)`` as the backstop).
* :func:`verify_audit` recomputes the chain in batches and names the first bad seq; with a signed
  checkpoint (:func:`create_checkpoint`, Ed25519) it also catches truncation and restored backups.
* :func:`harden_postgres` makes the audit tables append-only for an application role.
"""

from governance.audit._actor import resolve_actor
from governance.audit._adopt import AdoptReport, adopt_existing
from governance.audit._chain import (
    ALGORITHM,
    GENESIS_HASH,
    ChainHead,
    VerifyReport,
    canonical_json,
    format_time,
    iter_chain,
    link_hash,
    verify_events,
)
from governance.audit._checkpoint import (
    Checkpoint,
    create_checkpoint,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    read_checkpoint,
)
from governance.audit._harden import append_only_sql, harden_postgres
from governance.audit._index import (
    BoundState,
    StateVerdicts,
    advance_snapshot,
    check_bound,
    load_bound_state,
    require_bound,
)
from governance.audit._log import LoggedEvent, list_events, parse_since
from governance.audit._state import supply_rows
from governance.audit._verify import verify_audit
from governance.audit._write import AuditedTransaction, audited

__all__ = [
    "ALGORITHM",
    "GENESIS_HASH",
    "AdoptReport",
    "AuditedTransaction",
    "BoundState",
    "ChainHead",
    "Checkpoint",
    "LoggedEvent",
    "StateVerdicts",
    "VerifyReport",
    "adopt_existing",
    "advance_snapshot",
    "append_only_sql",
    "audited",
    "canonical_json",
    "check_bound",
    "create_checkpoint",
    "format_time",
    "generate_keypair",
    "harden_postgres",
    "iter_chain",
    "key_id",
    "link_hash",
    "list_events",
    "load_bound_state",
    "load_private_key",
    "load_public_key",
    "parse_since",
    "read_checkpoint",
    "require_bound",
    "resolve_actor",
    "supply_rows",
    "verify_audit",
    "verify_events",
]
