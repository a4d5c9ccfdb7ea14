"""Checks: the plugin contract and the built-in families.

Built-ins: fairness, performance (including calibration), explainability, data quality, drift, lineage and
documentation.
Third-party checks register through the entry-point group ``governance.checks`` (see
:mod:`governance.checks._base` for the contract).
"""

from governance.checks._base import (
    ENTRY_POINT_GROUP,
    INPUTS,
    Check,
    CheckContext,
    CheckParams,
    CheckRegistry,
    Measurement,
    NoParams,
)
from governance.checks._builtin import builtin_checks
from governance.checks._confusion import (
    MISSING_GROUP,
    RATE_NAMES,
    GroupCounts,
    bootstrap_ci,
    confusion_by_group,
    rates,
    summarise,
)
from governance.checks._data import baseline_stats, drift_statistics, load_baseline, quality_summary, training_baseline
from governance.checks._explain import global_importance, proxy_correlations
from governance.checks._fairness import confusion_evidence, empty_sensitive_columns
from governance.checks._performance import metrics_evidence

__all__ = [
    "ENTRY_POINT_GROUP",
    "INPUTS",
    "MISSING_GROUP",
    "RATE_NAMES",
    "Check",
    "CheckContext",
    "CheckParams",
    "CheckRegistry",
    "GroupCounts",
    "Measurement",
    "NoParams",
    "baseline_stats",
    "bootstrap_ci",
    "builtin_checks",
    "confusion_by_group",
    "confusion_evidence",
    "drift_statistics",
    "empty_sensitive_columns",
    "global_importance",
    "load_baseline",
    "metrics_evidence",
    "proxy_correlations",
    "quality_summary",
    "rates",
    "summarise",
    "training_baseline",
]
