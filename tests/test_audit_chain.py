"""The hash chain: both-or-neither writes, tamper detection on every backend, property tests."""

from __future__ import annotations

import getpass
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from governance.audit import (
    GENESIS_HASH,
    audited,
    canonical_json,
    iter_chain,
    link_hash,
    list_events,
    resolve_actor,
    verify_audit,
    verify_events,
)
from governance.audit._chain import format_time
from governance.catalog import AuditEvent, Catalog, Model
from governance.config import load_settings
from governance.errors import GovernanceError

Row = tuple[int, Any, str, str, str, bytes, str, str]


# ------------------------------------------------------------------------------------------ helpers
def fill(catalog: Catalog, n: int, actor: str = "alice") -> None:
    for i in range(n):
        with audited(catalog, actor) as tx:
            tx.record("test.append", f"model:m{i % 3}@{i}", {"i": i, "note": "é\"\\"})


def execute(catalog: Catalog, sql: str, **params: Any) -> None:
    with catalog.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def row(catalog: Catalog, seq: int) -> dict[str, Any]:
    with catalog.engine.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM audit_event WHERE seq = :s"), {"s": seq})
        return dict(result.mappings().one())


def shift_up(catalog: Catalog, from_seq: int) -> None:
    """Renumber seq >= from_seq by +1 (two steps: seq is the primary key)."""
    execute(catalog, "UPDATE audit_event SET seq = -(seq + 1) WHERE seq >= :k", k=from_seq)
    execute(catalog, "UPDATE audit_event SET seq = -seq WHERE seq < 0")


def models(catalog: Catalog) -> list[str]:
    with catalog.read() as session:
        return [m.name for m in session.exec(select(Model)).all()]


def events(catalog: Catalog) -> list[AuditEvent]:
    with catalog.read() as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- both or neither
def test_change_and_event_commit_together(catalog: Catalog) -> None:
    with audited(catalog, "alice") as tx:
        tx.session.add(Model(name="m1"))
        tx.session.flush()
        tx.record("model.create", "model:m1", {"owner": "x"})
    assert models(catalog) == ["m1"]
    [event] = events(catalog)
    assert (event.seq, event.actor, event.action) == (1, "alice", "model.create")
    assert event.prev_hash == GENESIS_HASH
    assert json.loads(event.payload)["data"] == {"owner": "x"}
    assert verify_audit(catalog).ok


def test_failure_after_record_rolls_back_both(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError, match="injected"), audited(catalog, "alice") as tx:
        tx.session.add(Model(name="m1"))
        tx.session.flush()
        tx.record("model.create", "model:m1")
        raise RuntimeError("injected")
    assert models(catalog) == []
    assert events(catalog) == []


def test_failure_after_flush_before_record_rolls_back(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError, match="injected"), audited(catalog, "alice") as tx:
        tx.session.add(Model(name="m1"))
        tx.session.flush()
        raise RuntimeError("injected")
    assert models(catalog) == []
    assert events(catalog) == []


def test_failure_while_appending_the_event_rolls_back_the_change(catalog: Catalog) -> None:
    fill(catalog, 1)
    if catalog.backend == "sqlite":
        execute(catalog, "CREATE TRIGGER t_fail BEFORE INSERT ON audit_event "
                         "BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END")
        drop = "DROP TRIGGER t_fail"
    else:
        execute(catalog, "CREATE FUNCTION t_fail() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$ BEGIN RAISE EXCEPTION 'injected audit failure'; END $$")
        execute(catalog, "CREATE TRIGGER t_fail BEFORE INSERT ON audit_event "
                         "FOR EACH ROW EXECUTE FUNCTION t_fail()")
        drop = "DROP TRIGGER t_fail ON audit_event; DROP FUNCTION t_fail()"
    try:
        failing = pytest.raises(sa.exc.DBAPIError, match="injected audit failure")
        with failing, audited(catalog, "alice") as tx:
            tx.session.add(Model(name="m1"))
            tx.session.flush()
            tx.record("model.create", "model:m1")
    finally:
        for statement in drop.split("; "):
            execute(catalog, statement)
    assert models(catalog) == []
    assert [e.seq for e in events(catalog)] == [1]
    fill(catalog, 1)
    assert verify_audit(catalog).count == 2


def test_unserialisable_payload_rolls_back_the_change(catalog: Catalog) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"), audited(catalog, "alice") as tx:
        tx.session.add(Model(name="m1"))
        tx.session.flush()
        tx.record("model.create", "model:m1", {"bad": object()})
    assert models(catalog) == []
    assert events(catalog) == []


def test_a_write_without_an_event_is_refused(catalog: Catalog) -> None:
    refused = pytest.raises(GovernanceError, match="not recorded in the audit trail")
    with refused, audited(catalog, "alice") as tx:
        tx.session.add(Model(name="m1"))
    assert models(catalog) == []


def test_several_events_in_one_transaction_chain(catalog: Catalog) -> None:
    fill(catalog, 2)
    with audited(catalog, "bob") as tx:
        first = tx.record("a", "s")
        second = tx.record("b", "s", actor="carol")
    assert (first.seq, second.seq, second.prev_hash) == (3, 4, first.hash)
    assert [e.actor for e in events(catalog)][-2:] == ["bob", "carol"]
    assert verify_audit(catalog).count == 4


