"""The CLI contract: exit codes, one-line errors, --verbose tracebacks, read commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from governance.audit import audited
from governance.catalog import Model, ModelVersion, open_catalog
from governance.cli import main


def test_init_creates_the_default_catalog(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    assert (gov_env / ".governance" / "catalog.db").is_file()
    assert "catalog ready" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["models", "show", "nope@1"], "gov: error: unknown model 'nope'; the catalog has no models yet"),
    (["--catalog", "mysql://x", "init"], "unsupported catalog backend 'mysql'"),
    (["runs", "list", "--format", "xml"], "--format: expected one of text, json, got 'xml'"),
    (["--catalog", "postgresql+psycopg://postgres@127.0.0.1:1/none", "init"],
     "gov: error: catalog postgresql+psycopg://postgres@127.0.0.1:1/none: connection"),
    (["models", "show", "m@"], "MODEL@VERSION: nothing after '@'"),
])
def test_user_errors_are_one_line_and_exit_2(gov_env: Path, capsys: pytest.CaptureFixture[str],
                                             argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_command_is_usage_error(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_verbose_shows_the_traceback(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verbose", "models", "show", "nope"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_read_commands_json(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = open_catalog()
    with audited(catalog, "alice") as tx:
        model = Model(name="scorer", owner="team")
        tx.session.add(model)
        tx.session.flush()
        tx.session.add(ModelVersion(model_id=model.id, version=1, params={"C": 0.5}))
        tx.record("model_version.create", "model:scorer@1")
    assert main(["models", "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "scorer", "owner": "team", "risk_tier": None, "latest_version": 1, "aliases": {}}]
    assert main(["models", "show", "scorer@1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == {"C": 0.5}
    assert main(["models", "list"]) == 0
    assert "scorer" in capsys.readouterr().out
    assert main(["runs", "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_real_subprocess_exit_codes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}
    gov = [sys.executable, "-m", "governance.cli"]
    ok = subprocess.run([*gov, "init"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*gov, "models", "show", "ghost"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "gov: error: unknown model 'ghost'; the catalog has no models yet"
