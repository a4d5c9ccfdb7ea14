"""``POST /api/v1/lineage``: events as openlineage-python's ``HttpTransport`` sends them (one event or a
JSON array), checked here, then handed to the lineage inbox (:mod:`governance.server._inbox`), which
answers once they are durable and imports them through ``gov ingest openlineage``'s import
(:func:`governance.openlineage.ingest_openlineage`) in large batches.

Checking is the import's own validation (:func:`governance.openlineage.validate_event`), so an
event refused here is one the import would refuse, named by its JSON path in the request body
(``$[2].run.runId``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["EventProblem", "parse_events"]

_PATH = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_][\w]*(?:\[\d+\])?)*): ")


@dataclass(frozen=True)
class EventProblem:
    """One refused event: its JSON path in the request body and why."""

    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def _join(prefix: str, reason: str) -> EventProblem:
    match = _PATH.match(reason)
    if match is None:
        return EventProblem(prefix or "$", reason)
    inner = match.group(1)
    return EventProblem(f"{prefix}.{inner}" if prefix else f"$.{inner}", reason[match.end():])


def parse_events(body: bytes) -> tuple[list[bytes], list[EventProblem]]:
    """Split a body (one event object, or a JSON array of them) into the valid events as one-line UTF-8
    JSON texts, and the problems of the others (not JSON, not an object, not a valid OpenLineage event).

    A single UTF-8 object is kept as it came, its line breaks turned into spaces (JSON strings cannot
    hold a raw line break, so only whitespace changes); array items are serialised again.
    """
    from governance.openlineage import validate_event as validate

    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        return [], [EventProblem("$", "the body is not UTF-8 text; expected a JSON OpenLineage event")]
    except json.JSONDecodeError as exc:
        return [], [EventProblem("$", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")]
    items = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, list) and not doc:
        return [], [EventProblem("$", "an empty array; expected at least one event")]
    if isinstance(doc, dict) and body[:1] == b"{":
        try:
            validate("$", doc)
        except ValueError as exc:
            return [], [_join("", str(exc))]
        return [body.replace(b"\n", b" ").replace(b"\r", b" ")], []
    texts: list[bytes] = []
    problems: list[EventProblem] = []
    for index, item in enumerate(items):
        where = f"$[{index}]" if isinstance(doc, list) else "$"
        if not isinstance(item, dict):
            problems.append(EventProblem(where, "expected a JSON object (an OpenLineage RunEvent)"))
            continue
        try:
            validate(where, item)
        except ValueError as exc:
            problems.append(_join("" if where == "$" else where, str(exc)))
            continue
        texts.append(json.dumps(item, separators=(",", ":")).encode())
    return texts, problems