# ------------------------------------------------------------------------------------------ tamper
def _edit_payload(catalog: Catalog, k: int) -> None:
    body = json.loads(row(catalog, k)["payload"])
    body["data"]["i"] = 999
    execute(catalog, "UPDATE audit_event SET payload = :p WHERE seq = :k", p=canonical_json(body), k=k)


def _edit_hash(catalog: Catalog, k: int) -> None:
    execute(catalog, "UPDATE audit_event SET hash = :h WHERE seq = :k", h=secrets.token_hex(32), k=k)


def _edit_actor(catalog: Catalog, k: int) -> None:
    execute(catalog, "UPDATE audit_event SET actor = 'mallory' WHERE seq = :k", k=k)


def _edit_time(catalog: Catalog, k: int) -> None:
    r = row(catalog, k)
    when = r["time"] if isinstance(r["time"], datetime) else datetime.fromisoformat(r["time"])
    with catalog.engine.begin() as conn:
        conn.execute(sa.update(AuditEvent.__table__).where(AuditEvent.__table__.c.seq == k)  # type: ignore[attr-defined]
                     .values(time=when - timedelta(days=1)))


def _delete(catalog: Catalog, k: int) -> None:
    execute(catalog, "DELETE FROM audit_event WHERE seq = :k", k=k)


def _swap(catalog: Catalog, k: int) -> None:
    execute(catalog, "UPDATE audit_event SET seq = -1 WHERE seq = :k", k=k)
    execute(catalog, "UPDATE audit_event SET seq = :k WHERE seq = :k1", k=k, k1=k + 1)
    execute(catalog, "UPDATE audit_event SET seq = :k1 WHERE seq = -1", k1=k + 1)


def _insert_forged(catalog: Catalog, k: int) -> None:
    """Insert a perfectly linked row at seq k and renumber the rest (what a careless forger does)."""
    prev = row(catalog, k - 1)["hash"] if k > 1 else GENESIS_HASH
    shift_up(catalog, k)
    when = datetime(2025, 1, 1, tzinfo=UTC)
    payload = canonical_json({"action": "model.promote", "actor": "mallory", "data": {},
                              "subject": "model:m0@1", "time": format_time(when)})
    with catalog.engine.begin() as conn:
        conn.execute(sa.insert(AuditEvent.__table__), {  # type: ignore[attr-defined]
            "seq": k, "time": when, "actor": "mallory", "action": "model.promote", "subject": "model:m0@1",
            "payload": payload, "prev_hash": prev, "hash": link_hash(k, prev, payload)})


TAMPERS: dict[str, Callable[[Catalog, int], None]] = {
    "edited payload": _edit_payload,
    "edited hash": _edit_hash,
    "edited actor column": _edit_actor,
    "edited time column": _edit_time,
    "deleted row": _delete,
    "swapped rows": _swap,
    "inserted row": _insert_forged,
}


@pytest.mark.parametrize("kind", list(TAMPERS))
def test_verify_names_the_first_bad_seq(catalog: Catalog, kind: str) -> None:
    fill(catalog, 8)
    assert verify_audit(catalog).ok
    TAMPERS[kind](catalog, 4)
    report = verify_audit(catalog)
    assert not report.ok
    assert report.first_bad_seq == 4, report.reason
    assert report.count == 3
    assert report.head.seq == 3


def test_edit_of_the_first_row_is_seq_1(sqlite_catalog: Catalog) -> None:
    fill(sqlite_catalog, 3)
    _edit_payload(sqlite_catalog, 1)
    assert verify_audit(sqlite_catalog).first_bad_seq == 1


def test_verify_streams_in_batches(sqlite_catalog: Catalog) -> None:
    fill(sqlite_catalog, 7)
    with sqlite_catalog.read() as session:
        seqs = [r[0] for r in iter_chain(session, batch=3)]
        assert seqs == list(range(1, 8))
        assert verify_events(iter_chain(session, batch=2)).count == 7


def test_empty_log_verifies_with_count_zero(catalog: Catalog) -> None:
    report = verify_audit(catalog)
    assert (report.ok, report.count, report.head.hash) == (True, 0, GENESIS_HASH)


# ------------------------------------------------------------------------------- property (memory)
def _chain(n: int) -> list[Row]:
    rows: list[Row] = []
    prev = GENESIS_HASH
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for seq in range(1, n + 1):
        when = start + timedelta(seconds=seq)
        actor, action, subject = f"u{seq % 3}", "x.do", f"s{seq % 2}"
        payload = canonical_json({"action": action, "actor": actor, "data": {"seq": seq}, "subject": subject,
                                  "time": format_time(when)})
        digest = link_hash(seq, prev, payload)
        rows.append((seq, when, actor, action, subject, payload, prev, digest))
        prev = digest
    return rows


def _renumber(rows: list[Row]) -> list[Row]:
    return [(i, *r[1:]) for i, r in enumerate(rows, start=1)]  # type: ignore[misc]


