"""The public surface is explicit: every name in ``governance.__all__`` resolves."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import governance


def test_every_exported_name_resolves() -> None:
    missing = [name for name in governance.__all__ if not hasattr(governance, name)]
    assert missing == []


def test_subpackages_export_what_they_declare() -> None:
    for sub in ("catalog", "audit", "lineage", "openlineage", "policy", "checks", "registry", "reporting", "cli"):
        module = importlib.import_module(f"governance.{sub}")
        assert module.__all__, sub
        for name in module.__all__:
            assert hasattr(module, name), f"governance.{sub}.{name}"


def test_unknown_attribute_is_attribute_error() -> None:
    try:
        governance.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_public_functions_return_typed_records() -> None:
    """No function of the public API answers with a bare dict or string (``rollback`` returned a dict,
    ``version_of`` a string); the records they return are exported too."""
    import inspect

    untyped = {"Any", "str", "dict", "dict[str, Any]", "list[dict[str, Any]]"}
    passthrough = {"step", "tag", "render_model_card", "render_audit_report"}  # a decorator; the value; documents
    found = {}
    for name in governance.__all__:
        value = getattr(governance, name)
        if callable(value) and not isinstance(value, type) and name not in passthrough:
            found[name] = str(inspect.signature(value).return_annotation)
    assert {name: kind for name, kind in found.items() if kind in untyped} == {}
    for record in ("Ref", "Rollback", "GateReport", "LineageGraph", "VersionDiff", "VerifyReport"):
        assert record in governance.__all__


def test_rollback_and_version_of_records_keep_their_old_reading() -> None:
    from governance import Ref, Rollback

    ref = Ref("credit-scorer", version=2)
    assert str(ref) == "credit-scorer@2" and f"{ref}" == "credit-scorer@2"
    from governance.catalog import parse_ref

    assert parse_ref(ref) is ref
    out = Rollback(model="m", stage="production", from_version=3, to_version=2, reason="r", event_id=7,
                   actor="ops", audit_seq=11)
    assert out["to_version"] == 2 and out.get("audit_seq") == 11 and out.get("nope") is None
    assert out.as_dict()["from_version"] == 3
    try:
        out["nope"]
    except KeyError:
        pass
    else:
        raise AssertionError("expected KeyError")


def _returned_type(function: Any) -> Any:
    """The return annotation of ``function``, resolved in its module (annotations are strings here)."""
    import inspect

    returned = inspect.signature(function).return_annotation
    if isinstance(returned, str):
        namespace = vars(sys.modules[inspect.unwrap(function).__module__])
        returned = eval(returned, namespace)  # our own annotations, read back
    return returned


def test_no_public_function_returns_a_catalog_row() -> None:
    """``register_model``, ``approve``, ``waive``, ``approve_waiver`` and ``revoke_waiver`` returned ORM rows
    (``ModelVersion``, ``Approval``, ``Waiver``): a caller could lazy-load, write, or hold a detached row."""
    from sqlmodel import SQLModel

    from governance import registry

    rows = {}
    for module in (governance, registry):
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and not isinstance(value, type):
                returned = _returned_type(value)
                if isinstance(returned, type) and issubclass(returned, SQLModel):
                    rows[f"{module.__name__}.{name}"] = returned.__name__
    assert rows == {}
    for record in ("RegisteredVersion", "Approval", "Waiver"):
        assert record in governance.__all__ and record in registry.__all__
        value = getattr(governance, record)
        assert dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen, record
        assert not issubclass(value, SQLModel) and value.__doc__, record


def test_functions_taking_a_model_reference_say_they_take_a_ref() -> None:
    """``check`` and ``promote`` were typed ``str`` though they take the :class:`Ref` that ``version_of``
    returns."""
    import inspect

    for name in ("check", "promote", "approve", "waive"):
        hint = str(inspect.signature(getattr(governance, name)).parameters["ref"].annotation)
        assert "Ref" in hint and "str" in hint, (name, hint)


def test_register_approve_and_waive_return_frozen_records(tmp_path: Path) -> None:
    from governance import Approval, RegisteredVersion, Waiver, approve, register_model, waive
    from governance.catalog import Waiver as WaiverRow
    from governance.catalog import open_catalog
    from governance.registry import revoke_waiver

    catalog = open_catalog(url=f"sqlite:///{tmp_path / 'catalog.db'}")
    pack = tmp_path / "optional.yaml"
    pack.write_text(OPTIONAL_PACK, encoding="utf-8")
    mv = register_model("credit", card={"description": "scores credit"}, metrics={"auc": 0.8}, catalog=catalog,
                        actor="alice")
    assert isinstance(mv, RegisteredVersion) and (mv.model, mv.version, mv.actor) == ("credit", 1, "alice")
    assert mv.id > 0 and mv.model_id > 0 and mv.metrics == {"auc": 0.8} and str(mv.ref) == "credit@1"
    assert mv.created_at.tzinfo is not None and mv.created_at.utcoffset() == timedelta(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mv.version = 2  # type: ignore[misc]

    approval = approve(mv.ref, stage="staging", policy=pack, comment="ok", catalog=catalog, actor="bob")
    assert isinstance(approval, Approval) and (approval.model, approval.version, approval.stage) == ("credit", 1,
                                                                                                  "staging")
    assert approval.approver == "bob" and not approval.signed and approval.model_version_id == mv.id
    assert approval.created_at.utcoffset() == timedelta(0) and approval.as_dict()["created_at"].endswith("Z")

    waiver = waive(mv.ref, check_id="docs.card", reason="in review", approver="carol", expires="30d",
                   ticket="RISK-1", catalog=catalog, actor="alice")
    assert isinstance(waiver, Waiver) and not isinstance(waiver, WaiverRow)
    assert (waiver.model, waiver.versions, waiver.check_id, waiver.state) == ("credit", (1,), "docs.card", "active")
    assert waiver.expires_at.utcoffset() == timedelta(0) and waiver.expires_at > datetime.now(UTC)
    revoked = revoke_waiver(waiver.id, reason="done", catalog=catalog, actor="carol")
    assert isinstance(revoked, Waiver) and revoked.state == "revoked" and revoked.revoked_by == "carol"
    assert revoked.revoked_at is not None and revoked.revoked_at.utcoffset() == timedelta(0)  # read back from SQLite
    assert revoked.as_dict()["versions"] == [1]


OPTIONAL_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: docs-optional, version: 1.0.0}
signatures: optional
checks:
  - id: docs.card
    uses: documentation.completeness
    assert: {gte: 1}
"""


