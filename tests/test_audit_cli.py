"""``gov audit verify|checkpoint|keygen|log|harden``: exit codes, checkpoints, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import select

from governance.audit import audited, verify_audit
from governance.catalog import AuditCheckpoint, AuditEvent, clear_catalog_cache, open_catalog
from governance.cli import main

DB = Path(".governance") / "catalog.db"


def fill(n: int, actor: str = "alice") -> None:
    catalog = open_catalog()
    for i in range(n):
        with audited(catalog, actor) as tx:
            tx.record("test.append", f"model:credit@{i + 1}", {"i": i})


def sql(statement: str, **params: object) -> None:
    with open_catalog().engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def sqlite_copy(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def keys(tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    assert main(["audit", "keygen", "--output-dir", str(tmp / "keys")]) == 0
    capsys.readouterr()
    return tmp / "keys" / "audit-signing.key", tmp / "keys" / "audit-signing.pub"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_verify_intact_and_broken(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(5)
    assert main(["audit", "verify"]) == 0
    assert "audit chain intact: 5 events, head seq 5" in capsys.readouterr().out
    sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3")
    assert main(["audit", "verify"]) == 1
    captured = capsys.readouterr()
    assert "audit chain BROKEN at seq 3" in captured.out
    assert captured.err.strip() == ("gov: error: audit chain broken at seq 3: time/actor/action/subject "
                                    "columns differ from the hashed payload")
    assert main(["audit", "verify", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["first_bad_seq"], doc["count"]) == (False, 3, 2)


def test_keygen_modes_and_refuses_to_overwrite(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = keys(gov_env, capsys)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    assert b"PUBLIC KEY" in public.read_bytes()
    assert main(["audit", "keygen", "--output-dir", str(gov_env / "keys")]) == 2
    assert "already exists" in one_line_error(capsys)


def test_checkpoint_then_truncation_and_rollback_fail(gov_env: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    private, public = keys(gov_env, capsys)
    fill(4)
    backup = gov_env / "backup.db"
    sqlite_copy(gov_env / DB, backup)  # an old backup: 4 events
    fill(3)
    cp = gov_env / "cp.json"
    assert main(["--actor", "ci-bot", "audit", "checkpoint", "--output", str(cp), "--key", str(private)]) == 0
    assert "seq 7" in capsys.readouterr().out
    doc = json.loads(cp.read_text())
    assert (doc["seq"], doc["algorithm"]) == (7, "ed25519")

    # recorded in the catalog, audited, by the acting identity
    catalog = open_catalog()
    with catalog.read() as session:
        [record] = session.exec(select(AuditCheckpoint)).all()
        last = session.exec(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert (record.seq, record.hash, record.key_id) == (7, doc["hash"], doc["key_id"])
    assert last is not None
    assert (last.seq, last.action, last.actor) == (8, "audit.checkpoint", "ci-bot")

    verify = ["audit", "verify", "--checkpoint", str(cp), "--pubkey", str(public)]
    fill(2)  # the log grows after the checkpoint: still fine
    assert main(verify) == 0
    assert "checkpoint seq 7: ok" in capsys.readouterr().out

    sql("DELETE FROM audit_event WHERE seq >= 6")  # truncation: the rest still chains
    plain = verify_audit(catalog)  # the catalog's own record of the exported head catches it too
    assert not plain.ok and plain.first_bad_seq is None and plain.checkpoint_seq == 7
    assert plain.checkpoint_reason == ("the catalog recorded an exported checkpoint at seq 7, but the log ends "
                                       "at seq 5: events were deleted")
    assert main(["audit", "verify"]) == 1
    assert "events were deleted" in one_line_error(capsys)
    assert main(verify) == 1
    err = one_line_error(capsys)
    assert "log ends at seq 5 but the checkpoint covers seq 7" in err

    clear_catalog_cache()
    sqlite_copy(backup, gov_env / DB)  # restore the old backup, then new activity on top of it
    fill(5, actor="restorer")
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(verify) == 1
    assert "restored from a different backup" in one_line_error(capsys)


def test_checkpoint_signature_and_keys(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = keys(gov_env, capsys)
    fill(3)
    cp = gov_env / "cp.json"
    assert main(["audit", "checkpoint", "--output", str(cp), "--key", str(private)]) == 0
    capsys.readouterr()

    # an edited checkpoint (seq moved back, signature kept) does not verify: exit 1
    doc = json.loads(cp.read_text())
    forged = gov_env / "forged.json"
    forged.write_text(json.dumps({**doc, "seq": 2, "hash": json.loads(cp.read_text())["hash"]}))
    assert main(["audit", "verify", "--checkpoint", str(forged), "--pubkey", str(public)]) == 1
    assert "signature does not match" in one_line_error(capsys)

    # a different key: bad input, exit 2, one line naming both key ids
    other = gov_env / "other.pub"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert main(["audit", "verify", "--checkpoint", str(cp), "--pubkey", str(other)]) == 2
    assert f"wrong key: the checkpoint was signed by key {doc['key_id']}" in one_line_error(capsys)

    # the private key given as --pubkey
    assert main(["audit", "verify", "--checkpoint", str(cp), "--pubkey", str(private)]) == 2
    assert "is a private key" in one_line_error(capsys)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not a JSON checkpoint file"),
    ("[]", "expected a JSON object"),
    ('{"format": "other"}', "`format` must be 'governance-audit-checkpoint/1'"),
    (None, "`seq` must be a positive integer"),
    ("", "is not a JSON checkpoint file"),
])
def test_corrupt_checkpoint_is_exit_2(gov_env: Path, capsys: pytest.CaptureFixture[str],
                                      content: str | None, message: str) -> None:
    private, public = keys(gov_env, capsys)
    fill(2)
    cp = gov_env / "cp.json"
    assert main(["audit", "checkpoint", "--output", str(cp), "--key", str(private)]) == 0
    capsys.readouterr()
    if content is None:
        doc = json.loads(cp.read_text())
        doc["seq"] = "seven"
        content = json.dumps(doc)
    cp.write_text(content)
    assert main(["audit", "verify", "--checkpoint", str(cp), "--pubkey", str(public)]) == 2
    assert message in one_line_error(capsys)


def test_bad_inputs_are_one_line_exit_2(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = keys(gov_env, capsys)
    assert main(["audit", "verify"]) == 2  # no catalog yet: verify opens read-only and creates none
    assert "no such file; nothing to read" in one_line_error(capsys)
    assert not (gov_env / ".governance" / "catalog.db").exists()
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify"]) == 2
    assert "is empty: nothing to verify" in one_line_error(capsys)
    assert main(["audit", "checkpoint", "--output", "cp.json", "--key", str(private)]) == 2
    assert "is empty: nothing to checkpoint" in one_line_error(capsys)
    fill(1)
    assert main(["audit", "checkpoint", "--output", "cp.json", "--key", str(public)]) == 2
    assert "is not an unencrypted PEM private key" in one_line_error(capsys)
    garbage = gov_env / "garbage.key"
    garbage.write_text("hello")
    assert main(["audit", "checkpoint", "--output", "cp.json", "--key", str(garbage)]) == 2
    assert "garbage.key is not an unencrypted PEM private key" in one_line_error(capsys)
    assert main(["audit", "checkpoint", "--output", "cp.json", "--key", "missing.key"]) == 2
    assert "--key: cannot read missing.key" in one_line_error(capsys)
    assert main(["audit", "verify", "--checkpoint", "cp.json"]) == 2
    assert "--pubkey is required" in one_line_error(capsys)
    assert main(["audit", "log", "--since", "yesterday"]) == 2
    assert "--since: expected an ISO date" in one_line_error(capsys)
    assert main(["audit", "harden", "--role", "app"]) == 2
    assert "gov audit harden: PostgreSQL only" in one_line_error(capsys)


def test_log_command(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(3)
    assert main(["audit", "log"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert "alice  test.append  model:credit@1" in out[0]
    assert main(["audit", "log", "--model", "credit", "--limit", "2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["seq"] for r in rows] == [2, 3]
    assert rows[0]["data"] == {"i": 1}
    assert main(["audit", "log", "--model", "other"]) == 0
    assert capsys.readouterr().out.strip() == "no audit events"


def test_actor_precedence_is_recorded_on_events(gov_env: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    private, _ = keys(gov_env, capsys)
    fill(1)
    cp = str(gov_env / "cp.json")
    monkeypatch.setenv("GITHUB_ACTOR", "gh-user")
    assert main(["--actor", "explicit", "audit", "checkpoint", "--output", cp, "--key", str(private)]) == 0
    # GOVERNANCE_ACTOR=tester (set by gov_env) beats GITHUB_ACTOR
    assert main(["audit", "checkpoint", "--output", cp, "--key", str(private)]) == 0
    monkeypatch.delenv("GOVERNANCE_ACTOR")
    assert main(["audit", "checkpoint", "--output", cp, "--key", str(private)]) == 0
    capsys.readouterr()
    assert main(["audit", "log", "--format", "json"]) == 0
    actors = [r["actor"] for r in json.loads(capsys.readouterr().out)]
    assert actors == ["alice", "explicit", "tester", "gh-user"]


def test_real_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "GITHUB_", "GITLAB_"))}
    env["GOVERNANCE_ACTOR"] = "sub"
    command = [sys.executable, "-m", "governance.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=False)

    empty = run("audit", "verify")
    assert empty.returncode == 2
    assert empty.stderr.count("\n") == 1
    assert run("audit", "keygen", "--output-dir", "keys").returncode == 0
    assert run("init").returncode == 0
    first = run("audit", "checkpoint", "--output", "cp.json", "--key", "keys/audit-signing.key")
    assert first.returncode == 2  # still empty: `init` records nothing
    db = tmp_path / DB
    from governance.catalog import Catalog

    catalog = Catalog(f"sqlite:///{db}")
    with audited(catalog, "lib") as tx:
        tx.record("test.append", "model:x@1")
    catalog.dispose()
    second = run("audit", "checkpoint", "--output", "cp.json", "--key", "keys/audit-signing.key")
    assert second.returncode == 0, second.stderr
    ok = run("audit", "verify", "--checkpoint", "cp.json", "--pubkey", "keys/audit-signing.pub")
    assert ok.returncode == 0, ok.stderr
    assert "checkpoint seq 1: ok" in ok.stdout


def _catalog_with_events(root: Path) -> Path:
    from governance.catalog import Catalog
    from governance.registry import register_model

    db = root / "catalog.db"
    catalog = Catalog(f"sqlite:///{db}")
    for i in range(6):
        register_model(f"m{i}", description="x" * 3000, catalog=catalog, actor="a")
    catalog.dispose()
    return db


def test_verify_reads_a_catalog_on_a_read_only_filesystem(tmp_path: Path) -> None:
    """A WAL catalog on read-only media (an auditor's copy, a mounted snapshot) is verified read-only."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], check=False).returncode:
        pytest.skip("needs unshare with user and mount namespaces to mount a read-only directory")
    store = tmp_path / "store"
    store.mkdir()
    db = _catalog_with_events(store)
    script = (f'mount --bind -o ro "{store}" "{store}" && touch "{store}/probe" 2>/dev/null && exit 99; '
              f'exec "{sys.executable}" -m governance.cli --catalog "sqlite:///{db}" audit verify')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("audit chain intact: 18 events")  # 3 events per registered model
    assert sorted(p.name for p in store.iterdir()) == ["catalog.db", "catalog.db.audit-lock"]


def test_verify_on_a_corrupted_catalog_is_one_line(tmp_path: Path) -> None:
    import sqlite3

    db = _catalog_with_events(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audit_event'").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    start = (root_page - 1) * page_size
    data[start + 8:start + 400] = b"\x13" * 392  # the audit table's root page is garbage now
    db.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "governance.cli", "--catalog", f"sqlite:///{db}", "audit", "verify"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "malformed" in proc.stderr and str(db) in proc.stderr
