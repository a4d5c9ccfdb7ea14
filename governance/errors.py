"""One exception tree for the whole library.

``GovernanceError`` is the root.  The CLI maps the branches to exit codes:

* :class:`PolicyViolation` -> 1 (the policy said no)
* :class:`InputError`, :class:`ConfigError`, :class:`NotFoundError` -> 2 (bad input or usage)
* :class:`EvaluationError` -> 3 (a check could not be evaluated)
* :class:`CatalogError` -> 2 when the catalog cannot be reached or opened (the message names it)
* :class:`AuditIntegrityError` -> 1 (the audit chain does not verify)

Messages say what was wrong, where, and what to do.
"""

from __future__ import annotations

__all__ = [
    "AuditIntegrityError",
    "CatalogError",
    "ConfigError",
    "EvaluationError",
    "GovernanceError",
    "InputError",
    "NotFoundError",
    "PolicyViolation",
    "UnboundStateError",
]


class GovernanceError(Exception):
    """Root of every error this library raises on purpose."""

    exit_code: int = 2


class InputError(GovernanceError, ValueError):
    """Bad input from a user: an argument, a file, a field."""

    exit_code = 2


class ConfigError(InputError):
    """Bad settings: a malformed URL, an unreadable ``governance.toml``, a wrong env var."""


class NotFoundError(InputError, LookupError):
    """A named thing (model, version, alias, dataset, run, policy pack) does not exist."""


class CatalogError(GovernanceError):
    """The catalog database could not be reached, opened or migrated."""

    exit_code = 2


class PolicyViolation(GovernanceError):
    """A policy gate blocked: a blocking check failed and no valid waiver covers it."""

    exit_code = 1


class EvaluationError(GovernanceError):
    """A check could not be evaluated (missing evidence, a computation that failed)."""

    exit_code = 3


class UnboundStateError(EvaluationError):
    """The gate read a row that does not match the content the audit log recorded for it (forged,
    edited or written outside the audited path): it fails closed."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [message])


class AuditIntegrityError(GovernanceError):
    """The audit chain or a checkpoint does not verify."""

    exit_code = 1
