"""Issue 15: the gate trusts only state bound to a verified audit log.

Each forgery of the issue is tried as an attacker with write access to the catalog would: plain SQL
on a connection of their own (not through the library), on a SQLite file and on PostgreSQL.  The gate
(`promote`, `rollback`, `check`) must refuse with exit 3 naming the row, and `gov audit verify` must
report it.  Each forgery has a control: the very same rows written through the audited path are
honoured, so what the test shows is the binding, not some other rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from governance.audit import audited, canonical_json, link_hash, verify_audit
from governance.audit._chain import GENESIS_HASH
from governance.audit._index import bucket_of
from governance.audit._state import read_rows, row_digest
from governance.catalog import Approval, AuditState, Evidence, Model, ModelAlias, ModelVersion, SignedStatement, Waiver
from governance.cli import main
from governance.errors import UnboundStateError
from governance.registry import approve, promote, register_model, rollback, waive
from governance.reporting import render_model_card
from tests._signoff_support import Team, add_model_version, make_team
from tests.conftest import create_pg_database, drop_pg_database, postgres_base_url

FAILING_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: strict, version: 1.0.0}
signatures: optional
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.99}
    severity: block
"""

APPROVALS_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: release, version: 1.0.0}
signatures: optional
approvals: {required: 2}
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.5}
    severity: block
