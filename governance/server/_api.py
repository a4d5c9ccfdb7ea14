"""The JSON API: ``POST /api/v1/lineage`` (Marquez-compatible) and the paginated read endpoints.

Models and datasets are addressed by query parameters (``ref=NAME@VERSION``, ``id=``), never by path
segments, so any name (slashes, quotes, markup) round-trips.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from governance.audit import parse_since
from governance.errors import CatalogError, InputError, NotFoundError
from governance.server import _queries as q
from governance.server._graph import lineage_view
from governance.server._inbox import InboxFull
from governance.server._journal import JournalError
from governance.server._lineage_in import EventProblem, parse_events
from governance.server._security import Identity
from governance.server._state import ServerState

__all__ = ["READ_ENDPOINTS", "api_routes", "read_body"]


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip``, at most ``limit`` bytes either way."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise InputError(f"$: Content-Encoding gzip but the body does not inflate ({exc})") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge
    return body


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def _error(status: int, message: str, /, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _guard(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Run a read endpoint in a worker thread and map the exception tree to HTTP statuses."""

    def call(request: Request) -> Any:
        _state(request).wait_warm()
        return fn(request)

    async def endpoint(request: Request) -> Response:
        try:
            result = await anyio.to_thread.run_sync(call, request)
        except NotFoundError as exc:
            return _error(404, str(exc))
        except InputError as exc:
            return _error(400, str(exc))
        except CatalogError as exc:
            return _error(503, str(exc))
        return JSONResponse(result)

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


async def post_lineage(request: Request) -> Response:
    """Marquez-compatible lineage endpoint: one event or a JSON array; 201 once the events are durable in
    the lineage inbox (imported shortly after; the body's ``receipt`` tells what became of them)."""
    state = _state(request)
    try:
        body = await read_body(request, state.config.max_body_bytes)
    except BodyTooLarge:
        return _error(413, f"$: body larger than {state.config.max_body_bytes} bytes (max_body_bytes)")
    except InputError as exc:
        return _error(400, str(exc), errors=[EventProblem("$", str(exc)).to_json()])
    texts, problems = parse_events(body)
    if not texts:
        return _error(400, f"{problems[0].path}: {problems[0].message}", errors=[p.to_json() for p in problems],
                      accepted=0)
    identity: Identity = request.scope["state"]["identity"]
    try:
        receipt = await state.inbox.accept(identity.name, texts, array=body.lstrip()[:1] == b"[")
    except InboxFull as exc:
        return _error(503, str(exc), headers={"Retry-After": "5"})
    except JournalError as exc:
        return _error(503, str(exc), headers={"Retry-After": "1"})
    where = f"/api/v1/lineage/inbox?receipt={receipt}"
    if problems:
        return _error(400, f"{problems[0].path}: {problems[0].message}", errors=[p.to_json() for p in problems],
                      accepted=len(texts), receipt=receipt, status=where)
    # as Marquez: 201 and no body; where to see what becomes of the events travels in headers
    return Response(status_code=201, headers={"location": where, "x-lineage-receipt": str(receipt)})


def get_inbox(request: Request) -> Any:
    """The lineage inbox: backlog, lag, last error and refused events; with ``receipt=N``, what became of
    that POST (``pending``, ``imported``, or ``refused`` with each refused event's path and reason)."""
    inbox = _state(request).inbox
    raw = request.query_params.get("receipt")
    if raw in (None, ""):
        return inbox.status()
    found = inbox.receipt(_int(request, "receipt"))
    if found is None:
        raise NotFoundError(f"receipt: no request {raw} in this server's lineage inbox")
    return found


def _page(request: Request, default: int = 50) -> q.Page:
    return q.Page.parse(request.query_params.get("limit"), request.query_params.get("offset"), default)


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise InputError(f"{name}: required query parameter")
    return value


