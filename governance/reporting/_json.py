"""The model card as Model Card Toolkit JSON (schema v0.0.2), and its governance sidecar.

The card holds only what the schema defines, so Model Card Toolkit's ``ModelCard.from_json`` loads it
(its dataclasses refuse any key they do not define, at every level).  The governance-specific sections
(lineage, policy results, waivers, approvals, promotion history, the traceability matrix, what is
missing) go to a sidecar document, ``<card>.governance.json`` next to the card, under the key
``x-governance``; the card names the sidecar in ``model_details.references``.  Absent card fields are
left out of the standard sections (never filled with placeholders) and listed in
``x-governance.missing``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

from governance.reporting._format import card_licenses, fmt_date, fmt_num

__all__ = ["EXTENSION_KEY", "SCHEMA_VERSION", "SIDECAR_SUFFIX", "audit_json", "model_card_governance_json",
           "model_card_json"]

SCHEMA_VERSION = "0.0.2"
EXTENSION_KEY = "x-governance"
SIDECAR_SUFFIX = ".governance.json"
SIDECAR_FORMAT = "ml-governance/model-card-governance/v1"
_SPDX = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")  # an SPDX identifier (or "proprietary"), not prose


def _finite(value: Any) -> Any:
    """NaN and infinities (which JSON cannot carry) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dump(doc: Any) -> str:
    return json.dumps(_finite(doc), indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def _descriptions(items: list[str] | None) -> list[dict[str, str]]:
    return [{"description": i} for i in items or []]


def _dataset(d: dict[str, Any], use: str) -> dict[str, Any]:
    parts = [f"{use} data, version {d['version']}"]
    if d["row_count"] is not None:
        parts.append(f"{d['row_count']} rows")
    if d["content_hash"]:
        parts.append(f"fingerprint {d['hash_algo'] or ''}:{d['content_hash']}".replace(" :", " "))
    if d["description"]:
        parts.append(str(d["description"]))
    doc: dict[str, Any] = {"name": f"{d['namespace']}/{d['ref']}", "description": "; ".join(parts)}
    uri = d["uri"]
    if uri and urlsplit(str(uri)).scheme:
        doc["link"] = str(uri)
    if d["protected"]:
        doc["sensitive"] = {"sensitive_data": list(d["protected"])}
    return doc


def _governance(context: dict[str, Any]) -> dict[str, Any]:
    card = {f["key"]: f["items"] for f in context["card"]}
    model, version = context["model"], context["version"]
    missing = [key for key, items in card.items() if not items]
    for key, present in (
        ("model.owner", model["owner"]),
        ("model.description", model["description"]),
        ("version.flavor", version["flavor"]),
        ("training_run", context["training_run"]),
        ("training_data", context["training_data"]),
        ("evaluation_data", context["evaluation_data"]),
        ("policy_results", context["policies"]),
        ("approvals", context["approvals"]),
    ):
        if not present:
            missing.append(key)
    return {
        "description": "Governance sections of ml-governance (not part of the Model Card Toolkit schema).",
        "report_date": context["as_of"],
        "risk_tier": model["risk_tier"],
        "tags": model["tags"],
        "artifact": {
            "hash": version["artifact_hash"],
            "hash_algo": version["hash_algo"],
            "uri": version["artifact_uri"],
            "flavor": version["flavor"],
            "aliases": version["aliases"],
        },
        "params": version["params"],
        "metrics": context["metrics"],
        "card": card,
        "card_other": context["card_other"],
        "training_run": context["training_run"],
        "training_data": context["training_data"],
        "evaluation_data": context["evaluation_data"],
        "evidence": context["evidence"],
        "lineage": context["lineage"],
        "group_tables": context["group_tables"],
        "explanations": context["explanations"],
        "drift": context["drift"],
        "policies": context["policies"],
        "evaluation_history": context["evaluation_history"],
        "waivers": context["waivers"],
        "approvals": context["approvals"],
        "promotions": context["promotions"],
        "audit_events": context["audit_events"],
        "traceability": context["traceability"],
        "traceability_summary": context["traceability_summary"],
        "missing": missing,
    }


def model_card_governance_json(context: dict[str, Any], card_name: str | None = None) -> str:
    """The governance sidecar of the card (``card_name``: the card file it belongs to)."""
    doc = {
        "format": SIDECAR_FORMAT,
        "model": context["model"]["name"],
        "version": context["version"]["number"],
        "card": card_name,
        EXTENSION_KEY: _governance(context),
    }
    return _dump(doc)


def _model_details(context: dict[str, Any], sidecar_name: str | None) -> dict[str, Any]:
    model, version = context["model"], context["version"]
    details: dict[str, Any] = {"name": model["name"]}
    if model["description"]:
        details["overview"] = str(model["description"])
    if model["owner"]:
        details["owners"] = [{"name": str(model["owner"])}]
    details["version"] = {"name": str(version["number"]), "date": fmt_date(version["created_at"])}
    licenses = card_licenses(context)
    if licenses:
        details["licenses"] = [{"identifier": text} if _SPDX.fullmatch(text) else {"custom_text": text}
                               for text in licenses]
    if sidecar_name:
        details["references"] = [{"reference": sidecar_name}]
    if version["artifact_uri"]:
        details["path"] = str(version["artifact_uri"])
    return details


def _model_parameters(context: dict[str, Any]) -> dict[str, Any]:
    version = context["version"]
    parameters: dict[str, Any] = {}
    if version["flavor"]:
        parameters["model_architecture"] = str(version["flavor"])
    data = [_dataset(d, "training") for d in context["training_data"]]
    data += [_dataset(d, "evaluation") for d in context["evaluation_data"]]
    if data:
        parameters["data"] = data
    if version["features"]:
        parameters["input_format_map"] = [{"key": str(f), "value": "feature"} for f in version["features"]]
    return parameters


def _performance_metrics(context: dict[str, Any]) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = [
        {"type": m["name"], "value": fmt_num(m["value"])} for m in context["metrics"]
    ]
    for policy in context["policies"]:
        for check in policy["checks"]:
            if check["value"] is None:
                continue
            entry: dict[str, Any] = {"type": check["id"], "value": fmt_num(check["value"])}
            if check["ci"]:
                entry["confidence_interval"] = {
                    "lower_bound": fmt_num(check["ci"][0]),
                    "upper_bound": fmt_num(check["ci"][1]),
                }
            metrics.append(entry)
    for table in context["group_tables"]:
        for row in table["rows"]:
            for column in table["columns"]:
                value = row["values"].get(column)
                if value is not None:
                    metrics.append({"type": column, "value": fmt_num(value), "slice": row["group"]})
    return metrics


def _considerations(card: dict[str, Any]) -> dict[str, Any]:
    considerations: dict[str, Any] = {}
    for key, target in (
        ("users", "users"),
        ("intended_use", "use_cases"),
        ("limitations", "limitations"),
        ("tradeoffs", "tradeoffs"),
    ):
        if card.get(key):
            considerations[target] = _descriptions(card[key])
    if card.get("ethical_considerations"):
        considerations["ethical_considerations"] = [{"name": i} for i in card["ethical_considerations"] or []]
    return considerations


def model_card_json(context: dict[str, Any], sidecar_name: str | None = None) -> str:
    """The Model Card Toolkit card; ``sidecar_name`` (the governance sidecar's file name) is listed in
    ``model_details.references``."""
    card = {f["key"]: f["items"] for f in context["card"]}
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "model_details": _model_details(context, sidecar_name)}
    parameters = _model_parameters(context)
    if parameters:
        doc["model_parameters"] = parameters
    metrics = _performance_metrics(context)
    if metrics:
        doc["quantitative_analysis"] = {"performance_metrics": metrics}
    considerations = _considerations(card)
    if considerations:
        doc["considerations"] = considerations
    return _dump(doc)


def audit_json(context: dict[str, Any]) -> str:
    doc = {
        key: context[key]
        for key in (
            "kind",
            "title",
            "as_of",
            "filters",
            "scope",
            "verification",
            "checkpoint",
            "chain_events",
            "total",
        )
    }
    if context.get("mlflow_reconcile"):
        doc["mlflow_reconcile"] = context["mlflow_reconcile"]
    doc["events"] = [
        {k: e[k] for k in ("seq", "time", "actor", "action", "subject", "data", "hash", "prev_hash")}
        for e in context["events"]
    ]
    doc["decisions"] = context.get("decisions", [])  # signed decisions, each verified against the trust store
    return _dump(doc)
