"""Decisions as signed statements, in the spirit of an in-toto Statement (v1).

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "credit-scorer@3", "digest": {"blake3": "<artifact hash>"}}],
     "predicateType": "urn:ml-governance:decision:v1",
     "predicate": {"action": "approval", "decision": "approve", "model": "credit-scorer", "version": 3,
                   "stage": "production", "check": null, "evidence": "sha256:...",
                   "policy": {"name": ..., "version": ..., "digest": "sha256:..."},
                   "principal": "bob", "time": "2026-11-25T20:00:00.000000Z", ...}}

The statement is stored as the exact canonical JSON bytes that were signed (SSHSIG, namespace
:data:`NAMESPACE`), so ``ssh-keygen -Y verify`` can check a stored decision with stock tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance.audit import canonical_json
from governance.errors import InputError
from governance.signing._identity import normalise_identity
from governance.signing._keys import SigningKey
from governance.signing._sshsig import NAMESPACE, SignatureInvalid, agent_sign, sign, verify_signature
from governance.signing._trust import TrustStore

__all__ = ["PREDICATE_TYPE", "STATEMENT_TYPE", "Verification", "make_statement", "sign_statement",
           "signer_principal", "verify_statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:ml-governance:decision:v1"


def make_statement(*, subject_name: str, artifact_digest: str | None, predicate: dict[str, Any],
                   algo: str = "blake3") -> bytes:
    """Canonical JSON bytes of a statement about ``subject_name`` (an artifact digest when known)."""
    digest = {algo: artifact_digest} if artifact_digest else {}
    return canonical_json({"_type": STATEMENT_TYPE, "subject": [{"name": subject_name, "digest": digest}],
                           "predicateType": PREDICATE_TYPE, "predicate": predicate})


def signer_principal(key: SigningKey, trust: TrustStore, claimed: str | None, at: datetime) -> str:
    """The principal ``key`` signs as: refuses keys the trust store does not allow now."""
    entries = trust.entries_for(key.public_key)
    if not entries:
        where = trust.path or "no trust store configured (allowed_signers / GOVERNANCE_ALLOWED_SIGNERS)"
        raise InputError(f"--key: key {key.fingerprint} is not in the trust store ({where}); add its "
                         "allowed_signers line (`gov keys init` prints it)")
    usable = [e for e in entries if e.refusal(NAMESPACE, at) is None]
    if not usable:
        raise InputError(f"--key: {entries[0].refusal(NAMESPACE, at)}")
    principals = [p for e in usable for p in e.principals]
    if claimed is not None:
        wanted = normalise_identity(claimed, "--actor")
        if wanted in principals:
            return wanted
    return principals[0]


def sign_statement(statement: bytes, key: SigningKey) -> str:
    """The SSHSIG signature of ``statement`` (through ssh-agent when only the public key is at hand);
    checked before it is stored, so a wrong agent key cannot record a signature that will not verify."""
    if key.private is not None:
        return sign(statement, key.private, NAMESPACE)
    signature = agent_sign(statement, str(key.path), NAMESPACE)
    try:
        signed_by = verify_signature(statement, signature, NAMESPACE)
    except SignatureInvalid as exc:
        raise InputError(f"--key: ssh-agent returned a signature that does not verify ({exc})") from None
    if signed_by.public_key != key.public_key:
        raise InputError(f"--key: ssh-agent signed with {signed_by.fingerprint}, not {key.fingerprint}")
    return signature


@dataclass(frozen=True)
class Verification:
    """What the gate may believe about one stored decision."""

    status: str  # verified | unsigned | invalid | untrusted
    principal: str | None = None  # as the statement names it (proven only when ``verified``)
    fingerprint: str | None = None
    reason: str | None = None
    predicate: dict[str, Any] | None = None
    subject_digest: str | None = None

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "principal": self.principal, "key_fingerprint": self.fingerprint,
                "reason": self.reason}


def _parse(statement: str) -> tuple[dict[str, Any], str | None]:
    doc = json.loads(statement)
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        raise ValueError("not a decision statement")
    predicate = doc.get("predicate")
    subjects = doc.get("subject")
    if not isinstance(predicate, dict) or not isinstance(subjects, list) or len(subjects) != 1:
        raise ValueError("malformed statement")
    digest = (subjects[0].get("digest") or {}) if isinstance(subjects[0], dict) else {}
    values = list(digest.values()) if isinstance(digest, dict) else []
    return predicate, (str(values[0]) if values else None)


def verify_statement(statement: str, signature: str | None, trust: TrustStore,
                     now: datetime | None = None) -> Verification:
    """Verify a stored statement: signature, namespace, trusted key valid now, principal of that key."""
    at = now or datetime.now(UTC)
    try:
        predicate, subject_digest = _parse(statement)
    except ValueError as exc:
        return Verification("invalid", reason=f"statement: {exc}")
    if canonical_json(json.loads(statement)).decode("utf-8") != statement:
        return Verification("invalid", reason="statement is not in canonical form", predicate=predicate)
    claimed = predicate.get("principal")
    if signature is None:
        return Verification("unsigned", principal=str(claimed) if claimed else None, predicate=predicate,
                            subject_digest=subject_digest, reason="unsigned")
    try:
        signed_by = verify_signature(statement.encode("utf-8"), signature, NAMESPACE)
    except SignatureInvalid as exc:
        return Verification("invalid", reason=f"signature does not verify: {exc}", predicate=predicate)
    entries = trust.entries_for(signed_by.public_key)
    fpr = signed_by.fingerprint

    def result(status: str, reason: str | None = None) -> Verification:
        # the principal is the one the statement names; only ``verified`` means the key speaks for it
        return Verification(status, claimed if isinstance(claimed, str) else None, fpr, reason, predicate,
                            subject_digest)

    if not entries:
        return result("untrusted", f"key {fpr} is not in the trust store")
    refusals = [e.refusal(NAMESPACE, at) for e in entries]
    usable = [e for e, why in zip(entries, refusals, strict=True) if why is None]
    if not usable:
        return result("untrusted", next(r for r in refusals if r))
    principals = [p for e in usable for p in e.principals]
    if not isinstance(claimed, str) or claimed not in principals:
        return result("untrusted", f"key {fpr} does not speak for {claimed!r}")
    return result("verified")
