"""The team example runs as written against a real PostgreSQL catalog, and CI can gate what it made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEAM = ROOT / "examples" / "team_postgres"

pytestmark = pytest.mark.slow


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "OPENLINEAGE"))}
    env.update(GOVERNANCE_CATALOG_URL=url, GOVERNANCE_ACTOR="ci-bot")
    return env


@pytest.mark.postgres
def test_team_example_trains_into_postgres_and_the_gate_reads_it(fresh_pg_url: str, tmp_path: Path) -> None:
    env = _env(fresh_pg_url)
    train = subprocess.run([sys.executable, str(TEAM / "train.py")], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300, check=False)
    assert train.returncode == 0, train.stderr
    ref = train.stdout.strip().splitlines()[-1]
    assert ref.startswith("credit-scorer@")
    gov = [sys.executable, "-m", "governance.cli"]
    check = subprocess.run([*gov, "check", ref, "--policy", "baseline", "--format", "json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    document = json.loads(check.stdout)
    assert document["subject"]["model"] == "credit-scorer"
    assert {r["id"]: r["status"] for r in document["results"]}["fairness.selection_rate_ratio"] == "PASS"
    promote = subprocess.run([*gov, "promote", ref, "--to", "staging", "--policy", "baseline"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300, check=False)
    assert promote.returncode == 0, promote.stderr
    verify = subprocess.run([*gov, "audit", "verify"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_team_workflow_runs_the_commands_the_example_documents() -> None:
    workflow = yaml.safe_load((TEAM / ".github" / "workflows" / "governance.yml").read_text(encoding="utf-8"))
    runs = " ".join(step.get("run", "") for step in workflow["jobs"]["gate"]["steps"])
    for command in ("gov db upgrade", "examples/team_postgres/train.py", "gov check", "gov promote",
                    "gov report model-card", "gov audit checkpoint"):
        assert command in runs, command
