"""Hostile user text renders as text; the PDF loads nothing, embeds nothing, calls no one."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from governance.catalog import Catalog, Ref
from governance.reporting import render_audit_report, render_model_card
from tests.test_report_seed import seed_model


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(
            base64.b64decode(
                "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
            )
        )

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _hostile(port: int) -> str:
    return (
        "<script>alert(1)</script><img src=file:///etc/passwd>"
        "<link rel=attachment href=file:///etc/passwd>"
        f"<img src=http://127.0.0.1:{port}/>"
    )


def _assert_no_embedded_files(pdf: bytes) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    assert b"/EmbeddedFile" not in pdf and b"/FileAttachment" not in pdf
    assert reader.attachments == {}
    root = reader.trailer["/Root"]
    assert "/Names" not in root or "/EmbeddedFiles" not in root["/Names"]
    for page in reader.pages:
        for annot in page.get("/Annots") or []:
            assert annot.get_object().get("/Subtype") != "/FileAttachment"


def test_hostile_names_render_as_text(sqlite_catalog: Catalog, http_server: ThreadingHTTPServer) -> None:
    evil = _hostile(http_server.server_address[1])
    seed_model(sqlite_catalog, name=evil, description=evil, dataset_name=evil)
    ref = Ref(evil, version=1)
    html = render_model_card(ref, format="html", catalog=sqlite_catalog)
    assert isinstance(html, str)
    lowered = html.lower()
    for raw in ("<script", "<img src=file", "<img src=http", "<link rel=attachment"):
        assert raw not in lowered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;link rel=attachment href=file:///etc/passwd&gt;" in html

    md = render_model_card(ref, format="md", catalog=sqlite_catalog)
    assert isinstance(md, str)
    assert "<script" not in md and "<img" not in md and "<link" not in md
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in md

    pdf = render_model_card(ref, format="pdf", catalog=sqlite_catalog)
    assert isinstance(pdf, bytes)
    _assert_no_embedded_files(pdf)
    from pypdf import PdfReader

    text = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "<script>alert(1)</script>" in text.replace("\n", "")

    audit = render_audit_report(model=evil, format="pdf", catalog=sqlite_catalog)
    assert isinstance(audit, bytes)
    _assert_no_embedded_files(audit)
    assert http_server.requests == []  # type: ignore[attr-defined]


def test_fetcher_is_the_second_line_of_defence(http_server: ThreadingHTTPServer, tmp_path: Path) -> None:
    """Even raw, unescaped hostile HTML cannot make WeasyPrint read a file or call the network."""
    from governance.reporting._fetcher import svg_data_uri
    from governance.reporting._pdf import html_to_pdf

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    port = http_server.server_address[1]
    own = svg_data_uri(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" '
        'height="10" fill="red"/></svg>'
    )
    other = svg_data_uri('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')
    html = (
        f"<html><head><link rel=attachment href='file://{secret}'>"
        f"<link rel=stylesheet href='http://127.0.0.1:{port}/style.css'></head><body>"
        f"<img src='file://{secret}'><img src='http://127.0.0.1:{port}/x.png'>"
        f"<a rel=attachment href='file://{secret}'>a</a><img src='{other}'><img src='{own}'>"
        f"<div style=\"background: url('http://127.0.0.1:{port}/bg.png')\">x</div></body></html>"
    )
    pdf = html_to_pdf(html, [own])
    _assert_no_embedded_files(pdf)
    assert b"TOP-SECRET-CONTENT" not in pdf
    assert http_server.requests == []  # type: ignore[attr-defined]


def test_fetcher_refuses_all_but_its_assets() -> None:
    from governance.reporting._fetcher import EmbeddedAssetFetcher, RefusedURL, svg_data_uri

    own = svg_data_uri("<svg xmlns='http://www.w3.org/2000/svg'/>")
    fetcher = EmbeddedAssetFetcher([own])
    response = fetcher.fetch(own)
    assert response.read().startswith(b"<svg") and response.content_type == "image/svg+xml"
    for url in (
        "file:///etc/passwd",
        "http://127.0.0.1:9/",
        "https://example.com/a.png",
        "data:text/plain;base64,aGk=",
        own + "x",
    ):
        with pytest.raises(RefusedURL):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 5
