"""The CI gate end to end through the CLI: ``gov check`` in every format, exit codes 0/1/2/3,
``--fail-on-warn``, ``gov promote`` on a predictions table, ``gov monitor`` with a webhook and
rollback, the waiver and history commands, and one real ``gov`` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from governance.cli import main
from governance.registry import register_model, stage_version
from tests.conftest import SHARED

CARD = {"description": "scores credit", "intended_use": "loan triage", "limitations": "EU only",
        "ethical_considerations": "reviewed"}

DATA_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: data-gate, version: 1.2.0}
checks:
  - id: fairness.selection_rate_ratio
    uses: fairness.demographic_parity_ratio
    with: {sensitive: [sex]}
    assert: {gte: 0.8}
    maps_to: ["EU-AI-Act:Annex-IV-2(g)"]
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.7}
  - id: perf.f1_stretch
    uses: performance.f1
    assert: {gte: 0.99}
    severity: warn
"""

DOCS_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: docs, version: 1.0.0}
checks:
  - id: docs.card
    uses: documentation.completeness
    assert: {gte: 1}
"""

MONITOR_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: monitor, version: 1.0.0}
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.7}
"""

DRIFT_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: drift, version: 1.0.0}
checks:
  - id: drift.psi
    uses: drift.psi
    assert: {lte: 0.2}
