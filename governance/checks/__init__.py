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
from governance.checks._calibration import CALIBRATION_RESOLUTION
from governance.checks._confusion import (
    MISSING_GROUP,
    RATE_NAMES,
    GroupCounts,
    bootstrap_ci,
    confusion_by_group,
    rates,
    summarise,
    to_binary,
)
from governance.checks._data import (
    ColumnCounts,
    baseline_stats,
    drift_bins,
    drift_from_counts,
    drift_statistics,
    load_baseline,
    quality_from_counts,
    quality_rule,
    quality_summary,
    training_baseline,
)
from governance.checks._explain import global_importance, proxy_correlations
from governance.checks._fairness import empty_sensitive_columns, groupings
from governance.checks._performance import classification_from_counts

__all__ = [
    "CALIBRATION_RESOLUTION",
    "ENTRY_POINT_GROUP",
    "INPUTS",
    "MISSING_GROUP",
    "RATE_NAMES",
    "Check",
    "CheckContext",
    "CheckParams",
    "CheckRegistry",
    "ColumnCounts",
    "GroupCounts",
    "Measurement",
    "NoParams",
    "baseline_stats",
    "bootstrap_ci",
    "builtin_checks",
    "classification_from_counts",
    "confusion_by_group",
    "drift_bins",
    "drift_from_counts",
    "drift_statistics",
    "empty_sensitive_columns",
    "global_importance",
    "groupings",
    "load_baseline",
    "proxy_correlations",
    "quality_from_counts",
    "quality_rule",
    "quality_summary",
    "rates",
    "summarise",
    "to_binary",
    "training_baseline",
]
