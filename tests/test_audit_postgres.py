"""PostgreSQL: ``gov audit harden`` makes the audit tables append-only for the application role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from governance.audit import append_only_sql, audited, harden_postgres, verify_audit
from governance.catalog import Catalog, Model, clear_catalog_cache
from governance.cli import main
from governance.errors import InputError
from governance.registry import promote

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[1]


def test_print_sql_gives_the_script_harden_applies(capsys: pytest.CaptureFixture[str]) -> None:
    from governance.cli import main

    assert main(["audit", "harden", "--print-sql"]) == 0
    out = capsys.readouterr().out
    assert out == append_only_sql()
    assert "REVOKE UPDATE, DELETE, TRUNCATE" in out


@pytest.fixture
def app_role(fresh_pg_url: str) -> Iterator[tuple[str, str]]:
    """A login role with ordinary DML rights on the fresh catalog (not owner, not superuser)."""
    Catalog(fresh_pg_url).dispose()  # migrate as the owner
    role = f"govapp_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(fresh_pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public "
                             f'TO "{role}"')
        conn.exec_driver_sql(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    app_url = make_url(fresh_pg_url).set(username=role).render_as_string(hide_password=False)
    yield role, app_url
    clear_catalog_cache()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
        conn.exec_driver_sql(f'DROP ROLE "{role}"')
    admin.dispose()


def _try(url: str, statement: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        return str(exc.orig)
    finally:
        engine.dispose()
    return None


def test_harden_blocks_update_delete_truncate_and_keeps_appends(
        app_role: tuple[str, str], fresh_pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    role, app_url = app_role
    app = Catalog(app_url)
    try:
        for i in range(3):
            with audited(app, "app") as tx:
                tx.session.add(Model(name=f"m{i}"))
                tx.session.flush()
                tx.record("model.create", f"model:m{i}")
        # before hardening the application role could rewrite history
        assert _try(app_url, "UPDATE audit_event SET actor = 'x' WHERE seq = 1") is None
        assert not verify_audit(app).ok
        assert _try(app_url, "UPDATE audit_event SET actor = 'app' WHERE seq = 1") is None
        assert verify_audit(app).ok

        assert main(["--catalog", fresh_pg_url, "--actor", "dba", "audit", "harden", "--role", role]) == 0
        assert f"append-only for role {role}" in capsys.readouterr().out
        assert main(["--catalog", fresh_pg_url, "audit", "harden", "--role", role]) == 0  # idempotent

        for statement in ("UPDATE audit_event SET actor = 'x' WHERE seq = 1",
                          "DELETE FROM audit_event WHERE seq = 2",
                          "TRUNCATE audit_event", "UPDATE audit_checkpoint SET seq = 0"):
            error = _try(app_url, statement)
            assert error is not None and "permission denied" in error, (statement, error)
        # the trigger stops the owner too
        error = _try(fresh_pg_url, "DELETE FROM audit_event WHERE seq = 2")
        assert error is not None and "append-only: DELETE on audit_event" in error
        error = _try(fresh_pg_url, "TRUNCATE audit_event")
        assert error is not None and "append-only: TRUNCATE on audit_event" in error

        # other tables and appends still work for the application
        with audited(app, "app") as tx:
            model = tx.session.get(Model, 1)
            assert model is not None
            model.description = "updated"
            tx.record("model.update", "model:m0")
        report = verify_audit(app)
        assert report.ok
        assert report.count == 6  # 3 creates, 2 harden events, 1 update
    finally:
        app.dispose()


def test_harden_refuses_bad_roles(app_role: tuple[str, str], fresh_pg_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    catalog = Catalog(fresh_pg_url)
    try:
        with pytest.raises(InputError, match="no PostgreSQL role named nobody_here"):
            harden_postgres(catalog, "nobody_here", "dba")
        with pytest.raises(InputError, match="is a superuser"):
            harden_postgres(catalog, "postgres", "dba")
        assert verify_audit(catalog).count == 0  # nothing was recorded for the failed attempts
    finally:
        catalog.dispose()
    assert main(["--catalog", fresh_pg_url, "audit", "harden", "--role", "nobody_here"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gov: error: gov audit harden --role nobody_here: no PostgreSQL role named")
    assert len(err.splitlines()) == 1


GUARD_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: open, version: 1.0.0}
signatures: optional
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.5}
"""


def test_harden_guards_every_state_table_the_gate_reads(app_role: tuple[str, str], fresh_pg_url: str,
                                                        gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, item 4: after `gov audit harden --role app`, the application role cannot write a state
    table except through the audited path; the library itself keeps working as that role."""
    from tests._signoff_support import add_model_version, make_team

    role, app_url = app_role
    owner = Catalog(fresh_pg_url)
    harden_postgres(owner, role, "dba")
    owner.dispose()
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", app_url)
    team = make_team(gov_env, monkeypatch)
    add_model_version(team)  # registry, evidence, lineage rows written as the application role
    pack = team.pack("open", GUARD_PACK)
    report = promote("credit@1", to="production", policy=pack, catalog=team.catalog, actor="alice",
                     raise_on_refusal=False)
    assert report.decision["action"] == "promote"
    with team.catalog.read() as session:
        model_id = session.execute(sa.text("SELECT id FROM model")).scalar_one()
        head = session.execute(sa.text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")).one()
    forged_waiver = ("INSERT INTO waiver (model_id, check_id, reason, requester, approver, expires_at, created_at) "
                     f"VALUES ({model_id}, 'perf.accuracy', 'forged', 'mallory', 'ceo', '2099-01-01', now())")
    err = _try(app_url, forged_waiver)
    assert err is not None and "waiver" in err and "without an audit event that binds it" in err
    # an event in the same transaction that does not name the row does not bind it
    payload = '{"action":"waiver.create","actor":"mallory","data":{},"subject":"model:credit","time":"x"}'
    forged_event = ("INSERT INTO audit_event (seq, time, actor, action, subject, payload, prev_hash, hash) VALUES "
                    f"({head.seq + 1}, now(), 'mallory', 'waiver.create', 'model:credit', "
                    f"convert_to('{payload}', 'UTF8'), '{head.hash}', repeat('a', 64))")
    err = _try(app_url, f"{forged_waiver}; {forged_event}")
    assert err is not None and "without an audit event that binds it" in err
    for statement in ("UPDATE model_alias SET alias = alias", "UPDATE evidence SET kind = kind",
                      "UPDATE model SET owner = 'mallory'", "DELETE FROM promotion_event"):
        err = _try(app_url, statement)
        assert err is not None and "without an audit event that binds it" in err, statement
    for statement in ("TRUNCATE waiver", "DELETE FROM audit_touch", "INSERT INTO audit_touch (xid, tbl, row_id) "
                      "VALUES ('1', 'waiver', 1)"):
        err = _try(app_url, statement)
        assert err is not None and "permission denied" in err, statement
    assert verify_audit(team.catalog).ok  # nothing the role tried got in
    again = promote("credit@1", to="staging", policy=pack, catalog=team.catalog, actor="alice",
                    raise_on_refusal=False)
    assert again.decision["action"] == "promote"
    team.catalog.dispose()
