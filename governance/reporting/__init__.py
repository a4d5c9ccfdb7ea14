"""Reports for auditors: the compliance model card and the audit trail as HTML, PDF, Markdown, JSON.

Templates and styles live in the shipped ``reports/`` folder (Jinja2, autoescape on); a user may
pass a directory that overrides any of them.  HTML is self-contained (inline CSS, charts as SVG
``data:`` URIs, no script); PDFs are rendered by WeasyPrint through a fetcher that loads nothing but
those embedded charts.  The same catalog gives the same bytes.
"""

from governance.reporting._api import (
    AUDIT_FORMATS,
    MODEL_CARD_FORMATS,
    render_audit_report,
    render_model_card,
    sidecar_path,
)
from governance.reporting._audit_context import build_audit_context, checkpoint_status, verify_chain
from governance.reporting._json import EXTENSION_KEY
from governance.reporting._model_card_context import build_model_card_context
from governance.reporting._templates import ReportTemplates
from governance.reporting._traceability import Framework, load_requirements

__all__ = [
    "AUDIT_FORMATS",
    "EXTENSION_KEY",
    "MODEL_CARD_FORMATS",
    "Framework",
    "ReportTemplates",
    "build_audit_context",
    "build_model_card_context",
    "checkpoint_status",
    "load_requirements",
    "render_audit_report",
    "render_model_card",
    "sidecar_path",
    "verify_chain",
]
