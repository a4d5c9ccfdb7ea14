"""Markdown model card with YAML front matter in the style of Hugging Face model cards.

The front matter holds metadata only, in the keys ``huggingface_hub.ModelCard`` reads: ``license``
(from the card's ``license`` field), ``library_name``, ``tags``, ``datasets`` (the training data
only), ``metrics`` (metric names, without counts such as ``n``) and a ``model-index`` whose results
(task, evaluation dataset and split, metric values) parse into ``card.data.eval_results``; plus a
``governance`` block.  A string
holding ``<``, ``>`` or ``&`` is dumped double-quoted with those characters written as ``\\u``
escapes (the same value for a YAML parser), so user text can neither end the front matter nor carry
raw HTML into a renderer.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from markupsafe import Markup

from governance.reporting._format import card_licenses
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


#: metric names that are counts, not measures of quality (kept in the card body, not in the metadata)
_COUNTS = frozenset({"n", "count", "support", "rows", "samples", "tp", "fp", "tn", "fn", "positives",
                     "negatives"})
_SPDX = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def _is_measure(metric: dict[str, Any]) -> bool:
    name = str(metric["name"]).lower()
    value = metric["value"]
    return (name not in _COUNTS and not name.startswith(("n_", "num_", "count_"))
            and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))


def _dataset_id(d: dict[str, Any]) -> str:
    return f"{d['namespace']}/{d['name']}"


def _model_index(context: dict[str, Any], metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model-index`` in the shape ``huggingface_hub`` parses: one result per evaluation dataset."""
    evaluation = context["evaluation_data"] or [None]
    results = []
    for data in evaluation:
        dataset: dict[str, Any] = {"type": _dataset_id(data), "name": str(data["ref"]), "split": "evaluation"} \
            if data is not None else {"type": "unknown", "name": "unrecorded evaluation data"}
        if data is not None and data.get("content_hash"):
            dataset["revision"] = str(data["content_hash"])
        results.append({
            "task": {"type": "tabular-classification", "name": "Tabular classification"},
            "dataset": dataset,
            "metrics": [{"type": str(m["name"]), "value": float(m["value"]), "name": str(m["name"])}
                        for m in metrics],
        })
    return [{"name": f"{context['model']['name']}@{context['version']['number']}", "results": results}]


def front_matter(context: dict[str, Any]) -> str:
    card = {f["key"]: f["items"] for f in context["card"]}
    tags = ["model-card", "governance"]
    if context["model"]["risk_tier"]:
        tags.append(f"risk-tier-{context['model']['risk_tier']}")
    tags.extend(str(t) for t in context["model"]["tags"])
    meta: dict[str, Any] = {}
    licenses = card_licenses(context)
    if licenses:
        meta["license"] = licenses[0].lower() if _SPDX.fullmatch(licenses[0]) else "other"
        if not _SPDX.fullmatch(licenses[0]):
            meta["license_name"] = licenses[0]
    if context["version"]["flavor"]:
        meta["library_name"] = context["version"]["flavor"]
    meta["tags"] = tags
    datasets = [_dataset_id(d) for d in context["training_data"]]
    if datasets:
        meta["datasets"] = list(dict.fromkeys(datasets))
    measures = list({m["name"]: m for m in context["metrics"] if _is_measure(m)}.values())
    if measures:
        meta["metrics"] = [str(m["name"]) for m in measures]
        meta["model-index"] = _model_index(context, measures)
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
