"""How a policy evaluation document (the DESIGN.md JSON contract) reads as a gate verdict.

Everything here works on the contract document only, so the gate, the output formats and the CLI
agree on one reading independent of engine internals.  The exit code follows the document's overall
``status`` (the engine's verdict, which is what is stored and audited), through the one mapping of
:meth:`governance.domain.Status.exit_code`:

* ``FAIL`` -> 1 (the policy said no: a blocking failure, blocking insufficient evidence, or a failure
  whose waiver expired or was revoked);
* ``ERROR`` (and any status nobody knows) -> 3 (a check could not be evaluated: the gate fails closed);
* ``WARN`` -> 0, or 1 with ``--fail-on-warn``; ``PASS`` -> 0.

Per check, :func:`classify` says how to show a result: *failure*, *error* (``ERROR``/``NOT_RUN`` of a
required check), *warning* (also ``ERROR`` of a check with ``required: false``), *skipped* (``NOT_RUN``
of a check with ``required: false``, and ``NOT_APPLICABLE``: neither gates), *waived* or *pass*.  A result without the
``required`` field (documents written before it existed) counts as required.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from governance.domain import EXIT_BLOCKED, EXIT_ERROR, EXIT_OK, WaiverState, verdict_exit_code

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_ERROR",
    "EXIT_OK",
    "Outcome",
    "assertion_text",
    "classify",
    "exit_code",
    "result_message",
    "value_text",
]

_OPERATORS = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<", "eq": "==", "ne": "!=", "between": "between"}


class Outcome(StrEnum):
    """What one check result means for the gate."""

    PASS = "pass"  # noqa: S105 - an outcome name, not a password
    WAIVED = "waived"
    SKIPPED = "skipped"
    WARNING = "warning"
    FAILURE = "failure"
    ERROR = "error"


def _waiver_lapsed(result: Mapping[str, Any]) -> bool:
    waiver = result.get("waiver")
    return (isinstance(waiver, Mapping) and waiver.get("state") is not None
            and WaiverState.parse(waiver.get("state")) is not WaiverState.ACTIVE)


def classify(result: Mapping[str, Any]) -> Outcome:
    """How one result of the contract document shows in outputs."""
    status = str(result.get("status", "")).upper()
    blocking = str(result.get("severity", "block")).lower() != "warn"
    if status == "PASS":
        return Outcome.PASS
    if status == "WAIVED":
        return Outcome.WAIVED
    if status in {"FAIL", "WARN", "INSUFFICIENT_EVIDENCE"} and _waiver_lapsed(result):
        return Outcome.FAILURE
    if status in {"FAIL", "INSUFFICIENT_EVIDENCE"}:
        return Outcome.FAILURE if blocking else Outcome.WARNING
    if status == "WARN":
        return Outcome.WARNING
    if status == "NOT_APPLICABLE" or (status == "NOT_RUN" and result.get("required") is False):
        return Outcome.SKIPPED
    if status == "ERROR" and result.get("required") is False:
        return Outcome.WARNING
    return Outcome.ERROR  # ERROR, NOT_RUN and anything unknown


def exit_code(document: Mapping[str, Any], *, fail_on_warn: bool = False) -> int:
    """0 passed; 1 blocked (or warnings with ``fail_on_warn``); 3 a check could not be evaluated."""
    warned = fail_on_warn and any(classify(r) is Outcome.WARNING for r in document.get("results", []))
    return verdict_exit_code(document.get("status", ""), fail_on_warn=fail_on_warn, warned=warned)


def value_text(value: Any) -> str:
    """A short human rendering of a measured value."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def assertion_text(assertion: Any) -> str:
    """``{"gte": 0.8}`` -> ``>= 0.8``; other shapes as compact JSON."""
    if not assertion:
        return "-"
    if isinstance(assertion, Mapping):
        parts = []
        for key, bound in assertion.items():
            op = _OPERATORS.get(str(key))
            parts.append(f"{op} {value_text(bound)}" if op else f"{key} {value_text(bound)}")
        return " and ".join(parts)
    return value_text(assertion)


def result_message(result: Mapping[str, Any]) -> str:
    """One line saying what happened to a check (the engine's message when it gave one)."""
    message = result.get("message")
    status = str(result.get("status", "")).upper()
    if status == "NOT_APPLICABLE":
        return str(message).splitlines()[0] if message else "not applicable"
    if classify(result) is Outcome.SKIPPED:
        why = str(message).splitlines()[0] if message else "not run"
        return f"skipped (not required): {why}"
    if message:
        return str(message).splitlines()[0]
    if status == "PASS":
        return f"{value_text(result.get('value'))} satisfies {assertion_text(result.get('assert'))}"
    if status in {"FAIL", "WARN"}:
        return f"{value_text(result.get('value'))} does not satisfy {assertion_text(result.get('assert'))}"
    return status.lower().replace("_", " ") or "no status"
