"""Schema migrations: models and migrations agree, old catalogs upgrade, first use is race-free."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from governance.catalog import Catalog
from governance.catalog._engine import _migrations_dir, _script_head


def _diff(url: str) -> list[object]:
    catalog = Catalog(url)
    with catalog.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    catalog.dispose()
    return list(diff)


def test_migrations_match_models_sqlite(tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'c.db'}") == []


@pytest.mark.postgres
def test_migrations_match_models_postgres(fresh_pg_url: str) -> None:
    assert _diff(fresh_pg_url) == []


def _history() -> list[str]:
    script = ScriptDirectory(str(_migrations_dir()))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _upgrade_keeps_data(url: str) -> None:
    """A catalog made by the first migration, with data in it, upgrades to head keeping its rows."""
    revisions = _history()
    assert len(revisions) >= 2, "the upgrade path needs at least two migrations to test"
    old = Catalog(url, upgrade=False)
    old.upgrade(revisions[0])
    assert old.current_revision() == revisions[0]
    with old.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO model (name, owner, tags, created_at) "
            "VALUES ('legacy', 'ops', '[]', '2025-01-01 00:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO model_version (model_id, version, params, metrics, card, features, created_at) "
            "VALUES (1, 1, '{\"C\": 2}', '{}', '{}', '[]', '2025-01-01 00:00:00')"))
    old.dispose()
    old = Catalog(url, upgrade=False)
    from governance.audit import audited

    with audited(old, "legacy-writer") as tx:  # the audit chain written under the old schema
        tx.record("model.create", "model:legacy", {"note": "before the upgrade"})
    old.dispose()

    new = Catalog(url)  # automatic upgrade on first use
    assert new.current_revision() == _script_head()
    with new.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name, owner FROM model")).all() == [("legacy", "ops")]
        assert conn.execute(sa.text("SELECT params FROM model_version")).scalar_one() in ('{"C": 2}', {"C": 2})
    from governance.audit import adopt_existing, verify_audit

    report = verify_audit(new)
    assert (report.first_bad_seq, report.count) == (None, 1)  # the chain written before the upgrade
    # rows from before state binding are reported, not blessed (issue 15) ...
    assert report.state is not None and (report.state.rows, report.state.unbound) == (2, 2) and not report.ok
    # ... until adoption binds those the log vouches for: the model its event created; the version was
    # written with plain SQL and no event ever recorded it, so it stays unbound
    adopted = adopt_existing(new, "dba")
    assert adopted.bound == {"model": 1} and adopted.unmatched == {"model_version": 1}
    after = verify_audit(new)
    assert after.state is not None and after.state.unbound == 1
    assert after.state.first_unbound == "model_version 1 has no audit event"
    new.dispose()


def test_old_sqlite_catalog_upgrades_without_data_loss(tmp_path: Path) -> None:
    _upgrade_keeps_data(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_old_postgres_catalog_upgrades_without_data_loss(fresh_pg_url: str) -> None:
    _upgrade_keeps_data(fresh_pg_url)


def _open_and_write(url: str, who: str) -> str:
    from governance.audit import audited
    from governance.catalog import Catalog, Model

    catalog = Catalog(url)
    with audited(catalog, who) as tx:
        tx.session.add(Model(name=f"model-{who}"))
        tx.record("model.create", f"model:model-{who}")
    revision = catalog.current_revision()
    catalog.dispose()
    return str(revision)


def _concurrent_first_use(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        revisions = pool.starmap(_open_and_write, [(url, f"p{i}") for i in range(4)])
    assert revisions == [_script_head()] * 4
    catalog = Catalog(url)
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM model")).scalar_one() == 4
        assert [r[0] for r in conn.execute(sa.text("SELECT seq FROM audit_event ORDER BY seq"))] == [1, 2, 3, 4]
    catalog.dispose()


def test_four_processes_create_sqlite_catalog_at_once(tmp_path: Path) -> None:
    _concurrent_first_use(f"sqlite:///{tmp_path / 'new' / 'catalog.db'}")


@pytest.mark.postgres
def test_four_processes_create_postgres_catalog_at_once(fresh_pg_url: str) -> None:
    _concurrent_first_use(fresh_pg_url)


def _downgrade(catalog: Catalog, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    with catalog.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _outbox_payload_becomes_optional(url: str) -> None:
    """0003: rows written before it keep their stored document and ship it unchanged; rows without a
    document are allowed; going back is refused while one is waiting, and works once it is built."""
    import json

    from governance.audit import audited
    from governance.catalog import OutboxEvent, utcnow
    from governance.openlineage._outbox import ship_round

    old = Catalog(url, upgrade=False)
    old.upgrade("0002")
    stored = {"eventType": "COMPLETE", "run": {"runId": "0190aaaa-0000-7000-8000-00000000000a"}, "note": "old"}
    with old.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ol_outbox (run_uuid, event_type, event_time, payload, attempts, next_attempt_at, "
                "created_at) VALUES (:u, 'COMPLETE', :t, :p, 0, :t, :t)"
            ),
            {"u": stored["run"]["runId"], "t": utcnow(), "p": json.dumps(stored)},
        )
    old.dispose()
    catalog = Catalog(url)
    try:
        assert catalog.current_revision() == _script_head()
        with audited(catalog, "t") as tx:  # a row as a step writes it now: no document yet
            now = utcnow()
            tx.session.add(OutboxEvent(run_uuid="0190aaaa-0000-7000-8000-00000000000b", event_type="START",
                                       event_time=now, next_attempt_at=now, created_at=now))
            tx.record("test.outbox", "outbox", {})
        with pytest.raises(RuntimeError, match="1 event\\(s\\) have no payload yet; run `gov sync`"):
            _downgrade(catalog, "0002")
        assert catalog.current_revision() == _script_head()
        sent: list[dict[str, object]] = []
        first = ship_round(catalog, sent.append, actor="t", transport_type="test")
        assert sent == [stored] and first.sent == 1  # the second row's run does not exist: it waits
        with catalog.engine.begin() as conn:  # once every row has a document, going back works
            conn.execute(sa.text("UPDATE ol_outbox SET payload = '{}' WHERE payload IS NULL"))
        _downgrade(catalog, "0002")
        assert catalog.current_revision() == "0002"
    finally:
        catalog.dispose()


def test_outbox_payload_migration_sqlite(tmp_path: Path) -> None:
    _outbox_payload_becomes_optional(f"sqlite:///{tmp_path / 'c.db'}")


@pytest.mark.postgres
def test_outbox_payload_migration_postgres(fresh_pg_url: str) -> None:
    _outbox_payload_becomes_optional(fresh_pg_url)


def test_the_schema_head_constant_is_alembics_head() -> None:
    """``SCHEMA_HEAD`` spares every command the alembic import; it must name the newest migration."""
    from governance.catalog._engine import SCHEMA_HEAD, alembic_head

    assert alembic_head() == SCHEMA_HEAD
