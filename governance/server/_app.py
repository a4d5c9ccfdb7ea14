"""``create_app``: the ASGI application (Starlette) over one catalog."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from governance.catalog import Catalog
from governance.server._api import api_routes
from governance.server._config import ServerConfig
from governance.server._lineage_in import LineageWriter
from governance.server._openapi import openapi_document
from governance.server._security import SecurityMiddleware
from governance.server._state import STATIC_DIR, ServerState, template_environment, warm_up
from governance.server._ui import ui_routes

__all__ = ["create_app"]


async def _openapi(_request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _health(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def _not_found(request: Request, _exc: Any) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": f"no such endpoint: {request.method} {request.url.path}"}, status_code=404)
    return PlainTextResponse("not found", status_code=404)


def create_app(catalog: Catalog, config: ServerConfig | None = None) -> Starlette:
    """The server for ``catalog``: read API, lineage endpoint and web UI behind :class:`SecurityMiddleware`.

    The caller owns ``catalog`` (the app does not dispose it); the lineage writer thread stops at shutdown.
    """
    settings = config if config is not None else ServerConfig()
    state = ServerState(catalog=catalog, config=settings, writer=LineageWriter(catalog),
                        templates=template_environment())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=warm_up, args=(state.warmed,), name="governance-server-warm-up", daemon=True).start()
        try:
            yield
        finally:
            state.writer.close()

    routes = [
        *api_routes(),
        *ui_routes(),
        Route("/openapi.json", _openapi),
        Route("/healthz", _health),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR), follow_symlink=False), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityMiddleware, config=settings)],
                    lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.server = state
    return app
