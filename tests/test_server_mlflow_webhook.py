"""``POST /api/v1/mlflow/webhook`` on a live server: MLflow's signed deliveries become audited findings.

The route needs no API token (MLflow cannot send one); only deliveries signed with the configured
HMAC secret are acted on, and without a secret the receiver is off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import col, select

from governance.catalog import AuditEvent, Catalog
from governance.errors import ConfigError
from governance.server import ServerConfig
from tests._server_support import live_server
from tests.test_mlflow_webhook import SECRET, _delivery, _model_with_versions

TOKEN_CONFIG = ServerConfig()


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    _model_with_versions(catalog, "credit", 2)
    yield catalog
    catalog.dispose()


def test_a_signed_delivery_of_an_ungated_alias_move_is_a_finding(cat: Catalog) -> None:
    config = replace(TOKEN_CONFIG, mlflow_webhook_secret=SECRET)
    with live_server(cat, config) as live:
        headers, body = _delivery({"name": "credit", "alias": "production", "version": "2"},
                                  timestamp=int(time.time()))
        reply = live.request("POST", "/api/v1/mlflow/webhook", body, headers)
        assert reply.status == 200, reply.text
        assert reply.json()["status"] == "finding"
        assert live.request("POST", "/api/v1/mlflow/webhook", body, headers).json()["status"] == "duplicate"
        forged_headers, forged = _delivery({"name": "credit", "alias": "production", "version": "1"},
                                           timestamp=int(time.time()), secret="not-the-secret")
        assert live.request("POST", "/api/v1/mlflow/webhook", forged, forged_headers).status == 401
    with cat.read() as session:
        actions = session.exec(select(AuditEvent.action).order_by(col(AuditEvent.seq))).all()
    assert actions[-2:] == ["mlflow.webhook", "mlflow.webhook.finding"]


def test_without_a_secret_the_receiver_is_off(cat: Catalog) -> None:
    with live_server(cat, TOKEN_CONFIG) as live:
        headers, body = _delivery({"name": "credit", "alias": "production", "version": "2"},
                                  timestamp=int(time.time()))
        reply = live.request("POST", "/api/v1/mlflow/webhook", body, headers)
        assert reply.status == 404 and "GOVERNANCE_SERVER_MLFLOW_WEBHOOK_SECRET" in reply.text
    with cat.read() as session:
        assert "mlflow.webhook" not in session.exec(select(AuditEvent.action)).all()


def test_the_secret_comes_from_the_environment_only(tmp_path: Path) -> None:
    from governance.server._config import load_server_config

    config = load_server_config(tmp_path, {"GOVERNANCE_SERVER_MLFLOW_WEBHOOK_SECRET": "s3cret"})
    assert config.mlflow_webhook_secret == "s3cret" and "s3cret" not in repr(config)
    (tmp_path / "governance.toml").write_text('[server]\nmlflow_webhook_secret = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting 'mlflow_webhook_secret'"):
        load_server_config(tmp_path, {})
