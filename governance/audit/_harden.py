"""Make the audit tables append-only on PostgreSQL (``gov audit harden --role ROLE``).

The SQL lives in ``append_only.sql`` next to this module (shipped in the wheel); DBAs who apply it
with psql get it from ``gov audit harden --print-sql`` (see ``integrations/postgres/README.md``).  It installs a
trigger that raises on UPDATE, DELETE and TRUNCATE of ``audit_event`` and ``audit_checkpoint``
(for every role, owners included) and revokes those privileges from the application role and
PUBLIC.  It also guards the state tables the gate reads: a deferred constraint trigger refuses the
COMMIT of any transaction that wrote a state row no audit event of that transaction binds (the rows
are recorded by migration 0006's triggers in ``audit_touch``, which only those triggers may write).
Triggers, not a security-definer write function: every existing write path (ORM, Core, precompiled
statements, other tools) stays as it is, and nothing can reach the tables around the check.
The application role must be neither a superuser nor the tables' owner.  Run it as the
tables' owner (the role that ran the migrations).  SQLite has no roles: protect the file with
filesystem permissions and export signed checkpoints (``gov audit checkpoint``).
"""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from governance.audit._write import audited
from governance.catalog import STATE_TABLES, Catalog
from governance.errors import InputError

__all__ = ["append_only_sql", "harden_postgres"]


def append_only_sql() -> str:
    """The hardening script (``governance.app_role`` names the application role)."""
    return resources.files("governance.audit").joinpath("append_only.sql").read_text(encoding="utf-8")


def harden_postgres(catalog: Catalog, role: str, actor: str) -> None:
    """Apply the append-only script for ``role`` in one audited transaction."""
    if catalog.backend != "postgresql":
        raise InputError(f"gov audit harden: PostgreSQL only; {catalog.display_url} is {catalog.backend} "
                         "(protect a SQLite file with filesystem permissions and signed checkpoints)")
    if not role.strip():
        raise InputError("--role: expected the name of the application's PostgreSQL role")
    script = append_only_sql()
    try:
        with audited(catalog, actor) as tx:
            conn = tx.session.connection()
            conn.execute(sa.text("SELECT set_config('governance.app_role', :role, true)"), {"role": role})
            driver_error = conn.dialect.loaded_dbapi.Error
            try:
                with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                    cursor.execute(script)  # no parameters: the driver sends the script as one simple query
            except driver_error as exc:
                raise InputError(f"gov audit harden --role {role}: {_first_line(exc)}") from exc
            tx.record("audit.harden", "audit:audit_event",
                      {"role": role, "tables": ["audit_event", "audit_checkpoint"],
                       "revoked": ["UPDATE", "DELETE", "TRUNCATE"],
                       "state_guard": {"tables": list(STATE_TABLES), "check": "commit-time binding to an event",
                                       "revoked": ["TRUNCATE"]}})
    except DBAPIError as exc:
        raise InputError(f"gov audit harden --role {role}: {_first_line(exc.orig)}") from exc


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__
