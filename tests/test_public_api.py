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
