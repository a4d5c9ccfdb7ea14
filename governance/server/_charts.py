"""Per-group metric charts for the model version page, with the policy threshold drawn.

The numbers come from the model card context (:mod:`governance.reporting`): each check's per-group
rates.  A disparity threshold is drawn where it bites on the rates themselves: for a ratio check
(``min/max >= t``) at ``t x`` the highest group's rate, for a difference check (``max - min <= t``) at
the highest rate minus ``t``; a group whose bar ends left of the line is the one that fails.  A
per-group performance floor is drawn where it is.  Charts are data for the template (an inline SVG
with presentation attributes only), so labels are escaped like any other text.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_charts"]

_METRICS = {
    "fairness.demographic_parity_ratio": ("ratio", ("selection_rate",)),
    "fairness.demographic_parity_difference": ("difference", ("selection_rate",)),
    "fairness.equalized_odds_ratio": ("ratio", ("tpr", "fpr")),
    "fairness.equalized_odds_difference": ("difference", ("tpr", "fpr")),
    "fairness.equal_opportunity_ratio": ("ratio", ("tpr",)),
    "fairness.equal_opportunity_difference": ("difference", ("tpr",)),
}
_NAMES = {"selection_rate": "selection rate", "tpr": "true positive rate", "fpr": "false positive rate",
          "fnr": "false negative rate", "accuracy": "accuracy", "precision": "precision"}
_SPLIT = re.compile(r" & | × |\| | ∩ | and ")
_BAR_H = 18.0
_GAP = 6.0
_CHAR_W = 6.6
_MAX_LEFT = 300.0
_PLOT_W = 340.0


def _grouping(label: str) -> str:
    keys = [part.split("=", 1)[0].strip() for part in _SPLIT.split(label)]
    return " × ".join(keys)


def _bound(assertion: Any) -> float | None:
    if not isinstance(assertion, dict):
        return None
    for op in ("gte", "gt", "lte", "lt"):
        value = assertion.get(op)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _panel(check: dict[str, Any], metric: str, grouping: str, rows: list[dict[str, Any]],
           kind: str | None, bound: float | None) -> dict[str, Any] | None:
    values = [(str(r["group"]), r["values"].get(metric)) for r in rows]
    values = [(g, float(v)) for g, v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not values:
        return None
    top = max(v for _, v in values)
    line = None
    line_label = None
    if bound is not None and kind == "ratio":
        line, line_label = bound * top, f"{bound:g} × highest rate = {bound * top:.3f}"
    elif bound is not None and kind == "difference":
        line, line_label = top - bound, f"highest rate − {bound:g} = {top - bound:.3f}"
    elif bound is not None and kind == "floor":
        line, line_label = bound, f"threshold {bound:g}"
    scale = max(1.0, top, line or 0.0)
    left = min(max(60.0, max(len(g) for g, _ in values) * _CHAR_W + 16.0), _MAX_LEFT)
    bars = []
    for i, (group, value) in enumerate(values):
        y = 8.0 + i * (_BAR_H + _GAP)
        failing = line is not None and value < line - 1e-12 if kind in ("ratio", "difference", "floor") else False
        bars.append({"group": group, "value": value, "y": y, "ty": y + _BAR_H * 0.7, "w": _PLOT_W * value / scale,
                     "tx": left + _PLOT_W * value / scale + 6, "below": failing})
    height = 8.0 + len(values) * (_BAR_H + _GAP) + 30.0
    return {
        "check": check["id"], "status": check["status"], "metric": _NAMES.get(metric, metric),
        "grouping": grouping, "bars": bars, "left": left, "plot_w": _PLOT_W, "bar_h": _BAR_H,
        "height": height, "axis_y": height - 26.0, "width": left + _PLOT_W + 56.0,
        "ticks": [{"x": left + _PLOT_W * t / scale, "label": f"{t:g}"} for t in (0.0, 0.25, 0.5, 0.75, 1.0)
                  if t <= scale],
        "line_x": None if line is None else left + _PLOT_W * max(line, 0.0) / scale,
        "line_label": line_label, "threshold": check.get("threshold"),
        "title": f"{check['id']}: {_NAMES.get(metric, metric)} by {grouping}",
    }


def check_charts(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One panel per (check, metric, grouping) of the latest evaluation of each policy."""
    panels: list[dict[str, Any]] = []
    for policy in policies:
        for check in policy.get("checks", []):
            rows = check.get("groups") or []
            if not rows or check.get("family") == "drift":
                continue
            kind, metrics = _METRICS.get(check["uses"], (None, ()))
            if not metrics and check["uses"].startswith("performance."):
                name = check["uses"].split(".", 1)[1]
                if any(name in r["values"] for r in rows):
                    kind, metrics = "floor", (name,)
            if not metrics:
                continue
            groupings: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                groupings.setdefault(_grouping(str(row["group"])), []).append(row)
            for metric in metrics:
                for grouping, members in groupings.items():
                    panel = _panel(check, metric, grouping, members, kind, _bound(check.get("assertion")))
                    if panel is not None:
                        panel["policy"] = policy["name"]
                        panels.append(panel)
    return panels