def test_registry_functions_answer_with_records_not_dicts() -> None:
    """``list_approvals``, ``list_waivers``, ``history``, ``signed_decisions``, ``decision_signatures``,
    ``waiver_signatures`` and ``waiver_verdicts`` answered with dicts read by key in the CLI, the server
    and the reports."""
    import inspect

    from governance import audit, registry

    loose = {}
    for package in (registry, audit):
        for name in package.__all__:
            value = getattr(package, name)
            if callable(value) and not isinstance(value, type):
                returned = str(inspect.signature(value).return_annotation)
                if "dict[str, Any]" in returned or returned in {"Any", "dict", "list"}:
                    loose[f"{package.__name__}.{name}"] = returned
    assert loose == {}


def test_listings_return_the_records_the_writes_return(tmp_path: Path) -> None:
    from sqlmodel import SQLModel

    from governance import registry
    from governance.catalog import open_catalog

    catalog = open_catalog(url=f"sqlite:///{tmp_path / 'catalog.db'}")
    pack = tmp_path / "optional.yaml"
    pack.write_text(OPTIONAL_PACK, encoding="utf-8")
    mv = registry.register_model("credit", card={"description": "d"}, catalog=catalog, actor="alice")
    approved = registry.approve(mv.ref, stage="staging", policy=pack, comment="ok", catalog=catalog, actor="bob")
    waived = registry.waive("credit", check_id="docs.card", reason="r", approver="carol", expires="3d",
                            catalog=catalog, actor="alice")
    promoted = registry.promote(mv.ref, to="production", policy=pack, catalog=catalog, actor="alice")
    assert promoted.decision["action"] == "promote"  # the waiver counts under signatures: optional

    [listed_approval] = registry.list_approvals("credit@1", catalog=catalog)
    assert type(listed_approval) is registry.Approval and listed_approval == approved
    assert listed_approval.signature == registry.DecisionSignature("bob", None, "unsigned", "unsigned")
    [listed_waiver] = registry.list_waivers(catalog=catalog)
    assert type(listed_waiver) is registry.Waiver
    assert dataclasses.replace(listed_waiver, state=waived.state) == waived  # the same record, read back
    assert listed_waiver.signatures.approver == "carol" and not listed_waiver.signatures.counts
    [event] = registry.history("credit", catalog=catalog)
    assert type(event) is registry.Promotion and (event.stage, event.action, event.to_version) == (
        "production", "promote", 1)
    with catalog.read() as session:
        facts = registry.version_facts(session, "credit@1")
        decisions = registry.signed_decisions(session, "credit")
        by_id = registry.decision_signatures(session, "approval", [approved.id])
        verdicts = registry.waiver_signatures(session, [_row(session, waived.id)])
        reported = (registry.version_waivers(session, facts, _Bound()), registry.version_approvals(
            session, facts, _Bound()), registry.version_promotions(session, facts, _Bound()))
    assert [type(d) for d in decisions] == [registry.SignedDecision] * 3
    assert [d.kind for d in decisions] == ["approval", "waiver.request", "promotion"]
    assert by_id == {approved.id: approved.signature} and verdicts == {waived.id: listed_waiver.signatures}
    assert reported == ([listed_waiver], [listed_approval], [event])  # the report's queries: the same records
    for record in (listed_approval, listed_waiver, event, decisions[0], facts, approved.signature,
                   listed_waiver.signatures):
        assert dataclasses.is_dataclass(record) and type(record).__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert not isinstance(record, SQLModel) and type(record).__doc__
        json.dumps(record.as_dict())