"""

PASSING_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: open, version: 1.0.0}
signatures: optional
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.5}
    severity: block
"""


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def team(request: pytest.FixtureRequest, gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    url = None
    if request.param == "postgresql":
        base = postgres_base_url()
        url = create_pg_database(base, "govbind")
        monkeypatch.setenv("GOVERNANCE_CATALOG_URL", url)
    t = make_team(gov_env, monkeypatch)
    add_model_version(t)
    try:
        yield t
    finally:
        t.catalog.dispose()
        if url is not None:
            drop_pg_database(postgres_base_url(), url)


def _forge(team: Team, sql: str, params: dict[str, Any] | None = None) -> None:
    """Plain SQL on the attacker's own connection: no library code, no audit event."""
    engine = sa.create_engine(team.catalog.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params or {})
    finally:
        engine.dispose()


def _audited_sql(team: Team, sql: str, params: dict[str, Any] | None = None) -> None:
    """The same statement through the audited path (the control)."""
    with audited(team.catalog, "setup") as tx:
        tx.session.execute(sa.text(sql), params or {})
        tx.record("test.write", "test", {"sql": sql})


def _pack(team: Team, text: str) -> Path:
    return team.pack(text.split("name: ")[1].split(",", maxsplit=1)[0], text)


def _promote(team: Team, pack: Path, ref: str = "credit@1") -> Any:
    return promote(ref, to="production", policy=pack, catalog=team.catalog, actor="alice", raise_on_refusal=False)


def _state_report(team: Team) -> Any:
    report = verify_audit(team.catalog)
    assert report.first_bad_seq is None  # the chain itself is intact: only state was forged
    return report.state


def _waiver_sql(team: Team) -> tuple[str, dict[str, Any]]:
    with team.catalog.read() as session:
        model_id = session.exec(select(Model.id).where(Model.name == "credit")).one()
    return ("INSERT INTO waiver (model_id, versions, check_id, reason, requester, approver, expires_at, created_at) "
            "VALUES (:m, NULL, 'perf.accuracy', 'forged', 'mallory', 'ceo', :exp, :now)",
            {"m": model_id, "exp": "2099-01-01 00:00:00", "now": "2026-11-25 00:00:00"})


# -------------------------------------------------------------------------------------------- tests
def test_an_untouched_catalog_verifies_and_its_gate_passes(team: Team) -> None:
    report = verify_audit(team.catalog)
    assert report.ok and report.state is not None and report.state.rows > 0
    decision = _promote(team, _pack(team, PASSING_PACK)).decision
    assert decision["action"] == "promote"
    assert verify_audit(team.catalog).ok


def test_a_forged_waiver_is_refused_by_the_gate_and_reported_by_verify(team: Team, capsys: Any) -> None:
    pack = _pack(team, FAILING_PACK)
    assert _promote(team, pack).decision["action"] == "refused"  # the model fails its gate
    sql, params = _waiver_sql(team)
    _forge(team, sql, params)
    with team.catalog.read() as session:
        forged = session.exec(select(Waiver)).one()
    with pytest.raises(UnboundStateError, match=f"waiver {forged.id} has no audit event"):
        _promote(team, pack)
    assert main(["promote", "credit@1", "--to", "production", "--policy", str(pack)]) == 3
    assert f"waiver {forged.id} has no audit event" in capsys.readouterr().err
    state = _state_report(team)
    assert state.unbound == 1 and state.first_unbound == f"waiver {forged.id} has no audit event"
    assert main(["audit", "verify"]) == 1
    assert "waiver" in capsys.readouterr().out
    # control: the same row through the audited path is honoured (the gate then WAIVES the failure)
    _forge(team, "DELETE FROM waiver")
    _audited_sql(team, sql, params)
    report = _promote(team, pack)
    assert report.decision["action"] == "promote"
    assert {r["id"]: r["status"] for r in report.document["results"]}["perf.accuracy"] == "WAIVED"


def _copy_approvals(team: Team, write: Any) -> list[int]:
    """Copy the staging approvals (and their unsigned statements) as production approvals."""
    with team.catalog.read() as session:
        rows = session.exec(select(Approval).where(Approval.stage == "staging").order_by(col(Approval.id))).all()
        statements = {s.target_id: s for s in session.exec(select(SignedStatement)
                                                           .where(SignedStatement.kind == "approval")).all()}
        next_id = max(int(a.id or 0) for a in rows) + 100
    ids = []
    for offset, row in enumerate(rows):
        new_id = next_id + offset
        ids.append(new_id)
        text = statements[int(row.id or 0)].statement.replace('"stage":"staging"', '"stage":"production"')
        write(team, "INSERT INTO approval (id, model_version_id, stage, approver, created_at) "
                    "VALUES (:i, :mv, 'production', :who, :now)",
              {"i": new_id, "mv": row.model_version_id, "who": row.approver, "now": "2026-11-25 00:00:00"})
        write(team, "INSERT INTO signed_statement (kind, target_id, statement, principal, created_at) "
                    "VALUES ('approval', :t, :s, :p, :now)",
              {"t": new_id, "s": text, "p": row.approver, "now": "2026-11-25 00:00:00"})
    return ids


def test_inserted_approval_rows_do_not_satisfy_required_approvals(team: Team) -> None:
    pack = _pack(team, APPROVALS_PACK)
    for who in ("bob", "carol"):
        approve("credit@1", stage="staging", policy=pack, catalog=team.catalog, actor=who)
    assert "have 0" in _promote(team, pack).decision["reason"]
    forged = _copy_approvals(team, _forge)
    with pytest.raises(UnboundStateError, match=f"approval {forged[0]} has no audit event"):
        _promote(team, pack)
    assert _state_report(team).unbound == 4  # two approvals and their two statements
    # control: the very same rows through the audited path satisfy the pack
    _forge(team, "DELETE FROM signed_statement WHERE target_id >= :i", {"i": forged[0]})
    _forge(team, "DELETE FROM approval WHERE stage = 'production'")
    _copy_approvals(team, _audited_sql)
    assert _promote(team, pack).decision["action"] == "promote"


def test_evidence_copied_from_another_version_is_refused(team: Team) -> None:
    pack = _pack(team, FAILING_PACK)
    add_model_version(team, seed=1)
    with team.catalog.read() as session:
        rows = session.exec(select(Evidence).order_by(col(Evidence.id))).all()
    first, second = rows[0], rows[-1]
    assert first.model_version_id != second.model_version_id
    # the attacker copies version 2's evidence into version 1's row, keeping version 1's artifact digest
    data = dict(second.data or {})
    data["artifact_hash"] = (first.data or {}).get("artifact_hash")
    data["metrics"] = {**(data.get("metrics") or {}), "overall": {**((data.get("metrics") or {}).get("overall") or {}),
                                                                   "accuracy": 1.0}}
    _forge(team, "UPDATE evidence SET data = :d WHERE id = :i", {"d": json.dumps(data), "i": first.id})
    with pytest.raises(UnboundStateError, match=rf"evidence {first.id} differs from the content recorded at seq \d+"):
        _promote(team, pack)
    state = _state_report(team)
    assert state.mismatched == 1 and state.first_mismatch.startswith(f"evidence {first.id} differs")


def test_edited_alias_evaluations_and_history_are_reported_and_refused(team: Team) -> None:
    pack = _pack(team, PASSING_PACK)
    add_model_version(team, seed=1)
    assert _promote(team, pack, "credit@1").decision["action"] == "promote"
    assert _promote(team, _pack(team, FAILING_PACK), "credit@2").decision["action"] == "refused"
    assert _promote(team, pack, "credit@2").decision["action"] == "promote"
    assert verify_audit(team.catalog).ok
    with team.catalog.read() as session:
        alias = session.exec(select(ModelAlias)).one()
    v1 = _version_id(team, 1)
    _forge(team, "UPDATE model_alias SET model_version_id = :v", {"v": v1})
    with pytest.raises(UnboundStateError, match=f"model_alias {alias.id} differs from the content recorded"):
        _promote(team, pack, "credit@2")
    with pytest.raises(UnboundStateError, match=f"model_alias {alias.id} differs"):
        rollback("credit", stage="production", catalog=team.catalog, actor="alice")
    # the refusal of credit@2 under the strict pack, rewritten as a pass
    _forge(team, "UPDATE check_result SET status = 'PASS' WHERE status = 'FAIL'")
    _forge(team, "UPDATE policy_evaluation SET status = 'PASS' WHERE status = 'FAIL'")
    _forge(team, "UPDATE promotion_event SET action = 'promote' WHERE action = 'refused'")
    state = _state_report(team)
    assert state.mismatched >= 4 and state.unbound == 0 and state.missing == 0


def test_a_deleted_row_is_an_event_without_its_row(team: Team) -> None:
    pack = _pack(team, PASSING_PACK)
    assert _promote(team, pack).decision["action"] == "promote"
    with team.catalog.read() as session:
        alias = session.exec(select(ModelAlias)).one()
    _forge(team, "DELETE FROM model_alias")
    state = _state_report(team)
    assert state.missing == 1 and state.first_missing.startswith(f"model_alias {alias.id} recorded at seq")


def test_editing_the_state_index_cannot_vouch_for_a_forged_row(team: Team) -> None:
    pack = _pack(team, FAILING_PACK)
    _promote(team, pack)  # makes a snapshot
    with team.catalog.read() as session:
        assert session.exec(select(AuditState)).first() is not None
    sql, params = _waiver_sql(team)
    _forge(team, sql, params)
    with team.catalog.read() as session:
        forged = session.exec(select(Waiver)).one()
    # the attacker also writes an index entry for the forged row (digest as the gate would compute it)
    with team.catalog.read() as session:
        digest = row_digest("waiver", read_rows(session, "waiver", [int(forged.id or 0)])[int(forged.id or 0)])
    _forge(team, "INSERT INTO audit_state (tbl, row_id, bucket, seq, digest) VALUES ('waiver', :i, :b, 1, :d)",
           {"i": forged.id, "b": bucket_of("waiver", int(forged.id or 0)), "d": digest})
    with pytest.raises(UnboundStateError, match=f"waiver {forged.id} has no audit event"):
        _promote(team, pack)


def _version_id(team: Team, version: int) -> int:
    with team.catalog.read() as session:
        return int(session.exec(select(ModelVersion.id).where(ModelVersion.version == version)).one() or 0)


def test_the_model_card_shows_forged_rows_as_unverified_not_as_facts(team: Team) -> None:
    pack = _pack(team, FAILING_PACK)
    assert _promote(team, pack).decision["action"] == "refused"
    sql, params = _waiver_sql(team)
    _forge(team, sql, params)
    _forge(team, "UPDATE promotion_event SET action = 'promote'")
    _forge(team, "UPDATE policy_evaluation SET status = 'PASS'")
    html = render_model_card("credit@1", format="html", catalog=team.catalog)
    markdown = render_model_card("credit@1", format="md", catalog=team.catalog)
    assert "do not match the audit log" in html and "has no audit event" in html
    assert "differs from the content recorded at seq" in html and "(recorded: promote)" in html
    assert "the catalog says PASS" in html  # the forged status is shown only as a claim
    assert "UNVERIFIED" in markdown and "recorded: promote;" in markdown and "has no audit event" in markdown
    # untouched rows in the same card are facts: remove the forgeries' effect and the warning goes
    _forge(team, "DELETE FROM waiver")
    _forge(team, "UPDATE promotion_event SET action = 'refused'")
    _forge(team, "UPDATE policy_evaluation SET status = 'FAIL'")
    clean = render_model_card("credit@1", format="html", catalog=team.catalog)
    assert "do not match the audit log" not in clean and "has no audit event" not in clean


def _as_before_migration_0006(team: Team) -> None:
    """Rewrite the log as a catalog written before state binding has it: no state maps, no index."""
    engine = sa.create_engine(team.catalog.url)
    with engine.begin() as conn:
        prev = GENESIS_HASH
        for seq, payload in conn.execute(sa.text("SELECT seq, payload FROM audit_event ORDER BY seq")).all():
            body = json.loads(bytes(payload))
            body.pop("state", None)
            text = canonical_json(body)
            digest = link_hash(seq, prev, text)
            conn.execute(sa.text("UPDATE audit_event SET payload = :p, prev_hash = :v, hash = :h WHERE seq = :s"),
                         {"p": text, "v": prev, "h": digest, "s": seq})
            prev = digest
        conn.execute(sa.text("DELETE FROM audit_state"))
        conn.execute(sa.text("DELETE FROM audit_state_node"))
    engine.dispose()


def test_adopt_binds_an_old_catalogs_rows_to_their_events_and_reports_the_rest(team: Team, capsys: Any) -> None:
    pack = _pack(team, FAILING_PACK)
    model = team.model
    register_model("scorer", estimator=model, card={"description": "x"}, catalog=team.catalog, actor="alice")
    import governance as gov
    from tests._signoff_support import data
    gov.evaluate(model, data(), label="y", sensitive=["sex"], model_ref="scorer@1", features=["x1", "x2"],
                 catalog=team.catalog, actor="alice")
    waive("scorer@1", check_id="perf.accuracy", reason="known", expires="30d", approver="bob", catalog=team.catalog,
          actor="alice")
    first = promote("scorer@1", to="staging", policy=pack, catalog=team.catalog, actor="alice",
                    raise_on_refusal=False)
    assert first.decision["action"] == "promote"  # waived (unsigned, counted under signatures: optional)
    _as_before_migration_0006(team)
    assert verify_audit(team.catalog).first_bad_seq is None  # an intact log, only without state maps
    with pytest.raises(UnboundStateError, match="has no audit event"):
        promote("scorer@1", to="production", policy=pack, catalog=team.catalog, actor="alice",
                raise_on_refusal=False)
    sql, params = _waiver_sql(team)  # a row forged before the upgrade
    _forge(team, sql.replace(":m", "(SELECT id FROM model WHERE name = 'scorer')"), params)
    with team.catalog.read() as session:
        forged = max(int(w.id or 0) for w in session.exec(select(Waiver)).all())
    assert main(["audit", "adopt"]) == 1
    out = capsys.readouterr().out
    assert f"waiver {forged}: no event recorded it as it is" in out
    state = _state_report(team)
    assert state.unbound >= 1 and state.first_unbound is not None  # what adoption could not match stays unbound
    with pytest.raises(UnboundStateError, match=f"waiver {forged} has no audit event"):
        promote("scorer@1", to="production", policy=pack, catalog=team.catalog, actor="alice",
                raise_on_refusal=False)
    _forge(team, "DELETE FROM waiver WHERE id = :i", {"i": forged})
    again = promote("scorer@1", to="production", policy=pack, catalog=team.catalog, actor="alice",
                    raise_on_refusal=False)
    assert again.decision["action"] == "promote"  # decided from adopted, bound rows (the genuine waiver)
    assert {r["id"]: r["status"] for r in again.document["results"]}["perf.accuracy"] == "WAIVED"
    assert main(["audit", "adopt", "--format", "json"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    assert "waiver" not in doc["unmatched"]


def test_a_forged_training_dataset_fingerprint_is_refused(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lineage rows a decorated step captured are bound too: the gate's lineage check reads them."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import governance as gov
    from governance.catalog import DatasetVersion, RunIO, open_catalog
    from governance.config import load_settings

    team = make_team(gov_env, monkeypatch)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300),
                          "sex": ["F", "M"] * 150, "y": rng.integers(0, 2, 300)})

    @gov.step(kind="training", model="traced")
    def train(data: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(data[["x1", "x2"]], data["y"])

    model = train(frame)
    gov.evaluate(model, frame, label="y", sensitive=["sex"], model_ref="traced@1", features=["x1", "x2"],
                 catalog=team.catalog, actor="alice")
    pack = team.pack("open", PASSING_PACK)
    assert promote("traced@1", to="staging", policy=pack, catalog=team.catalog, actor="alice",
                   raise_on_refusal=False).decision["action"] == "promote"
    catalog = open_catalog(load_settings())
    with catalog.read() as session:
        edge = session.exec(select(RunIO).where(RunIO.direction == "input", RunIO.artifact_kind == "dataset")).one()
        version = session.get(DatasetVersion, edge.artifact_id)
    assert version is not None
    _forge(team, "UPDATE dataset_version SET content_hash = 'f' WHERE id = :i", {"i": version.id})
    with pytest.raises(UnboundStateError, match=f"dataset_version {version.id} differs"):
        promote("traced@1", to="production", policy=pack, catalog=team.catalog, actor="alice",
                raise_on_refusal=False)
    assert _state_report(team).first_mismatch.startswith(f"dataset_version {version.id} differs")
    team.catalog.dispose()


def test_a_write_outside_the_audited_path_on_the_librarys_own_connection_stays_unbound(team: Team) -> None:
    """A row written through ``catalog.write()`` (the library's engine, not ``audited``) must not be
    bound by whichever audited transaction uses that pooled connection next."""
    sql, params = _waiver_sql(team)
    with team.catalog.write() as session:
        session.execute(sa.text(sql), params)
    with audited(team.catalog, "setup") as tx:  # the next audited transaction, same pool
        tx.session.add(Model(name="other"))
        tx.record("model.create", "model:other")
    with team.catalog.read() as session:
        forged = session.exec(select(Waiver)).one()
    state = _state_report(team)
    assert state.unbound == 1 and state.first_unbound == f"waiver {forged.id} has no audit event"


# generating the recursive values is slow on a loaded 2-core machine: that is not what this test is about
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["a", "b", "ü", "k"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3),
                                                                                               inner, max_size=3),
                                    max_leaves=8), max_size=4),
       st.floats(), st.datetimes())
