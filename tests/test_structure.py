"""The package's structure keeps its rules: short functions, no asserts, layered imports, loud failures."""

from __future__ import annotations

import ast
import importlib
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "governance"
MAX_FUNCTION_LINES = 80



def _package_modules() -> list[tuple[str, ast.Module]]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations/versions" in path.as_posix():
            continue
        modules.append((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))))
    return modules


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for name, tree in _package_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                key = f"{name}::{node.name}"
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{key} ({lines} lines)")
    assert long == []


def test_package_code_raises_instead_of_asserting() -> None:
    """``assert`` vanishes under ``python -O``; package code raises from the exception tree."""
    found = [f"{name}:{node.lineno}" for name, tree in _package_modules()
             for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert found == []


def test_static_gates_are_strict() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lint = config["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"]
    assert lint["mccabe"]["max-complexity"] == 15
    assert "S101" not in lint["ignore"]
    assert config["tool"]["mypy"]["warn_unused_ignores"] is True


def test_import_contracts_express_the_design_layers() -> None:
    """Sibling layers, a forbidden bypass of the catalog's public face and private modules kept private,
    and the code keeps them (the same check as ``lint-imports``)."""
    from importlinter.api import read_configuration
    from importlinter.application.use_cases import lint_imports

    contracts = read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]
    by_type: dict[str, list[dict[str, object]]] = {}
    for contract in contracts:
        by_type.setdefault(str(contract["type"]), []).append(contract)
    layers = by_type["layers"][0]["layers"]
    assert isinstance(layers, list)
    assert any("|" in layer for layer in layers), "independent siblings"
    assert "governance.cli" in layers[0]
    assert layers[-2:] == ["governance.config", "governance.errors"]
    forbidden = by_type["forbidden"][0]
    assert "governance.cli" in str(forbidden["source_modules"])
    assert "governance.catalog._graph" in str(forbidden["forbidden_modules"])
    assert "governance.catalog._views" in str(forbidden["forbidden_modules"])
    assert by_type["private_modules"][0]["packages_with_private_modules"] == ["governance"]
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_logo=True)


def test_a_missing_command_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gov`` without one of its command modules is broken, not quietly smaller."""
    cli = importlib.import_module("governance.cli")
    importlib.import_module("governance.cli._app")
    monkeypatch.setitem(sys.modules, "governance.cli._keys", None)  # as if the module were not shipped
    monkeypatch.delattr(cli, "_keys")
    monkeypatch.delitem(sys.modules, "governance.cli._app")
    with pytest.raises(ModuleNotFoundError, match=r"governance\.cli\._keys"):
        importlib.import_module("governance.cli._app")
