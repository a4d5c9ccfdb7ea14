"""The public surface is explicit: every name in ``governance.__all__`` resolves."""

from __future__ import annotations

import importlib

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
