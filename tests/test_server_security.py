"""Security of the server: CSP and no inline code on any page, hostile names inert everywhere, no
path traversal, authentication modes (tokens, login cookie, trusted proxy header), configuration."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from governance.catalog import Catalog
from governance.errors import ConfigError
from governance.server import ServerConfig, Token, hash_token, load_server_config
from tests._server_support import Live, live_server, seed_catalog

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"
TOKEN = "gov_" + "t" * 30


class _Inline(HTMLParser):
    """Collects anything a CSP without 'unsafe-inline' would block, and every URL the page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.loads: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        for key, value in attrs:
            if key.startswith("on"):
                self.problems.append(f"<{tag} {key}=...>")
            if key == "style":
                self.problems.append(f"<{tag} style=...>")
            if key in ("src", "href") and value and tag in ("script", "link", "img", "iframe"):
                self.loads.append(value)
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {key}=javascript:>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            if "src" not in names:
                self.problems.append("inline <script>")
            self._in_script = True


def _pages(seeded_dataset_id: int, run_id: str, name: str) -> list[str]:
    q = quote(name, safe="")
    return ["/", f"/model?ref={q}", f"/version?ref={q}@1", f"/lineage?node=model:{q}@1",
            f"/lineage?node=model:{q}@1&expand=dataset:{seeded_dataset_id}", "/datasets",
            f"/dataset?id={seeded_dataset_id}", f"/run?id={run_id}", "/audit", f"/search?q={q[:6]}",
            "/audit?action=nope&actor=%3Cb%3E", "/version?ref=missing%3Cb%3E@1", "/login"]


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Catalog, Live, list[str]]]:
    import sqlalchemy as sa

    from governance.catalog import DatasetVersion, Run

    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    seed_catalog(catalog, name=EVIL, description=EVIL, dataset_name=EVIL)
    with catalog.read() as session:
        dv = session.execute(sa.select(sa.func.min(DatasetVersion.id))).scalar()
        run = session.execute(sa.select(Run.run_uuid).limit(1)).scalar()
    with live_server(catalog) as live:
        yield catalog, live, _pages(int(dv or 0), str(run), EVIL)
    catalog.dispose()


def test_every_page_has_the_csp_and_no_inline_code(hostile: tuple[Catalog, Live, list[str]]) -> None:
    _, live, pages = hostile
    for page in pages:
        reply = live.get(page)
        assert reply.status == (404 if "missing" in page else 200), (page, reply.status)
        csp = reply.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        parser = _Inline()
        parser.feed(reply.text)
        assert parser.problems == [], (page, parser.problems)
        assert all(u.startswith("/") and not u.startswith("//") for u in parser.loads), (page, parser.loads)


def test_hostile_names_render_inert_in_every_page(hostile: tuple[Catalog, Live, list[str]]) -> None:
    _, live, pages = hostile
    for page in pages[:-3]:
        html = live.get(page).text
        assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")
        assert "<img src=x" not in html, page
    html = live.get(pages[2]).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert live.get(pages[2].replace("/version?", "/api/v1/models/version?")).json()["model"]["name"] == EVIL


def test_static_files_do_not_traverse(hostile: tuple[Catalog, Live, list[str]]) -> None:
    _, live, _ = hostile
    assert live.get("/static/app.css").status == 200
    assert live.get("/static/lineage.js").headers["content-type"].startswith(("text/javascript",
                                                                              "application/javascript"))
    for path in ("/static/../_config.py", "/static/%2e%2e/_config.py", "/static/..%2f_config.py",
                 "/static/%2e%2e%2f%2e%2e%2fconfig.py", "/static//etc/passwd", "/static/templates/base.html.j2"):
        reply = live.get(path)
        assert reply.status == 404, path
        assert b"ServerConfig" not in reply.body and b"root:" not in reply.body


