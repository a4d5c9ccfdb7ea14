"""OpenSSH signatures (SSHSIG, ``PROTOCOL.sshsig``) with Ed25519 keys.

Signing is done here with ``cryptography`` (the format is small: a fixed preamble, the namespace and
the SHA-512 of the message are signed; the armored blob carries the public key, the namespace and the
signature); verification uses the ``sshsig`` library.  ``ssh-keygen -Y verify`` accepts what
:func:`sign` writes, and :func:`verify_signature` accepts what ``ssh-keygen -Y sign`` writes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["NAMESPACE", "SignatureInvalid", "SignedBy", "agent_sign", "fingerprint", "sign", "verify_signature"]

NAMESPACE = "ml-governance"
"""The SSHSIG namespace of every decision this library signs (``ssh-keygen -Y ... -n ml-governance``)."""

_MAGIC = b"SSHSIG"
_HASH = "sha512"
_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"


class SignatureInvalid(Exception):
    """The signature does not verify for this message and namespace (or is not SSHSIG at all)."""


@dataclass(frozen=True)
class SignedBy:
    """The key a valid signature was made with."""

    public_key: str  # "ssh-ed25519 AAAA..."
    fingerprint: str  # "SHA256:..." as ssh-keygen -l prints it
    namespace: str


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _public_blob(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _string(b"ssh-ed25519") + _string(raw)


def fingerprint(public_key: str) -> str:
    """``SHA256:<base64>`` of an OpenSSH public key line, as ``ssh-keygen -lf`` prints it."""
    parts = public_key.split()
    blob = base64.b64decode(parts[1]) if len(parts) > 1 else b""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def sign(message: bytes, key: Ed25519PrivateKey, namespace: str = NAMESPACE) -> str:
    """The armored SSHSIG signature of ``message`` under ``namespace``."""
    digest = hashlib.new(_HASH, message).digest()
    signed = _MAGIC + _string(namespace.encode()) + _string(b"") + _string(_HASH.encode()) + _string(digest)
    raw_signature = key.sign(signed)
    blob = (_MAGIC + struct.pack(">I", 1) + _string(_public_blob(key)) + _string(namespace.encode())
            + _string(b"") + _string(_HASH.encode())
            + _string(_string(b"ssh-ed25519") + _string(raw_signature)))
    text = base64.b64encode(blob).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n"


def agent_sign(message: bytes, public_key_file: str, namespace: str = NAMESPACE) -> str:
    """Sign with the private key ``ssh-agent`` holds for ``public_key_file`` (``ssh-keygen -Y sign``)."""
    import os
    import shutil
    import subprocess

    from governance.errors import InputError

    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise InputError("--key: signing through ssh-agent needs ssh-keygen (apt-get install openssh-client)")
    if not os.environ.get("SSH_AUTH_SOCK"):
        raise InputError(f"--key: {public_key_file} is a public key, but no ssh-agent is running (SSH_AUTH_SOCK)")
    done = subprocess.run(  # noqa: S603 - a fixed argv (no shell): the resolved ssh-keygen, a path, a namespace
        [keygen, "-Y", "sign", "-f", public_key_file, "-n", namespace], input=message,
        capture_output=True, check=False, timeout=60)
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"--key: ssh-agent could not sign with {public_key_file}: "
                         f"{reason[-1] if reason else 'ssh-keygen failed'}")
    return done.stdout.decode("ascii")


def verify_signature(message: bytes, armored: str, namespace: str = NAMESPACE) -> SignedBy:
    """The key that made ``armored`` over ``message`` in ``namespace``; :class:`SignatureInvalid` otherwise.

    Says nothing about whether the key is trusted: that is the trust store's job.
    """
    import sshsig

    text = armored.strip()
    if not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise SignatureInvalid("not an armored SSH signature")
    try:
        key = sshsig.check_signature(message, text, namespace)
    except sshsig.InvalidSignature as exc:
        raise SignatureInvalid(str(exc) or "the signature does not match") from None
    except (ValueError, NotImplementedError, AssertionError, IndexError, UnicodeError) as exc:
        raise SignatureInvalid(f"malformed signature: {exc}") from None
    public = key.openssh_str()
    if not public.startswith("ssh-ed25519 "):
        raise SignatureInvalid(f"only Ed25519 keys are accepted, got {public.split()[0]}")
    return SignedBy(public_key=" ".join(public.split()[:2]), fingerprint=fingerprint(public), namespace=namespace)
