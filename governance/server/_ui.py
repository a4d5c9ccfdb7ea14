"""The web UI: server-rendered pages (Jinja2, autoescaped) over the same queries as the API.

Pages take their subjects as query parameters (``/model?ref=NAME``, ``/version?ref=NAME@2``,
``/dataset?id=12``, ``/run?id=UUID``, ``/lineage?node=model:NAME@2``), so any name is safe in a URL.
No page has inline script or style: ``/static/app.css`` and ``/static/lineage.js`` are the only assets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from governance.errors import CatalogError, InputError, NotFoundError
from governance.server import _queries as q
from governance.server._api import _int, _page, _required, _state, _time
from governance.server._charts import check_charts
from governance.server._graph import DIRECTIONS, MAX_DEPTH, edge_paths, lineage_view
from governance.server._security import TOKEN_COOKIE, Identity

__all__ = ["ui_routes"]

_SAFE_NEXT = re.compile(r"^/(?!/)[^\s\\]*$")
_NAV = (("/", "Inventory"), ("/datasets", "Datasets"), ("/audit", "Audit trail"), ("/search", "Search"))


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    state = _state(request)
    identity: Identity | None = request.scope.get("state", {}).get("identity")
    html = state.templates.get_template(template).render(
        nav=_NAV, path=request.url.path, identity=identity, catalog=state.catalog.display_url,
        url=lambda path, **params: path + ("?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})
                                           if any(v not in (None, "") for v in params.values()) else ""),
        **context)
    return HTMLResponse(html, status_code=status)


def _page_view(template: str, fn: Callable[[Request], dict[str, Any]]) -> Callable[[Request], Any]:
    def page(request: Request) -> Response:
        _state(request).wait_warm()
        try:
            context = fn(request)
        except NotFoundError as exc:
            return _render(request, "error.html.j2", 404, title="Not found", message=str(exc))
        except InputError as exc:
            return _render(request, "error.html.j2", 400, title="Bad request", message=str(exc))
        except CatalogError as exc:
            return _render(request, "error.html.j2", 503, title="Catalog unavailable", message=str(exc))
        return _render(request, template, **context)

    async def endpoint(request: Request) -> Response:
        """Queries and rendering in one worker thread: one hand-over per page, the event loop stays free."""
        response: Response = await anyio.to_thread.run_sync(page, request)
        return response

    endpoint.__name__ = fn.__name__
    return endpoint


def inventory(request: Request) -> dict[str, Any]:
    with _state(request).catalog.read() as session:
        page = q.models(session, _page(request, 100), request.query_params.get("q"))
    return {"title": "Model inventory", "page": page, "q": request.query_params.get("q", "")}


def model(request: Request) -> dict[str, Any]:
    doc = q.model_detail(_state(request).catalog, _required(request, "ref"), _page(request))
    return {"title": f"Model {doc['name']}", "model": doc}


def version(request: Request) -> dict[str, Any]:
    state = _state(request)
    context = q.model_version(state.catalog, _required(request, "ref"), state.frameworks)
    return {"title": context["title"], "card": context, "charts": check_charts(context["policies"])}


def lineage(request: Request) -> dict[str, Any]:
    params = request.query_params
    node = _required(request, "node")
    depth = _int(request, "depth", 3)
    direction = params.get("direction", "both")
    as_of = params.get("as_of") or None
    expand = [k for k in params.get("expand", "").split(",") if k]
    with _state(request).catalog.read() as session:
        view = lineage_view(session, node, depth=depth, direction=direction, as_of=as_of, expand=expand,
                            layout=True)
    root = view.nodes.get(view.root, {})
    return {"title": f"Lineage: {root.get('label', node)}", "view": view, "edges": edge_paths(view),
            "node": node, "depth": depth, "direction": direction, "as_of": as_of or "", "expand": expand,
            "directions": DIRECTIONS, "max_depth": MAX_DEPTH}


def datasets(request: Request) -> dict[str, Any]:
    with _state(request).catalog.read() as session:
        page = q.datasets(session, _page(request, 100), request.query_params.get("q"))
    return {"title": "Datasets", "page": page, "q": request.query_params.get("q", "")}


def dataset(request: Request) -> dict[str, Any]:
    with _state(request).catalog.read() as session:
        ref = request.query_params.get("ref")
        ident = q.dataset_version_id(session, ref) if ref else _int(request, "id")
        doc = q.dataset_version(session, ident, _page(request))
    return {"title": f"Dataset {doc['name']}@{doc['version']}", "ds": doc}


def run(request: Request) -> dict[str, Any]:
    with _state(request).catalog.read() as session:
        doc = q.run_detail(session, _required(request, "id"))
    return {"title": f"Run {doc.get('run_id', '')}", "run": doc}


def audit(request: Request) -> dict[str, Any]:
    state = _state(request)
    params = request.query_params
    filters = {k: params.get(k, "") for k in ("actor", "action", "subject", "since", "until")}
    with state.catalog.read() as session:
        page = q.audit_events(session, _page(request, 100), actor=filters["actor"] or None,
                              action=filters["action"] or None, subject=filters["subject"] or None,
                              since=_time(request, "since"), until=_time(request, "until"))
    status = state.audit.get(state.catalog)
    return {"title": "Audit trail", "page": page, "filters": filters, **status}


def search(request: Request) -> dict[str, Any]:
    text = request.query_params.get("q", "").strip()
    if not text:
        return {"title": "Search", "q": "", "found": None}
    with _state(request).catalog.read() as session:
        found = q.search(session, text)
    return {"title": f"Search: {text}", "q": text, "found": found}


async def card_download(request: Request) -> Response:
    """The model card as a file (``format=html`` or ``pdf``), as ``gov report model-card`` renders it."""
    from governance.reporting import render_model_card

    fmt = request.query_params.get("format", "html")
    if fmt not in ("html", "pdf"):
        return _render(request, "error.html.j2", 400, title="Bad request", message="format: expected html or pdf")
    try:
        ref = _required(request, "ref")
        await anyio.to_thread.run_sync(_state(request).wait_warm)
        body = await anyio.to_thread.run_sync(
            lambda: render_model_card(ref, format=fmt, catalog=_state(request).catalog))
    except NotFoundError as exc:
        return _render(request, "error.html.j2", 404, title="Not found", message=str(exc))
    except InputError as exc:
        return _render(request, "error.html.j2", 400, title="Bad request", message=str(exc))
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "_", ref)[:100] + f".model-card.{fmt}"
    media = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    return Response(data, media_type=media, headers={"content-disposition": f'attachment; filename="{filename}"'})


async def login(request: Request) -> Response:
    """A form that stores a read token in an HttpOnly, SameSite=Strict cookie (browsers send no bearer)."""
    state = _state(request)
    target = request.query_params.get("next", "/")
    if not _SAFE_NEXT.match(target):
        target = "/"
    if request.method == "POST":
        body = await request.body()
        form = parse_qs(body[:8192].decode("utf-8", "replace"), max_num_fields=10)
        token = (form.get("token") or [""])[0].strip()
        target = (form.get("next") or ["/"])[0]
        if not _SAFE_NEXT.match(target):
            target = "/"
        found = state.config.match(token) if token else None
        if found is None or "read" not in found.scopes:
            return _render(request, "login.html.j2", 401, title="Sign in", next=target,
                           message="That token is not valid for reading.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response
    return _render(request, "login.html.j2", title="Sign in", next=target, message=None)


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


def ui_routes() -> list[Route]:
    return [
        Route("/", _page_view("inventory.html.j2", inventory)),
        Route("/model", _page_view("model.html.j2", model)),
        Route("/version", _page_view("version.html.j2", version)),
        Route("/version/card", card_download),
        Route("/lineage", _page_view("lineage.html.j2", lineage)),
        Route("/datasets", _page_view("datasets.html.j2", datasets)),
        Route("/dataset", _page_view("dataset.html.j2", dataset)),
        Route("/run", _page_view("run.html.j2", run)),
        Route("/audit", _page_view("audit.html.j2", audit)),
        Route("/search", _page_view("search.html.j2", search)),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
