"""Markdown model card with YAML front matter in the style of Hugging Face model cards.

The front matter holds metadata only (tags, datasets, metrics, a ``governance`` block).  A string
holding ``<``, ``>`` or ``&`` is dumped double-quoted with those characters written as ``\\u``
escapes (the same value for a YAML parser), so user text can neither end the front matter nor carry
raw HTML into a renderer.
"""

from __future__ import annotations

from typing import Any

import yaml
from markupsafe import Markup

from governance.reporting._templates import ReportTemplates

__all__ = ["MARKDOWN_TEMPLATE", "front_matter", "render_markdown"]

MARKDOWN_TEMPLATE = "model_card.md.j2"
_YAML_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


class _Dumper(yaml.SafeDumper):
    """Double-quotes any string with an HTML-significant character (the only style with escapes)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(c in value for c in "<>&") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def front_matter(context: dict[str, Any]) -> str:
    card = {f["key"]: f["items"] for f in context["card"]}
    tags = ["model-card", "governance"]
    if context["model"]["risk_tier"]:
        tags.append(f"risk-tier-{context['model']['risk_tier']}")
    tags.extend(str(t) for t in context["model"]["tags"])
    meta: dict[str, Any] = {}
    if context["version"]["flavor"]:
        meta["library_name"] = context["version"]["flavor"]
    meta["tags"] = tags
    datasets = [
        f"{d['namespace']}/{d['name']}" for d in context["training_data"] + context["evaluation_data"]
    ]
    if datasets:
        meta["datasets"] = list(dict.fromkeys(datasets))
    if context["metrics"]:
        meta["metrics"] = [m["name"] for m in context["metrics"]]
    meta["governance"] = {
        "model": context["model"]["name"],
        "version": context["version"]["number"],
        "owner": context["model"]["owner"],
        "risk_tier": context["model"]["risk_tier"],
        "report_date": context["as_of"],
        "policies": {p["name"]: p["status"] for p in context["policies"]},
        "missing_card_fields": [k for k, v in card.items() if not v],
    }
    text = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    # only double-quoted scalars can hold these characters (see _represent_str), where escapes are valid
    return text.translate(_YAML_ESCAPES)


def render_markdown(templates: ReportTemplates, context: dict[str, Any]) -> str:
    # the front matter is safe by construction (see the module docstring)
    fm = Markup(front_matter(context))  # noqa: S704
    return templates.render(MARKDOWN_TEMPLATE, {**context, "front_matter": fm})
