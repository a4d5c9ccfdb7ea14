"""The HTML model card in a real browser: headless Chromium draws a non-blank page and the page
asks the network for nothing but itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from governance.catalog import Catalog
from governance.reporting import render_model_card
from tests.test_report_seed import seed_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, Path]]:
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, root
    server.shutdown()
    server.server_close()


def _screenshot(tmp_path: Path, shot: Path, url: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("GOVERNANCE_REQUIRE_CHROMIUM") != "1",
                    reason="chromium is not installed (CI installs Debian's chromium and requires this test)")
def test_chromium_renders_the_card_without_network(
    sqlite_catalog: Catalog, tmp_path: Path, served: tuple[ThreadingHTTPServer, Path]
) -> None:
    from PIL import Image, ImageStat

    server, root = served
    seed_model(sqlite_catalog)
    render_model_card("credit-scorer@1", format="html", catalog=sqlite_catalog, output=root / "card.html")
    # a control page proves the recorder sees what a page loads
    (root / "control.html").write_text('<html><body><img src="/probe.png">control</body></html>')
    port = server.server_address[1]
    _screenshot(tmp_path, tmp_path / "control.png", f"http://127.0.0.1:{port}/control.html")
    assert "/probe.png" in server.requests  # type: ignore[attr-defined]
    server.requests.clear()  # type: ignore[attr-defined]

    shot = tmp_path / "shot.png"
    proc = _screenshot(tmp_path, shot, f"http://127.0.0.1:{port}/card.html")
    assert shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2000)
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 20  # text, tables and the lineage graph, not a blank page
    dark = sum(image.histogram()[:128])
    assert dark > 5_000  # enough dark pixels to be text
    # the page itself and nothing else (a browser may ask for the site icon on its own)
    page_requests = [r for r in server.requests if r != "/favicon.ico"]  # type: ignore[attr-defined]
    assert page_requests == ["/card.html"], server.requests  # type: ignore[attr-defined]
