"""Verifiable sign-off (issue 16, design 7a): one person with one key cannot get a model past a pack
that needs a second person, whatever they type or write to the catalog; a real second key passes;
tampering with evidence or the pack after approval voids it; signatures interoperate with ssh-keygen.

Each attack from the issue is a test here (named ``test_attack_...``).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from sqlmodel import col, select

import governance as gov
from governance.audit import audited, resolve_actor
from governance.catalog import Approval, AuditEvent, Evidence, SignedStatement
from governance.cli import main
from governance.config import load_settings
from governance.errors import InputError, PolicyViolation, UnboundStateError
from governance.lineage import artifact_digest
from governance.registry import (
    approve,
    approve_waiver,
    check,
    history,
    list_approvals,
    list_waivers,
    promote,
    rollback,
    waive,
)
from governance.registry._promote import stage_version
from governance.signing import NAMESPACE, load_signing_key, load_trust_store, make_statement, sign_statement
from tests._signoff_support import (
    RELEASE_PACK,
    STRICT_PACK,
    Team,
    add_model_version,
    data,
    keygen_key,
    make_team,
    ssh_keygen,
)


@pytest.fixture
def team(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    t = make_team(gov_env, monkeypatch)
    add_model_version(t)
    yield t
    t.catalog.dispose()


def _promote(team: Team, pack: Path, who: str | None = "alice", **kw: Any) -> Any:
    key = team.key_files[who] if who else None
    return promote("credit@1", to="production", policy=pack, catalog=team.catalog, key=key,
                   raise_on_refusal=False, **kw)


def _approve(team: Team, who: str, pack: Path, stage: str = "production") -> Approval:
    return approve("credit@1", stage=stage, key=team.key_files[who], policy=pack, catalog=team.catalog)


# ------------------------------------------------------------------------------------ the story
def test_a_real_second_and_third_key_make_it_pass_and_everything_says_who(
        team: Team, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    pack = team.pack("release", RELEASE_PACK)
    refused = _promote(team, pack)
    assert refused.decision["action"] == "refused" and "have 0" in refused.decision["reason"]
    _approve(team, "bob", pack)
    _approve(team, "carol", pack)
    report = _promote(team, pack)
    assert report.decision["action"] == "promote", report.decision["reason"]
    signers = report.decision["approvals"]["signers"]
    assert [(s["principal"], s["verification"]) for s in signers] == [("bob", "verified"), ("carol", "verified")]
    assert signers[0]["key_fingerprint"] == team.keys["bob"].fingerprint
    assert stage_version(team.catalog, "credit", "production") == 1
    rows = history("credit", catalog=team.catalog)
    assert [(r.action, r.signature.signer, r.signature.verification) for r in rows] == [
        ("refused", "alice", "verified"), ("promote", "alice", "verified")]
    assert rows[-1].signature.key_fingerprint == team.keys["alice"].fingerprint
    assert main(["history", "credit"]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and team.keys["alice"].fingerprint[:20] in out
    # the decision's audit event names the trust store it was verified against
    with team.catalog.read() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "promotion.promote")).one()
    assert json.loads(event.payload)["data"]["trust_store"] == load_trust_store(team.allowed_signers).digest


def test_attack_one_person_one_key_cannot_pass_whatever_they_write(team: Team) -> None:
    """alice holds one key: self-approval, approvals claimed as bob/carol signed with her key, unsigned
    rows written straight to the catalog, and mallory's untrusted key: none counts."""
    pack = team.pack("release", RELEASE_PACK)
    _approve(team, "alice", pack)  # her own approval: she is the requester
    from governance.policy import context_for_model_version, load_pack

    evidence = context_for_model_version(team.catalog, "credit@1").sources["evidence_digest"]
    loaded = load_pack(str(pack))
    with audited(team.catalog, "alice") as tx:
        mv_hash = artifact_digest(team.model)
        for claimed, key in (("bob", "alice"), ("carol", "mallory"), ("carol", None)):
            row = Approval(model_version_id=1, stage="production", approver=claimed)
            tx.session.add(row)
            tx.session.flush()
            statement = make_statement(subject_name="credit@1", artifact_digest=mv_hash, predicate={
                "action": "approval", "decision": "approve", "model": "credit", "version": 1,
                "stage": "production", "evidence": evidence,
                "policy": {"name": loaded.name, "version": loaded.version, "digest": loaded.digest},
                "principal": claimed, "time": "2026-01-01T00:00:00.000000Z", "trust_store": "x"})
            signature = None if key is None else sign_statement(statement, team.keys[key])
            tx.session.add(SignedStatement(kind="approval", target_id=int(row.id or 0),
                                           statement=statement.decode(), signature=signature))
        tx.record("test.forge", "model:credit@1", {})
    report = _promote(team, pack)
    assert report.decision["action"] == "refused"
    ignored = " | ".join(report.decision["approvals"]["ignored"])
    assert "the requester cannot approve their own promotion" in ignored
    assert f"key {team.keys['alice'].fingerprint} does not speak for 'bob'" in ignored
    assert f"key {team.keys['mallory'].fingerprint} is not in the trust store" in ignored
    assert "unsigned (pack release requires signatures)" in ignored
    assert report.decision["approvals"]["approvers"] == []
    # without a key the promoter cannot even be told apart from approvers: refused
    unsigned = _promote(team, pack, who=None)
    assert unsigned.decision["action"] == "refused" and "pass --key" in unsigned.decision["reason"]
    # mallory cannot sign in the first place
    with pytest.raises(InputError, match="is not in the trust store"):
        _approve(team, "mallory", pack)


