"""A receiver for MLflow's registry webhooks: verify the signature, then check alias moves.

MLflow (OSS, 3.3 and later) signs each delivery when the webhook has a secret.  Headers:
``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (Unix seconds) and ``X-MLflow-Signature`` =
``v1,`` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")), where ``body`` is the
exact request body (JSON: ``entity``, ``action``, ``timestamp``, ``data``).  A delivery is accepted
only with all three headers, a ``v1`` signature that matches (constant-time comparison) and a
timestamp at most ``max_age`` seconds (default 300) from now; anything else is refused before the
body is parsed, and a delivery id already handled is not acted on twice.

``model_version_alias.created`` and ``model_version_alias.deleted`` are compared with the catalog's
gated promotions exactly as ``gov mlflow reconcile`` does; a mismatch is recorded as an audited
``mlflow.webhook.finding``.  Other events are acknowledged and ignored.

The server mounts it as one POST route (the body must be read raw, before any JSON parsing)::

    receiver = WebhookReceiver(secret=os.environ["MLFLOW_WEBHOOK_SECRET"], catalog=catalog)

    async def mlflow_webhook(request):                       # Starlette
        body = await request.body()
        outcome = await run_in_threadpool(receiver.handle, request.headers, body)
        return JSONResponse(outcome.as_dict(), status_code=outcome.http_status)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from governance.audit import audited
from governance.catalog import AuditEvent, Catalog
from governance.errors import InputError
from governance.mlflow._reconcile import Finding, alias_finding

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookOutcome",
    "WebhookReceiver",
    "WebhookRejected",
    "sign_delivery",
    "verify_delivery",
]

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
_VERSION = "v1"
_DELIVERY_ACTION = "mlflow.webhook"
_FINDING_ACTION = "mlflow.webhook.finding"


class WebhookRejected(InputError):
    """A delivery that is not provably from MLflow (or is stale); answer 401, act on nothing."""


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return str(value)
    raise WebhookRejected(f"webhook: missing header {name}")


def sign_delivery(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    content = delivery_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), content, hashlib.sha256).digest()
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify_delivery(secret: str, headers: Mapping[str, str], body: bytes, *, max_age: float = 300,
                    now: float | None = None) -> str:
    """Check one delivery's signature and age; its delivery id.  Raises :class:`WebhookRejected`."""
    if not secret:
        raise WebhookRejected("webhook: no secret configured; unsigned deliveries are refused")
    delivery_id = _header(headers, DELIVERY_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp.isdigit():
        raise WebhookRejected(f"webhook: {TIMESTAMP_HEADER} is not Unix seconds: {timestamp[:40]!r}")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > max_age:
        raise WebhookRejected(f"webhook: {TIMESTAMP_HEADER} is {int(age)} s from now (at most {int(max_age)} s)")
    version, _, _ = signature.partition(",")
    if version != _VERSION:
        raise WebhookRejected(f"webhook: {SIGNATURE_HEADER} version {version[:10]!r} is not {_VERSION}")
    expected = sign_delivery(secret, delivery_id, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise WebhookRejected(f"webhook: {SIGNATURE_HEADER} does not match the body")
    return delivery_id


@dataclass(frozen=True)
class WebhookOutcome:
    """What a delivery led to; ``http_status`` is the answer to give MLflow."""

    status: str  # rejected | duplicate | ignored | ok | finding
    http_status: int
    event: str | None = None
    finding: Finding | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "event": self.event, "reason": self.reason,
                "finding": None if self.finding is None else self.finding.as_dict()}


class WebhookReceiver:
    """Verifies and handles MLflow registry webhook deliveries against one catalog."""

    def __init__(self, secret: str, catalog: Catalog, *, actor: str = "mlflow-webhook", max_age: float = 300,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.catalog = catalog
        self.actor = actor
        self.max_age = max_age
        self._clock = clock

    def handle(self, headers: Mapping[str, str], body: bytes) -> WebhookOutcome:
        """Verify, then act; never raises for a bad delivery (the outcome says why, with HTTP 401/400)."""
        try:
            delivery = verify_delivery(self._secret, headers, body, max_age=self.max_age, now=self._clock())
        except WebhookRejected as exc:
            return WebhookOutcome("rejected", 401, reason=str(exc))
        try:
            doc = json.loads(body)
            event = f"{doc['entity']}.{doc['action']}"
            data = doc.get("data") or {}
        except (ValueError, KeyError, TypeError) as exc:
            return WebhookOutcome("rejected", 400, reason=f"webhook: body is not an MLflow event: {exc}")
        if event not in ("model_version_alias.created", "model_version_alias.deleted"):
            return WebhookOutcome("ignored", 200, event=event)
        try:
            model, alias = str(data["name"]), str(data["alias"])
            version = int(data["version"]) if event.endswith("created") else None
        except (KeyError, TypeError, ValueError) as exc:
            return WebhookOutcome("rejected", 400, event=event, reason=f"webhook: data lacks {exc}")
        subject = f"mlflow-delivery:{delivery}"
        with audited(self.catalog, self.actor) as tx:
            seen = tx.session.exec(select(AuditEvent.seq).where(AuditEvent.action == _DELIVERY_ACTION,
                                                                AuditEvent.subject == subject)).first()
            if seen is not None:
                return WebhookOutcome("duplicate", 200, event=event)
            tx.record(_DELIVERY_ACTION, subject, {"event": event, "model": model, "alias": alias, "version": version})
            finding = alias_finding(tx.session, model, alias, version)
            if finding is not None:
                tx.record(_FINDING_ACTION, f"model:{model}@{alias}", {**finding.as_dict(), "delivery": delivery})
        if finding is None:
            return WebhookOutcome("ok", 200, event=event)
        return WebhookOutcome("finding", 200, event=event, finding=finding)
