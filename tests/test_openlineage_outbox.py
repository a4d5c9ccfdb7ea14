"""The outbox and its shipper: configuration, delivery, dead/slow/failing backends, SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import governance.openlineage as ol
from governance.audit import audited
from governance.catalog import AuditEvent, Catalog, OutboxEvent, utcnow
from governance.errors import ConfigError
from governance.openlineage._events import wire_time
from governance.openlineage._outbox import backoff, emitter, ship_round
from tests.test_openlineage_support import (
    LineageServer,
    free_port,
    http_env,
    isolated_openlineage_env,
    make_run,
    validate_event,
)


@pytest.fixture
def no_ol_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    with isolated_openlineage_env(monkeypatch, home):
        yield home


def _rows(catalog: Catalog) -> list[OutboxEvent]:
    with catalog.read() as session:
        return list(session.exec(sa.select(OutboxEvent).order_by(OutboxEvent.id)).scalars())  # type: ignore[call-overload]


def _ship_actions(catalog: Catalog) -> list[dict[str, Any]]:
    with catalog.read() as session:
        events = session.exec(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "openlineage.ship")  # type: ignore[call-overload]
            .order_by(AuditEvent.seq)
        ).scalars()
        return [json.loads(e.payload)["data"] for e in events]


def _file_env(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(path))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")


# ------------------------------------------------------------------------------------ configuration
def test_no_configuration_keeps_events_and_prints_nothing(
    no_ol_config: Path, sqlite_catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
    assert ol.load_transport_config() is None
    ol.kick_shipper(sqlite_catalog)
    assert not ol.shipper_for(sqlite_catalog).running
    report = ol.sync(sqlite_catalog)
    assert (report.transport, report.sent, report.pending) == (None, 0, 2)
    assert capsys.readouterr() == ("", "")
    assert [r.sent_at for r in _rows(sqlite_catalog)] == [None, None]


def test_disabled_wins_over_configuration(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    _file_env(monkeypatch, tmp_path / "events.ndjson")
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    make_run(sqlite_catalog, enqueue=("START",))
    ol.kick_shipper(sqlite_catalog)
    assert ol.load_transport_config() is None
    assert ol.sync(sqlite_catalog).pending == 1
    assert not (tmp_path / "events.ndjson").exists()


def test_configuration_sources(no_ol_config: Path, tmp_path: Path) -> None:
    env = {
        "OPENLINEAGE__TRANSPORT__TYPE": "http",
        "OPENLINEAGE__TRANSPORT__URL": "http://env:5000",
        "OPENLINEAGE__TRANSPORT__TIMEOUT": "2.5",
    }
    config = ol.load_transport_config(env, cwd=tmp_path)
    assert config is not None
    assert config.transport == {"type": "http", "url": "http://env:5000", "timeout": 2.5}

    legacy = ol.load_transport_config(
        {"OPENLINEAGE_URL": "http://marquez:5000", "OPENLINEAGE_API_KEY": "k"}, cwd=tmp_path
    )
    assert legacy is not None and legacy.source == "OPENLINEAGE_URL"
    assert legacy.transport["auth"] == {"type": "api_key", "apiKey": "k"}
    assert legacy.transport["endpoint"] == "api/v1/lineage"

    (tmp_path / "openlineage.yml").write_text(
        textwrap.dedent("""\
        transport:
          type: composite
          continue_on_failure: true
          transports:
            - type: file
              log_file_path: events.ndjson
              append: true
            - type: console
        """)
    )
    from_file = ol.load_transport_config({}, cwd=tmp_path)
    assert from_file is not None and from_file.source == str(tmp_path / "openlineage.yml")
    assert from_file.transport["type"] == "composite"
    from openlineage.client.transport.composite import CompositeTransport

    from governance.openlineage._config import make_transport

    assert isinstance(make_transport(from_file), CompositeTransport)

    explicit = tmp_path / "other.yml"
    explicit.write_text(
        "transport:\n  type: kafka\n  topicName: lineage\n  config: {bootstrap.servers: 'k:9092'}\n"
    )
    kafka = ol.load_transport_config({"OPENLINEAGE_CONFIG": str(explicit)}, cwd=tmp_path)
    assert kafka is not None and kafka.transport["type"] == "kafka"

    assert ol.load_transport_config({"OPENLINEAGE_DISABLED": "true", **env}, cwd=tmp_path) is None


def test_configuration_errors_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPENLINEAGE_CONFIG: no such file"):
        ol.load_transport_config({"OPENLINEAGE_CONFIG": str(tmp_path / "missing.yml")}, cwd=tmp_path)
    bad = tmp_path / "openlineage.yml"
    bad.write_text("transport:\n  url: http://x\n")
    with pytest.raises(ConfigError, match=r"openlineage.yml: OpenLineage `transport` needs a `type`"):
        ol.load_transport_config({}, cwd=tmp_path)


# ----------------------------------------------------------------------------------------- delivery
def test_file_transport_ships_in_the_background_on_every_backend(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, catalog: Catalog, tmp_path: Path
) -> None:
    target = tmp_path / "events.ndjson"
    _file_env(monkeypatch, target)
    made = make_run(catalog, enqueue=("START", "COMPLETE"))
    ol.kick_shipper(catalog)
    shipper = ol.shipper_for(catalog)
    assert shipper.join(30)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(e["eventType"], e["run"]["runId"]) for e in lines] == [
        ("START", made.run_uuid),
        ("COMPLETE", made.run_uuid),
    ]
    for event in lines:
        validate_event(event)
    assert all(r.sent_at is not None and r.attempts == 1 for r in _rows(catalog))
    (audit,) = _ship_actions(catalog)
    assert audit["sent"] == 2 and audit["failed"] == 0 and audit["transport"] == "file"


def test_http_backend_receives_valid_events(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog
) -> None:
    with LineageServer() as server:
        http_env(monkeypatch, server.url)
        make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
        ol.kick_shipper(sqlite_catalog)
        assert ol.shipper_for(sqlite_catalog).join(30)
    assert [e["eventType"] for e in server.received] == ["START", "COMPLETE"]
    for event in server.received:
        validate_event(event)
    assert ol.pending_count(sqlite_catalog) == 0


def _recover(catalog: Catalog, monkeypatch: pytest.MonkeyPatch, expected: int) -> LineageServer:
    """A healthy backend appears; ``sync`` delivers everything that waited, nothing lost."""
    with LineageServer() as server:
        http_env(monkeypatch, server.url)
        report = ol.sync(catalog)
    assert (report.sent, report.failed, report.pending) == (expected, 0, 0)
    return server


def test_backend_returning_500_loses_nothing(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog
) -> None:
    with LineageServer() as server:
        server.mode = "error"
        http_env(monkeypatch, server.url)
        made = make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
        shipper = ol.shipper_for(sqlite_catalog)
        shipper.limits = ol.ShipperLimits(max_failures=1)
        ol.kick_shipper(sqlite_catalog)
        assert shipper.join(60)
        assert server.requests >= 1
    rows = _rows(sqlite_catalog)
    assert all(r.sent_at is None for r in rows)
    first = rows[0]
    assert first.attempts >= 1 and first.last_error is not None and "500" in first.last_error
    assert rows[1].attempts == 0  # stopped at the first failure: COMPLETE never overtakes START
    assert _ship_actions(sqlite_catalog)[0]["failed"] == 1
    received = _recover(sqlite_catalog, monkeypatch, expected=2).received
    assert [(e["eventType"], e["run"]["runId"]) for e in received] == [
        ("START", made.run_uuid),
        ("COMPLETE", made.run_uuid),
    ]


def test_hanging_backend_does_not_block_the_step(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog
) -> None:
    with LineageServer() as server:
        server.mode = "hang"
        http_env(monkeypatch, server.url, timeout=0.5)
        make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
        ol.shipper_for(sqlite_catalog).limits = ol.ShipperLimits(max_failures=1)
        ol.kick_shipper(sqlite_catalog)  # returns while the backend still holds the request
        assert server.entered.wait(30)
        assert not server.release.is_set()
        made = make_run(sqlite_catalog, job_name="credit.eval", enqueue=("START", "COMPLETE"))
        ol.kick_shipper(sqlite_catalog)
        assert ol.shipper_for(sqlite_catalog).join(60)
        server.release.set()
    rows = _rows(sqlite_catalog)
    assert len(rows) == 4 and all(r.sent_at is None for r in rows)
    assert "Timeout" in (rows[0].last_error or "")
    received = _recover(sqlite_catalog, monkeypatch, expected=4).received
    assert received[-1]["run"]["runId"] == made.run_uuid


def test_absent_backend_loses_nothing(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog
) -> None:
    http_env(monkeypatch, f"http://127.0.0.1:{free_port()}")
    make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
    ol.shipper_for(sqlite_catalog).limits = ol.ShipperLimits(max_failures=2)
    ol.kick_shipper(sqlite_catalog)
    assert ol.shipper_for(sqlite_catalog).join(60)
    report = ol.sync(sqlite_catalog)
    assert (report.sent, report.failed, report.pending) == (0, 1, 2)
    assert "Connection" in report.errors[0]
    _recover(sqlite_catalog, monkeypatch, expected=2)


def test_backoff_is_exponential_and_capped(sqlite_catalog: Catalog) -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(40) == 300.0
    make_run(sqlite_catalog, enqueue=("START",))
    calls: list[str] = []

    def failing(doc: dict[str, Any]) -> None:
        calls.append(doc["eventType"])
        raise ConnectionError("backend down")

    before = utcnow()
    first = ship_round(sqlite_catalog, failing, actor="t", transport_type="test")
    assert (first.sent, first.failed, first.error) == (0, 1, "ConnectionError: backend down")
    assert first.next_due is not None and first.next_due >= before + timedelta(seconds=0.5)
    # not due yet: the backoff keeps the next round from retrying immediately, and says until when
    second = ship_round(sqlite_catalog, failing, actor="t", transport_type="test")
    assert (second.sent, second.failed, second.error) == (0, 0, None)
    (row,) = _rows(sqlite_catalog)
    retry_at = (
        row.next_attempt_at.replace(tzinfo=before.tzinfo)
        if row.next_attempt_at.tzinfo is None
        else row.next_attempt_at
    )
    assert second.next_due == retry_at >= before + timedelta(seconds=0.5)
    assert calls == ["START"] and row.attempts == 1 and row.last_error == "ConnectionError: backend down"


def _field_tags(catalog: Catalog, run_uuid: str) -> list[tuple[str, str]]:
    """(field, tag) of the output datasets of a run, as the COMPLETE document's tags facets say."""
    with catalog.read() as session:
        (doc,) = ol.outbox_documents(session, [_Pending(run_uuid, "COMPLETE")])
    assert not isinstance(doc, Exception)
    return sorted((t["field"], t["key"]) for out in doc["outputs"]
                  for t in out["facets"].get("tags", {}).get("tags", []))


