"""The built-in checks, as the ``builtin`` entry point of ``governance.checks`` lists them."""

from __future__ import annotations

from governance.checks._base import Check
from governance.checks._catalog_checks import catalog_checks
from governance.checks._data import data_checks
from governance.checks._explain import explain_checks
from governance.checks._fairness import fairness_checks
from governance.checks._performance import performance_checks

__all__ = ["builtin_checks"]


def builtin_checks() -> list[Check]:
    """A fresh instance of every built-in check."""

    return [*fairness_checks(), *performance_checks(), *explain_checks(), *data_checks(), *catalog_checks()]