def test_the_fast_row_digest_is_the_canonical_form(measurement: dict[str, Any], value: float, when: Any) -> None:
    """The digester's one-``json.dumps`` path gives the same digest as the generic canonical JSON
    (NaN, infinities, nested JSON, datetimes, non-ASCII), so the gate, verify and writers agree."""
    row = {"id": 1, "evaluation_id": 2, "check_id": "ü", "uses": "x", "check_version": None, "status": "PASS",
           "severity": "block", "value": value, "assertion": None, "measurement": measurement, "message": None,
           "waiver_id": None, "maps_to": ["a"]}
    generic = hashlib.sha256(b"check_result\n" + canonical_json(
        {k: v for k, v in row.items() if v is not None})).hexdigest()
    assert row_digest("check_result", row) == generic
    waiver = {"id": 3, "model_id": 1, "versions": None, "check_id": "c", "reason": "r", "ticket": None,
              "requester": "a", "approver": None, "expires_at": when, "revoked_at": None, "revoked_by": None,
              "created_at": when}
    stamp = f"{when.year:04d}-{when:%m-%dT%H:%M:%S.%f}Z"
    expected = hashlib.sha256(b"waiver\n" + canonical_json({**{k: v for k, v in waiver.items() if v is not None},
                                                            "expires_at": stamp, "created_at": stamp})).hexdigest()
    assert row_digest("waiver", waiver) == expected
    stored = f"{when.year:04d}-{when:%m-%d %H:%M:%S.%f}"  # SQLite's stored text gives the same digest
    assert row_digest("waiver", {**waiver, "expires_at": stored, "created_at": stored}) == expected


