"""End to end: ``gov demo`` as a user runs it, in a fresh directory, twice."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.test_openlineage_support import require_spec, validate_event

pytestmark = pytest.mark.slow


def _gov(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "OPENLINEAGE"))}
    env["GOVERNANCE_ACTOR"] = "demo-user"
    return subprocess.run([sys.executable, "-m", "governance.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def _ui_shows_the_demo(catalog: str, cwd: Path, promoted: int, status: str) -> None:
    """What the demo prints to open its catalog in the web UI works (on a free port)."""
    import signal
    import socket
    import time
    import urllib.request

    pytest.importorskip("uvicorn", reason="the web UI needs the [server] extra")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "OPENLINEAGE"))}
    proc = subprocess.Popen([sys.executable, "-m", "governance.cli", "--catalog", catalog, "serve", "--port",
                             str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "gov serve did not start"
                time.sleep(0.2)
        assert "credit-scorer" in page and f"v{promoted}" in page and status in page
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_demo_runs_end_to_end_twice(tmp_path: Path) -> None:
    require_spec()
    out = tmp_path / "demo"
    first = _gov("demo", "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    blocked = re.search(r"gate: credit-scorer@(\d+) \(plain logistic regression\) -> FAIL", first.stdout)
    promoted = re.search(r"gate: credit-scorer@(\d+) \(fairlearn ExponentiatedGradient\) -> (PASS|WARN)", first.stdout)
    assert blocked and promoted, first.stdout
    assert "fairness.selection_rate_ratio" in first.stdout.split("promotion refused")[0]

    catalog = f"sqlite:///{out / '.governance' / 'catalog.db'}"
    card = _pdf_text(out / "model-card.pdf")
    assert f"credit-scorer@{promoted.group(1)}" in card
    assert "Traceability" in card
    # the mitigated model's predict_proba is a mixture's 0/1 vote: no AUC or log loss from hard labels
    assert "roc_auc" not in card and "log_loss" not in card
    assert "EU AI Act" in card or "EU-AI-Act" in card
    audit = _pdf_text(out / "audit-trail.pdf")
    assert "promotion" in audit
    assert (out / "model-card.html").read_text(encoding="utf-8").count("<script") == 0

    events = [json.loads(line) for line in (out / "openlineage.ndjson").read_text(encoding="utf-8").splitlines()]
    assert {e["eventType"] for e in events} == {"START", "COMPLETE"}
    for event in events:
        validate_event(event)

    verify = _gov("--catalog", catalog, "audit", "verify", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    shown = re.search(r"open it in the web UI: gov --catalog (\S+) serve, then http://127\.0\.0\.1:5000/", first.stdout)
    assert shown and shown.group(1) == catalog, first.stdout
    _ui_shows_the_demo(catalog, tmp_path, int(promoted.group(1)), promoted.group(2))
    models = _gov("--catalog", catalog, "models", "show", "credit-scorer@production", "--format", "json", cwd=tmp_path)
    assert json.loads(models.stdout)["version"] == int(promoted.group(1))
    history = _gov("--catalog", catalog, "history", "credit-scorer", "--format", "json", cwd=tmp_path)
    actions = [(h["action"], h["to_version"]) for h in json.loads(history.stdout)]
    assert ("refused", int(blocked.group(1))) in actions
    assert ("promote", int(promoted.group(1))) in actions

    # a second run in the same directory: new versions, the same (longer) chain, still intact
    second = _gov("demo", "--out", str(out), cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    promoted_again = re.search(r"credit-scorer@(\d+) \(fairlearn ExponentiatedGradient\) -> (PASS|WARN)", second.stdout)
    assert promoted_again
    assert int(promoted_again.group(1)) > int(promoted.group(1))
    verify = _gov("--catalog", catalog, "audit", "verify", "--format", "json", cwd=tmp_path)
    assert verify.returncode == 0
    assert json.loads(verify.stdout)["count"] > len(events)