class _Pending:
    def __init__(self, run_uuid: str, event_type: str) -> None:
        self.run_uuid, self.event_type, self.payload = run_uuid, event_type, None


def test_a_document_is_built_when_first_handled_and_fixed_from_then_on(sqlite_catalog: Catalog) -> None:
    made = make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
    assert [r.payload for r in _rows(sqlite_catalog)] == [None, None]
    tried: list[dict[str, Any]] = []

    def down(doc: dict[str, Any]) -> None:
        tried.append(doc)
        raise ConnectionError("backend down")

    assert ship_round(sqlite_catalog, down, actor="t", transport_type="test").failed == 1
    start_row, complete_row = _rows(sqlite_catalog)
    assert start_row.payload is not None and json.loads(start_row.payload) == tried[0]
    assert complete_row.payload is None  # never handled: still built from the run when its turn comes
    # a later capture of the same content adds a tag to an output field (tags only ever grow)
    before = _field_tags(sqlite_catalog, made.run_uuid)
    with audited(sqlite_catalog, "t") as tx:
        field_id = tx.session.execute(sa.text(
            "SELECT f.id FROM dataset_field f JOIN run_io io ON io.artifact_id = f.dataset_version_id "
            "WHERE io.run_id = :run AND io.direction = 'output' AND io.artifact_kind = 'dataset' "
            "ORDER BY f.id LIMIT 1"), {"run": made.run_id}).scalar_one()
        tx.session.execute(sa.text("UPDATE dataset_field SET tags = :tags WHERE id = :id"),
                           {"tags": json.dumps(["pii"]), "id": field_id})
        tx.record("dataset_field.tag", f"field:{field_id}", {"add": ["pii"]})
    assert _field_tags(sqlite_catalog, made.run_uuid) != before
    sent: list[dict[str, Any]] = []
    result = ship_round(sqlite_catalog, sent.append, actor="t", transport_type="test", ignore_backoff=True)
    assert (result.sent, result.failed) == (2, 0)
    assert sent[0] == tried[0]  # the retry sends the document as first built
    rows = _rows(sqlite_catalog)
    assert [json.loads(r.payload or "null") for r in rows] == sent
    assert ("pii" in {t["key"] for out in sent[1]["outputs"] for t in out["facets"].get("tags", {}).get("tags", [])})
    for event in sent:
        validate_event(event)
    # each round's audit event says how many documents it built and stored
    assert [(a["sent"], a["failed"], a["built"]) for a in _ship_actions(sqlite_catalog)] == [(0, 1, 1), (2, 0, 1)]


