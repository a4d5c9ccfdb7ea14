"""MLflow registry webhooks: HMAC verification as MLflow documents it, and alias checks per delivery.

The unit tests build deliveries by hand from the documented scheme (``v1,`` + base64 HMAC-SHA256 of
``delivery_id.timestamp.body``); the end-to-end test has a real MLflow server deliver to a local HTTP
endpoint and hands what arrived to :class:`WebhookReceiver`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import col, select

from governance.audit import audited, verify_audit
from governance.catalog import AuditEvent, Catalog
from governance.lineage import record_model_version
from governance.mlflow import WebhookReceiver, WebhookRejected, sign_delivery, verify_delivery
from tests._mlflow_support import MlflowServer, mlflow_server  # noqa: F401 - session fixture

SECRET = "whsec-test-0123456789"
CARD = {"description": "scores credit", "intended_use": "loan triage", "limitations": "EU only",
        "ethical_considerations": "reviewed for disparate impact"}
DOCS_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: docs, version: 1.0.0}
checks:
  - id: docs.card
    uses: documentation.completeness
    assert: {gte: 1}
"""
NOW = 1_800_000_000


def _documented_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    content = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()


def _delivery(data: dict[str, object], *, event: tuple[str, str] = ("model_version_alias", "created"),
              timestamp: int = NOW, secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"entity": event[0], "action": event[1], "timestamp": "2027-01-15T08:00:00+00:00",
                       "data": data}).encode()
    delivery_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
               "X-MLflow-Timestamp": str(timestamp),
               "X-MLflow-Signature": _documented_signature(secret, delivery_id, str(timestamp), body)}
    return headers, body


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.dispose()


def _receiver(catalog: Catalog) -> WebhookReceiver:
    return WebhookReceiver(SECRET, catalog, clock=lambda: float(NOW + 5))


def test_signature_is_the_documented_scheme() -> None:
    body = b'{"entity": "model_version", "action": "created", "data": {}}'
    assert sign_delivery(SECRET, "d-1", "1800000000", body) == _documented_signature(SECRET, "d-1", "1800000000",
                                                                                     body)
    headers = {"x-mlflow-delivery-id": "d-1", "x-mlflow-timestamp": "1800000000",  # header names are case-free
               "x-mlflow-signature": _documented_signature(SECRET, "d-1", "1800000000", body)}
    assert verify_delivery(SECRET, headers, body, now=NOW) == "d-1"


@pytest.mark.parametrize(("change", "message"), [
    (lambda h, b: ({**h, "X-MLflow-Signature": h["X-MLflow-Signature"][:-4] + "AAA="}, b), "does not match"),
    (lambda h, b: (h, b.replace(b'"3"', b'"4"')), "does not match"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "X-MLflow-Signature"}, b), "missing header X-MLflow-Signature"),
    (lambda h, b: ({**h, "X-MLflow-Signature": "v2," + h["X-MLflow-Signature"][3:]}, b), "is not v1"),
    (lambda h, b: ({**h, "X-MLflow-Timestamp": "soon"}, b), "is not Unix seconds"),
    (lambda h, b: ({**h, "X-MLflow-Delivery-Id": "other"}, b), "does not match"),
])
def test_forged_or_altered_deliveries_are_refused(change: object, message: str) -> None:
    headers, body = _delivery({"name": "credit", "alias": "production", "version": "3"})
    changed_headers, changed_body = change(headers, body)  # type: ignore[operator]
    with pytest.raises(WebhookRejected, match=message):
        verify_delivery(SECRET, changed_headers, changed_body, now=NOW)


def test_wrong_secret_stale_deliveries_and_no_secret_are_refused() -> None:
    headers, body = _delivery({"name": "credit"}, secret="another-secret")
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_delivery(SECRET, headers, body, now=NOW)
    headers, body = _delivery({"name": "credit"}, timestamp=NOW - 301)
    with pytest.raises(WebhookRejected, match=r"-?301 s from now \(at most 300 s\)"):
        verify_delivery(SECRET, headers, body, now=NOW)
    with pytest.raises(WebhookRejected, match="no secret configured"):
        verify_delivery("", *_delivery({}), now=NOW)