def _tamper(rows: list[Row], op: str, k: int) -> list[Row]:
    """Apply one tamper at seq k (1-based) and return the rows in ascending seq order."""
    out = list(rows)
    r = out[k - 1]
    if op == "payload":
        out[k - 1] = (*r[:5], r[5] + b" ", *r[6:])  # type: ignore[assignment]
    elif op == "hash":
        out[k - 1] = (*r[:7], secrets.token_hex(32))  # type: ignore[assignment]
    elif op == "prev_hash":
        out[k - 1] = (*r[:6], secrets.token_hex(32), r[7])  # type: ignore[assignment]
    elif op == "subject":
        out[k - 1] = (*r[:4], r[4] + "!", *r[5:])  # type: ignore[assignment]
    elif op == "delete":
        del out[k - 1]
    elif op == "delete_renumber":
        del out[k - 1]
        out = _renumber(out)
    elif op == "reorder":
        out[k - 1], out[k] = out[k], out[k - 1]
    elif op == "swap_seq":
        out[k - 1], out[k] = (k, *out[k][1:]), (k + 1, *r[1:])  # type: ignore[assignment]
    elif op in ("insert_forged", "insert_bogus"):
        prev = out[k - 2][7] if k > 1 else GENESIS_HASH
        payload = canonical_json({"action": "evil", "actor": "m", "data": {}, "subject": "s",
                                  "time": format_time(r[1])})
        digest = link_hash(k, prev, payload) if op == "insert_forged" else secrets.token_hex(32)
        out.insert(k - 1, (k, r[1], "m", "evil", "s", payload, prev, digest))
        out = _renumber(out)
    return out


_OPS_AT_ANY = ["payload", "hash", "prev_hash", "subject", "insert_forged", "insert_bogus"]
_OPS_BEFORE_LAST = ["delete", "delete_renumber", "reorder", "swap_seq"]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(min_value=2, max_value=25))
def test_any_single_tamper_is_found_at_its_seq(data: st.DataObject, n: int) -> None:
    rows = _chain(n)
    assert verify_events(rows).ok
    op = data.draw(st.sampled_from(_OPS_AT_ANY + _OPS_BEFORE_LAST))
    k = data.draw(st.integers(min_value=1, max_value=n if op in _OPS_AT_ANY else n - 1))
    report = verify_events(_tamper(rows, op, k))
    assert report.first_bad_seq == k, (op, k, report.reason)
    assert report.count == k - 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=2, max_value=8), data=st.data())
def test_single_tamper_on_a_real_sqlite_catalog(n: int, data: st.DataObject) -> None:
    catalog = Catalog("sqlite://")
    try:
        fill(catalog, n)
        kind = data.draw(st.sampled_from(list(TAMPERS)))
        top = n - 1 if kind in ("deleted row", "swapped rows") else n
        k = data.draw(st.integers(min_value=1, max_value=top))
        TAMPERS[kind](catalog, k)
        assert verify_audit(catalog).first_bad_seq == k
    finally:
        catalog.dispose()


# ---------------------------------------------------------------------------------------- actors
@pytest.mark.parametrize(("explicit", "environ", "expected"), [
    ("cli", {"GOVERNANCE_ACTOR": "env", "GITHUB_ACTOR": "gh", "GITLAB_USER_LOGIN": "gl"}, "cli"),
    (None, {"GOVERNANCE_ACTOR": "env", "GITHUB_ACTOR": "gh", "GITLAB_USER_LOGIN": "gl"}, "env"),
    (None, {"GITHUB_ACTOR": "gh", "GITLAB_USER_LOGIN": "gl"}, "gh"),
    (None, {"GITLAB_USER_LOGIN": "gl"}, "gl"),
    (None, {"GOVERNANCE_ACTOR": ""}, getpass.getuser()),
])
def test_actor_precedence(explicit: str | None, environ: dict[str, str], expected: str) -> None:
    assert resolve_actor(explicit, environ=environ) == expected


def test_actor_from_settings_beats_ci(tmp_path: Any) -> None:
    (tmp_path / "governance.toml").write_text('actor = "from-toml"\n')
    settings_ = load_settings(cwd=tmp_path, environ={})
    assert resolve_actor(None, settings_, environ={"GITHUB_ACTOR": "gh"}) == "from-toml"
    assert resolve_actor("cli", settings_, environ={}) == "cli"


# -------------------------------------------------------------------------------------------- log
def test_list_events_filters(catalog: Catalog) -> None:
    fill(catalog, 6)
    with catalog.read() as session:
        assert [e.seq for e in list_events(session, model="m1")] == [2, 5]
        assert [e.seq for e in list_events(session, limit=2)] == [5, 6]
        assert list_events(session, since=datetime.now(UTC) + timedelta(hours=1)) == []
        assert len(list_events(session, since=datetime.now(UTC) - timedelta(hours=1))) == 6
        first = list_events(session, limit=6)[0]
    assert first.data == {"i": 0, "note": "é\"\\"}
    assert first.actor == "alice"
    assert set(first.as_dict()) == {"seq", "time", "actor", "action", "subject", "data", "hash"}