def test_attack_typed_actor_and_role_no_longer_approve(team: Team, capsys: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`--actor bob --role model-risk` and GOVERNANCE_ACTOR=carol --role compliance satisfied 2 approvals."""
    pack = team.pack("release", RELEASE_PACK)
    assert main(["--actor", "bob", "approve", "credit@1", "--stage", "production", "--role", "model-risk",
                 "--policy", str(pack)]) == 2
    assert "roles come from the project configuration" in capsys.readouterr().err
    assert main(["--actor", "bob", "approve", "credit@1", "--stage", "production", "--policy", str(pack)]) == 0
    monkeypatch.setenv("GOVERNANCE_ACTOR", "carol")
    assert main(["approve", "credit@1", "--stage", "production", "--policy", str(pack)]) == 0
    capsys.readouterr()
    code = main(["--actor", "alice", "promote", "credit@1", "--to", "production", "--policy", str(pack),
                 "--key", str(team.key_files["alice"])])
    assert code == 1
    assert "unsigned (pack release requires signatures)" in capsys.readouterr().err
    # a trusted key whose principal holds no configured role does not count either
    team.trust("alice", "bob", "carol", "mallory")
    _approve(team, "mallory", pack)
    assert "mallory does not hold role model-risk or compliance" in " ".join(
        _promote(team, pack).decision["approvals"]["ignored"])


def test_attack_waiver_with_a_typed_approver_does_not_count(team: Team, capsys: Any) -> None:
    """`gov --actor alice waive ... --approver bob` then promote: promoted, exit 0, bob never acted."""
    strict = team.pack("strict", STRICT_PACK)
    assert main(["--actor", "alice", "waive", "credit@1", "--check", "perf.accuracy", "--reason", "ok",
                 "--approver", "bob", "--expires", "30d"]) == 0
    capsys.readouterr()
    assert main(["--actor", "alice", "promote", "credit@1", "--to", "production", "--policy", str(strict)]) == 1
    assert "blocked by policy: perf.accuracy FAIL" in capsys.readouterr().err
    assert stage_version(team.catalog, "credit", "production") is None
    listed = list_waivers(catalog=team.catalog)[0]
    assert listed.signatures.approver_verification == "unsigned" and not listed.signatures.counts
    assert str(listed.signatures.reason).startswith("unsigned")


def test_signed_waiver_needs_two_people_with_two_keys(team: Team, capsys: Any) -> None:
    strict = team.pack("strict", STRICT_PACK)
    alice, bob = str(team.key_files["alice"]), str(team.key_files["bob"])
    assert main(["waive", "credit@1", "--check", "perf.accuracy", "--reason", "known gap", "--expires", "30d",
                 "--key", alice]) == 0
    assert "counts once another person signs" in capsys.readouterr().out
    assert check("credit@1", policy=strict, catalog=team.catalog).exit_code() == 1  # requested only
    assert main(["waivers", "approve", "1", "--key", alice]) == 2  # the requester's own key
    assert "the approver must be another person" in capsys.readouterr().err
    assert main(["waivers", "approve", "1", "--key", bob]) == 0
    report = check("credit@1", policy=strict, catalog=team.catalog)
    result = report.document["results"][0]
    assert report.exit_code() == 0 and result["status"] == "WAIVED"
    assert f"bob ({team.keys['bob'].fingerprint})" in result["message"]
    listed = list_waivers(catalog=team.catalog)[0]
    assert (listed.signatures.requester_verification, listed.signatures.approver_verification,
            listed.signatures.counts) == ("verified", "verified", True)
    assert listed.signatures.approver_key == team.keys["bob"].fingerprint and listed.approver == "bob"
    # an edited row (expiry pushed to 2300): with plain SQL the gate refuses it as unbound state ...
    with team.catalog.write() as session:
        session.execute(sa.text("UPDATE waiver SET expires_at = :t"), {"t": datetime(2300, 1, 1, tzinfo=UTC)})
    with pytest.raises(UnboundStateError, match="waiver 1 differs from the content recorded"):
        check("credit@1", policy=strict, catalog=team.catalog)
    # ... and even recorded through the audited path it no longer matches what was signed
    with audited(team.catalog, "mallory") as tx:
        tx.session.execute(sa.text("UPDATE waiver SET expires_at = :t"), {"t": datetime(2300, 1, 2, tzinfo=UTC)})
        tx.record("waiver.edit", "model:credit", {"waiver_id": 1})
    edited = check("credit@1", policy=strict, catalog=team.catalog)
    assert edited.exit_code() == 1
    assert edited.document["waivers_not_counted"][0]["reason"] == "the stored waiver differs from what was signed"


def test_one_principal_with_two_keys_is_still_one_person(team: Team) -> None:
    second = team.root / "keys" / "alice-laptop"
    from governance.signing import generate_key

    team.keys["alice2"] = generate_key(second, "alice")
    lines = team.allowed_signers.read_text() + f'alice namespaces="{NAMESPACE}" {team.keys["alice2"].public_key}\n'
    team.allowed_signers.write_text(lines)
    waiver = waive("credit@1", check_id="perf.accuracy", reason="r", expires="10d", key=team.key_files["alice"],
                   catalog=team.catalog)
    with pytest.raises(InputError, match="another person with another key"):
        approve_waiver(int(waiver.id or 0), key=second, catalog=team.catalog)


def test_attack_unbounded_waiver_is_refused(team: Team, capsys: Any) -> None:
    """`--expires 99999d` was accepted (a waiver until the year 2300)."""
    assert main(["waive", "credit@1", "--check", "perf.accuracy", "--reason", "ok", "--expires", "99999d",
                 "--key", str(team.key_files["alice"])]) == 2
    err = capsys.readouterr().err
    assert "more than 90 days away" in err and "waiver_max_days" in err
    (team.root / "governance.toml").write_text(
        (team.root / "governance.toml").read_text().replace(
            'allowed_signers = "allowed_signers"\n', 'allowed_signers = "allowed_signers"\nwaiver_max_days = 7\n'))
    assert main(["waive", "credit@1", "--check", "perf.accuracy", "--reason", "ok", "--expires", "8d",
                 "--key", str(team.key_files["alice"])]) == 2
    assert "more than 7 days away" in capsys.readouterr().err
    assert main(["waive", "credit@1", "--check", "perf.accuracy", "--reason", "ok", "--expires", "6d",
                 "--key", str(team.key_files["alice"])]) == 0


# ------------------------------------------------------------------------------- voided approvals
def test_a_changed_byte_of_evidence_voids_the_approvals(team: Team) -> None:
    pack = team.pack("release", RELEASE_PACK)
    _approve(team, "bob", pack)
    _approve(team, "carol", pack)
    with team.catalog.read() as session:
        row = session.exec(select(Evidence)).one()
        data = dict(row.data)
    data["n"] = int(data["n"]) + 1
    # recorded through the audited path: an unrecorded edit is refused earlier, as unbound state
    with audited(team.catalog, "alice") as tx:
        tx.session.execute(sa.text("UPDATE evidence SET data = :d WHERE id = :i"),
                           {"d": json.dumps(data), "i": row.id})
        tx.record("evidence.update", "model:credit@1", {"evidence_id": row.id})
    report = _promote(team, pack)
    assert report.decision["action"] == "refused"
    assert "given on another evidence (changed since it was approved)" in report.decision["reason"]


def test_a_changed_pack_voids_the_approvals(team: Team) -> None:
    pack = team.pack("release", RELEASE_PACK)
    _approve(team, "bob", pack)
    _approve(team, "carol", pack)
    pack.write_text(RELEASE_PACK.replace("gte: 0.5", "gte: 0.4"), encoding="utf-8")
    report = _promote(team, pack)
    assert report.decision["action"] == "refused"
    assert "given on another policy" in report.decision["reason"]


def test_trust_store_decides_now_validity_and_namespace(team: Team) -> None:
    pack = team.pack("release", RELEASE_PACK)
    _approve(team, "bob", pack)
    _approve(team, "carol", pack)
    assert _promote(team, pack).decision["action"] == "promote"
    # bob's key expired; carol's key may only sign git commits: neither counts any more
    bob, carol, alice = (team.keys[n].public_key for n in ("bob", "carol", "alice"))
    team.allowed_signers.write_text(
        f'alice namespaces="{NAMESPACE}" {alice}\n'
        f'bob namespaces="{NAMESPACE}",valid-before="20200101Z" {bob}\n'
        f'carol namespaces="git" {carol}\n')
    report = promote("credit@1", to="staging", policy=pack, catalog=team.catalog, key=team.key_files["alice"],
                     raise_on_refusal=False)
    assert report.decision["action"] == "refused"  # (approvals were for production anyway)
    again = _promote(team, pack)
    ignored = " | ".join(again.decision["approvals"]["ignored"])
    assert "expired at 2020-01-01" in ignored and "is not allowed for namespace ml-governance" in ignored
    assert [r.signature.verification for r in list_approvals("credit@1", catalog=team.catalog)] == [
        "untrusted", "untrusted"]


def test_unsigned_counts_only_under_signatures_optional_and_says_so(team: Team) -> None:
    optional = team.pack("optional", RELEASE_PACK.replace("name: release", "name: optional")
                         .replace("approvals:", "signatures: optional\napprovals:"))
    approve("credit@1", stage="production", policy=optional, catalog=team.catalog, actor="bob")
    approve("credit@1", stage="production", policy=optional, catalog=team.catalog, actor="BOB ")  # same person
    approve("credit@1", stage="production", policy=optional, catalog=team.catalog, actor="carol")
    report = _promote(team, optional, who=None)
    assert report.decision["action"] == "promote", report.decision["reason"]
    assert report.decision["approvals"]["approvers"] == ["bob (unsigned)", "carol (unsigned)"]
    assert "bob already counted (one person, one approval)" in report.decision["approvals"]["ignored"][0]
    assert report.decision["signer"]["verification"] == "unsigned"
    assert history("credit", catalog=team.catalog)[-1].signature.verification == "unsigned"


# ----------------------------------------------------------------------------------- identities
@pytest.mark.parametrize("name", ["al\u0456ce", "alice\u200b", "\u0430\u0441\u0435"])
def test_attack_confusable_identities_are_refused(team: Team, capsys: Any, name: str) -> None:
    """`al\\u0456ce` (Cyrillic i), `alice\\u200b` counted as someone other than requester alice."""
    optional = team.pack("optional", RELEASE_PACK.replace("approvals:", "signatures: optional\napprovals:"))
    assert main(["--actor", name, "approve", "credit@1", "--stage", "production", "--policy", str(optional)]) == 2
    err = capsys.readouterr().err
    assert "mixes scripts" in err or "invisible" in err or "whole-script confusable" in err


def test_attack_case_and_spaces_do_not_make_another_person(team: Team) -> None:
    """`bob` and `BOB` counted as two approvers; `"alice "` counted as someone other than alice."""
    optional = team.pack("optional", RELEASE_PACK.replace("approvals:", "signatures: optional\napprovals:")
                         .replace("roles: [model-risk, compliance]", "roles: []"))
    for actor in ("bob", "BOB", "alice ", "ＡＬＩＣＥ"):
        approve("credit@1", stage="production", policy=optional, catalog=team.catalog, actor=actor)
    report = _promote(team, optional, who=None, actor="alice")
    assert report.decision["action"] == "refused"
    assert report.decision["approvals"]["approvers"] == ["bob (unsigned)"]


def test_trust_store_refuses_lookalike_principals(team: Team) -> None:
    from governance.errors import ConfigError

    bob = team.keys["bob"].public_key
    team.allowed_signers.write_text(f'alice {team.keys["alice"].public_key}\nal\u0456ce {bob}\n')
    with pytest.raises(ConfigError, match="mixes scripts"):
        load_trust_store(team.allowed_signers)
    team.allowed_signers.write_text(f'a* {bob}\n')
    with pytest.raises(ConfigError, match="patterns"):
        load_trust_store(team.allowed_signers)


def test_attack_repository_config_cannot_rename_the_ci_user(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`actor = "carol"` in governance.toml overrode GITHUB_ACTOR in CI."""
    monkeypatch.delenv("GOVERNANCE_ACTOR", raising=False)
    (gov_env / "governance.toml").write_text('actor = "carol"\n', encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "dave")
    assert resolve_actor(None, load_settings()) == "dave"
    assert resolve_actor("explicit", load_settings()) == "explicit"
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert resolve_actor(None, load_settings()) == "carol"  # outside CI the configuration is the claim


def test_attack_edited_spool_line_is_recorded_under_the_replayer(
        gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited spool line (`"actor": "chief-risk-officer"`) was replayed by `gov sync` under that name."""
    from governance.catalog import Catalog
    from governance.lineage import replay_spool

    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")

    @gov.step(kind="feature", name="signoff.spooled")
    def build(raw: pd.DataFrame) -> pd.DataFrame:
        return raw.assign(k=1)

    build(pd.DataFrame({"a": [1, 2]}))
    spool = gov_env / ".governance" / "spool"
    (path,) = spool.glob("*.jsonl")
    line = json.loads(path.read_text())
    line["actor"] = "chief-risk-officer"
    path.write_text(json.dumps(line) + "\n")
    monkeypatch.delenv("GOVERNANCE_CATALOG_URL")
    catalog = Catalog(f"sqlite:///{gov_env / 'replayed.db'}")
    assert replay_spool(catalog, spool_dir=spool, actor="ci-bot") == 1
    with catalog.read() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "run.complete")).one()
    assert event.actor == "ci-bot"
    assert json.loads(event.payload)["data"]["claimed_actor"] == "chief-risk-officer"
    catalog.dispose()


# ---------------------------------------------------------------------------- policy and evidence
def test_attack_promoter_cannot_choose_the_pack(gov_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: Any) -> None:
    """A pack named baseline with a block check without an assertion 'passed' and the promoter chose it."""
    team = make_team(gov_env, monkeypatch, stages='[governance.stages.production]\npack = "release"\n'
                                                  'min_version = "1.2.0"\n')
    add_model_version(team)
    release = team.pack("release", RELEASE_PACK)
    fake = team.pack("baseline", "apiVersion: governance/v1\nkind: PolicyPack\n"
                                 "metadata: {name: baseline, version: 1.0.0}\n"
                                 "checks:\n  - id: perf.accuracy\n    uses: performance.accuracy\n"
                                 "    severity: warn\n")
    alice = str(team.key_files["alice"])
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(fake), "--key", alice]) == 2
    assert "stage production requires pack release" in capsys.readouterr().err
    old = team.pack("old", RELEASE_PACK.replace("version: 1.2.0", "version: 1.1.9"))
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(old), "--key", alice]) == 2
    assert "at version 1.2.0 or later; got 1.1.9" in capsys.readouterr().err
    no_assert = team.pack("noassert", "apiVersion: governance/v1\nkind: PolicyPack\n"
                                      "metadata: {name: release, version: 9.0.0}\n"
                                      "checks:\n  - id: perf.accuracy\n    uses: performance.accuracy\n"
                                      "    severity: block\n")
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(no_assert), "--key", alice]) == 2
    assert "perf.accuracy has severity block but no `assert`" in capsys.readouterr().err
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(release), "--key", alice]) == 1
    capsys.readouterr()
    team.catalog.dispose()


def test_stage_bound_by_digest(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from governance.policy import load_pack

    pack_path = gov_env / "release.yaml"
    pack_path.write_text(RELEASE_PACK, encoding="utf-8")
    digest = load_pack(str(pack_path)).digest
    team = make_team(gov_env, monkeypatch, stages=f'[governance.stages.production]\npack = "release"\n'
                                                  f'digest = "{digest}"\n')
    add_model_version(team)
    _approve(team, "bob", pack_path)
    pack_path.write_text(RELEASE_PACK.replace("gte: 0.5", "gte: 0.1"), encoding="utf-8")
    with pytest.raises(InputError, match=f"with digest {digest}"):
        _promote(team, pack_path)
    team.catalog.dispose()


def test_attack_evidence_of_another_model_is_refused(team: Team) -> None:
    """gov.evaluate(fair_model_v2, test, model_ref="credit-scorer@1") stored v2's behaviour as v1's."""
    frame = data(seed=5)
    other = LogisticRegression(C=0.01).fit(frame[["x1", "x2"]], frame["y"])
    with pytest.raises(InputError, match="the model object is not that version"):
        gov.evaluate(other, frame, label="y", sensitive=["sex"], model_ref="credit@1", features=["x1", "x2"],
                     catalog=team.catalog)
    with team.catalog.read() as session:
        stored = session.exec(select(Evidence)).one()
    assert stored.data["artifact_hash"] == artifact_digest(team.model)
    # evidence written for another digest straight into the catalog is refused by the gate
    with team.catalog.write() as session:
        session.execute(sa.text("DELETE FROM evidence"))
    with audited(team.catalog, "mallory") as tx:
        tx.session.add(Evidence(model_version_id=1, data={**stored.data, "artifact_hash": "0" * 64}))
        tx.record("test.forge", "model:credit@1", {})
    strict = team.pack("strict", STRICT_PACK)
    with pytest.raises(InputError, match="was not computed from this version's artifact"):
        check("credit@1", policy=strict, catalog=team.catalog)


# ----------------------------------------------------------------------------------- ssh-keygen
def test_ssh_keygen_verifies_our_signed_approval(team: Team) -> None:
    keygen = ssh_keygen()
    pack = team.pack("release", RELEASE_PACK)
    approval = _approve(team, "bob", pack)
    with team.catalog.read() as session:
        row = session.exec(select(SignedStatement).where(SignedStatement.target_id == approval.id,
                                                         SignedStatement.kind == "approval")).one()
    (team.root / "statement.json").write_text(row.statement, encoding="utf-8")
    (team.root / "statement.sig").write_text(row.signature or "", encoding="utf-8")
    verify = [keygen, "-Y", "verify", "-f", str(team.allowed_signers), "-I", "bob", "-n", NAMESPACE,
              "-s", str(team.root / "statement.sig")]
    with (team.root / "statement.json").open("rb") as stdin:
        done = subprocess.run(verify, stdin=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f'Good "{NAMESPACE}" signature for bob' in done.stdout
    assert team.keys["bob"].fingerprint in done.stdout
    # one changed byte and ssh-keygen refuses it too
    (team.root / "statement.json").write_text(row.statement.replace('"bob"', '"bod"'), encoding="utf-8")
    with (team.root / "statement.json").open("rb") as stdin:
        assert subprocess.run(verify, stdin=stdin, capture_output=True, check=False).returncode != 0


def _store_signature(team: Team, statement_id: Any, signature: str | None) -> None:
    with audited(team.catalog, "test") as tx:
        tx.session.execute(sa.text("UPDATE signed_statement SET signature = :s WHERE id = :i"),
                           {"s": signature, "i": statement_id})
        tx.record("test.signature", f"signed_statement:{statement_id}")


def test_gate_accepts_signatures_made_by_ssh_keygen(team: Team) -> None:
    keygen = ssh_keygen()
    pack = team.pack("release", RELEASE_PACK)
    bob_file = keygen_key(team.root, "bob")  # a key made by ssh-keygen, loaded by us
    team.keys["bob"] = load_signing_key(bob_file)
    team.key_files["bob"] = bob_file
    team.trust("alice", "bob", "carol")
    _approve(team, "bob", pack)
    _approve(team, "carol", pack)
    with team.catalog.read() as session:
        row = session.exec(select(SignedStatement).where(SignedStatement.kind == "approval")
                           .order_by(col(SignedStatement.id))).first()
    assert row is not None
    # re-sign bob's statement with stock ssh-keygen and store that signature instead of ours
    # (stored through the audited path: a raw UPDATE would be refused by the gate as unbound state)
    _store_signature(team, row.id, None)
    assert _promote(team, pack).decision["action"] == "refused"  # bob's approval without a signature
    signed = subprocess.run([keygen, "-Y", "sign", "-f", str(bob_file), "-n", NAMESPACE],
                            input=row.statement.encode(), capture_output=True, check=True).stdout.decode()
    assert signed == row.signature  # Ed25519 is deterministic: our SSHSIG bytes are ssh-keygen's
    wrong_ns = subprocess.run([keygen, "-Y", "sign", "-f", str(bob_file), "-n", "git"],
                              input=row.statement.encode(), capture_output=True, check=True).stdout.decode()
    _store_signature(team, row.id, signed)
    assert _promote(team, pack).decision["action"] == "promote"
    _store_signature(team, row.id, wrong_ns)
    later = promote("credit@1", to="production", policy=pack, catalog=team.catalog, key=team.key_files["alice"],
                    raise_on_refusal=False)
    assert later.decision["action"] == "refused"
    assert "signature does not verify" in " ".join(later.decision["approvals"]["ignored"])


def test_keys_init_prints_a_line_ssh_keygen_accepts(gov_env: Path, capsys: Any) -> None:
    keygen = ssh_keygen()
    key = gov_env / "k" / "dana"
    assert main(["keys", "init", "--principal", "Dana", "--output", str(key)]) == 0
    captured = capsys.readouterr()
    line = captured.out.strip()
    assert line.startswith(f'dana namespaces="{NAMESPACE}" ssh-ed25519 ')
    assert (key.stat().st_mode & 0o777) == 0o600
    fingerprint = subprocess.run([keygen, "-lf", str(key) + ".pub"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    assert fingerprint in captured.err
    assert main(["keys", "init", "--principal", "dana", "--output", str(key)]) == 2  # never overwrites
    capsys.readouterr()
    existing = keygen_key(gov_env, "erin")
    assert main(["keys", "line", str(existing), "--principal", "erin"]) == 0
    assert capsys.readouterr().out.split()[-1] == (existing.with_name(existing.name + ".pub")
                                                   .read_text().split()[1])


def test_rollback_is_signed_and_shown(team: Team) -> None:
    optional = team.pack("optional", "apiVersion: governance/v1\nkind: PolicyPack\n"
                                     "metadata: {name: open, version: 1.0.0}\nchecks:\n"
                                     "  - {id: perf.accuracy, uses: performance.accuracy, assert: {gte: 0.5}}\n")
    add_model_version(team, seed=1)
    for version in (1, 2):
        promote(f"credit@{version}", to="production", policy=optional, catalog=team.catalog,
                key=team.key_files["alice"])
    out = rollback("credit", stage="production", catalog=team.catalog, key=team.key_files["bob"])
    assert out["to_version"] == 1
    last = history("credit", catalog=team.catalog)[-1]
    assert (last.action, last.signature.signer, last.signature.key_fingerprint, last.signature.verification) == (
        "rollback", "bob", team.keys["bob"].fingerprint, "verified")


def test_waiver_approval_expiry_is_checked_at_approval(team: Team) -> None:
    waiver = waive("credit@1", check_id="perf.accuracy", reason="r", expires="1d", key=team.key_files["alice"],
                   catalog=team.catalog)
    later = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(InputError, match="is expired"):
        approve_waiver(int(waiver.id or 0), key=team.key_files["bob"], catalog=team.catalog, now=later)
    with pytest.raises(PolicyViolation):
        promote("credit@1", to="production", policy=team.pack("strict", STRICT_PACK), catalog=team.catalog,
                key=team.key_files["alice"])


def test_model_card_and_audit_report_show_signer_fingerprint_and_status(team: Team) -> None:
    pack = team.pack("release", RELEASE_PACK)
    _approve(team, "bob", pack)
    _approve(team, "carol", pack)
    assert _promote(team, pack).decision["action"] == "promote"
    approve("credit@1", stage="staging", policy=pack, catalog=team.catalog, actor="dave")  # unsigned
    bob = team.keys["bob"].fingerprint
    alice = team.keys["alice"].fingerprint
    card_md = team.root / "card.md"
    gov.render_model_card("credit@1", format="md", output=card_md, catalog=team.catalog)
    text = card_md.read_text()
    assert "production: bob, " in text and f"verified ({bob})" in text
    assert "staging: dave, " in text and ", unsigned" in text
    assert f"by alice, verified ({alice})" in text
    card_html = team.root / "card.html"
    gov.render_model_card("credit@1", format="html", output=card_html, catalog=team.catalog)
    html = card_html.read_text()
    assert bob in html and alice in html and "<td>verified</td>" in html and "<td>unsigned</td>" in html
    audit_html = team.root / "audit.html"
    gov.render_audit_report(model="credit", format="html", output=audit_html, catalog=team.catalog)
    audit = audit_html.read_text()
    assert "Signed decisions" in audit and bob in audit and alice in audit
    audit_json = team.root / "audit.json"
    gov.render_audit_report(model="credit", format="json", output=audit_json, catalog=team.catalog)
    decisions = json.loads(audit_json.read_text())["decisions"]
    assert [(d["kind"], d["signer"], d["verification"]) for d in decisions] == [
        ("approval", "bob", "verified"), ("approval", "carol", "verified"), ("promotion", "alice", "verified"),
        ("approval", "dave", "unsigned")]
    # the trust store no longer lists bob: every report says so
    team.trust("alice", "carol")
    gov.render_model_card("credit@1", format="md", output=card_md, catalog=team.catalog)
    assert "production: bob, " in card_md.read_text() and f"untrusted ({bob})" in card_md.read_text()


@pytest.mark.parametrize(("raw", "expected"), [
    ("alice", "alice"), ("ALICE ", "alice"), (" Alice", "alice"), ("\uff21\uff2c\uff29\uff23\uff25", "alice"),
    ("Алексей", "алексей"), ("山田たろう", "山田たろう"), ("o'brien-2@example.com", "o'brien-2@example.com"),
])
def test_identities_are_normalised(raw: str, expected: str) -> None:
    from governance.signing import normalise_identity

    assert normalise_identity(raw) == expected


@pytest.mark.parametrize(("raw", "why"), [
    ("al\u0456ce", "mixes scripts"), ("alice\u200b", "invisible"), ("ali ce", "space"), ("", "empty"),
    ("\u0430\u0441\u0435", "whole-script confusable"), ("b\u043eb", "mixes scripts"),
])
def test_confusable_or_invisible_identities_are_refused(raw: str, why: str) -> None:
    from governance.signing import normalise_identity

    with pytest.raises(InputError, match=why):
        normalise_identity(raw, "--actor")


def test_signing_through_ssh_agent_with_the_public_key(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import re
    import shutil
    import signal
    import tempfile

    ssh_keygen()  # the agent signs through the stock ssh-keygen
    agent, add = shutil.which("ssh-agent"), shutil.which("ssh-add")
    if agent is None or add is None:
        if os.environ.get("GOVERNANCE_REQUIRE_SSH_KEYGEN") == "1":
            pytest.fail("ssh-agent/ssh-add are required (GOVERNANCE_REQUIRE_SSH_KEYGEN=1) but not installed")
        pytest.skip("ssh-agent not installed (apt-get install openssh-client)")
    pack = team.pack("release", RELEASE_PACK)
    bob = keygen_key(team.root, "bob-agent")
    team.keys["bob"] = load_signing_key(bob)
    team.trust("alice", "bob", "carol")
    pub = bob.with_name(bob.name + ".pub")
    with pytest.raises(InputError, match="no ssh-agent is running"):
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
        approve("credit@1", stage="production", key=pub, policy=pack, catalog=team.catalog)
    socket_dir = Path(tempfile.mkdtemp(prefix="gov-agent-", dir="/tmp"))
    started = subprocess.run([agent, "-a", str(socket_dir / "s")], capture_output=True, text=True, check=True)
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", started.stdout).group(1))  # type: ignore[union-attr]
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_dir / "s"))
        subprocess.run([add, "-q", str(bob)], check=True, capture_output=True)
        approval = approve("credit@1", stage="production", key=pub, policy=pack, catalog=team.catalog)
        _approve(team, "carol", pack)
        report = _promote(team, pack)
        assert report.decision["action"] == "promote", report.decision["reason"]
        assert report.decision["approvals"]["signers"][0] == {
            "approval_id": approval.id, "principal": "bob", "key_fingerprint": team.keys["bob"].fingerprint,
            "verification": "verified"}
    finally:
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_an_approval_replayed_onto_another_version_does_not_count(team: Team) -> None:
    pack = team.pack("release", RELEASE_PACK)
    add_model_version(team, seed=1)  # credit@2
    for who in ("bob", "carol"):
        _approve(team, who, pack)  # approvals of credit@1
    with audited(team.catalog, "mallory") as tx:  # copy both onto credit@2, statements and all
        rows = tx.session.exec(select(SignedStatement).where(SignedStatement.kind == "approval")).all()
        for statement in rows:
            copy = Approval(model_version_id=2, stage="production", approver=str(statement.principal))
            tx.session.add(copy)
            tx.session.flush()
            tx.session.add(SignedStatement(kind="approval", target_id=int(copy.id or 0),
                                           statement=statement.statement, signature=statement.signature,
                                           key_fingerprint=statement.key_fingerprint, principal=statement.principal))
        tx.record("test.replay", "model:credit@2", {})
    report = promote("credit@2", to="production", policy=pack, catalog=team.catalog, key=team.key_files["alice"],
                     raise_on_refusal=False)
    assert report.decision["action"] == "refused"
    assert "given on another artifact, version, evidence" in " ".join(report.decision["approvals"]["ignored"])
