"""``render_model_card`` and ``render_audit_report``: read the catalog, render, optionally write."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from governance._outputs import write_output
from governance.catalog import Catalog, Ref, open_catalog
from governance.errors import InputError
from governance.reporting._audit_context import build_audit_context
from governance.reporting._html import AUDIT_TEMPLATE, MODEL_CARD_TEMPLATE, model_card_charts, render_html
from governance.reporting._json import SIDECAR_SUFFIX, audit_json, model_card_governance_json, model_card_json
from governance.reporting._markdown import render_markdown
from governance.reporting._model_card_context import build_model_card_context
from governance.reporting._templates import ReportTemplates
from governance.reporting._traceability import load_requirements

__all__ = [
    "AUDIT_FORMATS",
    "AUDIT_PDF_MAX_EVENTS",
    "MODEL_CARD_FORMATS",
    "render_audit_report",
    "render_model_card",
]

MODEL_CARD_FORMATS = ("html", "pdf", "md", "json", "governance")
AUDIT_FORMATS = ("html", "pdf", "json")
AUDIT_PDF_MAX_EVENTS = 500
AUDIT_HTML_MAX_EVENTS = 5000
TRACEABILITY_FILE = "traceability.yaml"


def _check_format(value: str, allowed: tuple[str, ...]) -> str:
    fmt = str(value).lower()
    if fmt not in allowed:
        raise InputError(f"--format: expected one of {', '.join(allowed)}, got {value!r}")
    return fmt


def _write(output: str | os.PathLike[str], content: bytes | str) -> None:
    write_output(output, content)


def _pdf(html: str, assets: list[str]) -> bytes:
    from governance.reporting._pdf import html_to_pdf

    return html_to_pdf(html, assets)


def sidecar_path(card: str | os.PathLike[str]) -> Path:
    """Where the governance sidecar of a JSON card goes: ``card.json`` -> ``card.governance.json``."""
    path = Path(card)
    return path.with_name(path.name.removesuffix(".json") + SIDECAR_SUFFIX)


def render_model_card(
    ref: str | Ref,
    *,
    format: str,
    output: str | os.PathLike[str] | None = None,
    catalog: Catalog | None = None,
    template_dir: str | os.PathLike[str] | None = None,
) -> bytes | str:
    """Render the compliance model card of ``MODEL@VERSION`` as ``html``, ``pdf``, ``md`` or ``json``
    (Model Card Toolkit), or its governance sidecar (``governance``: lineage, policies, waivers,
    approvals, traceability... as JSON).

    Returns the document (``bytes`` for PDF, ``str`` otherwise) and writes it to ``output`` when
    given; with ``json`` the sidecar is written next to it too (``card.json`` ->
    ``card.governance.json``) and the card names it in ``model_details.references``.
    ``template_dir`` may override any file of the shipped ``reports/`` folder (templates,
    ``report.css``, ``traceability.yaml``).
    """
    fmt = _check_format(format, MODEL_CARD_FORMATS)
    templates = ReportTemplates(template_dir)
    frameworks = load_requirements(templates.find(TRACEABILITY_FILE))
    cat = catalog if catalog is not None else open_catalog()
    with cat.read() as session:
        context = build_model_card_context(session, ref, frameworks)
    result: bytes | str
    sidecar = None
    if fmt == "json":
        sidecar = None if output is None else sidecar_path(output)
        result = model_card_json(context, sidecar.name if sidecar is not None else None)
        if sidecar is not None:
            _write(sidecar, model_card_governance_json(context, Path(output or "").name))
    elif fmt == "governance":
        result = model_card_governance_json(context)
    elif fmt == "md":
        result = render_markdown(templates, context)
    else:
        charts = model_card_charts(context)
        html = render_html(templates, MODEL_CARD_TEMPLATE, context, charts)
        result = html if fmt == "html" else _pdf(html, list(charts.values()))
    if output is not None:
        _write(output, result)
    return result


def render_audit_report(
    *,
    model: str | None = None,
    since: datetime | str | None = None,
    format: str,
    output: str | os.PathLike[str] | None = None,
    catalog: Catalog | None = None,
    max_events: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    pubkey: str | os.PathLike[str] | None = None,
) -> bytes | str:
    """Render the audit trail (``html``, ``pdf`` or ``json``), optionally for one model and from a time.

    HTML lists up to 5,000 events and PDF up to 500 (``max_events`` overrides), the most recent in
    full and the older ones summarised by action, actor and day; JSON always lists every event.
    With an exported ``checkpoint`` file and the signer's ``pubkey`` (both or neither), the report
    shows that checkpoint verified, signature included (as ``gov audit verify`` does); without them,
    the last checkpoint recorded in the catalog, its signature unchecked.
    """
    fmt = _check_format(format, AUDIT_FORMATS)
    if max_events is None and fmt != "json":
        max_events = AUDIT_PDF_MAX_EVENTS if fmt == "pdf" else AUDIT_HTML_MAX_EVENTS
    cat = catalog if catalog is not None else open_catalog()
    context = build_audit_context(
        cat,
        model=model,
        since=since,
        max_events=None if fmt == "json" else max_events,
        checkpoint=None if checkpoint is None else os.fspath(checkpoint),
        pubkey=None if pubkey is None else os.fspath(pubkey),
    )
    result: bytes | str
    if fmt == "json":
        result = audit_json(context)
    else:
        templates = ReportTemplates()
        html = render_html(templates, AUDIT_TEMPLATE, context, {})
        result = html if fmt == "html" else _pdf(html, [])
    if output is not None:
        _write(output, result)
    return result
