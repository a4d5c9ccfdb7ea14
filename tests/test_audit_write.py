"""The write path's details: exact payload bytes on every backend, events visible inside their own
transaction, and the head read under the PostgreSQL chain lock seeing the previous holder's commit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from governance.audit import audited, canonical_json, iter_chain, link_hash, verify_audit
from governance.audit._chain import format_time
from governance.catalog import AuditEvent, Catalog, Model

# Non-ASCII in every field that is hashed, and floats whose shortest repr must survive exactly.
DATA: dict[str, Any] = {
    "name": "Zoë's modèle — 模型 🚀",
    "quote": "tab\there \"quoted\" back\\slash \u2028 \x00",
    "floats": [0.1 + 0.2, 1e-300, 1.7976931348623157e308, -0.0, 5e-324, 123456789.12345678, 1.0],
    "nested": {"ß": 2.5, "ключ": [3.14159, -2.718281828459045]},
}
ACTOR = "jürgen.müller"
SUBJECT = "model:kredit-bewertung-ü@3"


def _rows(catalog: Catalog) -> list[dict[str, Any]]:
    with catalog.engine.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM audit_event ORDER BY seq"))
        return [dict(r) for r in result.mappings()]


def test_non_ascii_and_floats_round_trip_byte_for_byte(catalog: Catalog) -> None:
    with audited(catalog, ACTOR) as tx:
        event = tx.record("model.evaluate", SUBJECT, DATA)
    [stored] = _rows(catalog)
    # The column holds bytes (bytea/BLOB), exactly the bytes that were hashed.
    assert isinstance(stored["payload"], bytes)
    assert stored["payload"] == event.payload
    expected = canonical_json({"action": "model.evaluate", "actor": ACTOR, "data": DATA,
                               "subject": SUBJECT, "time": format_time(event.time)})
    assert stored["payload"] == expected
    assert "模型".encode() in stored["payload"]  # UTF-8, not \u escapes
    body = json.loads(stored["payload"])
    assert body["data"]["floats"] == DATA["floats"]
    assert [repr(x) for x in body["data"]["floats"]] == [repr(x) for x in DATA["floats"]]
    assert (stored["actor"], stored["subject"]) == (ACTOR, SUBJECT)
    assert stored["hash"] == link_hash(1, stored["prev_hash"], stored["payload"])
    report = verify_audit(catalog)
    assert report.ok, report.reason
    assert report.head.hash == event.hash


def test_nan_and_infinity_are_hashed_as_null(catalog: Catalog) -> None:
    with audited(catalog, ACTOR) as tx:
        tx.record("x", SUBJECT, {"nan": float("nan"), "inf": float("inf"), "ok": 1.5})
    [stored] = _rows(catalog)
    assert json.loads(stored["payload"])["data"] == {"inf": None, "nan": None, "ok": 1.5}
    assert verify_audit(catalog).ok


@pytest.fixture
def pg_catalog(fresh_pg_url: str) -> Iterator[Catalog]:
    catalog = Catalog(fresh_pg_url)
    yield catalog
    catalog.dispose()


@pytest.mark.postgres
def test_a_chain_written_on_sqlite_verifies_identically_on_postgresql(
        sqlite_catalog: Catalog, pg_catalog: Catalog) -> None:
    for i in range(3):
        with audited(sqlite_catalog, ACTOR) as tx:
            tx.record("model.evaluate", SUBJECT, {**DATA, "i": i})
    sqlite_report = verify_audit(sqlite_catalog)
    assert sqlite_report.ok and sqlite_report.count == 3
    # Move the rows as typed values (time as a datetime), as a backup/restore would.
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with sqlite_catalog.engine.connect() as src:
        rows = [dict(r) for r in src.execute(sa.select(table).order_by(table.c.seq)).mappings()]
    with pg_catalog.engine.begin() as dst:
        dst.execute(table.insert(), rows)
    pg_report = verify_audit(pg_catalog)
    assert pg_report.ok, pg_report.reason
    assert pg_report.head == sqlite_report.head
    with sqlite_catalog.read() as s1, pg_catalog.read() as s2:
        assert [r[5] for r in iter_chain(s1)] == [bytes(r[5]) for r in iter_chain(s2)]
    # ... and the chain keeps growing on PostgreSQL from the restored head.
    with audited(pg_catalog, ACTOR) as tx:
        tx.record("model.promote", SUBJECT, {"to": "prod"})
    assert verify_audit(pg_catalog).count == 4


def test_events_are_written_at_commit_and_the_last_carries_the_state_written(catalog: Catalog) -> None:
    with audited(catalog, "alice") as tx:
        first = tx.record("a", "s", {"k": 1})
        assert first.seq == 1
        count = tx.session.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
        assert count == 0  # numbered now, written after the transaction's last write
        tx.session.add(Model(name="m1"))
        second = tx.record("b", "s")
        assert second.seq == 2
    rows = _rows(catalog)
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[1]["prev_hash"] == first.hash == second.prev_hash
    model_id = _model_id(catalog, "m1")
    assert b'"state"' not in rows[0]["payload"]
    state = json.loads(rows[1]["payload"])["state"]
    assert list(state) == ["model"] and list(state["model"]) == [str(model_id)]
    assert len(state["model"][str(model_id)]) == 64
    assert verify_audit(catalog).count == 2


def _model_id(catalog: Catalog, name: str) -> int:
    with catalog.read() as session:
        return int(session.execute(sa.text("SELECT id FROM model WHERE name = :n"), {"n": name}).scalar_one())


def test_event_recorded_before_a_failing_statement_rolls_back_with_it(catalog: Catalog) -> None:
    with audited(catalog, "alice") as tx:
        tx.session.add(Model(name="dup"))
        tx.record("model.create", "model:dup")
    failing = pytest.raises(sa.exc.IntegrityError)
    with failing, audited(catalog, "alice") as tx:
        tx.record("model.create", "model:dup")
        tx.session.add(Model(name="dup"))
        tx.session.flush()
    assert [r["seq"] for r in _rows(catalog)] == [1]
    with audited(catalog, "alice") as tx:
        assert tx.record("model.touch", "model:dup").seq == 2
    assert verify_audit(catalog).ok


@pytest.mark.postgres
def test_head_is_read_after_the_lock_is_granted(pg_catalog: Catalog) -> None:
    """A writer that waited for the chain lock must see the link its predecessor committed while it
    waited (a head read in the same statement as the lock would see a stale snapshot and collide on
    ``seq``)."""
    with audited(pg_catalog, "a") as tx:
        tx.record("seed", "s")
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        with audited(pg_catalog, "first") as tx:
            holding.set()
            release.wait(30)
            outcome["first"] = tx.record("first", "s").seq

    def second() -> None:
        try:
            with audited(pg_catalog, "second") as tx:
                outcome["second"] = tx.record("second", "s").seq
        except Exception as exc:  # noqa: BLE001 - reported to the assertion below
            outcome["second"] = exc

    t1 = threading.Thread(target=first)
    t1.start()
    assert holding.wait(30)
    t2 = threading.Thread(target=second)
    t2.start()
    with pg_catalog.engine.connect() as conn:  # wait until the second writer is blocked on the lock
        for _ in range(300):
            waiting = conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())")).scalar_one()
            if waiting:
                break
            threading.Event().wait(0.01)
    assert waiting == 1
    release.set()
    t1.join(30)
    t2.join(30)
    assert outcome == {"first": 2, "second": 3}
    assert verify_audit(pg_catalog).count == 3
