"""Output formats of the gate, built from the JSON contract document.

SARIF is validated against the official 2.1.0 schema, JUnit XML is read back with junitparser, and
the GitHub annotations are parsed back into (command, properties, message).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from governance.registry import Outcome, classify, exit_code, render, render_github
from governance.registry._output import render_junit, render_sarif, render_text
from tests.conftest import SHARED

POLICY_YAML = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: prod, version: 2.0.0}
checks:
  - id: fairness.selection_rate_ratio
    uses: fairness.demographic_parity_ratio
    assert: {gte: 0.8}
  - id: perf.auc
    uses: performance.roc_auc
    assert: {gte: 0.75}
  - id: docs.card
    uses: documentation.completeness
    assert: {gte: 1}
  - id: drift.psi
    uses: drift.psi
    assert: {lte: 0.2}
    severity: warn
  - id: lineage.complete
    uses: lineage.completeness
    assert: {eq: true}
  - id: explain.rank
    uses: explainability.protected_feature_rank
    assert: {eq: true}
"""


def _doc(status: str = "FAIL") -> dict[str, Any]:
    return {
        "policy": {"name": "prod", "version": "2.0.0", "digest": "sha256:" + "ab" * 32},
        "subject": {"model": "credit", "version": 3},
        "status": status,
        "results": [
            {"id": "fairness.selection_rate_ratio", "uses": "fairness.demographic_parity_ratio",
             "status": "FAIL", "severity": "block", "value": 0.52, "assert": {"gte": 0.8},
             "by_group": {"F": {"n": 123, "selection_rate": 0.2, "fpr": 0.1},
                          "M": {"n": 140, "selection_rate": 0.384, "fpr": 0.2}},
             "message": "0.52 is not >= 0.8", "maps_to": ["EU-AI-Act:Annex-IV-2(g)"]},
            {"id": "perf.auc", "uses": "performance.roc_auc", "status": "PASS", "severity": "block",
             "value": 0.81, "assert": {"gte": 0.75}, "by_group": {}, "message": "0.81 >= 0.75"},
            {"id": "docs.card", "uses": "documentation.completeness", "status": "WAIVED", "severity": "block",
             "value": 0.5, "assert": {"gte": 1.0}, "by_group": {},
             "message": "waived (7, approved by bob, until 2030-01-01T00:00:00Z): 0.5 is not >= 1",
             "waiver": {"id": 7, "state": "valid", "reason": "card under review", "approver": "bob"}},
            {"id": "drift.psi", "uses": "drift.psi", "status": "WARN", "severity": "warn", "value": 0.31,
             "assert": {"lte": 0.2}, "by_group": {"income": {"psi": 0.31}}, "message": "0.31 is not <= 0.2"},
            {"id": "lineage.complete", "uses": "lineage.completeness", "status": "NOT_RUN",
             "severity": "block", "value": None, "assert": {"eq": True}, "by_group": {},
             "message": "missing required input(s): catalog"},
            {"id": "explain.rank", "uses": "explainability.protected_feature_rank", "status": "ERROR",
             "severity": "block", "value": None, "assert": {"eq": True}, "by_group": {},
             "message": "check raised ValueError: boom, with a comma: and colon\nsecond line"},
        ],
    }


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "policies" / "prod.yaml"
    path.parent.mkdir()
    path.write_text(POLICY_YAML, encoding="utf-8")
    return path


def test_classification_and_exit_codes() -> None:
    doc = _doc()
    outcomes = {r["id"]: classify(r) for r in doc["results"]}
    assert outcomes == {
        "fairness.selection_rate_ratio": Outcome.FAILURE, "perf.auc": Outcome.PASS,
        "docs.card": Outcome.WAIVED,
        "drift.psi": Outcome.WARNING, "lineage.complete": Outcome.ERROR, "explain.rank": Outcome.ERROR,
    }
    assert exit_code(doc) == 1
    assert exit_code(_doc("ERROR")) == 3
    assert exit_code(_doc("WARN")) == 0
    assert exit_code(_doc("WARN"), fail_on_warn=True) == 1
    assert exit_code(_doc("PASS")) == 0
    assert exit_code({**_doc("PASS"), "results": [_doc()["results"][3]]}, fail_on_warn=True) == 1
    assert exit_code(_doc("SOMETHING_NEW")) == 3  # unknown status: fail closed
    lapsed = {**_doc()["results"][3], "waiver": {"id": 2, "state": "expired"}}
    assert classify(lapsed) is Outcome.FAILURE


def test_json_is_the_contract_document() -> None:
    doc = _doc()
    assert json.loads(render(doc, "json")) == doc


