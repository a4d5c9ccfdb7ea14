"""``verify_audit``: recompute the whole chain, streamed, and check a signed checkpoint against it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col

from governance.audit import _replay
from governance.audit._chain import VerifyReport, chain_head, hash_at, iter_chain, verify_events
from governance.audit._checkpoint import Checkpoint, key_id, load_public_key, read_checkpoint
from governance.audit._replay import StateCollector, TableScan, replay_state
from governance.catalog import AuditCheckpoint, AuditEvent, Catalog
from governance.errors import InputError

__all__ = ["verify_audit"]


def verify_audit(catalog: Catalog, checkpoint: Path | str | Checkpoint | None = None,
                 pubkey: Path | str | Ed25519PublicKey | None = None, *, state: bool = True) -> VerifyReport:
    """Recompute the audit chain of ``catalog`` and, with ``checkpoint`` and ``pubkey``, prove the log
    still extends the signed head.  The heads the catalog itself recorded exporting
    (``audit_checkpoint``) must still be in the log too, so deleting events past one is reported even
    without the file.

    With ``state`` (the default) the log's state maps are replayed against the state tables too
    (``report.state``, a :class:`~governance.audit._replay.StateReport`): rows without events, events
    without rows and content mismatches make the report fail.

    Returns a :class:`VerifyReport` (``report.ok``; ``report.first_bad_seq`` names the first link
    that does not verify; ``report.checkpoint_ok``/``checkpoint_reason`` the checkpoint verdict).
    A corrupt checkpoint file, a key that is not an Ed25519 public key, or a checkpoint signed by a
    different key than ``pubkey`` raise :class:`~governance.errors.InputError`.  An empty log is
    reported as intact with ``count == 0`` (the CLI treats that as bad input).
    """
    if (checkpoint is None) != (pubkey is None):
        missing = "--pubkey" if pubkey is None else "--checkpoint"
        raise InputError(f"{missing} is required: a checkpoint is verified with the signer's public key")
    cp: Checkpoint | None = None
    public: Ed25519PublicKey | None = None
    if checkpoint is not None and pubkey is not None:
        cp = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(Path(checkpoint))
        public = pubkey if isinstance(pubkey, Ed25519PublicKey) else load_public_key(Path(pubkey))
        if key_id(public) != cp.key_id:
            raise InputError(f"--pubkey: wrong key: the checkpoint was signed by key {cp.key_id}, "
                             f"the public key given is {key_id(public)}")

    with catalog.read() as session:
        collector = StateCollector() if state else None
        head = chain_head(session)  # opens this transaction's snapshot before the scan starts
        shareable = catalog.backend != "sqlite" or catalog.sqlite_path is not None  # not an in-memory one
        scan = TableScan(catalog.url) if state and shareable and head.seq >= _replay.PARALLEL_FROM else None
        rows = iter_chain(session)
        report = verify_events(rows if collector is None else collector.watch(rows))
        if collector is not None:  # replay the log's state maps against the state tables (section 7a)
            complete = report.first_bad_seq is None
            report = replace(report, state=replay_state(session, collector if complete else None, scan))
        if cp is None or public is None:
            return _recorded_checkpoints(session, report) or report
        if not cp.signature_valid(public):
            return replace(report, checkpoint_seq=cp.seq, checkpoint_ok=False,
                           checkpoint_reason="checkpoint signature does not match its contents "
                                             f"(key {cp.key_id}): the checkpoint file was altered")
        stored = hash_at(session, cp.seq)
        if stored is None:
            last = session.execute(sa.select(sa.func.max(AuditEvent.seq))).scalar()
            return replace(report, checkpoint_seq=cp.seq, checkpoint_ok=False, checkpoint_reason=(
                f"log ends at seq {last or 0} but the checkpoint covers seq {cp.seq}: "
                "the log was truncated or restored from an older backup"))
        if stored != cp.hash:
            return replace(report, checkpoint_seq=cp.seq, checkpoint_ok=False, checkpoint_reason=(
                f"seq {cp.seq} has hash {stored[:12]}... but the checkpoint signed {cp.hash[:12]}...: "
                "the log was rewritten or restored from a different backup"))
        return _recorded_checkpoints(session, report) or replace(
            report, checkpoint_seq=cp.seq, checkpoint_ok=True,
            checkpoint_reason=f"log contains the signed head seq {cp.seq} (key {cp.key_id})")


def _recorded_checkpoints(session: Session, report: VerifyReport) -> VerifyReport | None:
    """The catalog's own record of the heads it exported must still be in the log: deleting events
    past an exported head (and leaving its record) is caught without the checkpoint file.  A failing
    report for the newest record that the log no longer holds, else None."""
    rows = session.execute(
        sa.select(col(AuditCheckpoint.seq), col(AuditCheckpoint.hash)).order_by(col(AuditCheckpoint.seq).desc())
    ).all()
    for seq, digest in rows:
        stored = hash_at(session, seq)
        if stored == digest:
            continue
        if stored is None:
            reason = (f"the catalog recorded an exported checkpoint at seq {seq}, but the log ends at seq "
                      f"{report.head.seq}: events were deleted")
        else:
            reason = (f"seq {seq} has hash {stored[:12]}... but the catalog's checkpoint record says "
                      f"{str(digest)[:12]}...: the log was rewritten")
        return replace(report, checkpoint_seq=seq, checkpoint_ok=False, checkpoint_reason=reason)
    return None