def _row(session: Any, waiver_id: int) -> Any:
    from governance.catalog import Waiver as WaiverRow

    return session.get(WaiverRow, waiver_id)


class _Bound:
    """Every row matches the audit log (what :class:`governance.audit.StateVerdicts` says of an intact catalog)."""

    def problem(self, table: str, obj: Any) -> str | None:
        return None


def test_listing_json_keeps_its_shape(tmp_path: Path) -> None:
    """``as_dict`` of the records is what ``gov waivers list``/``gov history --format json`` and the
    server's waivers, approvals and history endpoints printed before they were records."""
    from governance import registry
    from governance.catalog import open_catalog

    catalog = open_catalog(url=f"sqlite:///{tmp_path / 'catalog.db'}")
    pack = tmp_path / "optional.yaml"
    pack.write_text(OPTIONAL_PACK, encoding="utf-8")
    mv = registry.register_model("credit", card={"description": "d"}, catalog=catalog, actor="alice")
    registry.approve(mv.ref, stage="staging", policy=pack, catalog=catalog, actor="bob")
    registry.promote(mv.ref, to="production", policy=pack, catalog=catalog, actor="alice", raise_on_refusal=False)
    registry.waive(mv.ref, check_id="docs.card", reason="r", approver="carol", expires="3d", ticket="T-1",
                   catalog=catalog, actor="alice")
    [waiver] = registry.list_waivers(catalog=catalog)
    assert waiver.as_dict() | {"id": 0, "expires_at": "E", "created_at": "C"} == {
        "id": 0, "model": "credit", "versions": [1], "check": "docs.card", "state": "active", "reason": "r",
        "ticket": "T-1", "requester": "alice", "approver": "carol", "expires_at": "E", "revoked_at": None,
        "revoked_by": None, "created_at": "C", "requester_key": None, "requester_verification": "unsigned",
        "approver_key": None, "approver_verification": "unsigned",
        "signatures": "unsigned (the pack requires signatures: a signed request and a signed approval)"}
    [approval] = registry.list_approvals("credit@1", catalog=catalog)
    assert list(approval.as_dict()) == ["id", "model", "version", "stage", "approver", "key_fingerprint",
                                        "verification", "comment", "created_at"]
    assert approval.as_dict()["approver"] == "bob" and approval.as_dict()["verification"] == "unsigned"
    [event] = registry.history("credit", catalog=catalog)
    assert list(event.as_dict()) == ["id", "time", "stage", "action", "from_version", "to_version", "actor",
                                     "reason", "evaluation_id", "evaluation_status", "signer", "key_fingerprint",
                                     "verification"]
    assert event.as_dict()["time"].endswith("Z") and event.as_dict()["evaluation_status"] == "FAIL"
