"""HTML to PDF with WeasyPrint, through :class:`EmbeddedAssetFetcher` and with fixed metadata.

The PDF's creation and modification dates come from the report's own date (``dcterms.created`` and
``dcterms.modified`` in the HTML head, set from the catalog), no identifier derived from the clock is
written and no attachment is embedded, so the same HTML gives the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from weasyprint import HTML

from governance.reporting._fetcher import EmbeddedAssetFetcher

__all__ = ["html_to_pdf"]


def html_to_pdf(html: str, assets: Iterable[str]) -> bytes:
    """Render ``html`` (self-contained) to PDF bytes; only ``assets`` (data URIs) may be loaded."""
    fetcher = EmbeddedAssetFetcher(assets)
    logger = logging.getLogger("weasyprint")
    document = HTML(string=html, base_url=None, url_fetcher=fetcher).render()
    pdf = document.write_pdf(attachments=[], pdf_identifier=False)
    if fetcher.refused:
        logger.info("report: refused %d URL(s) while rendering the PDF", len(fetcher.refused))
    return bytes(pdf)
