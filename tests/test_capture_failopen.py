"""Fail-open capture: an unreachable, locked or broken catalog never fails the step; the spool replays."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

import governance as gov
from governance.catalog import Catalog, Run, clear_catalog_cache
from governance.lineage import replay_spool
from governance.lineage._runtime import runtime


@pytest.fixture(autouse=True)
def _fresh_health() -> None:
    runtime().health.reset()
    runtime().settings.clear()


def spool_lines(home: Path) -> list[dict[str, object]]:
    lines = []
    for path in sorted((home / ".governance" / "spool").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def make_step() -> object:
    @gov.step(kind="feature", name="failopen.build")
    def build(raw: pd.DataFrame, k: int = 1) -> pd.DataFrame:
        return raw.assign(k=k)

    return build


def test_unreachable_postgres_spools_and_warns_once(
    gov_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, catalog: Catalog
) -> None:
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    build = make_step()
    raw = pd.DataFrame({"a": [1, 2, 3]})
    with caplog.at_level(logging.WARNING, logger="governance"):
        outs = [build(raw, k=i) for i in range(3)]  # type: ignore[operator]
    assert [list(o["k"]) for o in outs] == [[0, 0, 0], [1, 1, 1], [2, 2, 2]]
    warnings = [r for r in caplog.records if r.name == "governance" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    spooled = spool_lines(gov_env)
    assert [d["params"] for d in spooled] == [{"k": 0}, {"k": 1}, {"k": 2}]
    # replay into a working catalog (every backend), twice: idempotent on run_uuid
    assert replay_spool(catalog, spool_dir=gov_env / ".governance" / "spool") == 3
    assert spool_lines(gov_env) == []
    with catalog.read() as s:
        stored = s.exec(select(Run)).all()
        assert sorted(r.run_uuid for r in stored) == sorted(str(d["run_uuid"]) for d in spooled)
        assert {r.status for r in stored} == {"COMPLETED"}
    spool = gov_env / ".governance" / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "again.jsonl").write_text("\n".join(json.dumps(d) for d in spooled) + "\n")
    assert replay_spool(catalog, spool_dir=spool) == 0
    with catalog.read() as s:
        assert len(s.exec(select(Run)).all()) == 3


def test_locked_sqlite_catalog_spools(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = gov_env / "locked.db"
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", f"sqlite:///{db}")
    monkeypatch.setenv("GOVERNANCE_BUSY_TIMEOUT", "0.2")
    Catalog(f"sqlite:///{db}").dispose()  # migrated
    clear_catalog_cache()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        build = make_step()
        started = time.monotonic()
        out = build(pd.DataFrame({"a": [1.0]}))  # type: ignore[operator]
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert list(out.columns) == ["a", "k"]
    assert elapsed < 5  # waited about the busy timeout, not the default 10 s
    assert len(spool_lines(gov_env)) == 1
    clear_catalog_cache()
    catalog = Catalog(f"sqlite:///{db}")
    try:
        assert replay_spool(catalog, spool_dir=gov_env / ".governance" / "spool") == 1
    finally:
        catalog.dispose()


def test_broken_catalog_file_spools(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = gov_env / "broken.db"
    db.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", f"sqlite:///{db}")
    build = make_step()
    out = build(pd.DataFrame({"a": [1]}), k=5)  # type: ignore[operator]
    assert list(out["k"]) == [5]
    assert [d["params"] for d in spool_lines(gov_env)] == [{"k": 5}]


def test_failed_run_is_spooled_with_its_error(
    gov_env: Path, monkeypatch: pytest.MonkeyPatch, sqlite_catalog: Catalog
) -> None:
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    err = KeyError("k")

    @gov.step(kind="feature", name="failopen.fails")
    def fails() -> None:
        raise err

    with pytest.raises(KeyError) as info:
        fails()
    assert info.value is err
    (doc,) = spool_lines(gov_env)
    assert doc["status"] == "FAILED" and doc["error_type"] == "KeyError"
    assert replay_spool(sqlite_catalog, spool_dir=gov_env / ".governance" / "spool") == 1
    with sqlite_catalog.read() as s:
        run = s.exec(select(Run)).one()
    assert run.status == "FAILED" and run.error_message == "'k'"


def test_disabled_capture_records_nothing(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNANCE_DISABLED", "1")
    build = make_step()
    out = build(pd.DataFrame({"a": [1]}))  # type: ignore[operator]
    assert list(out["k"]) == [1]
    assert not (gov_env / ".governance").exists()


def test_gov_sync_replays_the_spool(
    gov_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    make_step()(pd.DataFrame({"a": [1]}))  # type: ignore[operator]
    assert len(spool_lines(gov_env)) == 1
    monkeypatch.delenv("GOVERNANCE_CATALOG_URL")
    from governance.cli import main

    assert main(["sync"]) == 0
    capsys.readouterr()
    assert spool_lines(gov_env) == []
    assert main(["runs", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["job"] for r in rows] == ["failopen.build"]


def test_a_spooled_training_run_replays_into_its_model_version(gov_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 catalog: Catalog) -> None:
    """The artifact is saved (by hash) while the catalog is down; replay links the model version."""
    from sklearn.linear_model import LogisticRegression

    from governance.catalog import Model, ModelVersion, RunIO
    from governance.lineage import load_model_artifact

    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")

    @gov.step(kind="training", model="offline-scorer")
    def train(data: pd.DataFrame, C: float = 0.5) -> LogisticRegression:  # noqa: N803 - sklearn spelling
        return LogisticRegression(C=C).fit(data[["x"]], data["y"])

    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})
    model = train(data)
    (spooled,) = spool_lines(gov_env)
    assert [m["model_name"] for m in spooled["models"]] == ["offline-scorer"]  # type: ignore[index]
    spool = gov_env / ".governance" / "spool"
    assert replay_spool(catalog, spool_dir=spool) == 1
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "again.jsonl").write_text(json.dumps(spooled) + "\n")
    assert replay_spool(catalog, spool_dir=spool) == 0  # the run is there: replaying again changes nothing
    with catalog.read() as s:
        (run,) = s.exec(select(Run)).all()
        (mv,) = s.exec(select(ModelVersion)).all()
        model_row = s.get(Model, mv.model_id)
        edges = s.exec(select(RunIO).where(RunIO.run_id == run.id)).all()
    assert model_row is not None and model_row.name == "offline-scorer"
    assert mv.training_run_id == run.id and mv.params["C"] == 0.5
    assert {(e.artifact_kind, e.direction) for e in edges} == {("dataset", "input"), ("model", "output")}
    loaded = load_model_artifact(mv)
    assert (loaded.predict_proba(data[["x"]]) == model.predict_proba(data[["x"]])).all()


def test_a_type_error_inside_capture_is_logged_not_silently_dropped(
    gov_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A TypeError in the capture machinery is a logged capture failure; a call that does not match the
    signature (the function raises its own TypeError) is recorded by position, with the reason logged
    (issue 14: capture never drops a call in silence)."""
    def broken(func: object) -> object:
        raise TypeError("capture machinery bug")

    build = make_step()
    with monkeypatch.context() as patched, caplog.at_level(logging.DEBUG, logger="governance"):
        patched.setattr(runtime().code, "for_function", broken)
        out = build(pd.DataFrame({"a": [1]}))  # type: ignore[operator]
    assert list(out["k"]) == [1]
    assert "lineage capture failed" in caplog.text and "capture machinery bug" in caplog.text
    caplog.clear()
    with pytest.raises(TypeError), caplog.at_level(logging.DEBUG, logger="governance"):
        build(pd.DataFrame({"a": [1]}), 1, 2, 3)  # type: ignore[operator]
    assert "do not match its signature" in caplog.text