"""


def _predictions(path: Path, *, biased: bool, accurate: bool = True, n: int = 400) -> Path:
    rng = np.random.default_rng(7)
    sex = np.array(["F", "M"] * (n // 2))
    label = rng.integers(0, 2, n)
    pred = label.copy()
    flip = rng.random(n) < (0.1 if accurate else 0.6)
    pred[flip] = 1 - pred[flip]
    if biased:
        pred[(sex == "F") & (rng.random(n) < 0.8)] = 0
    pd.DataFrame({"y": label, "y_hat": pred, "p": pred * 0.8 + 0.1, "sex": sex,
                  "income": rng.normal(50, 10, n)}).to_csv(path, index=False)
    return path


@pytest.fixture
def env(gov_env: Path) -> dict[str, Path]:
    files = {
        "data_pack": gov_env / "data-gate.yaml", "docs_pack": gov_env / "docs.yaml",
        "monitor_pack": gov_env / "monitor.yaml", "drift_pack": gov_env / "drift.yaml",
    }
    for key, text in (("data_pack", DATA_PACK), ("docs_pack", DOCS_PACK), ("monitor_pack", MONITOR_PACK),
                      ("drift_pack", DRIFT_PACK)):
        files[key].write_text(text, encoding="utf-8")
    files["fair"] = _predictions(gov_env / "fair.csv", biased=False)
    files["biased"] = _predictions(gov_env / "biased.csv", biased=True)
    files["degraded"] = _predictions(gov_env / "degraded.csv", biased=False, accurate=False)
    return files


def _data_args(pack: Path, table: Path) -> list[str]:
    return ["--policy", str(pack), "--predictions", str(table), "--label", "y", "--prediction", "y_hat",
            "--score", "p", "--sensitive", "sex"]


def test_check_data_only_exit_codes_and_json_contract(env: dict[str, Path], capsys: Any) -> None:
    assert main(["check", *_data_args(env["data_pack"], env["fair"]), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["policy"]["name"] == "data-gate" and doc["policy"]["digest"].startswith("sha256:")
    assert doc["subject"] == {"predictions": str(env["fair"])}
    assert doc["status"] == "WARN"
    results = {r["id"]: r for r in doc["results"]}
    assert results["perf.f1_stretch"]["status"] == "WARN"
    fairness = results["fairness.selection_rate_ratio"]
    assert fairness["status"] == "PASS" and set(fairness["by_group"]) == {"sex=F", "sex=M"}
    assert fairness["by_group"]["sex=F"]["n"] == 200
    assert {"id", "uses", "status", "severity", "value", "assert", "by_group"} <= set(fairness)

    assert main(["check", *_data_args(env["data_pack"], env["fair"]), "--fail-on-warn"]) == 1
    assert "gate PASSED" in capsys.readouterr().out
    assert main(["check", *_data_args(env["data_pack"], env["biased"])]) == 1
    out = capsys.readouterr().out
    assert "fairness.selection_rate_ratio" in out and "gate BLOCKED" in out


def test_bad_input_exits_2_with_one_line(env: dict[str, Path], capsys: Any) -> None:
    assert main(["check", "--policy", str(env["data_pack"]), "--predictions", str(env["fair"])]) == 2
    assert capsys.readouterr().err.strip() == ("gov: error: --predictions: also give --label COL and "
                                               "--prediction COL")
    assert main(["check", *_data_args(env["data_pack"], env["fair"]), "--format", "xml"]) == 2
    assert "--format: expected one of text, json, junit, sarif, github" in capsys.readouterr().err
    args = _data_args(env["data_pack"], env["fair"])
    args[args.index("sex")] = "gender"
    assert main(["check", *args]) == 2
    assert "no sensitive column 'gender'" in capsys.readouterr().err
    assert main(["check", "--policy", "no-such-pack"]) == 2
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"])]) == 2
    assert "unknown model 'credit'" in capsys.readouterr().err


def test_junit_and_sarif_files(env: dict[str, Path], gov_env: Path, capsys: Any) -> None:
    junitparser = pytest.importorskip("junitparser")
    jsonschema = pytest.importorskip("jsonschema")
    junit = gov_env / "out" / "gate.xml"
    assert main(["check", *_data_args(env["data_pack"], env["biased"]), "--format", "junit",
                 "--output", str(junit)]) == 1
    assert "gate BLOCKED" in capsys.readouterr().out  # a readable table still goes to the log
    suite = next(iter(junitparser.JUnitXml.fromfile(str(junit))))
    assert (suite.tests, suite.failures, suite.errors) == (3, 1, 0)
    failed = [c for c in suite if c.result and type(c.result[0]).__name__ == "Failure"]
    assert [c.name for c in failed] == ["fairness.selection_rate_ratio"]

    sarif_path = gov_env / "gate.sarif"
    assert main(["check", *_data_args(env["data_pack"], env["biased"]), "--format", "sarif",
                 "--output", str(sarif_path)]) == 1
    sarif = json.loads(sarif_path.read_text(encoding="utf-8"))
    schema_path = SHARED / "sarif-schema" / "sarif-schema-2.1.0.json"
    if not schema_path.is_file():
        pytest.skip(f"SARIF schema not found at {schema_path} (../shared is missing)")
    validator = jsonschema.Draft4Validator(json.loads(schema_path.read_text(encoding="utf-8")))
    assert not [e.message for e in validator.iter_errors(sarif)]
    run = sarif["runs"][0]
    assert run["artifacts"][0]["location"]["uri"] == "data-gate.yaml"
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"fairness.selection_rate_ratio": "error", "perf.accuracy": "none",
                      "perf.f1_stretch": "warning"}


def test_github_format_appends_the_step_summary(env: dict[str, Path], gov_env: Path, capsys: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    summary = gov_env / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["check", *_data_args(env["data_pack"], env["biased"]), "--format", "github"]) == 1
    out = capsys.readouterr().out.splitlines()
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n## ❌ Policy gate blocked: `data-gate 1.2.0`")
    assert "| `fairness.selection_rate_ratio` | FAIL |" in text
    assert out[0].startswith("::error file=data-gate.yaml,line=5,"
                             "title=gov policy fairness.selection_rate_ratio")
    assert out[1].startswith("::warning ") and len(out) == 2


def test_promote_on_a_predictions_table_and_history(env: dict[str, Path], capsys: Any) -> None:
    register_model("credit", card=CARD)
    register_model("credit", card=CARD)
    fair = _data_args(env["data_pack"], env["fair"])
    assert main(["promote", "credit@1", "--to", "production", *fair]) == 0
    assert "promoted credit@1 to production" in capsys.readouterr().out
    code = main(["promote", "credit@2", "--to", "production", *_data_args(env["data_pack"], env["biased"]),
                 "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1
    doc = json.loads(captured.out)
    assert doc["subject"] == {"model": "credit", "version": 2}
    assert doc["promotion"]["action"] == "refused" and doc["evaluation_id"] > 0
    assert "gov: error: credit@2 not promoted to production: blocked by policy" in captured.err
    assert main(["history", "credit", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["action"], r["to_version"], r["evaluation_status"]) for r in rows] == [
        ("promote", 1, "WARN"), ("refused", 2, "FAIL")]


def test_waive_approve_and_list_commands(env: dict[str, Path], capsys: Any) -> None:
    register_model("credit", card={"description": "TBD"})
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"])]) == 1
    capsys.readouterr()
    assert main(["waive", "credit@1", "--check", "docs.card", "--reason", "card in review",
                 "--approver", "tester", "--expires", "7d"]) == 2
    assert "approver must differ from the requester (tester)" in capsys.readouterr().err
    assert main(["waive", "credit@1", "--check", "docs.card", "--reason", "card in review",
                 "--approver", "bob", "--expires", "30d", "--ticket", "RISK-1"]) == 0
    assert "waiver 1 recorded" in capsys.readouterr().out
    # unsigned: not counted by a pack that requires signatures, and listed as unsigned
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"]), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["status"] == "FAIL" and doc["waivers_not_counted"][0]["id"] == 1
    assert main(["waivers", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)[0]
    assert listed["ticket"] == "RISK-1" and listed["approver_verification"] == "unsigned"
    assert main(["--actor", "carol", "waive", "revoke", "1", "--reason", "no"]) == 0
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"])]) == 1
    capsys.readouterr()
    assert main(["--actor", "bob", "approve", "credit@1", "--stage", "production", "--role", "risk"]) == 2
    assert "roles come from the project configuration" in capsys.readouterr().err
    assert main(["--actor", "bob", "approve", "credit@1", "--stage", "production", "--policy",
                 str(env["docs_pack"])]) == 0
    assert "(unsigned): bob approves credit@1 for production" in capsys.readouterr().out


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.received  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_monitor_alerts_and_rolls_back(env: dict[str, Path], capsys: Any,
                                       webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    register_model("credit", card=CARD)
    register_model("credit", card=CARD)
    for version in (1, 2):
        assert main(["promote", f"credit@{version}", "--to", "production", "--policy",
                     str(env["docs_pack"])]) == 0
    monitor = ["monitor", "credit@production", "--data", str(env["fair"]), "--policy",
               str(env["monitor_pack"]), "--label", "y", "--prediction", "y_hat", "--notify", url]
    assert main(monitor) == 0
    assert received == []  # healthy: no alert
    capsys.readouterr()
    degraded = [*monitor, "--rollback-on-fail", "--format", "json"]
    degraded[degraded.index(str(env["fair"]))] = str(env["degraded"])
    assert main(degraded) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["status"] == "FAIL"
    assert doc["monitor"]["rolled_back"]["to_version"] == 1
    assert stage_version(_catalog(), "credit", "production") == 1
    assert len(received) == 1
    alert = received[0]
    assert alert["event"] == "governance.monitor" and alert["version"] == 2 and alert["exit_code"] == 1
    assert alert["failed"][0]["id"] == "perf.accuracy" and alert["rolled_back"]["from_version"] == 2
    assert main(["history", "credit", "--format", "json"]) == 0
    last = json.loads(capsys.readouterr().out)[-1]
    assert last["action"] == "rollback" and "perf.accuracy" in last["reason"]


def test_monitor_without_a_baseline_fails_closed(env: dict[str, Path], capsys: Any) -> None:
    register_model("credit", card=CARD)
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(env["docs_pack"])]) == 0
    capsys.readouterr()
    code = main(["monitor", "credit@production", "--data", str(env["fair"]), "--policy",
                 str(env["drift_pack"]), "--rollback-on-fail"])
    assert code == 3
    assert "missing required input(s): baseline" in capsys.readouterr().out
    assert stage_version(_catalog(), "credit", "production") == 1
    assert main(["monitor", "credit@1", "--data", str(env["fair"]), "--policy", str(env["drift_pack"])]) == 2


def _catalog() -> Any:
    from governance.catalog import open_catalog

    return open_catalog()


def test_gov_check_as_a_real_subprocess(env: dict[str, Path], gov_env: Path) -> None:
    environ = {**os.environ, "GOVERNANCE_ACTOR": "ci"}
    proc = subprocess.run(
        [sys.executable, "-m", "governance.cli", "check", *_data_args(env["data_pack"], env["biased"]),
         "--format", "json"],
        cwd=gov_env, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "FAIL"


PROMOTE_DRIFT_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: drift-gate, version: 1.0.0}
checks:
  - id: drift.psi
    uses: drift.psi
    assert: {lte: 0.2}
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.7}
"""


