"""Registry: versions, stages, policy-gated promotion, sign-off, waivers, rollback and history.

Runs on SQLite (memory and file) and PostgreSQL through the ``catalog`` fixture.  Packs use the
built-in ``documentation.completeness`` check (evidence: the version's card) so that pass and fail
are decided by real data in the catalog.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from governance.audit import verify_events
from governance.catalog import AuditEvent, Catalog, ModelAlias, PromotionEvent, resolve_model
from governance.errors import EvaluationError, InputError, NotFoundError, PolicyViolation
from governance.registry import (
    PromotionConflict,
    check,
    history,
    list_waivers,
    promote,
    register_model,
    revoke_waiver,
    rollback,
    stage_version,
    waive,
)

FULL_CARD = {"description": "scores credit", "intended_use": "loan triage", "limitations": "EU only",
             "ethical_considerations": "reviewed for disparate impact"}
THIN_CARD = {"description": "scores credit", "intended_use": "TBD"}

DOCS_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: docs, version: 1.0.0}
checks:
  - id: docs.card
    uses: documentation.completeness
    assert: {gte: 1}
"""

SIGNOFF_PACK = (DOCS_PACK.replace("name: docs", "name: signoff")
                + "approvals: {required: 1, roles: [risk-officer]}\n")

EVIDENCE_PACK = DOCS_PACK.replace("name: docs", "name: needs-evidence") + """\
  - id: fairness.dp
    uses: fairness.demographic_parity_ratio
    with: {sensitive: [sex]}
    assert: {gte: 0.8}
"""


@pytest.fixture
def packs(tmp_path: Path) -> dict[str, Path]:
    out = {}
    optional = DOCS_PACK.replace("name: docs", "name: docs-optional") + "signatures: optional\n"
    for name, text in (("docs", DOCS_PACK), ("signoff", SIGNOFF_PACK), ("evidence", EVIDENCE_PACK),
                       ("optional", optional)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        out[name] = path
    return out


def _versions(catalog: Catalog, *cards: dict[str, Any], name: str = "credit") -> list[int]:
    return [register_model(name, card=card, catalog=catalog, actor="alice").version for card in cards]


def _events(catalog: Catalog) -> list[AuditEvent]:
    with catalog.read() as session:
        return list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all())


def _chain_ok(catalog: Catalog) -> bool:
    rows = [(e.seq, e.time, e.actor, e.action, e.subject, e.payload, e.prev_hash, e.hash)
            for e in _events(catalog)]
    return verify_events(rows).ok


# ------------------------------------------------------------------------------------ registration
def test_register_model_versions_and_metadata(catalog: Catalog, tmp_path: Path) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    mv = register_model("credit", artifact_path=artifact, owner="risk-team", risk_tier="high", card=FULL_CARD,
                        metrics={"auc": 0.8}, catalog=catalog, actor="alice")
    assert mv.version == 1
    assert mv.artifact_hash == hashlib.sha256(b"weights").hexdigest()
    assert mv.hash_algo == "sha256"
    assert register_model("credit", catalog=catalog, actor="alice").version == 2
    with catalog.read() as session:
        model = resolve_model(session, "credit")
    assert (model.owner, model.risk_tier) == ("risk-team", "high")
    assert {"model.create", "model_version.create", "model.update"} <= {e.action for e in _events(catalog)}
    with pytest.raises(InputError, match="risk_tier: expected one of"):
        register_model("credit", risk_tier="extreme", catalog=catalog, actor="alice")
    with pytest.raises(InputError, match="artifact_path: no such file"):
        register_model("credit", artifact_path=tmp_path / "nope", catalog=catalog, actor="alice")


