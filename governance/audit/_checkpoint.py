"""Signed checkpoints of the chain head (Ed25519), so truncation and restored backups show.

A hash chain alone cannot tell that its tail was cut off or that the whole database was restored
from an older backup: what is left still verifies.  A checkpoint is the head ``(seq, hash)`` signed
with an Ed25519 key and kept *outside* the catalog (a file, a CI artifact).  Verification with the
checkpoint and the public key fails when the log no longer contains that exact link.

Key files are PEM: the private key PKCS#8 (written with mode 0600), the public key
SubjectPublicKeyInfo.  ``key_id`` is the first 16 hex digits of SHA-256 over the raw public key.

Checkpoint file (JSON, one document)::

    {"format": "governance-audit-checkpoint/1", "algorithm": "ed25519", "chain_algorithm": "sha256",
     "seq": 42, "hash": "<64 hex>", "key_id": "<16 hex>", "created_at": "...Z",
     "signature": "<base64 of the Ed25519 signature over the canonical JSON of every other field>"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from governance._outputs import write_output
from governance.audit._chain import ALGORITHM, canonical_json, chain_head, format_time
from governance.audit._write import audited
from governance.catalog import AuditCheckpoint, Catalog
from governance.errors import InputError

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "create_checkpoint",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "read_checkpoint",
]

CHECKPOINT_FORMAT = "governance-audit-checkpoint/1"
SIGNATURE_ALGORITHM = "ed25519"
PRIVATE_KEY_NAME = "audit-signing.key"
PUBLIC_KEY_NAME = "audit-signing.pub"
_HEX = frozenset("0123456789abcdef")


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key (names the key in checkpoints and messages)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``directory``: the private key with mode 0600.

    Refuses to overwrite an existing key (a lost signing key makes old checkpoints unverifiable
    only if its public half is lost too, but silently replacing it is never what anyone wants).
    """
    directory = Path(directory)
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(f"--output-dir: {path} already exists; remove it or choose another directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-dir: cannot create {directory}: {exc.strerror}") from exc
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    private_path.chmod(0o600)  # the umask cannot widen it, but be explicit
    public_path.write_bytes(public_pem)
    return private_path, public_path


def _read_bytes(path: Path, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{option}: cannot read {path}: {exc.strerror}") from exc


def load_private_key(path: Path, option: str = "--key") -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (unencrypted PKCS#8, as ``gov audit keygen`` writes)."""
    data = _read_bytes(path, option)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{option}: {path} is not an unencrypted PEM private key "
                         "(make one with `gov audit keygen`)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{option}: {path} is a {type(key).__name__.lstrip('_')}, expected an Ed25519 key")
    return key


def load_public_key(path: Path, option: str = "--pubkey") -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file."""
    data = _read_bytes(path, option)
    if b"PRIVATE KEY" in data:
        raise InputError(f"{option}: {path} is a private key; give the public key ({PUBLIC_KEY_NAME})")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{option}: {path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{option}: {path} is a {type(key).__name__.lstrip('_')}, expected an Ed25519 key")
    return key


@dataclass(frozen=True)
class Checkpoint:
    """A signed chain head as read from or written to a checkpoint file."""

    seq: int
    hash: str
    key_id: str
    created_at: str
    signature: bytes
    chain_algorithm: str = ALGORITHM

    def signed_fields(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "algorithm": SIGNATURE_ALGORITHM,
            "chain_algorithm": self.chain_algorithm, "seq": self.seq, "hash": self.hash,
            "key_id": self.key_id, "created_at": self.created_at,
        }

    def message(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json(self.signed_fields())

    def to_json(self) -> str:
        doc = {**self.signed_fields(), "signature": base64.b64encode(self.signature).decode("ascii")}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.message())
        except InvalidSignature:
            return False
        return True


def read_checkpoint(path: Path, option: str = "--checkpoint") -> Checkpoint:
    """Parse a checkpoint file; anything malformed is an :class:`InputError` naming the field."""
    raw = _read_bytes(path, option)
    where = f"{option}: {path}"
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{where} is not a JSON checkpoint file (corrupt or wrong file)") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{where}: `format` must be {CHECKPOINT_FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("algorithm") != SIGNATURE_ALGORITHM:
        raise InputError(f"{where}: `algorithm` must be {SIGNATURE_ALGORITHM!r}, "
                         f"got {doc.get('algorithm')!r}")
    if doc.get("chain_algorithm") != ALGORITHM:
        raise InputError(f"{where}: `chain_algorithm` must be {ALGORITHM!r}, "
                         f"got {doc.get('chain_algorithm')!r}")
    seq = doc.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise InputError(f"{where}: `seq` must be a positive integer, got {seq!r}")
    for name, length in (("hash", 64), ("key_id", 16)):
        value = doc.get(name)
        if not isinstance(value, str) or len(value) != length or not set(value) <= _HEX:
            raise InputError(f"{where}: `{name}` must be {length} lowercase hex digits, got {value!r}")
    created = doc.get("created_at")
    if not isinstance(created, str):
        raise InputError(f"{where}: `created_at` must be a timestamp string, got {created!r}")
    try:
        signature = base64.b64decode(str(doc.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{where}: `signature` is not base64") from None
    if len(signature) != 64:
        raise InputError(f"{where}: `signature` must be a 64-byte Ed25519 signature, "
                         f"got {len(signature)} bytes")
    return Checkpoint(seq=seq, hash=doc["hash"], key_id=doc["key_id"], created_at=created,
                      signature=signature)


def create_checkpoint(catalog: Catalog, private_key: Ed25519PrivateKey, output: Path,
                      actor: str) -> Checkpoint:
    """Sign the current head, write it to ``output`` and record it (audited) in the catalog.

    The head is read under the chain lock, in the transaction that records the checkpoint, so the
    signed link is exactly the one before the ``audit.checkpoint`` event.  An empty log has nothing
    to sign and is an :class:`InputError`.
    """
    output = Path(output)
    if output.is_dir():
        raise InputError(f"--output: {output} is a directory; give a file name")
    with audited(catalog, actor) as tx:
        head = chain_head(tx.session)
        if head.seq == 0:
            raise InputError(f"audit log of {catalog.display_url} is empty: nothing to checkpoint")
        public = private_key.public_key()
        unsigned = Checkpoint(seq=head.seq, hash=head.hash, key_id=key_id(public),
                              created_at=format_time(tx.time), signature=b"")
        checkpoint = Checkpoint(**{**unsigned.__dict__, "signature": private_key.sign(unsigned.message())})
        tx.session.add(AuditCheckpoint(
            seq=checkpoint.seq, hash=checkpoint.hash, algorithm=SIGNATURE_ALGORITHM,
            key_id=checkpoint.key_id, signature=base64.b64encode(checkpoint.signature).decode("ascii"),
            created_at=tx.time,
        ))
        tx.record("audit.checkpoint", f"audit:seq/{checkpoint.seq}",
                  {"seq": checkpoint.seq, "hash": checkpoint.hash, "key_id": checkpoint.key_id,
                   "output": output.name})
        write_output(output, checkpoint.to_json())
    return checkpoint