def test_text_table_names_every_check_and_the_verdict() -> None:
    text = render_text(_doc())
    for check_id in ("fairness.selection_rate_ratio", "perf.auc", "docs.card", "drift.psi"):
        assert check_id in text
    assert "gate BLOCKED" in text
    assert "F: n=123, selection_rate=0.2" in text
    assert "gate PASSED" in render_text(_doc("PASS"))
    assert "COULD NOT BE EVALUATED" in render_text(_doc("ERROR"))


def test_junit_parses_and_maps_statuses(tmp_path: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    path = tmp_path / "gate.xml"
    path.write_text(render_junit(_doc()), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 1, 2, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {r["id"] for r in _doc()["results"]}

    def kinds(name: str) -> list[str]:
        return [type(r).__name__ for r in cases[name].result]

    assert kinds("fairness.selection_rate_ratio") == ["Failure"]
    assert kinds("lineage.complete") == ["Error"]
    assert kinds("explain.rank") == ["Error"]
    assert kinds("docs.card") == ["Skipped"]
    assert kinds("perf.auc") == [] and kinds("drift.psi") == []
    failure = cases["fairness.selection_rate_ratio"].result[0]
    assert failure.message == "0.52 is not >= 0.8"
    assert "waived (7" in cases["docs.card"].result[0].message
    # metric values and per-group values in the testcase properties
    elem = cases["fairness.selection_rate_ratio"]._elem
    props = {p.get("name"): p.get("value") for p in elem.iter("property")}
    assert float(props["value"]) == 0.52
    assert props["assert"] == ">= 0.8"
    assert float(props["by_group.F.selection_rate"]) == 0.2
    assert int(props["by_group.M.n"]) == 140
    suite_props = {p.name: p.value for p in suite.properties()}
    assert suite_props["policy.digest"] == "sha256:" + "ab" * 32


def test_junit_survives_control_characters() -> None:
    junitparser = pytest.importorskip("junitparser")
    doc = _doc()
    doc["results"][0]["message"] = "bad \x00 byte \x1b[31m"
    parsed = junitparser.JUnitXml.fromstring(render_junit(doc))
    assert parsed is not None


def _sarif_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = SHARED / "sarif-schema" / "sarif-schema-2.1.0.json"
    if not schema_path.is_file():
        pytest.skip(f"SARIF schema not found at {schema_path} (../shared is missing)")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def test_sarif_validates_against_the_official_schema(policy_file: Path) -> None:
    validator = _sarif_validator()
    sarif = json.loads(render_sarif(_doc(), policy_path=policy_file, tool_version="9.9.9"))
    errors = sorted(validator.iter_errors(sarif), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    assert run["tool"]["driver"]["version"] == "9.9.9"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r["id"] for r in _doc()["results"]]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["fairness.selection_rate_ratio"]["level"] == "error"
    assert by_rule["lineage.complete"]["level"] == "error"
    assert by_rule["drift.psi"]["level"] == "warning"
    assert by_rule["docs.card"]["level"] == "note"
    assert by_rule["docs.card"]["suppressions"][0]["justification"] == "card under review"
    assert by_rule["perf.auc"]["kind"] == "pass" and by_rule["perf.auc"]["level"] == "none"
    assert run["artifacts"][0]["location"]["uri"] == "policies/prod.yaml"
    location = by_rule["perf.auc"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "policies/prod.yaml"
    assert location["region"]["startLine"] == POLICY_YAML.splitlines().index("  - id: perf.auc") + 1
    assert by_rule["fairness.selection_rate_ratio"]["properties"]["by_group"]["F"]["n"] == 123
    for rule in rules:
        assert all(ruleindex["ruleIndex"] == rules.index(rule) for ruleindex in run["results"]
                   if ruleindex["ruleId"] == rule["id"])


def test_sarif_without_a_policy_file_still_validates() -> None:
    validator = _sarif_validator()
    sarif = json.loads(render_sarif(_doc("PASS")))
    assert not list(validator.iter_errors(sarif))
    assert "artifacts" not in sarif["runs"][0]


_ANNOTATION = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)$")


def _unescape(text: str) -> str:
    for code, char in (("%0A", "\n"), ("%0D", "\r"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def test_github_summary_and_annotations(policy_file: Path) -> None:
    gh = render_github(_doc(), policy_path=policy_file)
    assert gh.summary.startswith("## ❌ Policy gate blocked: `prod 2.0.0` on `credit@3`")
    assert "| `perf.auc` | PASS | block | 0.81 | >= 0.75 | 0.81 >= 0.75 |" in gh.summary
    lines = gh.annotations.splitlines()
    parsed = []
    for line in lines:
        match = _ANNOTATION.match(line)
        assert match, line
        props = dict(p.split("=", 1) for p in match.group("props").split(","))
        parsed.append((match.group(1), {k: _unescape(v) for k, v in props.items()},
                       _unescape(match.group("message"))))
    commands = {p[1]["title"].split()[2]: (p[0], p) for p in parsed}
    assert commands["fairness.selection_rate_ratio"][0] == "error"
    assert commands["lineage.complete"][0] == "error"
    assert commands["drift.psi"][0] == "warning"
    assert commands["docs.card"][0] == "notice"
    assert "perf.auc" not in commands
    error = commands["explain.rank"][1]
    assert error[1]["file"] == "policies/prod.yaml"
    assert int(error[1]["line"]) == POLICY_YAML.splitlines().index("  - id: explain.rank") + 1
    # a newline in the message is escaped, so one annotation stays one line
    assert error[2] == "check raised ValueError: boom, with a comma: and colon"
    assert len(lines) == 5


def test_unknown_format_is_an_input_error() -> None:
    from governance.errors import InputError

    with pytest.raises(InputError, match="--format: expected one of text, json, junit, sarif, github"):
        render(_doc(), "xml")


OPTIONAL_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: optional, version: 1.0.0}
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.5}
  - id: perf.auc
    uses: performance.roc_auc
    assert: {gte: 0.7}
    required: false
  - id: drift.psi
    uses: drift.psi
    assert: {lte: 0.2}
"""


def _engine_document(pack_text: str) -> dict[str, Any]:
    """A document from the real engine: accuracy runs, AUC has no score column (NOT_RUN, not required), and
    drift is NOT_APPLICABLE (a predictions table has no training baseline)."""
    import pandas as pd

    from governance.checks import CheckRegistry, builtin_checks
    from governance.policy import context_for_frame, parse_pack, run_pack

    registry = CheckRegistry(builtin_checks())
    pack = parse_pack(pack_text, "optional.yaml", registry=registry)
    frame = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0], "y_hat": [0, 1, 1, 0, 0, 0]})
    result = run_pack(pack, context_for_frame(frame, label="y", prediction="y_hat"), registry=registry)
    return result.to_document()


def test_a_non_required_not_run_check_is_skipped_in_every_format(tmp_path: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    doc = _engine_document(OPTIONAL_PACK)
    results = {r["id"]: r for r in doc["results"]}
    assert results["perf.auc"]["status"] == "NOT_RUN" and results["perf.auc"]["required"] is False
    assert results["drift.psi"]["status"] == "NOT_APPLICABLE" and results["drift.psi"]["required"] is True
    assert results["perf.accuracy"]["required"] is True
    assert doc["status"] == "PASS" and exit_code(doc) == 0 and exit_code(doc, fail_on_warn=True) == 0
    assert classify(results["perf.auc"]) is Outcome.SKIPPED
    assert classify(results["drift.psi"]) is Outcome.SKIPPED
    not_applicable = "not applicable: a predictions table has no training baseline"

    suite = next(iter(junitparser.JUnitXml.fromstring(render_junit(doc))))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 0, 0, 2)
    skipped = next(c for c in suite if c.name == "perf.auc").result
    assert [type(r).__name__ for r in skipped] == ["Skipped"]
    assert skipped[0].message == "skipped (not required): missing required input(s): scores"
    assert next(c for c in suite if c.name == "drift.psi").result[0].message == not_applicable

    sarif = json.loads(render_sarif(doc))
    assert not list(_sarif_validator().iter_errors(sarif))
    levels = {r["ruleId"]: r["level"] for r in sarif["runs"][0]["results"]}
    assert levels == {"perf.accuracy": "none", "perf.auc": "note", "drift.psi": "note"}

    gh = render_github(doc)
    assert gh.annotations.startswith("::notice title=gov policy perf.auc NOT_RUN::skipped (not required)")
    assert "::notice title=gov policy drift.psi NOT_APPLICABLE::not applicable" in gh.annotations
    assert gh.summary.startswith("## ✅ Policy gate passed")
    assert "| `perf.auc` | SKIPPED |" in gh.summary and "| `drift.psi` | SKIPPED |" in gh.summary
    text = render_text(doc, width=200)
    assert "skipped (not required): missing required input(s): scores" in text
    assert not_applicable in text
    assert "gate PASSED" in text

    # the same check, required: an ERROR in every format and the gate fails closed
    required = _engine_document(OPTIONAL_PACK.replace("    required: false\n", ""))
    auc = required["results"][1]
    assert auc["required"] is True and classify(auc) is Outcome.ERROR
    assert required["status"] == "ERROR" and exit_code(required) == 3
    suite = next(iter(junitparser.JUnitXml.fromstring(render_junit(required))))
    assert (suite.failures, suite.errors, suite.skipped) == (0, 1, 1)  # drift stays not applicable
    assert render_github(required).annotations.startswith("::error ")


def test_documents_without_the_required_field_count_as_required() -> None:
    legacy = {k: v for k, v in _engine_document(OPTIONAL_PACK)["results"][1].items() if k != "required"}
    assert classify(legacy) is Outcome.ERROR
    assert classify({**legacy, "required": False, "status": "ERROR"}) is Outcome.WARNING