def _applicants(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50 + shift, 10, n)
    age = rng.integers(18, 80, n).astype(float)
    return pd.DataFrame({"income": income, "age": age, "y": (income + rng.normal(0, 3, n) > 50).astype(int)})


@pytest.fixture
def captured(gov_env: Path) -> dict[str, Path]:
    """A model ``scorer`` trained through ``@governance.step``: its training run recorded the training
    dataset version with column statistics (the drift baseline), nothing else."""
    from sklearn.linear_model import LogisticRegression

    import governance

    @governance.step(kind="training", model="scorer")
    def train(data: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(data[["income", "age"]], data["y"])

    model = train(_applicants(2000, seed=1))
    with _catalog().read() as session:
        from sqlmodel import select

        from governance.catalog import ModelVersion

        assert [mv.training_run_id is not None for mv in session.exec(select(ModelVersion)).all()] == [True]
    files: dict[str, Path] = {"pack": gov_env / "drift-gate.yaml", "drift_pack": gov_env / "drift.yaml"}
    files["pack"].write_text(PROMOTE_DRIFT_PACK, encoding="utf-8")
    files["drift_pack"].write_text(DRIFT_PACK, encoding="utf-8")
    for name, frame in (("same", _applicants(2000, seed=2)), ("shifted", _applicants(2000, seed=3, shift=15))):
        frame.drop(columns="y").to_csv(gov_env / f"{name}.csv", index=False)
        scored = frame.assign(y_hat=model.predict(frame[["income", "age"]]))
        scored.to_csv(gov_env / f"{name}-scored.csv", index=False)
        files[name], files[f"{name}-scored"] = gov_env / f"{name}.csv", gov_env / f"{name}-scored.csv"
    return files


def test_context_resolves_the_baseline_from_the_training_dataset(captured: dict[str, Path]) -> None:
    from governance.catalog import DatasetVersion
    from governance.policy import context_for_model_version

    ctx = context_for_model_version(_catalog(), "scorer@1")
    assert ctx.evidence.is_empty()  # nothing evaluated: the baseline comes from the training run alone
    assert ctx.baseline is not None and {"income", "age"} <= set(ctx.baseline["columns"])
    assert "baseline" in ctx.available()
    ids = ctx.sources["baseline_dataset_version_ids"]
    with _catalog().read() as session:
        dv = session.get(DatasetVersion, ids[0])
        assert dv is not None and dv.stats["columns"]["income"] == ctx.baseline["columns"]["income"]


def test_monitor_fails_on_drift_against_the_captured_training_baseline(captured: dict[str, Path],
                                                                       capsys: Any) -> None:
    promote = ["promote", "scorer@1", "--to", "production", "--policy", str(captured["pack"]),
               "--predictions", str(captured["same-scored"]), "--label", "y", "--prediction", "y_hat",
               "--format", "json"]
    assert main(promote) == 0, capsys.readouterr()
    doc = json.loads(capsys.readouterr().out)
    drift = {r["id"]: r for r in doc["results"]}["drift.psi"]
    assert drift["status"] == "PASS" and set(drift["by_group"]) >= {"income", "age"}

    monitor = ["monitor", "scorer@production", "--policy", str(captured["drift_pack"]), "--format", "json"]
    assert main([*monitor, "--data", str(captured["same"])]) == 0
    same = json.loads(capsys.readouterr().out)["results"][0]
    assert same["status"] == "PASS" and same["value"] < 0.1

    assert main([*monitor, "--data", str(captured["shifted"])]) == 1
    out = json.loads(capsys.readouterr().out)
    shifted = out["results"][0]
    import hashlib

    digest = "sha256:" + hashlib.sha256(captured["shifted"].read_bytes()).hexdigest()
    assert _evaluation_inputs(out["evaluation_id"])["data_fingerprint"] == digest
    assert shifted["status"] == "FAIL" and shifted["value"] > 0.2
    assert shifted["by_group"]["income"]["psi"] > 0.2 > shifted["by_group"]["age"]["psi"]
    assert "on income" in shifted["message"]


def test_gov_check_measures_drift_on_a_predictions_table_for_a_registered_version(
        captured: dict[str, Path], capsys: Any) -> None:
    args = ["check", "scorer@1", "--policy", str(captured["pack"]), "--label", "y", "--prediction", "y_hat",
            "--format", "json", "--predictions"]
    assert main([*args, str(captured["same-scored"])]) == 0
    capsys.readouterr()
    assert main([*args, str(captured["shifted-scored"])]) == 1
    results = {r["id"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["drift.psi"]["status"] == "FAIL" and "income" in results["drift.psi"]["message"]


def test_a_refusal_keeps_the_assertion_and_the_checks_own_message(env: dict[str, Path], capsys: Any) -> None:
    register_model("credit", card={"description": "scores credit", "ethical_considerations": "reviewed"})
    expected = "0.5 is not >= 1.0: missing card fields: intended_use, limitations"
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"]), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["results"][0]["message"] == expected
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(env["docs_pack"])]) == 1
    err = capsys.readouterr().err
    assert f"blocked by policy: docs.card FAIL: {expected}" in err

    from governance.registry import document

    document("credit@1", card={"intended_use": "loan triage", "limitations": "TBD"})
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"]), "--format", "json"]) == 1
    message = json.loads(capsys.readouterr().out)["results"][0]["message"]
    assert message == "0.75 is not >= 1.0: placeholder card fields: limitations"


def _evaluation_inputs(evaluation_id: int) -> dict[str, Any]:
    from governance.catalog import PolicyEvaluation

    with _catalog().read() as session:
        row = session.get(PolicyEvaluation, evaluation_id)
        assert row is not None
        return dict(row.inputs)


def test_promote_on_a_predictions_table_stores_its_content_hash(env: dict[str, Path], gov_env: Path,
                                                               capsys: Any) -> None:
    import hashlib

    from governance.audit import list_events

    register_model("credit", card=CARD)
    copy = gov_env / "copy.csv"
    copy.write_bytes(env["fair"].read_bytes())
    expected = "sha256:" + hashlib.sha256(env["fair"].read_bytes()).hexdigest()
    evaluations = []
    for table in (env["fair"], copy, env["biased"]):
        main(["promote", "credit@1", "--to", "production", *_data_args(env["data_pack"], table),
              "--format", "json"])
        evaluations.append(json.loads(capsys.readouterr().out)["evaluation_id"])
    fair, same_bytes, biased = (_evaluation_inputs(e) for e in evaluations)
    assert fair["predictions_fingerprint"] == expected == same_bytes["predictions_fingerprint"]
    assert fair["sources"]["predictions_fingerprint"]["rows"] == 400
    assert fair["predictions"] == str(env["fair"]) and same_bytes["predictions"] == str(copy)
    assert biased["predictions_fingerprint"] != expected
    assert biased["predictions_fingerprint"] == "sha256:" + hashlib.sha256(env["biased"].read_bytes()).hexdigest()
    with _catalog().read() as session:
        events = [e for e in list_events(session, model="credit") if e.action == "policy.evaluate"]
    assert [e.data["predictions_fingerprint"] for e in events] == [
        fair["predictions_fingerprint"], same_bytes["predictions_fingerprint"], biased["predictions_fingerprint"]]


TIERED_PACK = DOCS_PACK.replace("checks:\n", "appliesTo: {riskTier: [high, medium]}\nchecks:\n")


def test_a_pack_for_other_risk_tiers_is_refused_unless_forced(env: dict[str, Path], gov_env: Path,
                                                              capsys: Any) -> None:
    from governance.catalog import PolicyEvaluation

    pack = gov_env / "tiered.yaml"
    pack.write_text(TIERED_PACK, encoding="utf-8")
    register_model("credit", card=CARD, risk_tier="low")
    for command in (["check", "credit@1"], ["promote", "credit@1", "--to", "production"]):
        assert main([*command, "--policy", str(pack)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == ("gov: error: policy pack docs 1.0.0 applies to risk tiers high, medium, but credit is "
                       "risk tier low; use a pack for that tier or pass --force")
    with _catalog().read() as session:
        from sqlmodel import select

        assert session.exec(select(PolicyEvaluation)).all() == []  # refused before evaluating
    assert stage_version(_catalog(), "credit", "production") is None

    assert main(["check", "credit@1", "--policy", str(pack), "--force", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "PASS"
    assert _evaluation_inputs(doc["evaluation_id"])["applies_to_override"] == {
        "risk_tier": "low", "pack_tiers": ["high", "medium"]}
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(pack), "--force"]) == 0
    assert stage_version(_catalog(), "credit", "production") == 1
    capsys.readouterr()

    # in scope: a model of a listed tier, a model with no tier, a pack without appliesTo
    register_model("scorer", card=CARD, risk_tier="high")
    register_model("untiered", card=CARD)
    assert main(["check", "scorer@1", "--policy", str(pack)]) == 0
    assert main(["check", "untiered@1", "--policy", str(pack)]) == 0
    assert main(["check", "credit@1", "--policy", str(env["docs_pack"])]) == 0
