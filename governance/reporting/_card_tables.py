"""Shapes of the model card's tables: card text items, per-group rows, drift rows, importance rankings.

Pure functions over already-read values (no catalog access), shared by the card's section builders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from governance.domain import Importance, is_placeholder
from governance.reporting._format import fmt_num

__all__ = [
    "RATE_KEYS",
    "drift_rows",
    "group_rows",
    "importance_rows",
    "measured_importance",
    "merge_tables",
    "numeric",
    "plain",
    "text_items",
]

RATE_KEYS = ("n", "selection_rate", "tpr", "fpr", "fnr", "accuracy")
_DRIFT_KEYS = ("psi", "ks")
_INTERSECTION_MARKS = (" & ", " × ", "|", " ∩ ", " and ")


def plain(value: Any) -> str:
    """A value as one line of text (numbers formatted once, see :mod:`governance.reporting._format`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt_num(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _raw_items(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [f"{k}: {plain(v)}" for k, v in value.items() if not is_placeholder(v)]
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict):
                desc = item.get("description") or item.get("name")
                items.append(str(desc) if desc is not None and len(item) <= 2 else plain(item))
            else:
                items.append(plain(item))
        return items
    return [plain(value)]


def text_items(value: Any) -> list[str] | None:
    """A card field as a list of strings, or None when it is absent or only placeholders
    (:func:`governance.domain.is_placeholder`, the list the documentation check uses)."""
    if value is None:
        return None
    kept = [i.strip() for i in _raw_items(value) if not is_placeholder(i)]
    return kept or None


def numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_intersectional(group: str) -> bool:
    return (
        group.count("=") > 1
        or any(m in group for m in _INTERSECTION_MARKS)
        or (group.startswith("(") and ", " in group)
    )


def group_rows(by_group: Any, *, metrics: bool = False) -> list[dict[str, Any]] | None:
    """Per-group values in a stable order, or None when ``by_group`` is not that shape.  A check's
    ``by_group`` counts only with a rate in it; ``metrics=True``: the evidence's per-group metrics (any
    metric)."""
    if not isinstance(by_group, dict) or not by_group:
        return None
    rows = []
    for group, stats in by_group.items():
        if not isinstance(stats, dict) or not (metrics or any(k in stats for k in RATE_KEYS[1:])):
            return None
        rows.append({
            "group": str(group),
            "intersectional": _is_intersectional(str(group)),
            "values": {k: v for k, v in stats.items() if numeric(v) or v is None},
        })
    return rows


def drift_rows(by_feature: Any) -> list[dict[str, Any]] | None:
    """PSI and KS per feature, or None when ``by_feature`` is not that shape."""
    if not isinstance(by_feature, dict) or not by_feature:
        return None
    rows = []
    for feature, stats in by_feature.items():
        if not isinstance(stats, dict) or not any(k in stats for k in _DRIFT_KEYS):
            return None
        rows.append({"feature": str(feature), "psi": stats.get("psi"), "ks": stats.get("ks")})
    return rows


def importance_rows(importance: Importance | None) -> list[dict[str, Any]] | None:
    """Features by decreasing |importance| (ties by name), or None when there is none."""
    if importance is None or not importance.by_feature:
        return None
    ordered = sorted(importance.by_feature.items(), key=lambda kv: (-abs(float(kv[1])), str(kv[0])))
    return [{"feature": str(k), "value": float(v)} for k, v in ordered]


def measured_importance(evidence: Mapping[str, Any]) -> Importance | None:
    """The importance a check kept in its measurement's evidence (the evidence document's shape)."""
    raw = evidence.get("importance")
    if not isinstance(raw, dict) or not raw or not all(numeric(v) for v in raw.values()):
        return None
    return Importance.model_validate({k: evidence[k] for k in ("importance", "explainer", "sample_size")
                                      if k in evidence})


def merge_tables(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks computed on the same groups usually share identical per-group rates: show one table."""
    merged: dict[str, dict[str, Any]] = {}
    for table in tables:
        key = json.dumps(table["rows"], sort_keys=True, default=str)
        if key in merged:
            merged[key]["checks"].extend(table["checks"])
            merged[key]["sources"].append(table["source"])
            continue
        columns = [k for k in RATE_KEYS if any(k in r["values"] for r in table["rows"])]
        extra = sorted({k for r in table["rows"] for k in r["values"]} - set(columns))
        merged[key] = {
            "source": table["source"],
            "sources": [table["source"]],
            "checks": list(table["checks"]),
            "rows": table["rows"],
            "columns": columns + extra,
            "intersectional": any(r["intersectional"] for r in table["rows"]),
        }
    return list(merged.values())
