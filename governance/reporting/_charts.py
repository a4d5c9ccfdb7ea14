"""Charts as SVG made with matplotlib: per-group metrics, feature importance, drift.

No pyplot and no backend switch: each chart is an explicit ``Figure`` drawn by ``FigureCanvasSVG``
inside a style context that starts from matplotlib's defaults (a user's matplotlibrc cannot change
the output), keeps text as text (``svg.fonttype: none``), never parses user labels as math, and
fixes ``svg.hashsalt`` and drops the date, so the same data gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib.style as mpl_style
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = ["drift_svg", "group_metrics_svg", "importance_svg"]

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "governance-report",
    "svg.image_inline": True,
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "x",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
}
_PALETTE = ("#3b78c3", "#e07b39", "#2e8b47", "#b9473f", "#7a5cae", "#8c6d4f", "#c45fa0", "#6f7d8c")
_MAX_BARS = 20


@contextmanager
def _style() -> Iterator[None]:
    with mpl_style.context(["default", _STYLE]):
        yield


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _render(fig: Figure) -> str:
    buffer = io.StringIO()
    FigureCanvasSVG(fig).print_svg(  # type: ignore[no-untyped-call]
        buffer, metadata={"Date": None, "Creator": "governance"}
    )
    return buffer.getvalue()


def group_metrics_svg(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Grouped horizontal bars: one group per row, one bar per rate (selection rate, TPR, ...)."""
    metrics = [c for c in columns if c != "n"]
    groups = [r for r in rows if any(isinstance(r["values"].get(m), (int, float)) for m in metrics)]
    groups = groups[:_MAX_BARS]
    if not metrics or not groups:
        return ""
    with _style():
        height = 0.9 + 0.26 * len(groups) * max(1, len(metrics)) ** 0.6
        fig = Figure(figsize=(7.0, min(height, 9.0)))
        ax = fig.add_subplot()
        band = 0.8 / len(metrics)
        for i, metric in enumerate(metrics):
            ys = [g - 0.4 + band * (i + 0.5) for g in range(len(groups))]
            values = [float(r["values"].get(metric) or 0.0) for r in groups]
            ax.barh(ys, values, height=band * 0.9, color=_PALETTE[i % len(_PALETTE)], label=metric)
        ax.set_yticks(range(len(groups)), [_clip(str(r["group"])) for r in groups])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("rate")
        ax.legend(
            loc="lower right",
            fontsize=7,
            frameon=False,
            ncols=min(len(metrics), 5),
            bbox_to_anchor=(1.0, 1.0),
        )
        fig.tight_layout()
        return _render(fig)


def importance_svg(importance: list[dict[str, Any]]) -> str:
    """Horizontal bars of global feature importance, largest on top."""
    top = importance[:_MAX_BARS]
    if not top:
        return ""
    with _style():
        fig = Figure(figsize=(7.0, min(0.8 + 0.24 * len(top), 6.5)))
        ax = fig.add_subplot()
        values = [float(item["value"]) for item in top]
        ax.barh(range(len(top)), values, color=[_PALETTE[0] if v >= 0 else _PALETTE[3] for v in values])
        ax.set_yticks(range(len(top)), [_clip(str(item["feature"])) for item in top])
        ax.invert_yaxis()
        ax.set_xlabel("mean |SHAP value|")
        fig.tight_layout()
        return _render(fig)


def drift_svg(rows: list[dict[str, Any]]) -> str:
    """PSI per feature with the usual 0.1 (watch) and 0.25 (act) reference lines."""
    shown = [r for r in rows if isinstance(r.get("psi"), (int, float))][:_MAX_BARS]
    if not shown:
        return ""
    with _style():
        fig = Figure(figsize=(7.0, min(0.8 + 0.24 * len(shown), 6.5)))
        ax = fig.add_subplot()
        values = [float(r["psi"]) for r in shown]
        colors = [_PALETTE[3] if v >= 0.25 else _PALETTE[1] if v >= 0.1 else _PALETTE[2] for v in values]
        ax.barh(range(len(shown)), values, color=colors)
        for ref in (0.1, 0.25):
            ax.axvline(ref, color="#888888", linewidth=0.8, linestyle="--")
        ax.set_yticks(range(len(shown)), [_clip(str(r["feature"])) for r in shown])
        ax.invert_yaxis()
        ax.set_xlabel("population stability index (PSI)")
        fig.tight_layout()
        return _render(fig)
