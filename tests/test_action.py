"""The composite GitHub Action and the GitLab template run as written.

``action.yml`` is parsed with ``yaml.safe_load``; each step's ``${{ inputs.* }}`` expressions are
substituted the way the runner does, and the ``run:`` script is executed with bash against a temporary
catalog.  The install step is not executed: it would ``pip install`` from the network, and the
package under test is already installed; the test asserts what that step would run instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from governance.registry import register_model, stage_version

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "integrations" / "github" / "action.yml"
EXPR = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")

PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: action, version: 1.0.0}
checks:
  - id: fairness.selection_rate_ratio
    uses: fairness.demographic_parity_ratio
    with: {sensitive: [sex]}
    assert: {gte: 0.8}
"""

DOCS = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: docs, version: 1.0.0}
checks:
  - id: docs.card
    uses: documentation.completeness
    assert: {gte: 1}
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the action's steps run in bash")


def _action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def _inputs(given: dict[str, str]) -> dict[str, str]:
    spec = _action()["inputs"]
    unknown = set(given) - set(spec)
    assert not unknown, f"not inputs of the action: {unknown}"
    missing = [k for k, v in spec.items() if v.get("required") and k not in given]
    assert not missing, f"required inputs missing: {missing}"
    return {k: given.get(k, str(v.get("default", ""))) for k, v in spec.items()}


def _substitute(text: str, inputs: dict[str, str]) -> str:
    return EXPR.sub(lambda m: inputs[m.group(1)], text)


Completed = subprocess.CompletedProcess[str]


def _run_action(given: dict[str, str], cwd: Path, env: dict[str, str]) -> tuple[Completed, Path]:
    inputs = _inputs(given)
    steps = _action()["runs"]["steps"]
    assert _action()["runs"]["using"] == "composite"
    install, gate = steps
    # the install step would pip-install the package from the network; it is already installed here
    assert "pip install" in install["run"]
    assert _substitute(install["env"]["GOV_PACKAGE"], inputs) == "ml-governance"
    assert gate["shell"] == "bash"
    output_file = cwd / "github_output.txt"
    step_env = {**env, **{k: _substitute(str(v), inputs) for k, v in gate.get("env", {}).items()},
                "GITHUB_OUTPUT": str(output_file)}
    proc = subprocess.run(["bash", "-e", "-c", _substitute(gate["run"], inputs)], cwd=cwd, env=step_env,
                          capture_output=True, text=True, timeout=180, check=False)
    return proc, output_file


@pytest.fixture
def workspace(gov_env: Path) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    n = 400
    sex = np.array(["F", "M"] * (n // 2))
    y = rng.integers(0, 2, n)
    biased = y.copy()
    biased[(sex == "F") & (rng.random(n) < 0.8)] = 0
    pd.DataFrame({"y": y, "y_hat": y, "sex": sex}).to_csv(gov_env / "fair.csv", index=False)
    pd.DataFrame({"y": y, "y_hat": biased, "sex": sex}).to_csv(gov_env / "biased.csv", index=False)
    (gov_env / "policy.yaml").write_text(PACK, encoding="utf-8")
    (gov_env / "docs.yaml").write_text(DOCS, encoding="utf-8")
    url = f"sqlite:///{gov_env / 'ci-catalog.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "GITHUB_"))}
    # the action runs `gov` as a runner would after its install step: from the installed package's bin
    # directory, which is not on PATH unless a virtualenv is activated
    env.update(GOVERNANCE_ACTOR="ci-bot", GOVERNANCE_CATALOG_URL=url,
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]))
    return {"dir": gov_env, "env": env, "url": url}


def test_action_checks_a_predictions_table(workspace: dict[str, Any]) -> None:
    cwd, env = workspace["dir"], workspace["env"]
    summary = cwd / "summary.md"
    env = {**env, "GITHUB_STEP_SUMMARY": str(summary)}
    base = {"policy": "policy.yaml", "label": "y", "prediction": "y_hat", "sensitive": "sex"}
    proc, outputs = _run_action({**base, "predictions": "fair.csv"}, cwd, env)
    assert proc.returncode == 0, proc.stderr
    assert outputs.read_text(encoding="utf-8").strip() == "exit-code=0"
    assert "Policy gate passed" in summary.read_text(encoding="utf-8")

    proc, outputs = _run_action({**base, "predictions": "biased.csv"}, cwd, env)
    assert proc.returncode == 1, proc.stderr
    assert outputs.read_text(encoding="utf-8").splitlines()[-1] == "exit-code=1"
    assert ("::error file=policy.yaml,line=5,title=gov policy fairness.selection_rate_ratio FAIL::"
            in proc.stdout)

    proc, _ = _run_action({**base, "predictions": "biased.csv", "format": "sarif", "output": "gate.sarif"},
                          cwd, env)
    assert proc.returncode == 1
    assert json.loads((cwd / "gate.sarif").read_text(encoding="utf-8"))["version"] == "2.1.0"


def test_action_promotes_a_model_version(workspace: dict[str, Any]) -> None:
    from governance.catalog import Catalog

    cwd, env = workspace["dir"], workspace["env"]
    catalog = Catalog(workspace["url"])
    register_model("credit", card={"description": "d", "intended_use": "u", "limitations": "l",
                                   "ethical_considerations": "e"}, catalog=catalog, actor="alice")
    proc, _ = _run_action({"policy": "docs.yaml", "model": "credit@1", "promote-to": "production",
                           "format": "json", "output": "promotion.json",
                           "catalog-url": workspace["url"]}, cwd, env)
    assert proc.returncode == 0, proc.stderr
    promotion = json.loads((cwd / "promotion.json").read_text(encoding="utf-8"))["promotion"]
    assert promotion["action"] == "promote"
    assert stage_version(catalog, "credit", "production") == 1
    proc, _ = _run_action({"policy": "docs.yaml", "promote-to": "production"}, cwd, env)
    assert proc.returncode == 2 and "promote-to needs model" in proc.stdout
    catalog.dispose()


def test_gitlab_template_runs_the_check_script(workspace: dict[str, Any]) -> None:
    template = yaml.safe_load((ROOT / "integrations" / "gitlab" / "governance.gitlab-ci.yml").read_text())
    job = template["governance:check"]
    assert job["extends"] == ".governance"
    assert job["artifacts"]["reports"]["junit"] == "governance-junit.xml"
    cwd = workspace["dir"]
    env = {**workspace["env"], "GOV_MODEL": "", "GOV_POLICY": "policy.yaml",
           "GOV_EXTRA_ARGS": "--predictions biased.csv --label y --prediction y_hat --sensitive sex"}
    for line in job["script"]:
        proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=180, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "<testsuites" in (cwd / "governance-junit.xml").read_text(encoding="utf-8")


def test_example_workflow_uses_the_action_inputs() -> None:
    workflow = yaml.safe_load((ROOT / "integrations" / "github" / "example-workflow.yml").read_text())
    inputs = set(_action()["inputs"])
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses") == "./integrations/github":
                assert set(step["with"]) <= inputs, step["with"]
                assert "policy" in step["with"]