def test_a_damaged_stored_document_is_a_failed_attempt_not_a_crash(sqlite_catalog: Catalog) -> None:
    make_run(sqlite_catalog, enqueue=("COMPLETE",))
    with audited(sqlite_catalog, "t") as tx:
        tx.session.execute(sa.text("UPDATE ol_outbox SET payload = '{not json'"))
        tx.record("test.damage", "outbox", {})
    sent: list[dict[str, Any]] = []
    result = ship_round(sqlite_catalog, sent.append, actor="t", transport_type="test")
    assert (result.sent, result.failed) == (0, 1) and sent == []
    assert result.error is not None and result.error.startswith("cannot build the event: JSONDecodeError")
    (row,) = _rows(sqlite_catalog)
    assert row.attempts == 1 and row.payload == "{not json" and row.sent_at is None


def test_a_failed_append_of_a_rounds_lines_delivers_none_and_loses_nothing(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    """The file transport's lines of a round go in one append: when it fails, no row of the round
    counts as delivered (the first carries the error), and the next round writes them all, in order,
    with the documents first built."""
    for i in range(3):
        make_run(sqlite_catalog, job_name=f"credit.train.{i}", enqueue=("START", "COMPLETE"))
    target = tmp_path / "missing-dir" / "events.ndjson"
    config = ol.TransportConfig({"type": "file", "log_file_path": str(target), "append": True}, "test")
    failed = ol.sync(sqlite_catalog, config=config)
    assert (failed.sent, failed.failed, failed.pending) == (0, 1, 6)
    assert len(failed.errors) == 1 and "Failed to write to log file" in failed.errors[0]
    rows = _rows(sqlite_catalog)
    assert [(r.attempts, r.sent_at) for r in rows] == [(1, None)] + [(0, None)] * 5
    assert rows[0].last_error is not None and "missing-dir" in rows[0].last_error
    stored = [r.payload for r in rows]
    assert None not in stored  # built once, kept for the retry
    target.parent.mkdir()
    again = ol.sync(sqlite_catalog, config=config)
    assert (again.sent, again.failed, again.pending) == (6, 0, 0)
    assert target.read_text(encoding="utf-8").splitlines() == stored
    assert [(r.event_type, r.sent_at is not None) for r in _rows(sqlite_catalog)] == [("START", True),
                                                                                      ("COMPLETE", True)] * 3


def test_an_event_that_cannot_be_built_stays_in_the_outbox(sqlite_catalog: Catalog) -> None:
    with audited(sqlite_catalog, "t") as tx:
        now = utcnow()
        tx.session.add(OutboxEvent(run_uuid="0190aaaa-0000-7000-8000-000000000000", event_type="COMPLETE",
                                   event_time=now, next_attempt_at=now, created_at=now))
        tx.record("test.outbox", "outbox", {})
    sent: list[dict[str, Any]] = []
    result = ship_round(sqlite_catalog, sent.append, actor="t", transport_type="test")
    assert (result.sent, result.failed) == (0, 1) and sent == []
    assert result.error is not None and result.error.startswith("cannot build the event: NotFoundError")
    (row,) = _rows(sqlite_catalog)
    assert row.sent_at is None and row.attempts == 1 and row.payload is None
    assert ol.pending_count(sqlite_catalog) == 1


def test_one_shipper_thread_per_catalog(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    _file_env(monkeypatch, tmp_path / "events.ndjson")
    make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
    threads_before = {t.ident for t in threading.enumerate()}
    for _ in range(20):
        ol.kick_shipper(sqlite_catalog)
    shippers = [
        t
        for t in threading.enumerate()
        if t.name == "governance-openlineage-shipper" and t.ident not in threads_before
    ]
    assert len(shippers) <= 1
    assert ol.shipper_for(sqlite_catalog) is ol.shipper_for(sqlite_catalog)
    assert ol.shipper_for(sqlite_catalog).join(30)
    assert len((tmp_path / "events.ndjson").read_text().splitlines()) == 2


def test_emitter_hands_client_events_to_the_transport(sqlite_catalog: Catalog) -> None:
    from openlineage.client.event_v2 import RunEvent

    seen: list[Any] = []

    class Recorder:
        def emit(self, event: Any) -> None:
            seen.append(event)

    make_run(sqlite_catalog, enqueue=("COMPLETE",))
    result = ship_round(sqlite_catalog, emitter(Recorder()), actor="t", transport_type="recorder")
    assert (result.sent, result.failed, result.error, result.next_due) == (1, 0, None, None)
    assert isinstance(seen[0], RunEvent) and seen[0].eventType.value == "COMPLETE"


# -------------------------------------------------------------------------- captured runs, end to end
def test_captured_nested_runs_ship_schema_valid_documents_built_from_the_catalog(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, catalog: Catalog, gov_env: Path, tmp_path: Path
) -> None:
    """Real decorated steps (a parent with two children, one failing), shipped through the file
    transport: every document is built from the catalog when shipped and validates against the spec."""
    import pandas as pd

    import governance as gov
    from governance.lineage import capture_to

    @gov.step(kind="feature", name="e2e.clean", tags={"protected": ["sex"]})
    def clean(raw: pd.DataFrame) -> pd.DataFrame:
        return raw.dropna()

    @gov.step(kind="evaluation", name="e2e.check")
    def check(df: pd.DataFrame) -> None:
        raise ValueError("too few rows")

    @gov.step(kind="other", name="e2e.pipeline")
    def pipeline(raw: pd.DataFrame) -> pd.DataFrame:
        out = clean(raw)
        with contextlib.suppress(ValueError):  # the child's failure is recorded; the parent goes on
            check(out)
        return out

    with capture_to(catalog):
        pipeline(pd.DataFrame({"sex": ["f", "m", None], "x": [1.0, 2.0, 3.0]}))
    assert {r.payload for r in _rows(catalog)} == {None}
    target = tmp_path / "events.ndjson"
    report = ol.sync(catalog, config=ol.TransportConfig({"type": "file", "log_file_path": str(target),
                                                         "append": True}, "test"))
    assert (report.sent, report.pending) == (6, 0)
    events = [json.loads(line) for line in target.read_text().splitlines()]
    for event in events:
        validate_event(event)
    by_job = {(e["job"]["name"], e["eventType"]): e for e in events}
    # the parent's START was queued by its first child while it ran; it says so whenever built
    assert [e["eventType"] for e in events if e["job"]["name"] == "e2e.pipeline"] == ["START", "COMPLETE"]
    assert by_job[("e2e.pipeline", "START")]["run"]["facets"]["governance_run"]["status"] == "RUNNING"
    child = by_job[("e2e.clean", "COMPLETE")]
    assert child["run"]["facets"]["parent"]["run"]["runId"] == by_job[("e2e.pipeline", "START")]["run"]["runId"]
    (output,) = child["outputs"]
    assert {"key": "protected", "field": "sex"}.items() <= output["facets"]["tags"]["tags"][0].items()
    failed = by_job[("e2e.check", "FAIL")]
    assert failed["run"]["facets"]["errorMessage"]["message"] == "ValueError: too few rows"
    # stored as shipped: a later sync sends nothing again and the rows keep their documents
    rows = _rows(catalog)
    assert [json.loads(r.payload or "null") for r in rows] == events
    # the step timed each row (delivery order, idempotency keys) as its document says
    assert [wire_time(r.event_time) for r in rows] == [e["eventTime"] for e in events]
    again = ol.sync(catalog, config=ol.TransportConfig({"type": "file", "log_file_path": str(target),
                                                        "append": True}, "test"))
    assert again.sent == 0 and len(target.read_text().splitlines()) == 6


# ------------------------------------------------------------------------------- concurrent shippers
_SHIPPER = """
import json, sys
sys.path.insert(0, {root!r})
from governance.catalog import Catalog
import governance.openlineage as ol

catalog = Catalog({url!r})
config = ol.TransportConfig({{"type": "file", "log_file_path": {out!r}, "append": True}}, "test")
sys.stdin.readline()  # start together
report = ol.sync(catalog, config=config, batch_size=5)
print(json.dumps({{"sent": report.sent, "pending": report.pending, "errors": report.errors}}), flush=True)
"""


def test_two_processes_shipping_at_once_deliver_each_event_once(shared_catalog_url: str, tmp_path: Path) -> None:
    url = shared_catalog_url
    catalog = Catalog(url)
    try:
        runs = [make_run(catalog, job_name=f"credit.train.{i}", enqueue=("START", "COMPLETE")) for i in range(20)]
    finally:
        catalog.dispose()
    root = str(Path(__file__).resolve().parents[1])
    outs = [tmp_path / f"shipper{i}.ndjson" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SHIPPER.format(root=root, url=url, out=str(out))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    delivered = [
        (e["run"]["runId"], e["eventType"])
        for out in outs
        if out.exists()
        for e in map(json.loads, out.read_text().splitlines())
    ]
    expected = {(r.run_uuid, t) for r in runs for t in ("START", "COMPLETE")}
    assert sorted(delivered) == sorted(expected)  # every event, none twice
    assert sum(r["sent"] for r in reports) == 40
    assert all(r["pending"] == 0 and r["errors"] == [] for r in reports)


# ------------------------------------------------------------------------------------------ SIGKILL
_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from governance.catalog import Catalog
from tests.test_openlineage_support import make_run
import governance.openlineage as ol

catalog = Catalog({url!r})
made = make_run(catalog, enqueue=("START", "COMPLETE"))
ol.kick_shipper(catalog)
print(made.run_uuid, flush=True)
time.sleep(60)
"""


def test_sigkill_after_the_step_keeps_the_event_for_the_next_run(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    root = str(Path(__file__).resolve().parents[1])
    with LineageServer() as server:
        server.mode = "hang"  # the child's shipper is mid-delivery when it dies
        http_env(monkeypatch, server.url, timeout=30)
        with subprocess.Popen(
            [sys.executable, "-c", _CHILD.format(root=root, url=url)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ),
        ) as child:
            try:
                assert child.stdout is not None
                run_uuid = child.stdout.readline().strip()
                assert server.entered.wait(30), "the child's shipper never reached the backend"
            finally:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(30)
        assert child.returncode == -signal.SIGKILL
        assert len(run_uuid) == 36
    catalog = Catalog(url)
    try:
        assert [r.sent_at for r in _rows(catalog)] == [None, None]
        received = _recover(catalog, monkeypatch, expected=2).received
        assert [e["run"]["runId"] for e in received] == [run_uuid, run_uuid]
    finally:
        catalog.dispose()


def test_gov_sync_waits_its_turn_and_says_when_it_gave_up(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    from governance.openlineage._outbox import SHIP_LOCK

    made = make_run(sqlite_catalog, enqueue=("START", "COMPLETE"))
    config = ol.TransportConfig({"type": "file", "log_file_path": str(tmp_path / "e.ndjson"), "append": True}, "t")
    with sqlite_catalog.try_lock(SHIP_LOCK) as held:  # another shipper is at work
        assert held
        report = ol.sync(sqlite_catalog, config=config, wait_for_lock=0.3)
    assert (report.sent, report.pending) == (0, 2)
    assert report.errors == ["another process is shipping this outbox; its events stay pending"]
    assert ol.sync(sqlite_catalog, config=config).sent == 2  # its turn came
    assert {json.loads(line)["run"]["runId"] for line in (tmp_path / "e.ndjson").read_text().splitlines()} == {
        made.run_uuid
    }


_LINGERING_CHILD = """
import sys
sys.path.insert(0, {root!r})
from governance.catalog import Catalog
from tests.test_openlineage_support import make_run
import governance.openlineage as ol
import openlineage.client  # imported by the pipeline already (no import can register exit hooks at exit)

catalog = Catalog({url!r})
ol.shipper_for(catalog).limits = ol.ShipperLimits(linger=600.0)  # far beyond exit_grace
made = make_run(catalog, enqueue=("START", "COMPLETE"))
ol.kick_shipper(catalog)
print(made.run_uuid, flush=True)
"""


def test_interpreter_exit_cuts_the_linger_short_and_ships(
    no_ol_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    events = tmp_path / "events.ndjson"
    _file_env(monkeypatch, events)
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", _LINGERING_CHILD.format(root=root, url=url)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120, check=True)
    run_uuid = done.stdout.strip()
    assert [(e["eventType"], e["run"]["runId"]) for e in map(json.loads, events.read_text().splitlines())] == [
        ("START", run_uuid), ("COMPLETE", run_uuid)
    ]
    catalog = Catalog(url)
    try:
        assert all(r.sent_at is not None for r in _rows(catalog))
    finally:
        catalog.dispose()
