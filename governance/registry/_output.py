"""Output formats of the gate, built from the JSON contract document only.

``text`` (a rich table), ``json`` (the contract exactly), ``junit`` (JUnit XML, one testcase per
check), ``sarif`` (SARIF 2.1.0, one rule per check id) and ``github`` (a Markdown step summary plus
``::error``/``::warning`` workflow commands).  Because every renderer reads the document, not engine
objects, what CI shows is what was stored and audited.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from governance._display import guard_lines, plain, printable
from governance.errors import InputError
from governance.registry._verdict import (
    Outcome,
    assertion_text,
    classify,
    exit_code,
    result_message,
    value_text,
)

__all__ = [
    "FORMATS",
    "GithubOutput",
    "render",
    "render_github",
    "render_json",
    "render_junit",
    "render_sarif",
    "render_text",
    "summary_line",
]

FORMATS = ("text", "json", "junit", "sarif", "github")
TOOL_NAME = "ml-governance"
TOOL_URI = "https://github.com/ml-governance/ml-governance"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SYMBOL = {
    Outcome.PASS: "PASS", Outcome.WAIVED: "WAIVED", Outcome.SKIPPED: "SKIPPED", Outcome.WARNING: "WARN",
    Outcome.FAILURE: "FAIL", Outcome.ERROR: "ERROR",
}


def _results(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in document.get("results", []) if isinstance(r, Mapping)]


def _subject_text(document: Mapping[str, Any]) -> str:
    """The subject as one inert line (names come from data)."""
    subject = document.get("subject") or {}
    if subject.get("model"):
        version = subject.get("version")
        text = f"{subject['model']}@{version}" if version is not None else str(subject["model"])
    elif subject.get("predictions"):
        text = f"predictions {subject['predictions']}"
    else:
        text = json.dumps(subject, sort_keys=True, default=str) if subject else "-"
    return printable(text)


def _policy_text(document: Mapping[str, Any]) -> str:
    policy = document.get("policy") or {}
    return printable(f"{policy.get('name', '?')} {policy.get('version', '')}".strip())


def _message(result: Mapping[str, Any]) -> str:
    """A result's message as one inert line (it quotes group names and waiver reasons)."""
    return printable(result_message(result))


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), value[key])
    elif isinstance(value, list):
        yield prefix, json.dumps(value, default=str)
    else:
        yield prefix, _prop_text(value)


def _prop_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value if isinstance(value, str) else value_text(value)


