"""Check statuses and the verdict of an evaluation, with the one mapping to process exit codes."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EXIT_BLOCKED", "EXIT_ERROR", "EXIT_OK", "Status", "verdict_exit_code"]

EXIT_OK = 0
EXIT_BLOCKED = 1
EXIT_ERROR = 3


class Status(StrEnum):
    """The status of one check, and (``PASS``/``WARN``/``FAIL``/``ERROR``) of a whole evaluation."""

    PASS = "PASS"  # noqa: S105 - a status, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"
    NOT_RUN = "NOT_RUN"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    WAIVED = "WAIVED"
    INSUFFICIENT_EVIDENCE = "INSUFFICIENT_EVIDENCE"

    @classmethod
    def parse(cls, text: object) -> Status | None:
        """A stored status (any case); None for text that is not one."""
        try:
            return cls(str(text).strip().upper())
        except ValueError:
            return None

    def exit_code(self, *, fail_on_warn: bool = False, warned: bool = False) -> int:
        """The process exit code of an evaluation with this overall status: 0 passed, 1 blocked (a
        warning too with ``fail_on_warn``; ``warned``: a PASS whose results include a warning), 3 it
        could not be evaluated (ERROR and any status that is not a verdict: the gate fails closed)."""
        if self is Status.FAIL:
            return EXIT_BLOCKED
        if self is Status.WARN or (self is Status.PASS and warned):
            return EXIT_BLOCKED if fail_on_warn else EXIT_OK
        if self is Status.PASS:
            return EXIT_OK
        return EXIT_ERROR


def verdict_exit_code(status: object, *, fail_on_warn: bool = False, warned: bool = False) -> int:
    """:meth:`Status.exit_code` of a stored status text; text that is no status exits 3."""
    parsed = Status.parse(status)
    if parsed is None:
        return EXIT_ERROR
    return parsed.exit_code(fail_on_warn=fail_on_warn, warned=warned)
