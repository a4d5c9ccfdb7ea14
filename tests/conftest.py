"""Shared fixtures.

``catalog`` is parametrised over SQLite in memory, a SQLite file and PostgreSQL (the PostgreSQL leg
needs ``GOVERNANCE_TEST_POSTGRES_URL``; without it, it skips with a reason, unless
``GOVERNANCE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns the skip into a failure).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import governance.testing
from governance.catalog import Catalog, clear_catalog_cache

SHARED = Path(__file__).resolve().parents[2] / "shared"
PG_ENV = "GOVERNANCE_TEST_POSTGRES_URL"
_PG_RAN = {"count": 0}


def postgres_base_url() -> str:
    """The PostgreSQL URL for tests, or skip (fail under GOVERNANCE_REQUIRE_POSTGRES=1)."""
    url = os.environ.get(PG_ENV)
    if not url:
        reason = f"{PG_ENV} is not set: PostgreSQL tests need a server (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        if os.environ.get("GOVERNANCE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


def create_pg_database(base_url: str, prefix: str = "govt") -> str:
    """Create a fresh database next to ``base_url`` and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(base_url: str, url: str) -> None:
    name = make_url(url).database
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One fresh PostgreSQL database for the session (tables truncated between tests)."""
    base = postgres_base_url()
    url = create_pg_database(base)
    yield url
    clear_catalog_cache()
    drop_pg_database(base, url)


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A brand-new empty PostgreSQL database for one test (migrations, concurrency)."""
    base = postgres_base_url()
    url = create_pg_database(base)
    _PG_RAN["count"] += 1
    yield url
    clear_catalog_cache()
    drop_pg_database(base, url)


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog several processes can open: a SQLite file, or a brand-new PostgreSQL database."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


def _truncate_all(catalog: Catalog) -> None:
    with catalog.engine.begin() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        if tables:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite-memory", "sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog URL on each backend: SQLite in memory, a SQLite file, PostgreSQL."""
    if request.param == "sqlite-memory":
        yield "sqlite://"
    elif request.param == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _PG_RAN["count"] += 1
        catalog = Catalog(url)
        _truncate_all(catalog)
        catalog.dispose()
        yield url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """An empty, migrated catalog on each backend."""
    cat = Catalog(catalog_url)
    yield cat
    cat.dispose()


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Iterator[Catalog]:
    """An empty SQLite file catalog (for tests that need only one backend)."""
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield cat
    cat.dispose()


@pytest.fixture
def gov_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with its own default catalog; GOVERNANCE_* variables cleared; the package's
    per-process caches reset before and after (:func:`governance.testing.reset`)."""
    for key in list(os.environ):
        if key.startswith(("GOVERNANCE_", "OPENLINEAGE")) and key not in (PG_ENV, "GOVERNANCE_REQUIRE_POSTGRES"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVERNANCE_ACTOR", "tester")
    governance.testing.reset()
    yield tmp_path
    governance.testing.reset()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under GOVERNANCE_REQUIRE_POSTGRES=1 a run in which no PostgreSQL test ran is a failure."""
    if os.environ.get("GOVERNANCE_REQUIRE_POSTGRES") != "1":
        return
    if _PG_RAN["count"] == 0 and session.testscollected > 0 and not session.config.option.collectonly:
        selected = session.config.getoption("-m") or session.config.getoption("-k")
        if not selected:
            print("\nGOVERNANCE_REQUIRE_POSTGRES=1 but no PostgreSQL test ran", flush=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