# --------------------------------------------------------------------------------------------- json
def render_json(document: Mapping[str, Any]) -> str:
    """The contract document, pretty-printed, keys in the contract's order."""
    return json.dumps(document, indent=2, default=str, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------- text
def render_text(document: Mapping[str, Any], *, width: int = 120) -> str:
    """A readable table: one row per check, then the verdict."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, soft_wrap=False)
    policy = document.get("policy") or {}
    digest = str(policy.get("digest", ""))
    console.print(f"policy {_policy_text(document)} ({printable(digest[:19])})  subject {_subject_text(document)}",
                  markup=False)
    table = Table(show_lines=False)
    for column in ("check", "status", "severity", "value", "assert", "detail"):
        table.add_column(column, overflow="fold")
    for result in _results(document):
        table.add_row(*(plain(cell) for cell in (
            result.get("id", "?"), result.get("status", "?"), result.get("severity", "block"),
            value_text(result.get("value")), assertion_text(result.get("assert")), result_message(result),
        )))
    console.print(table)
    for result in _results(document):
        groups = result.get("by_group")
        if isinstance(groups, Mapping) and groups and classify(result) is not Outcome.PASS:
            console.print(f"  {printable(result.get('id'))} by group:", markup=False)
            for group, values in groups.items():
                shown = ", ".join(f"{printable(k)}={printable(value_text(v))}" for k, v in values.items()) \
                    if isinstance(values, Mapping) else printable(value_text(values))
                console.print(f"    {printable(group)}: {shown}", markup=False)
    console.print(summary_line(document), markup=False)
    return guard_lines(buffer.getvalue())


def summary_line(document: Mapping[str, Any]) -> str:
    """One line: the verdict, the policy, the subject and the checks that decided it."""
    code = exit_code(document)
    verdict = {0: "PASSED", 1: "BLOCKED", 3: "COULD NOT BE EVALUATED"}.get(code, "FAILED")
    deciding = [printable(r.get("id", "?")) for r in _results(document)
                if classify(r) in (Outcome.FAILURE, Outcome.ERROR)]
    why = f" ({', '.join(deciding)})" if deciding else ""
    return (f"gate {verdict}: status {printable(document.get('status', '?'))}{why}; policy "
            f"{_policy_text(document)} on {_subject_text(document)}")


# -------------------------------------------------------------------------------------------- junit
def _xml_text(value: Any) -> str:
    return printable(value)


def render_junit(document: Mapping[str, Any]) -> str:
    """JUnit XML: one ``testcase`` per check; failures, errors and skips mapped from statuses.

    Blocking ``FAIL`` -> ``<failure>``; could-not-evaluate statuses -> ``<error>``; ``WAIVED`` ->
    ``<skipped>`` naming the waiver; ``NOT_RUN`` of a non-required check -> ``<skipped>`` naming what
    was missing; warnings pass with the warning in ``system-out``.  Metric value,
    assertion, status and per-group values go in the testcase ``<properties>``.
    """
    policy = document.get("policy") or {}
    suite_name = f"policy {_policy_text(document)}: {_subject_text(document)}"
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suite = ET.Element("testsuite", name=_xml_text(suite_name))
    props = ET.SubElement(suite, "properties")
    for key, value in (("policy.name", policy.get("name")), ("policy.version", policy.get("version")),
                       ("policy.digest", policy.get("digest")), ("subject", _subject_text(document)),
                       ("status", document.get("status"))):
        ET.SubElement(props, "property", name=key, value=_xml_text("" if value is None else value))
    for result in _results(document):
        counts["tests"] += 1
        outcome = classify(result)
        case = ET.SubElement(suite, "testcase", name=_xml_text(result.get("id", "?")),
                             classname=_xml_text(f"{policy.get('name', 'policy')}.{result.get('uses')}"),
                             time="0")
        case_props = ET.SubElement(case, "properties")
        pairs: list[tuple[str, Any]] = [
            ("status", result.get("status")), ("severity", result.get("severity", "block")),
            ("uses", result.get("uses")), ("value", result.get("value")),
            ("assert", assertion_text(result.get("assert"))),
        ]
        pairs += list(_flatten("by_group", result.get("by_group") or {}))
        if result.get("maps_to"):
            pairs.append(("maps_to", ", ".join(map(str, result["maps_to"]))))
        for key, value in pairs:
            ET.SubElement(case_props, "property", name=_xml_text(key), value=_xml_text(_prop_text(value)))
        message = _xml_text(result_message(result))
        status = str(result.get("status", ""))
        if outcome is Outcome.FAILURE:
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=message, type=status).text = message
        elif outcome is Outcome.ERROR:
            counts["errors"] += 1
            ET.SubElement(case, "error", message=message, type=status).text = message
        elif outcome in (Outcome.WAIVED, Outcome.SKIPPED):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=message)
        elif outcome is Outcome.WARNING:
            ET.SubElement(case, "system-out").text = f"WARNING: {message}"
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", "0")
    root = ET.Element("testsuites", {"name": "gov check", **{k: str(v) for k, v in counts.items()}})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -------------------------------------------------------------------------------------------- sarif
def _artifact_uri(policy_path: Path | None) -> str | None:
    if policy_path is None:
        return None
    path = Path(policy_path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _check_lines(policy_path: Path | None) -> dict[str, int]:
    """Line of each ``id: CHECK`` in the policy file (for SARIF regions and GitHub annotations)."""
    if policy_path is None:
        return {}
    try:
        text = Path(policy_path).read_text(encoding="utf-8")
    except OSError:
        return {}
    lines: dict[str, int] = {}
    pattern = re.compile(r"""^\s*(?:-\s+)?id:\s*["']?([^"'#\s]+)""")
    for number, line in enumerate(text.splitlines(), start=1):
        match = pattern.match(line)
        if match:
            lines.setdefault(match.group(1), number)
    return lines


def _sarif_level(outcome: Outcome) -> tuple[str, str]:
    """(kind, level) per SARIF 2.1.0 3.27.9-10: a non-``fail`` kind must have level ``none``."""
    return {
        Outcome.FAILURE: ("fail", "error"),
        Outcome.ERROR: ("fail", "error"),
        Outcome.WARNING: ("fail", "warning"),
        Outcome.WAIVED: ("fail", "note"),
        Outcome.SKIPPED: ("fail", "note"),
        Outcome.PASS: ("pass", "none"),
    }[outcome]


def render_sarif(document: Mapping[str, Any], *, policy_path: Path | None = None,
                 tool_version: str = "0.1.0") -> str:
    """SARIF 2.1.0: one rule per check id, one result per check, the policy file as the location.

    Waived failures carry an accepted external suppression with the waiver's justification, so code
    scanning shows them as dismissed rather than hiding them.
    """
    uri = _artifact_uri(policy_path)
    lines = _check_lines(policy_path)
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for result in _results(document):
        check_id = str(result.get("id", "?"))
        outcome = classify(result)
        if check_id not in index:
            index[check_id] = len(rules)
            blocking = str(result.get("severity", "block")).lower() != "warn"
            rule: dict[str, Any] = {
                "id": check_id,
                "name": str(result.get("uses", check_id)),
                "shortDescription": {
                    "text": f"{result.get('uses', check_id)} {assertion_text(result.get('assert'))}"},
                "defaultConfiguration": {"level": "error" if blocking else "warning"},
                "properties": {"tags": [str(t) for t in result.get("maps_to") or []],
                               "severity": str(result.get("severity", "block"))},
            }
            rules.append(rule)
        kind, level = _sarif_level(outcome)
        item: dict[str, Any] = {
            "ruleId": check_id, "ruleIndex": index[check_id], "kind": kind, "level": level,
            "message": {"text": printable(f"{check_id}: {result.get('status')}: {result_message(result)}")},
            "properties": {"status": result.get("status"), "value": result.get("value"),
                           "assert": result.get("assert"), "by_group": result.get("by_group") or {}},
        }
        if uri is not None:
            physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "index": 0}}
            if check_id in lines:
                physical["region"] = {"startLine": lines[check_id]}
            item["locations"] = [{"physicalLocation": physical}]
        if outcome is Outcome.WAIVED:
            raw = result.get("waiver")
            waiver: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            item["suppressions"] = [{
                "kind": "external", "status": "accepted",
                "justification": printable(waiver.get("reason") or result_message(result)),
            }]
        results.append(item)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": TOOL_NAME, "version": tool_version, "informationUri": TOOL_URI,
                            "rules": rules}},
        "results": results,
        "properties": {"policy": document.get("policy") or {}, "subject": document.get("subject") or {},
                       "status": document.get("status")},
    }
    if uri is not None:
        run["artifacts"] = [{"location": {"uri": uri}, "roles": ["policy"]}]
    sarif = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(sarif, indent=2, default=str, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------------------- github
@dataclass(frozen=True)
class GithubOutput:
    """A Markdown step summary and the workflow-command annotation lines."""

    summary: str
    annotations: str


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<|~])")


