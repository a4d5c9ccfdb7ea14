"""ASGI middleware: who is asking (tokens, a trusted proxy header, a login cookie), what they may do,
security headers on every response, and the body size limit.

Paths and the scope they need:

* ``POST /api/v1/lineage``: ``write``, by bearer token only (never a cookie, so a page cannot post
  lineage on a user's behalf), or the proxy identity when ``proxy_scopes`` includes ``write``;
* ``/static/``, ``/login``, ``/healthz``, ``/openapi.json``: nobody;
* ``POST /api/v1/mlflow/webhook``: no token (MLflow cannot send one); the receiver accepts only
  deliveries signed with the configured HMAC secret;
* everything else: ``read`` (bearer token, the ``gov_token`` cookie set by ``/login``, or the proxy).

With no token and no proxy configured the server is in *open* mode, which :func:`governance.server.serve`
only allows on a loopback address: the local user has both scopes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from governance.server._config import ServerConfig

__all__ = ["CSP", "TOKEN_COOKIE", "Identity", "SecurityMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "gov_token"  # noqa: S105 - the cookie's name, not a secret
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_PUBLIC = ("/static/", "/login", "/healthz", "/openapi.json", "/favicon.ico", "/api/v1/mlflow/webhook")


@dataclass(frozen=True)
class Identity:
    """Who made the request (``name``), how they were recognised (``via``) and what they may do."""

    name: str
    via: str  # token | cookie | proxy | open
    scopes: frozenset[str]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _trusted(peer: str | None, proxies: tuple[str, ...]) -> bool:
    if peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if address in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    def identify(self, scope: Scope) -> Identity | None:
        config = self.config
        auth = _header(scope, b"authorization")
        if auth is not None and auth[:7].lower() == "bearer ":
            token = config.match(auth[7:].strip())
            return None if token is None else Identity(f"token:{token.name}", "token", token.scopes)
        if config.proxy_header is not None:
            client = scope.get("client")
            user = _header(scope, config.proxy_header.encode())
            if user and _trusted(client[0] if client else None, config.trusted_proxies):
                return Identity(user.strip()[:200], "proxy", config.proxy_scopes)
        cookie_header = _header(scope, b"cookie")
        if cookie_header and config.tokens:
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(cookie_header)
            except Exception:  # noqa: BLE001 - a malformed cookie header is no identity
                return None
            morsel = cookie.get(TOKEN_COOKIE)
            token = config.match(morsel.value) if morsel is not None else None
            if token is not None:
                return Identity(f"token:{token.name}", "cookie", token.scopes & {"read"})
        if config.open_access:
            return Identity("local", "open", frozenset({"read", "write"}))
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_HEADERS)
                if not path.startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        identity = self.identify(scope)
        scope.setdefault("state", {})["identity"] = identity
        if path.startswith(_PUBLIC):
            await self.app(scope, receive, send_with_headers)
            return
        writing = path.rstrip("/") == "/api/v1/lineage" and method == "POST"
        needed = "write" if writing else "read"
        if identity is not None and writing and identity.via == "cookie":
            identity = None
        if identity is None or needed not in identity.scopes:
            await self._deny(scope, send_with_headers, identity, needed, path)
            return
        await self.app(scope, receive, send_with_headers)

    async def _deny(self, scope: Scope, send: Send, identity: Identity | None, needed: str, path: str) -> None:
        wants_html = path == "/" or not path.startswith("/api/")
        if identity is None and wants_html and scope.get("method") == "GET":
            target = path + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
            location = "/login?next=" + quote(target, safe="")
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        status = 401 if identity is None else 403
        reason = ("authentication required: send `Authorization: Bearer TOKEN`" if identity is None
                  else f"{identity.name} lacks the {needed!r} scope")
        body = json.dumps({"error": reason}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if identity is None:
            headers.append((b"www-authenticate", b'Bearer realm="governance"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
