"""``create_app``: the ASGI application (Starlette) over one catalog."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from governance.catalog import Catalog
from governance.server._api import api_routes
from governance.server._config import ServerConfig, default_inbox_dir
from governance.server._inbox import LineageInbox
from governance.server._openapi import openapi_document
from governance.server._security import SecurityMiddleware
from governance.server._state import STATIC_DIR, ServerState, template_environment, warm_up
from governance.server._ui import ui_routes

__all__ = ["create_app"]


async def _openapi(_request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _health(request: Request) -> Response:
    """Liveness, and the lineage inbox's backlog for monitoring (counts only: error texts need the read scope)."""
    state: ServerState = request.app.state.server
    return JSONResponse({"status": "ok", "lineage_inbox": state.inbox.status(detail=False)})


async def _not_found(request: Request, _exc: Any) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": f"no such endpoint: {request.method} {request.url.path}"}, status_code=404)
    return PlainTextResponse("not found", status_code=404)


def create_app(catalog: Catalog, config: ServerConfig | None = None) -> Starlette:
    """The server for ``catalog``: read API, lineage endpoint and web UI behind :class:`SecurityMiddleware`.

    The caller owns ``catalog`` (the app does not dispose it).  The lineage inbox (``config.inbox_dir``, by
    default :func:`~governance.server.default_inbox_dir`) opens at start-up, imports what an earlier
    run accepted, and stops at shutdown after catching up (for up to 20 s; the rest waits on disk).
    """
    import governance.openlineage  # noqa: F401 - POST /api/v1/lineage validates with it; before warm-up

    settings = config if config is not None else ServerConfig()
    warmed = threading.Event()
    in_memory = catalog.backend == "sqlite" and catalog.sqlite_path is None
    inbox = LineageInbox(catalog, settings.inbox_dir or default_inbox_dir(catalog),
                         max_pending_bytes=settings.max_inbox_bytes, ready=lambda: warmed.wait(timeout=120),
                         temporary=in_memory and settings.inbox_dir is None)
    state = ServerState(catalog=catalog, config=settings, inbox=inbox, templates=template_environment(),
                        warmed=warmed)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=warm_up, args=(state.warmed,), name="governance-server-warm-up", daemon=True).start()
        inbox.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(inbox.close)

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