def test_verify_with_the_table_scan_in_a_second_process_reports_the_same(team: Team,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Large catalogs digest the state tables in a child process while the chain is verified; its
    findings must be exactly those of the single-process replay (each disagreement re-read here)."""
    from governance.audit import _replay

    pack = _pack(team, FAILING_PACK)
    _promote(team, pack)
    sql, params = _waiver_sql(team)
    _forge(team, sql, params)
    _forge(team, "UPDATE policy_evaluation SET status = 'PASS'")
    _forge(team, "DELETE FROM promotion_event")
    single = verify_audit(team.catalog).state
    monkeypatch.setattr(_replay, "PARALLEL_FROM", 1)
    scans: list[Any] = []
    real = _replay.TableScan

    def spy(url: str) -> Any:
        scans.append(url)
        return real(url)

    monkeypatch.setattr(_replay, "TableScan", spy)
    from governance.audit import _verify
    monkeypatch.setattr(_verify, "TableScan", spy)
    parallel = verify_audit(team.catalog).state
    assert scans == [team.catalog.url]
    assert parallel == single
    assert (single.unbound, single.mismatched, single.missing) == (1, 1, 1)


def test_a_forged_waiver_fails_the_gate_closed_even_where_it_would_not_count(team: Team) -> None:
    """Under a pack that requires signatures an unsigned waiver would not count anyway; a forged one
    still stops the gate (exit 3): a row the log does not vouch for is a sign of tampering."""
    strict = _pack(team, FAILING_PACK.replace("signatures: optional\n", ""))
    sql, params = _waiver_sql(team)
    _forge(team, sql, params)
    with team.catalog.read() as session:
        forged = session.exec(select(Waiver)).one()
    with pytest.raises(UnboundStateError, match=f"waiver {forged.id} has no audit event"):
        _promote(team, strict)
