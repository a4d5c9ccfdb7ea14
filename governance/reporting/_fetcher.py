"""The URL fetcher WeasyPrint gets: it serves the report's own embedded assets and nothing else.

Every chart and graph of a report is a ``data:`` URI the renderer created; the fetcher is built with
exactly those URIs and refuses any other URL (``file://``, ``http(s)://``, other ``data:`` URIs),
recording what it refused.  Even if user text ever reached the HTML unescaped, it could not make
WeasyPrint read a local file, embed an attachment or call the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from weasyprint.urls import URLFetcher, URLFetcherResponse

__all__ = ["EmbeddedAssetFetcher", "RefusedURL", "svg_data_uri"]


class RefusedURL(ValueError):
    """A URL that is not one of the report's embedded assets."""


def svg_data_uri(svg: str) -> str:
    """An SVG document as a base64 ``data:`` URI."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _key(url: str) -> str:
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()


class EmbeddedAssetFetcher(URLFetcher):  # type: ignore[misc]
    """A WeasyPrint fetcher allowing only the given ``data:`` URIs."""

    def __init__(self, allowed: Iterable[str]) -> None:
        super().__init__(allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False)
        self._allowed = {_key(u) for u in allowed if u.startswith("data:")}
        self.refused: list[str] = []
        self.served = 0

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if not url.startswith("data:") or _key(url) not in self._allowed:
            self.refused.append(url[:200])
            raise RefusedURL(f"report fetcher: refused {url[:80]!r} (only the report's own assets load)")
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise RefusedURL("report fetcher: malformed data URI")
        mime, *params = header.split(";")
        if params and params[-1] == "base64":
            try:
                body = base64.b64decode(payload, validate=True)
            except binascii.Error as exc:
                raise RefusedURL("report fetcher: data URI is not valid base64") from exc
        else:
            body = unquote_to_bytes(payload)
        self.served += 1
        return URLFetcherResponse(url, body=body, headers={"Content-Type": mime or "text/plain"})