def _md_cell(text: str) -> str:
    """Inert Markdown: one line, the characters that start emphasis, links, HTML or code escaped."""
    return _MD_SPECIAL.sub(r"\\\1", printable(text))


def _md_code(text: str) -> str:
    """A Markdown code span of ``text`` (one line) that no backtick in it can close early."""
    shown = printable(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", shown)), default=0) + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def render_github(document: Mapping[str, Any], *, policy_path: Path | None = None) -> GithubOutput:
    """Step summary Markdown plus ``::error``/``::warning``/``::notice`` lines for the checks."""
    code = exit_code(document)
    icon = {0: "✅", 1: "❌", 3: "⚠️"}.get(code, "❌")
    verdict = {0: "passed", 1: "blocked", 3: "could not be evaluated"}.get(code, "failed")
    policy = document.get("policy") or {}
    out = [
        f"## {icon} Policy gate {verdict}: {_md_code(_policy_text(document))} on "
        f"{_md_code(_subject_text(document))}",
        "",
        f"Status **{_md_cell(str(document.get('status', '?')))}**, policy digest "
        f"{_md_code(str(policy.get('digest', '-')))}.",
        "",
        "| Check | Status | Severity | Value | Assertion | Detail |",
        "|---|---|---|---|---|---|",
    ]
    for result in _results(document):
        out.append("| " + " | ".join((_md_code(str(result.get("id", "?"))), *(_md_cell(x) for x in (
            _SYMBOL[classify(result)], str(result.get("severity", "block")),
            value_text(result.get("value")), assertion_text(result.get("assert")), result_message(result),
        )))) + " |")
    out.append("")
    uri = _artifact_uri(policy_path)
    lines = _check_lines(policy_path)
    annotations = []
    for result in _results(document):
        outcome = classify(result)
        command = {Outcome.FAILURE: "error", Outcome.ERROR: "error", Outcome.WARNING: "warning",
                   Outcome.WAIVED: "notice", Outcome.SKIPPED: "notice"}.get(outcome)
        if command is None:
            continue
        check_id = str(result.get("id", "?"))
        title = printable(f"gov policy {check_id} {result.get('status')}")
        props = [f"title={_escape_property(title)}"]
        if uri is not None and not uri.startswith("file:"):
            props.insert(0, f"file={_escape_property(uri)}")
            if check_id in lines:
                props.insert(1, f"line={lines[check_id]}")
        annotations.append(f"::{command} {','.join(props)}::{_escape_data(_message(result))}")
    return GithubOutput("\n".join(out) + "\n", "\n".join(annotations) + ("\n" if annotations else ""))


# ------------------------------------------------------------------------------------------ dispatch
def render(document: Mapping[str, Any], fmt: str, *, policy_path: Path | None = None,
           tool_version: str = "0.1.0") -> str:
    """Render ``document`` as ``fmt``; for ``github`` the summary followed by the annotations."""
    if fmt == "json":
        return render_json(document)
    if fmt == "text":
        return render_text(document)
    if fmt == "junit":
        return render_junit(document)
    if fmt == "sarif":
        return render_sarif(document, policy_path=policy_path, tool_version=tool_version)
    if fmt == "github":
        gh = render_github(document, policy_path=policy_path)
        return gh.summary + gh.annotations
    raise InputError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