# --------------------------------------------------------------------------------------- promotion
def test_promote_moves_the_stage_and_records_everything(catalog: Catalog, packs: dict[str, Path]) -> None:
    _versions(catalog, FULL_CARD, FULL_CARD)
    report = promote("credit@1", to="production", policy=packs["docs"], catalog=catalog, actor="alice",
                     reason="first release")
    assert report.passed and report.decision and report.decision["action"] == "promote"
    assert report.document["status"] == "PASS"
    assert stage_version(catalog, "credit", "production") == 1
    # by alias everywhere: promote what production points at to staging, check by alias
    promote("credit@production", to="staging", policy=packs["docs"], catalog=catalog, actor="alice")
    assert stage_version(catalog, "credit", "staging") == 1
    assert check("credit@staging", policy=packs["docs"], catalog=catalog, actor="alice").passed
    promote("credit@2", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    rows = history("credit", catalog=catalog)
    assert [(r.stage, r.action, r.from_version, r.to_version) for r in rows] == [
        ("production", "promote", None, 1), ("staging", "promote", None, 1), ("production", "promote", 1, 2)]
    assert rows[0].reason == "first release" and rows[0].evaluation_status == "PASS"
    actions = [e.action for e in _events(catalog)]
    assert actions.count("promotion.promote") == 3
    assert actions.count("policy.evaluate") == 4  # three promotions and one check
    assert _chain_ok(catalog)


def test_blocked_promotion_is_refused_and_recorded(catalog: Catalog, packs: dict[str, Path]) -> None:
    _versions(catalog, FULL_CARD, THIN_CARD)
    promote("credit@1", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    with pytest.raises(PolicyViolation, match=r"credit@2 not promoted to production: blocked by policy: "
                                              r"docs.card FAIL: 0.25 is not >= 1"):
        promote("credit@2", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    assert stage_version(catalog, "credit", "production") == 1
    last = history("credit", catalog=catalog)[-1]
    assert (last.action, last.from_version, last.to_version, last.evaluation_status) == (
        "refused", 1, 2, "FAIL")
    assert "promotion.refused" in [e.action for e in _events(catalog)]


def test_missing_evidence_fails_closed_and_says_what_is_missing(catalog: Catalog,
                                                                packs: dict[str, Path]) -> None:
    _versions(catalog, FULL_CARD)
    report = check("credit@1", policy=packs["evidence"], catalog=catalog, actor="alice")
    assert report.exit_code() == 3
    assert report.document["status"] == "ERROR"
    missing = report.missing_evidence()
    assert missing is not None and "fairness.dp (predictions)" in missing and "governance.evaluate" in missing
    with pytest.raises(EvaluationError, match=r"could not be evaluated: fairness\.dp NOT_RUN: missing "
                                              r"required input"):
        promote("credit@1", to="production", policy=packs["evidence"], catalog=catalog, actor="alice")
    assert stage_version(catalog, "credit", "production") is None
    assert history("credit", catalog=catalog)[-1].action == "refused"


def test_stage_names_are_validated(catalog: Catalog, packs: dict[str, Path]) -> None:
    _versions(catalog, FULL_CARD)
    for bad in ("latest", "1st", "has space", ""):
        with pytest.raises(InputError, match="--to"):
            promote("credit@1", to=bad, policy=packs["docs"], catalog=catalog, actor="alice")
    promote("credit@1", to="shadow-eu.v2", policy=packs["docs"], catalog=catalog, actor="alice")
    assert stage_version(catalog, "credit", "shadow-eu.v2") == 1
    with pytest.raises(NotFoundError, match="has no alias 'canary'"):
        check("credit@canary", policy=packs["docs"], catalog=catalog)


# ----------------------------------------------------------------------------------------- sign-off
# signed sign-off (approvals counted by key, roles from configuration): tests/test_signoff.py


# ------------------------------------------------------------------------------------------ waivers
def test_waiver_lets_a_blocked_version_through_until_revoked(catalog: Catalog,
                                                             packs: dict[str, Path]) -> None:
    _versions(catalog, THIN_CARD)
    waiver = waive("credit@1", check_id="docs.card", reason="card in review", approver="bob", expires="30d",
                   ticket="RISK-42", catalog=catalog, actor="alice")
    assert waiver.versions == (1,) and waiver.requester == "alice"
    # an unsigned waiver does not count where the pack requires signatures (the default)
    strict = check("credit@1", policy=packs["docs"], catalog=catalog, actor="alice")
    assert strict.exit_code() == 1 and strict.document["waivers_not_counted"][0]["id"] == waiver.id
    report = check("credit@1", policy=packs["optional"], catalog=catalog, actor="alice")
    result = report.document["results"][0]
    assert result["status"] == "WAIVED" and report.exit_code() == 0
    assert result["waiver"]["id"] == waiver.id and result["waiver"]["ticket"] == "RISK-42"
    assert "bob (unsigned)" in result["message"]
    promote("credit@1", to="production", policy=packs["optional"], catalog=catalog, actor="alice")
    revoke_waiver(int(waiver.id or 0), reason="card still empty", catalog=catalog, actor="carol")
    after = check("credit@1", policy=packs["optional"], catalog=catalog, actor="alice")
    assert after.document["results"][0]["status"] == "FAIL" and after.exit_code() == 1
    assert [w.state for w in list_waivers(model="credit", catalog=catalog)] == ["revoked"]
    with pytest.raises(InputError, match="already revoked"):
        revoke_waiver(int(waiver.id or 0), catalog=catalog, actor="carol")


def test_expired_waiver_no_longer_applies_and_is_named(catalog: Catalog, packs: dict[str, Path]) -> None:
    _versions(catalog, THIN_CARD, THIN_CARD)
    waiver = waive("credit", check_id="docs.card", reason="all versions", approver="bob", expires="2d",
                   catalog=catalog, actor="alice")
    assert waiver.versions is None
    assert check("credit@2", policy=packs["optional"], catalog=catalog).exit_code() == 0
    later = datetime.now(UTC) + timedelta(days=3)
    report = check("credit@2", policy=packs["optional"], catalog=catalog, now=later)
    result = report.document["results"][0]
    assert result["status"] == "FAIL" and report.exit_code() == 1
    assert f"waiver {waiver.id} expired at" in result["message"]
    assert list_waivers(catalog=catalog, state="expired", now=later)[0].id == waiver.id


def test_waiver_rules(catalog: Catalog) -> None:
    _versions(catalog, THIN_CARD)
    with pytest.raises(InputError, match="approver must differ from the requester"):
        waive("credit@1", check_id="docs.card", reason="r", approver="Alice", expires="1d", catalog=catalog,
              actor="alice")
    with pytest.raises(InputError, match="not in the future"):
        waive("credit@1", check_id="docs.card", reason="r", approver="bob", expires="2001-01-01",
              catalog=catalog, actor="alice")
    with pytest.raises(InputError, match="--expires: expected a date"):
        waive("credit@1", check_id="docs.card", reason="r", approver="bob", expires="soon", catalog=catalog,
              actor="alice")
    with pytest.raises(InputError, match="--reason"):
        waive("credit@1", check_id="docs.card", reason=" ", approver="bob", expires="1d", catalog=catalog,
              actor="alice")
    with pytest.raises(NotFoundError, match="has no version 9"):
        waive("credit@9", check_id="docs.card", reason="r", approver="bob", expires="1d", catalog=catalog,
              actor="alice")
    assert list_waivers(catalog=catalog) == []


# ---------------------------------------------------------------------------------------- rollback
def test_rollback_goes_to_the_previous_version_that_passed(catalog: Catalog, packs: dict[str, Path]) -> None:
    _versions(catalog, FULL_CARD, FULL_CARD, THIN_CARD, FULL_CARD)
    for version in (1, 2):
        promote(f"credit@{version}", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    with pytest.raises(PolicyViolation):
        promote("credit@3", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    promote("credit@4", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    out = rollback("credit", stage="production", reason="latency regression", catalog=catalog, actor="ops")
    assert (out["from_version"], out["to_version"]) == (4, 2)  # v3 was refused: never considered
    assert stage_version(catalog, "credit", "production") == 2
    assert rollback("credit", stage="production", catalog=catalog, actor="ops")["to_version"] == 1
    with pytest.raises(InputError, match="no earlier version passed its gate"):
        rollback("credit", stage="production", catalog=catalog, actor="ops")
    rows = history("credit", stage="production", catalog=catalog)
    assert [r.action for r in rows] == ["promote", "promote", "refused", "promote", "rollback", "rollback"]
    assert rows[4].reason == "latency regression" and rows[4].actor == "ops"
    with pytest.raises(NotFoundError, match="no 'staging' stage"):
        rollback("credit", stage="staging", catalog=catalog, actor="ops")
    assert _chain_ok(catalog)


# ------------------------------------------------------------------------------------- concurrency
def test_concurrent_promotions_exactly_one_wins(catalog: Catalog, packs: dict[str, Path]) -> None:
    if catalog.url == "sqlite://":
        pytest.skip("one in-memory connection is shared by all threads; the file and PostgreSQL legs race")
    _versions(catalog, FULL_CARD, FULL_CARD)
    barrier = threading.Barrier(2)
    outcomes: dict[int, Any] = {}

    def run(version: int) -> None:
        barrier.wait()
        try:
            outcomes[version] = promote(f"credit@{version}", to="production", policy=packs["docs"],
                                        if_current=None, catalog=catalog, actor=f"ci-{version}")
        except PromotionConflict as exc:
            outcomes[version] = exc

    threads = [threading.Thread(target=run, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [v for v, o in outcomes.items() if not isinstance(o, Exception)]
    losers = [v for v, o in outcomes.items() if isinstance(o, PromotionConflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert f"production moved from no version to version {winners[0]}" in str(outcomes[losers[0]])
    assert stage_version(catalog, "credit", "production") == winners[0]
    with catalog.read() as session:
        events = session.exec(select(PromotionEvent).order_by(col(PromotionEvent.id))).all()
        aliases = session.exec(select(ModelAlias)).all()
    assert sorted(e.action for e in events) == ["conflict", "promote"]
    assert len(aliases) == 1
    assert _chain_ok(catalog)


def test_promotion_observes_the_stage_at_start(catalog: Catalog, packs: dict[str, Path]) -> None:
    """Default compare-and-set: the stage must still point where it pointed when promotion began."""
    _versions(catalog, FULL_CARD, FULL_CARD, FULL_CARD)
    promote("credit@1", to="production", policy=packs["docs"], catalog=catalog, actor="alice")
    with pytest.raises(PromotionConflict, match="production moved from version 2 to version 1"):
        promote("credit@3", to="production", policy=packs["docs"], if_current=2, catalog=catalog,
                actor="alice")
    promote("credit@3", to="production", policy=packs["docs"], if_current=1, catalog=catalog, actor="alice")
    assert stage_version(catalog, "credit", "production") == 3
