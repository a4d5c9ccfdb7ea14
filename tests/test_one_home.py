"""One home per concept, seen from the outside: behaviour that drifted while card fields, placeholders,
evidence, waiver states and UTC times lived in two or three places.

Every test here fails on the code before :mod:`governance.domain` (they use public API only, so they
run against it unchanged): ``gov document`` refused card fields the card renders; placeholders counted as
content in the card and the traceability matrix; per-group metrics of ``governance.evaluate`` never
reached the card; the gate said ``valid`` where the registry said ``active``; SQLite handed back naive
times and stored an aware non-UTC time as its wall-clock digits; evidence of an unknown schema was read
as if it were known.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from sqlmodel import select

from governance.audit import audited
from governance.catalog import Catalog, Evidence, Model, ModelVersion, Waiver
from governance.errors import EvaluationError
from governance.policy import context_for_model_version, evaluate, parse_pack
from governance.registry import check, document, list_waivers, waive
from governance.reporting import EXTENSION_KEY, render_model_card
from tests.test_evaluate import FEATURES, _data, _register

DOCS_PACK = """
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: docs, version: "1"}
checks:
  - {id: docs, uses: documentation.completeness, assert: {gte: 1.0}}
"""

PLACEHOLDER_CARD = {
    "intended_use": "[More Information Needed]",
    "limitations": "FIXME",
    "ethical_considerations": "To do",
}


def _sidecar(catalog: Catalog, ref: str = "credit@1") -> dict[str, Any]:
    text = render_model_card(ref, format="governance", catalog=catalog)
    assert isinstance(text, str)
    doc: dict[str, Any] = json.loads(text)[EXTENSION_KEY]
    return doc


def _evaluated(catalog: Catalog, card: dict[str, str]) -> None:
    train, holdout = _data(1500, 1), _data(800, 2)
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    _register(catalog, train, card=card, artifacts=(model,))
    evaluate(model, holdout, label="y", sensitive=["sex"], model_ref="credit@1", catalog=catalog,
             features=FEATURES, actor="alice", max_samples=50)


def test_every_field_the_card_renders_can_be_documented(sqlite_catalog: Catalog) -> None:
    train = _data(200, 1)
    _register(sqlite_catalog, train, card={})
    rendered = list(_sidecar(sqlite_catalog)["card"])
    assert "tradeoffs" in rendered
    card = {key: f"text for {key}" for key in rendered}
    record = document("credit@1", card=card, catalog=sqlite_catalog, actor="alice")
    assert record.version == 1 and set(card) <= set(record.card) and set(card) <= set(record.changed)
    shown = _sidecar(sqlite_catalog)["card"]
    assert all(shown[key] == [f"text for {key}"] for key in rendered)


def test_document_returns_a_typed_record_not_a_row(sqlite_catalog: Catalog) -> None:
    _register(sqlite_catalog, _data(200, 1), card={})
    record = document("credit@1", card={"tradeoffs": "Recall over precision"}, owner="risk",
                      catalog=sqlite_catalog, actor="alice")
    assert not isinstance(record, ModelVersion)
    assert (record.ref, record.owner, record.changed) == ("credit@1", "risk", ("tradeoffs", "owner"))
    again = document("credit@1", card={"tradeoffs": "Recall over precision"}, catalog=sqlite_catalog)
    assert again.changed == ()


def test_a_placeholder_is_missing_in_the_check_the_card_and_the_matrix(sqlite_catalog: Catalog) -> None:
    _register(sqlite_catalog, _data(200, 1), card=PLACEHOLDER_CARD)
    report = check("credit@1", policy=parse_pack(DOCS_PACK), catalog=sqlite_catalog, actor="alice")
    docs = report.document["results"][0]
    assert docs["status"] == "FAIL"
    assert all(key in docs["message"] for key in PLACEHOLDER_CARD)

    sidecar = _sidecar(sqlite_catalog)
    assert all(sidecar["card"][key] is None for key in PLACEHOLDER_CARD)
    assert set(PLACEHOLDER_CARD) <= set(sidecar["missing"])
    for row in sidecar["traceability"]:
        assert not any(e.startswith("model card field") for e in row["evidence"]), row
    intended_purpose = next(r for r in sidecar["traceability"] if r["id"] == "Annex-IV-1(a)")
    assert intended_purpose["status"] == "missing"  # covered by card.intended_use alone


def test_group_metrics_from_evaluate_reach_the_card_without_a_check(sqlite_catalog: Catalog) -> None:
    _evaluated(sqlite_catalog, {"intended_use": "Pre-screening"})
    with sqlite_catalog.read() as session:
        assert session.exec(select(Evidence)).one().data["metrics"]["by_group"]["sex"]
    sidecar = _sidecar(sqlite_catalog)
    assert sidecar["policies"] == []  # no gov check ran
    groups = {row["group"] for table in sidecar["group_tables"] for row in table["rows"]}
    assert groups == {"sex=F", "sex=M"}
    by_group = [row for row in sidecar["traceability"]
                if any(e.startswith("per-group results from evidence") for e in row["evidence"])]
    assert by_group and all(row["status"] != "missing" for row in by_group)


def test_evidence_of_a_newer_schema_is_refused_with_a_clear_error(sqlite_catalog: Catalog) -> None:
    _evaluated(sqlite_catalog, {})
    with audited(sqlite_catalog, "setup") as tx:
        row = tx.session.exec(select(Evidence)).one()
        row.data = {**row.data, "schema": 2}
        tx.session.add(row)
        tx.record("test.edit", "model:credit@1", {})
    with pytest.raises(EvaluationError, match=r"evidence #\d+: evidence schema 2 was written by a newer governance"):
        context_for_model_version(sqlite_catalog, "credit@1")


def test_one_waiver_vocabulary_in_the_gate_and_the_registry(sqlite_catalog: Catalog, gov_env: Any) -> None:
    _register(sqlite_catalog, _data(200, 1), card=PLACEHOLDER_CARD)
    waive("credit@1", check_id="docs", reason="card under review", expires="7d", approver="bob",
          catalog=sqlite_catalog, actor="alice")
    pack = parse_pack(DOCS_PACK.replace('version: "1"}', 'version: "1"}\nsignatures: optional'))
    report = check("credit@1", policy=pack, catalog=sqlite_catalog, actor="alice")
    gate_state = report.document["results"][0]["waiver"]["state"]
    [listed] = list_waivers(catalog=sqlite_catalog)
    assert gate_state == listed.state == listed.as_dict()["state"] == "active"
    assert report.exit_code() == 0


def test_no_naive_time_leaves_the_catalog(sqlite_catalog: Catalog) -> None:
    _register(sqlite_catalog, _data(200, 1), card={})
    plus_two = timezone(timedelta(hours=2))
    local = datetime.now(plus_two).replace(microsecond=0) + timedelta(days=3)
    with audited(sqlite_catalog, "setup") as tx:
        model = tx.session.exec(select(Model)).one()
        tx.session.add(Waiver(model_id=int(model.id or 0), check_id="docs", reason="r", requester="alice",
                              approver="bob", expires_at=local))
        tx.record("test.waiver", "model:credit", {})
    with sqlite_catalog.read() as session:
        waiver = session.exec(select(Waiver)).one()
        stored = waiver.expires_at
        created = session.exec(select(ModelVersion)).first()
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == local.astimezone(UTC)  # the instant, not the wall-clock digits of +02:00
    assert created is not None and created.created_at.tzinfo is not None


# A record shaped like a waiver (it has ``check_id`` and ``expires_at``) or like an approval (``approver``
# and ``stage``), or named like a second one, may be defined only here:
ONE_HOME_RECORDS = {
    ("governance/catalog/_models.py", "Waiver"): "the table row",
    ("governance/catalog/_models.py", "Approval"): "the table row",
    ("governance/registry/_records.py", "Waiver"): "the record every registry function returns",
    ("governance/registry/_records.py", "Approval"): "the record every registry function returns",
    ("governance/policy/_engine.py", "WaiverInfo"): "what the engine applies: a waiver that counts, with its "
                                                    "signers' labels (policy sits below the registry)",
}
_SECOND_NAME = re.compile(r"(Waiver|Approval)(Record|Row|View|Entry|Item|Doc|Data|Detail)s?$")


def _waiver_or_approval_records(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            names = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
            if {"check_id", "expires_at"} <= names or {"approver", "stage"} <= names or _SECOND_NAME.search(node.name):
                found.append(node.name)
    return found


def test_one_record_type_per_waiver_and_per_approval() -> None:
    """The registry had two records per concept (``Waiver``/``WaiverRecord``, ``Approval``/``ApprovalRecord``):
    the writes returned one, the report queries the other, with other fields and another state API."""
    root = Path(__file__).resolve().parent.parent
    found = {(p.relative_to(root).as_posix(), name) for p in sorted((root / "governance").rglob("*.py"))
             for name in _waiver_or_approval_records(p.read_text(encoding="utf-8"))}
    assert found == set(ONE_HOME_RECORDS)
    # the scan sees the second record the registry used to have
    old = ("@dataclass(frozen=True)\nclass WaiverRecord:\n    id: int\n    check_id: str\n    expires_at: datetime\n"
           "@dataclass(frozen=True)\nclass ApprovalRecord:\n    stage: str\n    approver: str\n")
    assert _waiver_or_approval_records(old) == ["WaiverRecord", "ApprovalRecord"]