def _int(request: Request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        if default is None:
            raise InputError(f"{name}: required query parameter")
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise InputError(f"{name}: expected a whole number, got {raw!r}") from None


def get_models(request: Request) -> Any:
    """Models with owner, risk tier, stages and the gate status of each stage's version."""
    with _state(request).catalog.read() as session:
        return q.models(session, _page(request), request.query_params.get("q"))


def get_model(request: Request) -> Any:
    """One model: versions (paginated), aliases, waivers, promotion history."""
    return q.model_detail(_state(request).catalog, _required(request, "ref"), _page(request))


def get_versions(request: Request) -> Any:
    """Versions of a model (newest first) with aliases and gate status."""
    doc = q.model_detail(_state(request).catalog, _required(request, "ref"), _page(request))
    return {"model": doc["name"], **doc["versions"]}


def get_aliases(request: Request) -> Any:
    """Aliases (stages) of a model and the version each points at."""
    doc = q.model_detail(_state(request).catalog, _required(request, "ref"), q.Page(1, 0))
    return {"model": doc["name"], "items": doc["aliases"]}


def get_version(request: Request) -> Any:
    """Everything the model card shows for MODEL@VERSION (card, evidence, checks, waivers, approvals)."""
    state = _state(request)
    return q.model_version(state.catalog, _required(request, "ref"), state.frameworks)


def get_evaluations(request: Request) -> Any:
    """Policy evaluations of MODEL@VERSION with check results and per-group metrics."""
    return q.evaluations(_state(request).catalog, _required(request, "ref"), _page(request))


def get_waivers(request: Request) -> Any:
    """Waivers of a model (active, expired, revoked)."""
    from governance.registry import list_waivers

    ref = _required(request, "ref")
    items = [r.as_dict() for r in list_waivers(model=ref.partition("@")[0], catalog=_state(request).catalog)]
    page = _page(request)
    return page.wrap(items[page.offset: page.offset + page.limit], len(items))


def get_approvals(request: Request) -> Any:
    """Sign-offs recorded for MODEL@VERSION."""
    from governance.registry import list_approvals

    items = [r.as_dict() for r in list_approvals(_required(request, "ref"), catalog=_state(request).catalog)]
    page = _page(request)
    return page.wrap(items[page.offset: page.offset + page.limit], len(items))


def get_history(request: Request) -> Any:
    """Promotion history of a model: promotions, refusals, rollbacks."""
    from governance.registry import history

    items = [r.as_dict() for r in history(_required(request, "ref").partition("@")[0], catalog=_state(request).catalog)]
    page = _page(request)
    return page.wrap(items[page.offset: page.offset + page.limit], len(items))


def get_lineage(request: Request) -> Any:
    """Lineage around nodeId, up and/or down, depth runs, as of a time (Marquez's graph shape)."""
    params = request.query_params
    with _state(request).catalog.read() as session:
        view = lineage_view(session, _required(request, "nodeId"), depth=_int(request, "depth", 3),
                            direction=params.get("direction", "both"), as_of=params.get("asOf"))
    return view.marquez()


def get_datasets(request: Request) -> Any:
    """Datasets (namespace, name, latest version)."""
    with _state(request).catalog.read() as session:
        return q.datasets(session, _page(request), request.query_params.get("q"))


def get_dataset_version(request: Request) -> Any:
    """A dataset version: schema, statistics, producers and consumers (paginated)."""
    with _state(request).catalog.read() as session:
        return q.dataset_version(session, _int(request, "id"), _page(request))


def get_run(request: Request) -> Any:
    """A run: job, status, parameters, code, inputs and outputs."""
    with _state(request).catalog.read() as session:
        return q.run_detail(session, _required(request, "id"))


def _time(request: Request, name: str) -> Any:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_since(raw)
    except InputError:
        raise InputError(f"{name}: expected an ISO date or time such as 2025-01-31 or 2025-01-31T12:00:00Z, "
                         f"got {raw!r}") from None


def get_audit(request: Request) -> Any:
    """Audit events, newest first, with filters (actor, action, subject, since, until)."""
    params = request.query_params
    with _state(request).catalog.read() as session:
        return q.audit_events(session, _page(request), actor=params.get("actor"), action=params.get("action"),
                              subject=params.get("subject"), since=_time(request, "since"),
                              until=_time(request, "until"))


def get_audit_verification(request: Request) -> Any:
    """The chain's verification status and the last checkpoint recorded in the catalog."""
    state = _state(request)
    return state.audit.get(state.catalog)


def get_search(request: Request) -> Any:
    """Models, datasets, jobs and runs by name."""
    with _state(request).catalog.read() as session:
        return q.search(session, _required(request, "q"))


READ_ENDPOINTS: tuple[tuple[str, Callable[[Request], Any]], ...] = (
    ("/api/v1/models", get_models),
    ("/api/v1/models/detail", get_model),
    ("/api/v1/models/versions", get_versions),
    ("/api/v1/models/aliases", get_aliases),
    ("/api/v1/models/version", get_version),
    ("/api/v1/models/evaluations", get_evaluations),
    ("/api/v1/models/waivers", get_waivers),
    ("/api/v1/models/approvals", get_approvals),
    ("/api/v1/models/history", get_history),
    ("/api/v1/lineage", get_lineage),
    ("/api/v1/lineage/inbox", get_inbox),
    ("/api/v1/datasets", get_datasets),
    ("/api/v1/datasets/version", get_dataset_version),
    ("/api/v1/runs/detail", get_run),
    ("/api/v1/audit", get_audit),
    ("/api/v1/audit/verification", get_audit_verification),
    ("/api/v1/search", get_search),
)


async def post_mlflow_webhook(request: Request) -> Response:
    """A delivery of MLflow's registry webhooks: verified by its HMAC signature, then an alias moved
    without a gated promotion becomes an audited finding (see :class:`governance.mlflow.WebhookReceiver`)."""
    state = _state(request)
    secret = state.config.mlflow_webhook_secret
    if not secret:
        return _error(404, "the MLflow webhook receiver is off: set GOVERNANCE_SERVER_MLFLOW_WEBHOOK_SECRET "
                           "to the secret the webhook was created with")
    from governance.mlflow import WebhookReceiver

    body = await request.body()
    receiver = WebhookReceiver(secret, state.catalog)
    outcome = await anyio.to_thread.run_sync(receiver.handle, dict(request.headers), body)
    return JSONResponse(outcome.as_dict(), status_code=outcome.http_status)


def api_routes() -> list[Route]:
    routes = [Route("/api/v1/lineage", post_lineage, methods=["POST"]),
              Route("/api/v1/mlflow/webhook", post_mlflow_webhook, methods=["POST"])]
    routes += [Route(path, _guard(fn), methods=["GET"]) for path, fn in READ_ENDPOINTS]
    return routes