def _model_with_versions(catalog: Catalog, name: str, count: int) -> None:
    with audited(catalog, "tester") as tx:
        for number in range(1, count + 1):
            record_model_version(tx, name, artifact_hash=f"{number:064x}", hash_algo="sha256-tree", card=CARD)


def test_receiver_records_an_alias_set_around_the_gate_once(cat: Catalog) -> None:
    from governance.registry import promote

    _model_with_versions(cat, "credit", 2)
    receiver = _receiver(cat)
    headers, body = _delivery({"name": "credit", "alias": "production", "version": "2"})
    outcome = receiver.handle(headers, body)
    assert (outcome.status, outcome.http_status, outcome.event) == ("finding", 200, "model_version_alias.created")
    assert outcome.finding is not None and outcome.finding.kind == "ungated"
    assert outcome.finding.message == ("credit@production -> version 2 in MLflow without a matching PASS "
                                       "(no gated promotion of this alias)")
    assert receiver.handle(headers, body).status == "duplicate"
    with cat.read() as session:
        actions = session.exec(select(AuditEvent.action).order_by(col(AuditEvent.seq))).all()
    assert actions[-2:] == ["mlflow.webhook", "mlflow.webhook.finding"]

    report = promote("credit@2", to="production", policy=_pack(cat, DOCS_PACK), catalog=cat, actor="alice")
    assert report.decision is not None and report.decision["action"] == "promote"
    gated = receiver.handle(*_delivery({"name": "credit", "alias": "production", "version": "2"}))
    assert (gated.status, gated.finding) == ("ok", None)
    deleted = receiver.handle(*_delivery({"name": "credit", "alias": "production"},
                                         event=("model_version_alias", "deleted")))
    assert deleted.finding is not None and deleted.finding.kind == "missing"
    other = receiver.handle(*_delivery({"name": "credit", "version": "1"}, event=("model_version", "created")))
    assert (other.status, other.event) == ("ignored", "model_version.created")
    forged_headers, forged_body = _delivery({"name": "credit", "alias": "production", "version": "1"},
                                            secret="guess")
    assert receiver.handle(forged_headers, forged_body).http_status == 401
    assert verify_audit(cat).ok


def _pack(catalog: Catalog, text: str) -> Path:
    path = Path(str(catalog.sqlite_path)).parent / "open.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class _Sink(BaseHTTPRequestHandler):
    deliveries: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.deliveries.put((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*")
@pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*")
def test_a_real_mlflow_delivery_verifies_and_is_checked(mlflow_server: MlflowServer, cat: Catalog) -> None:  # noqa: F811
    import mlflow

    name = f"hooked-{uuid.uuid4().hex[:8]}"
    sink = type("Sink", (_Sink,), {"deliveries": queue.Queue()})
    http = ThreadingHTTPServer(("127.0.0.1", 0), sink)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    client = mlflow.MlflowClient(mlflow_server.uri)
    hook = client.create_webhook(name=name, url=f"http://127.0.0.1:{http.server_address[1]}/mlflow",
                                 events=["model_version_alias.created"], secret=SECRET)
    try:
        client.create_registered_model(name)
        client.create_model_version(name, source="s3://example-bucket/models/hooked")
        _model_with_versions(cat, name, 1)
        client.set_registered_model_alias(name, "production", "1")
        headers, body = sink.deliveries.get(timeout=30)
    finally:
        client.delete_webhook(hook.webhook_id)
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
    outcome = WebhookReceiver(SECRET, cat).handle(headers, body)
    assert outcome.event == "model_version_alias.created"
    assert outcome.finding is not None
    assert (outcome.finding.model, outcome.finding.alias, outcome.finding.mlflow_version) == (name, "production", 1)
    assert WebhookReceiver("not-the-secret", cat).handle(headers, body).http_status == 401
    assert WebhookReceiver(SECRET, cat).handle(headers, body + b" ").http_status == 401
