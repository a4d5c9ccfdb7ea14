"""Formatting shared by every renderer: numbers, dates, thresholds, Markdown escaping.

Numbers are formatted once here so that the HTML, PDF, Markdown and the tests agree on the text.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from markupsafe import Markup

from governance.domain import as_utc, parse_utc

__all__ = [
    "MISSING",
    "card_licenses",
    "fmt_assertion",
    "fmt_date",
    "fmt_num",
    "fmt_time",
    "md_escape",
    "parse_time",
]

MISSING = "missing"

_OPERATORS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "=", "ne": "≠"}
_MD_TABLE = {ord(c): "\\" + c for c in "\\`*_{}[]()#!|~"}
_MD_TABLE.update(
    {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&apos;"}
)


def card_licenses(context: dict[str, Any]) -> list[str]:
    """The ``license`` card field of a model card context (a standard field or one of the others)."""
    for group in ("card", "card_other"):
        for item in context.get(group) or []:
            if item["key"] == "license" and item["items"]:
                return [str(text) for text in item["items"]]
    return []


def fmt_num(value: Any) -> str:
    """A number as the reports print it: integers as they are, floats with up to 4 decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 10_000:
            return f"{value:,.0f}"
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in {"-0", ""} else text
    return str(value)


def fmt_assertion(assertion: dict[str, Any] | None) -> str:
    """``{"gte": 0.8}`` -> ``≥ 0.8``; several bounds are joined with "and"."""
    if not assertion:
        return "—"
    parts = []
    for key, bound in assertion.items():
        op = _OPERATORS.get(str(key))
        bound_text = fmt_num(bound) if isinstance(bound, (int, float)) else str(bound)
        parts.append(f"{op} {bound_text}" if op else f"{key} {bound_text}")
    return " and ".join(parts)


def parse_time(value: datetime | str) -> datetime:
    """A timezone-aware UTC datetime from a datetime or ISO-8601 text (naive means UTC)."""
    return parse_utc(value) if isinstance(value, str) else as_utc(value)


def fmt_time(value: datetime | str | None) -> str:
    """``2026-01-02 03:04:05 UTC`` (seconds precision)."""
    if value is None:
        return "—"
    return parse_time(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_date(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    return parse_time(value).strftime("%Y-%m-%d")


def md_escape(value: Any) -> Markup:
    """User text for Markdown: HTML-significant characters become entities (Markdown renderers pass
    raw HTML through) and Markdown punctuation is backslash-escaped; newlines become spaces so the
    text cannot break out of a table cell or a list item."""
    if value is None:
        return Markup("")
    text = " ".join(str(value).split())
    return Markup(text.translate(_MD_TABLE))  # noqa: S704 - every special character was escaped above
