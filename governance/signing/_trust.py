"""The trust store: an OpenSSH ``allowed_signers`` file (``man ssh-keygen``, ALLOWED SIGNERS).

Each line is ``principals [options] keytype base64key [comment]`` with the options ``namespaces="..."``,
``valid-after="YYYYMMDD[HHMM[SS]][Z]"`` and ``valid-before="..."``; ``cert-authority`` lines are not
supported.  Principals are normalised identities (:func:`normalise_identity`); patterns are refused.
The same file verifies our signatures with stock ``ssh-keygen -Y verify``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from governance.errors import ConfigError, InputError
from governance.signing._identity import normalise_identity, skeleton
from governance.signing._sshsig import fingerprint

__all__ = ["TrustEntry", "TrustStore", "load_trust_store"]

_TIME = re.compile(r"^(\d{8})(\d{4}(\d{2})?)?(Z)?$")


@dataclass(frozen=True)
class TrustEntry:
    """One line: the principals a key speaks for, where and when."""

    principals: tuple[str, ...]
    public_key: str
    fingerprint: str
    namespaces: tuple[str, ...] | None
    valid_after: datetime | None
    valid_before: datetime | None
    line: int

    def refusal(self, namespace: str, at: datetime) -> str | None:
        """Why this key may not sign in ``namespace`` at ``at`` (None: it may)."""
        if self.namespaces is not None and not any(_glob(p, namespace) for p in self.namespaces):
            return f"key {self.fingerprint} is not allowed for namespace {namespace}"
        if self.valid_after is not None and at < self.valid_after:
            return f"key {self.fingerprint} is not valid before {self.valid_after.isoformat()}"
        if self.valid_before is not None and at >= self.valid_before:
            return f"key {self.fingerprint} expired at {self.valid_before.isoformat()}"
        return None


@dataclass(frozen=True)
class TrustStore:
    """The parsed ``allowed_signers`` file and the SHA-256 of its bytes (recorded with decisions)."""

    path: Path | None
    digest: str
    entries: tuple[TrustEntry, ...]

    def entries_for(self, public_key: str) -> list[TrustEntry]:
        wanted = " ".join(public_key.split()[:2])
        return [e for e in self.entries if e.public_key == wanted]

    def principals_of(self, public_key: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for e in self.entries_for(public_key) for p in e.principals))


EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()


def _glob(pattern: str, value: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(value, pattern)


def _time(text: str, where: str) -> datetime:
    match = _TIME.match(text)
    if not match:
        raise ConfigError(f"{where}: expected YYYYMMDD[HHMM[SS]][Z], got {text!r}")
    digits = match.group(1) + (match.group(2) or "0000")
    digits += "" if match.group(3) else "00"
    try:
        # ssh-keygen reads times without Z as local time; a trust store shared by a team says Z
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{where}: not a valid time {text!r}") from None


def load_trust_store(path: str | Path | None) -> TrustStore:
    """Parse ``path`` (None: an empty store that trusts nobody)."""
    if path is None:
        return TrustStore(None, EMPTY_DIGEST, ())
    from sshsig.allowed_signers import AllowedSigner

    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"allowed_signers: cannot read {file}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text") from None
    entries: list[TrustEntry] = []
    seen: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{file} line {number}"
        try:
            parsed = AllowedSigner.parse(line)
        except (ValueError, NotImplementedError, IndexError) as exc:
            raise ConfigError(f"{where}: not an allowed_signers line ({exc})") from None
        options = parsed.options or {}
        if "cert-authority" in options:
            raise ConfigError(f"{where}: cert-authority lines are not supported; list each person's key")
        if parsed.key_type != "ssh-ed25519":
            raise ConfigError(f"{where}: only ssh-ed25519 keys are supported, got {parsed.key_type}")
        principals: list[str] = []
        for name in parsed.principals.split(","):
            if any(c in name for c in "*?!"):
                raise ConfigError(f"{where}: principal patterns ({name!r}) are not supported; name each person")
            try:
                principal = normalise_identity(name, f"{where}: principal")
            except InputError as exc:
                raise ConfigError(str(exc)) from None
            shape = skeleton(principal)
            if seen.get(shape, principal) != principal:
                raise ConfigError(f"{where}: principal {name!r} looks like {seen[shape]!r} (same TR39 "
                                  "skeleton); give people names that cannot be confused")
            seen[shape] = principal
            principals.append(principal)
        public = f"{parsed.key_type} {parsed.base64_key}"
        try:
            key_fingerprint = fingerprint(public)
        except ValueError:
            raise ConfigError(f"{where}: the key is not valid base64") from None
        namespaces = options.get("namespaces")
        entries.append(TrustEntry(
            principals=tuple(principals), public_key=public, fingerprint=key_fingerprint,
            namespaces=None if namespaces is None else tuple(n.strip() for n in namespaces.split(",")),
            valid_after=_time(options["valid-after"], where) if "valid-after" in options else None,
            valid_before=_time(options["valid-before"], where) if "valid-before" in options else None,
            line=number,
        ))
    return TrustStore(file, "sha256:" + hashlib.sha256(data).hexdigest(), tuple(entries))
