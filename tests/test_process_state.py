"""Process state: one answer to "which catalog?", an audit guard that stays in the project's own
sessions, and one reset for everything kept per process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlmodel import select

import governance as gov
from governance.audit import audited
from governance.catalog import Catalog, Job, Run, open_catalog, use_catalog
from governance.lineage import capture_to
from governance.lineage._runtime import runtime


def _jobs(catalog: Catalog) -> list[str]:
    with catalog.read() as s:
        return sorted(j.name for _, j in s.exec(select(Run, Job).where(Run.job_id == Job.id)).all())


def test_capture_to_is_the_catalog_open_catalog_returns(catalog: Catalog, gov_env: Path) -> None:
    """capture_to and use_catalog are one mechanism: inside either, capture and open_catalog agree."""
    with capture_to(catalog):
        assert open_catalog() is catalog
        assert runtime().target() is catalog
    with use_catalog(catalog):
        assert runtime().target() is catalog
    assert runtime().target() is None


def test_capture_to_in_one_thread_does_not_redirect_another(sqlite_catalog: Catalog, gov_env: Path) -> None:
    """A capture_to block is the context's, not the process's: a step run meanwhile in another thread
    records to its own (here: the configured) catalog."""
    entered, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        with capture_to(sqlite_catalog):
            entered.set()
            done.wait(10)

    worker = threading.Thread(target=other_thread)
    worker.start()
    try:
        assert entered.wait(10)
        gov.step(kind="feature", name="main_thread_step")(lambda x: x)(1)
    finally:
        done.set()
        worker.join()
    assert _jobs(sqlite_catalog) == []
    assert _jobs(open_catalog()) == ["main_thread_step"]


class _Base(DeclarativeBase):
    pass


class _HostRow(_Base):
    __tablename__ = "host_row"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def _governance_listeners(session: Session) -> list[Any]:
    return [fn for fn in session.dispatch.before_flush if getattr(fn, "__module__", "").startswith("governance")]


def test_audit_guard_stays_out_of_a_host_applications_sessions(catalog: Catalog) -> None:
    with audited(catalog, "tester") as tx:  # installs the guard
        tx.record("test.event", "test:1", {})
    engine = sa.create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    try:
        with Session(engine) as host:
            assert _governance_listeners(host) == []
            host.add(_HostRow(name="x"))
            host.commit()
            assert host.scalars(sa.select(_HostRow.name)).all() == ["x"]
    finally:
        engine.dispose()
    with catalog.write() as own:
        assert len(_governance_listeners(own)) == 1


def test_reset_forgets_every_process_cache(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import governance.catalog._engine as engine_module
    import governance.lineage._record as record_module
    import governance.openlineage._shipper as shipper_module
    import governance.testing

    first = open_catalog()
    rt = runtime()
    rt.settings.get()
    rt.health.mark_down("sqlite:///x", "x", RuntimeError("down"), "spool")
    rt.capture_failed("test", RuntimeError("boom"))
    shipper_module.shipper_for(first)
    record_module.ID_CACHE.for_catalog(first)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    shipper_module._CONFIGURED()

    governance.testing.reset()

    assert engine_module._CACHE._items == {}
    assert not rt.health.is_down("sqlite:///x")
    assert rt._warned_capture is False
    assert rt.settings._settings is None
    assert len(shipper_module._SHIPPERS._items) == 0
    assert shipper_module._CONFIGURED._entry is None
    assert record_module.ID_CACHE._current is None
    assert open_catalog() is not first
