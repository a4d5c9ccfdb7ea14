"""Signed decisions: who approved is proven by a signature (design section 7a).

* :func:`load_signing_key` / :func:`generate_key`: OpenSSH Ed25519 keys;
* :func:`sign` / :func:`verify_signature`: OpenSSH SSHSIG signatures under :data:`NAMESPACE`,
  interoperable with ``ssh-keygen -Y sign`` and ``ssh-keygen -Y verify``;
* :func:`load_trust_store`: an OpenSSH ``allowed_signers`` file (principals, namespaces, validity);
* :func:`make_statement` / :func:`verify_statement`: in-toto style decision statements;
* :func:`normalise_identity` / :func:`skeleton`: identities compared as people.
"""

from governance.signing._identity import normalise_identity, same_person_name, skeleton
from governance.signing._keys import SigningKey, generate_key, load_signing_key
from governance.signing._sshsig import NAMESPACE, SignatureInvalid, SignedBy, fingerprint, sign, verify_signature
from governance.signing._statement import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Verification,
    make_statement,
    sign_statement,
    signer_principal,
    verify_statement,
)
from governance.signing._trust import TrustEntry, TrustStore, load_trust_store

__all__ = [
    "NAMESPACE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "SignatureInvalid",
    "SignedBy",
    "SigningKey",
    "TrustEntry",
    "TrustStore",
    "Verification",
    "fingerprint",
    "generate_key",
    "load_signing_key",
    "load_trust_store",
    "make_statement",
    "normalise_identity",
    "same_person_name",
    "sign",
    "sign_statement",
    "signer_principal",
    "skeleton",
    "verify_signature",
    "verify_statement",
]
