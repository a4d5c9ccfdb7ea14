"""``gov audit verify|adopt|checkpoint|keygen|log|harden``.

Exit codes: ``verify`` exits 0 when the chain (and the checkpoint, if given) verifies, 1 when it
does not; a corrupt checkpoint, a wrong key or an empty log is bad input (2, one line).
"""

from __future__ import annotations

from pathlib import Path

import typer

from governance._display import printable
from governance.cli._context import check_format, emit_json, say, state
from governance.errors import AuditIntegrityError, InputError

__all__ = ["register"]

_FORMATS = ("text", "json")


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="Tamper-evident audit trail: verify, checkpoints, keys, log.",
                        no_args_is_help=True)
    _add_verify(audit)
    _add_adopt(audit)
    _add_checkpoint(audit)
    _add_keygen(audit)
    _add_log(audit)
    _add_harden(audit)
    app.add_typer(audit, name="audit")


def _add_verify(audit: typer.Typer) -> None:
    @audit.command("verify")
    def verify(
        ctx: typer.Context,
        checkpoint: Path | None = typer.Option(None, "--checkpoint", metavar="FILE",
                                               help="A signed checkpoint the log must still contain."),
        pubkey: Path | None = typer.Option(None, "--pubkey", metavar="FILE",
                                           help="The Ed25519 public key that signed the checkpoint."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> None:
        """Recompute the hash chain; name the first bad seq; check a signed checkpoint; replay the log's
        state against the state tables."""
        from governance.audit import verify_audit

        check_format(fmt, _FORMATS)
        catalog = state(ctx).catalog(read_only=True)
        report = verify_audit(catalog, checkpoint=checkpoint, pubkey=pubkey)
        if report.count == 0 and report.first_bad_seq is None and report.checkpoint_ok is None:
            raise InputError(f"audit log of {catalog.display_url} is empty: nothing to verify "
                             "(is --catalog / GOVERNANCE_CATALOG_URL the right catalog?)")
        if fmt == "json":
            emit_json(report.as_dict())
        else:
            if report.first_bad_seq is None:
                say(f"audit chain intact: {report.count} events, head seq {report.head.seq} "
                           f"hash {report.head.hash[:16]}")
            else:
                say(f"audit chain BROKEN at seq {report.first_bad_seq}: {report.reason} "
                           f"({report.count} events verify before it)")
            if report.checkpoint_ok is not None:
                verdict = "ok" if report.checkpoint_ok else "FAILED"
                say(f"checkpoint seq {report.checkpoint_seq}: {verdict}: {report.checkpoint_reason}")
            if report.state is not None:
                if report.state.ok:
                    say(f"state bound to the log: {report.state.rows} rows match their events")
                for line in report.state.lines():
                    say(f"state NOT bound: {printable(line)}")
        if not report.ok:
            if report.first_bad_seq is not None:
                raise AuditIntegrityError(
                    f"audit chain broken at seq {report.first_bad_seq}: {report.reason}")
            if report.checkpoint_ok is False:
                raise AuditIntegrityError(f"checkpoint check failed: {report.checkpoint_reason}")
            raise AuditIntegrityError(f"state does not match the audit log: {report.state.lines()[0]}")


def _add_adopt(audit: typer.Typer) -> None:
    @audit.command("adopt")
    def adopt(
        ctx: typer.Context,
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> None:
        """Bind the rows of a catalog written before state binding (migration 0006) to the events that
        created them, where the row agrees with what the event recorded; report the rest (exit 1)."""
        from governance.audit import adopt_existing, resolve_actor

        check_format(fmt, _FORMATS)
        st = state(ctx)
        report = adopt_existing(st.catalog(), resolve_actor(st.actor, st.settings))
        if fmt == "json":
            emit_json(report.as_dict())
        else:
            bound = sum(report.bound.values())
            say(f"adopted: {bound} row(s) bound to the events that created them (audit seq {report.audit_seq}); "
                f"{report.already_bound} were bound already")
            for table, count in sorted(report.unmatched.items()):
                say(f"NOT bound: {count} {table} row(s) match no event")
            for line in report.first_unmatched:
                say(f"  {printable(line)}")
        if not report.ok:
            raise AuditIntegrityError(f"{sum(report.unmatched.values())} row(s) match no audit event and stay "
                                      "unbound: the gate refuses them")


def _add_checkpoint(audit: typer.Typer) -> None:
    @audit.command("checkpoint")
    def checkpoint(
        ctx: typer.Context,
        output: Path = typer.Option(..., "--output", metavar="FILE", help="Where to write the checkpoint."),
        key: Path = typer.Option(..., "--key", metavar="KEYFILE",
                                 help="Ed25519 private key (PEM) from `gov audit keygen`."),
    ) -> None:
        """Sign the current head of the chain and write it to FILE (keep it outside the catalog)."""
        from governance.audit import create_checkpoint, load_private_key, resolve_actor

        st = state(ctx)
        private = load_private_key(key)
        cp = create_checkpoint(st.catalog(), private, output, resolve_actor(st.actor, st.settings))
        say(f"checkpoint written: {output} (seq {cp.seq}, hash {cp.hash[:16]}, key {cp.key_id})")


def _add_keygen(audit: typer.Typer) -> None:
    @audit.command("keygen")
    def keygen(
        output_dir: Path = typer.Option(..., "--output-dir", metavar="DIR",
                                        help="Directory for audit-signing.key (0600) and audit-signing.pub."),
    ) -> None:
        """Make an Ed25519 key pair for signing checkpoints."""
        from governance.audit import generate_keypair, key_id, load_public_key

        private_path, public_path = generate_keypair(output_dir)
        say(f"private key: {private_path} (mode 0600; keep it secret, e.g. a CI secret)")
        say(f"public key:  {public_path} (key id {key_id(load_public_key(public_path))})")


def _add_log(audit: typer.Typer) -> None:
    @audit.command("log")
    def log(
        ctx: typer.Context,
        model: str | None = typer.Option(None, "--model", metavar="NAME",
                                         help="Only events about this model."),
        since: str | None = typer.Option(None, "--since", metavar="T", help="ISO date or time (UTC)."),
        limit: int = typer.Option(50, "--limit", metavar="N", help="At most N events (the latest)."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> None:
        """List audit events, oldest first."""
        from governance.audit import list_events, parse_since

        check_format(fmt, _FORMATS)
        since_time = parse_since(since) if since is not None else None
        with state(ctx).catalog().read() as session:
            rows = list_events(session, model=model, since=since_time, limit=limit)
        if fmt == "json":
            emit_json([row.as_dict() for row in rows])
            return
        if not rows:
            say("no audit events")
        for row in rows:
            say(f"{row.seq:>6}  {row.time}  {printable(row.actor)}  {printable(row.action)}  "
                f"{printable(row.subject)}")


def _add_harden(audit: typer.Typer) -> None:
    @audit.command("harden")
    def harden(
        ctx: typer.Context,
        role: str | None = typer.Option(None, "--role", metavar="ROLE", help="The application's PostgreSQL role."),
        print_sql: bool = typer.Option(False, "--print-sql", help="Print the SQL script (for psql) and exit."),
    ) -> None:
        """PostgreSQL: make audit tables append-only for ROLE (trigger + REVOKE UPDATE/DELETE/TRUNCATE)."""
        from governance.audit import append_only_sql, harden_postgres, resolve_actor

        if print_sql:
            typer.echo(append_only_sql(), nl=False)  # our own SQL script
            return
        if role is None:
            raise InputError("--role: expected the name of the application's PostgreSQL role (or --print-sql)")
        st = state(ctx)
        catalog = st.catalog()
        harden_postgres(catalog, role, resolve_actor(st.actor, st.settings))
        say(f"audit tables of {catalog.display_url} are append-only for role {role}")
