"""ML governance, lineage and audit.

    import governance as gov

    @gov.step(kind="training", model="credit-scorer")
    def train(features, labels, C=1.0): ...

Names are imported lazily (``import governance`` pulls in no pandas, shap or database driver).

Functions return typed records (frozen dataclasses), never bare dicts, strings or catalog rows:
:class:`Ref` (``version_of``), :class:`GateReport` (``check``, ``promote``), :class:`Rollback`
(``rollback``), :class:`RegisteredVersion` (``register_model``), :class:`Approval` (``approve``),
:class:`Waiver` (``waive``, ``approve_waiver``), :class:`LineageGraph` (``upstream``, ``downstream``),
:class:`VersionDiff` (``diff_versions``), :class:`VerifyReport` (``verify_audit``).  Times in them are
aware UTC datetimes.  Every function taking a model reference takes ``"MODEL@VERSION"`` or a :class:`Ref`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from governance._version import __version__
from governance.errors import (
    AuditIntegrityError,
    CatalogError,
    ConfigError,
    EvaluationError,
    GovernanceError,
    InputError,
    NotFoundError,
    PolicyViolation,
)

_LAZY = {
    # capture
    "step": "governance.lineage",
    "Dataset": "governance.lineage",
    "tag": "governance.lineage",
    "fingerprint": "governance.lineage",
    "capture_adapter": "governance.lineage",
    "upstream": "governance.lineage",
    "downstream": "governance.lineage",
    "diff_versions": "governance.lineage",
    # policy
    "evaluate": "governance.policy",
    "load_pack": "governance.policy",
    # registry and gate
    "register_model": "governance.registry",
    "check": "governance.registry",
    "promote": "governance.registry",
    "rollback": "governance.registry",
    "waive": "governance.registry",
    "approve": "governance.registry",
    "approve_waiver": "governance.registry",
    "document": "governance.registry",
    "version_of": "governance.registry",
    # audit
    "verify_audit": "governance.audit",
    # reports
    "render_model_card": "governance.reporting",
    "render_audit_report": "governance.reporting",
    # settings and catalog
    "load_settings": "governance.config",
    "open_catalog": "governance.catalog",
    # the records the functions above return
    "Ref": "governance.catalog",
    "LineageGraph": "governance.catalog",
    "VersionDiff": "governance.catalog",
    "GateReport": "governance.registry",
    "Rollback": "governance.registry",
    "RegisteredVersion": "governance.registry",
    "Approval": "governance.registry",
    "Waiver": "governance.registry",
    "VerifyReport": "governance.audit",
}

__all__ = [
    "Approval",
    "AuditIntegrityError",
    "CatalogError",
    "ConfigError",
    "Dataset",
    "EvaluationError",
    "GateReport",
    "GovernanceError",
    "InputError",
    "LineageGraph",
    "NotFoundError",
    "PolicyViolation",
    "Ref",
    "RegisteredVersion",
    "Rollback",
    "VerifyReport",
    "VersionDiff",
    "Waiver",
    "__version__",
    "approve",
    "approve_waiver",
    "capture_adapter",
    "check",
    "diff_versions",
    "document",
    "downstream",
    "evaluate",
    "fingerprint",
    "load_pack",
    "load_settings",
    "open_catalog",
    "promote",
    "register_model",
    "render_audit_report",
    "render_model_card",
    "rollback",
    "step",
    "tag",
    "upstream",
    "verify_audit",
    "version_of",
    "waive",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'governance' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - names for type checkers; loaded lazily at run time
    from governance.audit import VerifyReport, verify_audit
    from governance.catalog import LineageGraph, Ref, VersionDiff, open_catalog
    from governance.config import load_settings
    from governance.lineage import (
        Dataset,
        capture_adapter,
        diff_versions,
        downstream,
        fingerprint,
        step,
        tag,
        upstream,
    )
    from governance.policy import evaluate, load_pack
    from governance.registry import (
        Approval,
        GateReport,
        RegisteredVersion,
        Rollback,
        Waiver,
        approve,
        approve_waiver,
        check,
        document,
        promote,
        register_model,
        rollback,
        version_of,
        waive,
    )
    from governance.reporting import render_audit_report, render_model_card
