"""Ed25519 key pairs in OpenSSH format: made by ``gov keys init`` or ``ssh-keygen -t ed25519``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.errors import InputError
from governance.signing._sshsig import fingerprint

__all__ = ["SigningKey", "generate_key", "load_signing_key"]


@dataclass(frozen=True)
class SigningKey:
    """A key ready to sign, with its public half and fingerprint.  ``private`` is None for a public key
    file whose private half is held by ``ssh-agent`` (signing then goes through ``ssh-keygen -Y sign``)."""

    private: Ed25519PrivateKey | None
    public_key: str
    fingerprint: str
    path: Path


def _public_line(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def load_signing_key(path: str | Path, what: str = "--key") -> SigningKey:
    """Load an unencrypted OpenSSH Ed25519 private key (``~/.ssh/id_ed25519`` style), or a public key
    (``id_ed25519.pub``) whose private half ``ssh-agent`` holds."""
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"{what}: cannot read {file}: {exc.strerror}") from None
    if data.startswith(b"ssh-"):
        parts = data.decode("ascii", "replace").split()
        if parts[0] != "ssh-ed25519" or len(parts) < 2:
            raise InputError(f"{what}: {file} is not an Ed25519 public key")
        public = f"{parts[0]} {parts[1]}"
        try:
            return SigningKey(None, public, fingerprint(public), file)
        except ValueError:
            raise InputError(f"{what}: {file} is not a valid public key") from None
    try:
        key = load_ssh_private_key(data, password=None)
    except TypeError:
        raise InputError(f"{what}: {file} is passphrase-protected; add it to ssh-agent and pass its public "
                         "key (FILE.pub), or use an unencrypted key made for sign-off (`gov keys init`)") from None
    except ValueError as exc:
        raise InputError(f"{what}: {file} is not an OpenSSH private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{what}: {file} is not an Ed25519 key; make one with `gov keys init` "
                         "or `ssh-keygen -t ed25519`")
    public = _public_line(key)
    return SigningKey(key, public, fingerprint(public), file)


def generate_key(path: str | Path, comment: str = "") -> SigningKey:
    """Write a new key pair to ``path`` (mode 0600) and ``path.pub``; refuses to overwrite."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    file = Path(path).expanduser()
    if file.exists() or file.with_name(file.name + ".pub").exists():
        raise InputError(f"--output: {file} already exists; choose another path")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private)
        public = _public_line(key) + (f" {comment}" if comment else "")
        file.with_name(file.name + ".pub").write_text(public + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--output: cannot write {file}: {exc.strerror}") from None
    return SigningKey(key, _public_line(key), fingerprint(_public_line(key)), file)
