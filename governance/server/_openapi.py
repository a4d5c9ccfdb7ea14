"""The OpenAPI 3.1 document of the API (``GET /openapi.json``), written out rather than inferred."""

from __future__ import annotations

from typing import Any

from governance._version import __version__

__all__ = ["openapi_document"]

_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
]
_REF = {"name": "ref", "in": "query", "required": True, "schema": {"type": "string"},
        "description": "MODEL, MODEL@VERSION or MODEL@ALIAS"}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _get(summary: str, params: list[dict[str, Any]], paged: bool = True) -> dict[str, Any]:
    return {"get": {
        "summary": summary,
        "parameters": params + (_PAGE if paged else []),
        "security": [{"bearer": ["read"]}, {"proxy": []}],
        "responses": {"200": {"description": "JSON document" + (" (items, limit, offset, total, next_offset)"
                                                                 if paged else "")},
                      "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR},
    }}


def openapi_document() -> dict[str, Any]:
    """What ``gov serve`` answers, for client generators and reviewers."""
    q = {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "name contains"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ml-governance server", "version": __version__,
                 "description": "Read API of the governance catalog and a Marquez-compatible lineage endpoint. "
                                "The server records no governance decision."},
        "components": _components(),
        "paths": {
            "/api/v1/mlflow/webhook": {
                "post": {
                    "summary": "MLflow registry webhook deliveries (HMAC-signed; alias moves without a gated "
                               "promotion become audited findings)",
                    "responses": {"200": {"description": "handled, ignored or a duplicate delivery"},
                                  "400": _ERROR, "401": _ERROR, "404": _ERROR},
                },
            },
            "/api/v1/lineage": _lineage_path(),
            "/api/v1/lineage/inbox": _get(
                "The lineage inbox: backlog, lag, last import error and refused events; with receipt=N what became "
                "of that POST (pending, imported, refused)",
                [{"name": "receipt", "in": "query", "schema": {"type": "integer"}}], paged=False),
            "/api/v1/models": _get("Models with owner, risk tier, stages and gate status", [q]),
            "/api/v1/models/detail": _get("A model: versions, aliases, waivers, history", [_REF]),
            "/api/v1/models/versions": _get("Versions of a model", [_REF]),
            "/api/v1/models/aliases": _get("Aliases (stages) of a model", [_REF], paged=False),
            "/api/v1/models/version": _get("A model version as its model card shows it", [_REF], paged=False),
            "/api/v1/models/evaluations": _get("Policy evaluations with check results and per-group metrics", [_REF]),
            "/api/v1/models/waivers": _get("Waivers of a model", [_REF]),
            "/api/v1/models/approvals": _get("Sign-offs of a model version", [_REF]),
            "/api/v1/models/history": _get("Promotion history of a model", [_REF]),
            "/api/v1/datasets": _get("Datasets", [q]),
            "/api/v1/datasets/version": _get("A dataset version: schema, statistics, producers, consumers", [
                {"name": "id", "in": "query", "required": True, "schema": {"type": "integer"}}]),
            "/api/v1/runs/detail": _get("A run", [
                {"name": "id", "in": "query", "required": True, "schema": {"type": "string"}}], paged=False),
            "/api/v1/audit": _get("Audit events, newest first", [
                {"name": n, "in": "query", "schema": {"type": "string"}}
                for n in ("actor", "action", "subject", "since", "until")]),
            "/api/v1/audit/verification": _get("The audit chain's verification and last checkpoint", [], paged=False),
            "/api/v1/search": _get("Search models, datasets, jobs and runs by name", [
                {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}], paged=False),
        },
    }


def _components() -> dict[str, Any]:
    return {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "a token from [server] tokens (scopes read, write)"},
            "proxy": {"type": "apiKey", "in": "header", "name": "X-Forwarded-User",
                      "description": "identity set by an authenticating reverse proxy (proxy_header)"},
        },
        "schemas": {
            "Error": {"type": "object", "properties": {
                "error": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "path": {"type": "string", "description": "JSON path in the request body"},
                    "message": {"type": "string"}}}},
                "accepted": {"type": "integer", "description": "valid events of the request that were "
                             "accepted all the same (see receipt)"},
                "receipt": {"type": "integer"},
                "status": {"type": "string", "description": "/api/v1/lineage/inbox?receipt=N"}}},
            "RunEvent": {"type": "object", "description": "an OpenLineage RunEvent",
                         "externalDocs": {"url": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}},
        },
    }


def _lineage_path() -> dict[str, Any]:
    """POST: the Marquez-compatible import; GET: the lineage graph around a node."""
    return {
        "post": {
            "summary": "Import OpenLineage events (as openlineage-python's HttpTransport sends them)",
            "security": [{"bearer": ["write"]}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/RunEvent"},
                {"type": "array", "items": {"$ref": "#/components/schemas/RunEvent"}}]}}},
                "description": "one event or an array; Content-Encoding gzip accepted"},
            "responses": {"201": {"description": "accepted: durable in the lineage inbox, imported "
                                                "shortly after (idempotent); no body, as Marquez",
                                  "headers": {
                                      "Location": {"schema": {"type": "string"}, "description":
                                                   "/api/v1/lineage/inbox?receipt=N: pending, imported "
                                                   "or refused"},
                                      "X-Lineage-Receipt": {"schema": {"type": "integer"}}}},
                          "400": _ERROR, "401": _ERROR, "403": _ERROR, "413": _ERROR,
                          "503": {"description": "the inbox is full or cannot store the events; retry "
                                                 "after Retry-After seconds",
                                  "content": _ERROR["content"]}},
        },
        **_get("Lineage graph around a node (Marquez's GET /api/v1/lineage shape)", [
            {"name": "nodeId", "in": "query", "required": True, "schema": {"type": "string"},
             "description": "model:NAME@VERSION, dataset:NAME@VERSION, or a node id from a graph"},
            {"name": "depth", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 20,
                                                        "default": 3}},
            {"name": "direction", "in": "query", "schema": {"enum": ["both", "upstream", "downstream"]}},
            {"name": "asOf", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        ], paged=False),
    }