def test_tokens_login_cookie_and_proxy_header(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    seed_catalog(catalog)
    config = ServerConfig(tokens=(Token("alice", hash_token(TOKEN), frozenset({"read"})),),
                          proxy_header="x-forwarded-user", trusted_proxies=("127.0.0.1",))
    with live_server(catalog, config) as live:
        reply = live.get("/version?ref=credit-scorer@1")
        assert reply.status == 303 and reply.headers["location"].startswith("/login?next=%2Fversion")
        assert live.get("/api/v1/models").status == 401
        assert live.get("/api/v1/models", Authorization="Bearer nope").status == 401
        assert live.get("/api/v1/models", Authorization=f"Bearer {TOKEN}").status == 200

        bad = live.request("POST", "/login", b"token=wrong&next=%2F",
                           {"Content-Type": "application/x-www-form-urlencoded"})
        assert bad.status == 401 and "not valid" in bad.text
        ok = live.request("POST", "/login", f"token={TOKEN}&next=//evil.example/".encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"})
        assert ok.status == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        session_cookie = cookie.split(";")[0]
        assert live.get("/", Cookie=session_cookie).status == 200
        page = live.get("/", Cookie=session_cookie).text
        assert "token:alice" in page
        lineage = live.request("POST", "/api/v1/lineage", b"{}", {"Cookie": session_cookie})
        assert lineage.status == 401  # a cookie never writes

        # the proxy header is trusted from 127.0.0.1 (the test client) with the read scope only
        assert live.get("/api/v1/models", **{"X-Forwarded-User": "dana@bank.example"}).status == 200
        assert "dana@bank.example" in live.get("/", **{"X-Forwarded-User": "dana@bank.example"}).text
        assert live.request("POST", "/api/v1/lineage", b"{}", {"X-Forwarded-User": "dana"}).status == 403
    untrusted = ServerConfig(tokens=config.tokens, proxy_header="x-forwarded-user", trusted_proxies=("10.0.0.0/8",))
    with live_server(catalog, untrusted) as live:
        assert live.get("/api/v1/models", **{"X-Forwarded-User": "mallory"}).status == 401
    catalog.dispose()


def test_server_config_precedence_and_errors(tmp_path: Path) -> None:
    digest = hash_token(TOKEN)
    (tmp_path / "governance.toml").write_text(
        'catalog_url = "sqlite:///x.db"\n[server]\nproxy_header = "X-Auth-User"\nmax_body_bytes = 4096\n'
        f'[[server.tokens]]\nname = "ci"\nsha256 = "{digest}"\nscopes = ["write", "read"]\n', encoding="utf-8")
    config = load_server_config(tmp_path, environ={})
    assert [(t.name, sorted(t.scopes)) for t in config.tokens] == [("ci", ["read", "write"])]
    assert config.proxy_header == "x-auth-user" and config.max_body_bytes == 4096
    assert config.match(TOKEN) is not None and config.match(TOKEN + "x") is None
    env = load_server_config(tmp_path, environ={"GOVERNANCE_SERVER_TOKENS": f"bot:write:{digest}",
                                                "GOVERNANCE_SERVER_MAX_BODY_BYTES": "2048"})
    assert [(t.name, sorted(t.scopes)) for t in env.tokens] == [("bot", ["write"])] and env.max_body_bytes == 2048

    from governance.config import load_settings

    assert load_settings(tmp_path, environ={}).catalog_url == "sqlite:///x.db"  # [server] does not upset it

    for text, message in (
        ('[server]\ntokens = [{name = "a", sha256 = "abc", scopes = ["read"]}]\n', "64 hex digits"),
        (f'[server]\ntokens = [{{name = "a", sha256 = "{digest}", scopes = ["admin"]}}]\n', "unknown scope 'admin'"),
        ('[server]\nport = 1\n', "unknown setting 'port'"),
        ('[server]\nproxy_header = "X Bad"\n', "proxy_header"),
        ('[server]\nmax_body_bytes = "lots"\n', "max_body_bytes"),
    ):
        (tmp_path / "governance.toml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_server_config(tmp_path, environ={})
    with pytest.raises(ConfigError, match="name:scope"):
        load_server_config(tmp_path / "nowhere", environ={"GOVERNANCE_SERVER_TOKENS": "just-a-name"})


def test_open_mode_only_on_loopback(tmp_path: Path) -> None:
    from governance.server import serve

    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with pytest.raises(ConfigError, match=r"only listens on 127\.0\.0\.1"):
        serve(catalog, ServerConfig(), host="0.0.0.0", port=5999)
    catalog.dispose()
