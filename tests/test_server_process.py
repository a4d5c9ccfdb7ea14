"""``gov serve`` as a real process: it answers, stops cleanly on SIGTERM, and refuses bad options with
a one-line reason; ``gov serve-token`` makes a token the server accepts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests._server_support import free_port

pytest.importorskip("uvicorn", reason="the server tests need the [server] extra")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "OPENLINEAGE"))}
    env.update({"GOVERNANCE_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}", **extra})
    return env


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gov serve exited early: {proc.communicate()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gov serve did not answer")


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "governance.cli", "serve", "--port", str(port)],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert b"Model inventory" in resp.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"at http://127.0.0.1:{port}/" in out.decode() and "stopped cleanly (SIGTERM)" in out.decode()
    assert b"Traceback" not in err


def test_serve_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    for args, message in ((["--host", "0.0.0.0"], "only listens on 127.0.0.1"),
                          (["--port", "70000"], "--port: expected 1 to 65535")):
        proc = subprocess.run([sys.executable, "-m", "governance.cli", "serve", *args], cwd=tmp_path,
                              env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_serve_token_makes_a_token_the_server_accepts(tmp_path: Path) -> None:
    made = subprocess.run([sys.executable, "-m", "governance.cli", "serve-token", "airflow", "--scope", "write",
                           "--scope", "read"], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=60, check=True)
    token = made.stdout.split("give it to airflow): ", 1)[1].split()[0]
    toml = made.stdout.split("add to governance.toml:\n", 1)[1].split("or: ", 1)[0]
    (tmp_path / "governance.toml").write_text(toml, encoding="utf-8")
    assert token not in toml

    from governance.server import load_server_config

    config = load_server_config(tmp_path, environ={})
    found = config.match(token)
    assert found is not None and found.name == "airflow" and found.scopes == {"read", "write"}
    bad = subprocess.run([sys.executable, "-m", "governance.cli", "serve-token", "x", "--scope", "admin"],
                         cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "--scope: expected read or write" in bad.stderr
