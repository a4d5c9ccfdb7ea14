"""Self-contained HTML: the template, the inlined stylesheet and the charts as ``data:`` URIs."""

from __future__ import annotations

from typing import Any

from governance._version import __version__
from governance.reporting._charts import drift_svg, group_metrics_svg, importance_svg
from governance.reporting._fetcher import svg_data_uri
from governance.reporting._lineage_graph import lineage_svg
from governance.reporting._templates import ReportTemplates

__all__ = ["AUDIT_TEMPLATE", "MODEL_CARD_TEMPLATE", "model_card_charts", "render_html"]

MODEL_CARD_TEMPLATE = "model_card.html.j2"
AUDIT_TEMPLATE = "audit.html.j2"


def model_card_charts(context: dict[str, Any]) -> dict[str, str]:
    """Every figure of the model card, keyed as the template refers to it."""
    svgs: dict[str, str] = {"lineage": lineage_svg(context["lineage"])}
    for i, table in enumerate(context["group_tables"]):
        svgs[f"groups_{i}"] = group_metrics_svg(table["rows"], table["columns"])
    for i, expl in enumerate(context["explanations"]):
        svgs[f"importance_{i}"] = importance_svg(expl["importance"])
    for i, drift in enumerate(context["drift"]):
        svgs[f"drift_{i}"] = drift_svg(drift["rows"])
    return {name: svg_data_uri(svg) for name, svg in svgs.items() if svg}


def render_html(
    templates: ReportTemplates, template: str, context: dict[str, Any], charts: dict[str, str]
) -> str:
    """Render ``template`` with the context, the charts and the stylesheet inlined."""
    return templates.render(
        template,
        {**context, "charts": charts, "css": templates.stylesheet(), "generator_version": __version__},
    )
