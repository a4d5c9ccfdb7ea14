"""``gov sync`` and ``gov ingest openlineage FILE``.

``gov sync`` replays the capture spool (runs recorded while the catalog was unreachable) and then
drains the OpenLineage outbox through the configured transport.  Exit 0 when everything pending was
delivered (or no transport is configured: the events wait), 1 when a delivery failed or another
process kept the outbox for longer than ``sync`` waits for its turn (the events stay in the outbox
and are shipped later).

``gov ingest openlineage FILE`` imports events of other producers (NDJSON, a JSON array, JSON
documents, or a directory of them).  Exit 0 when every event was imported (or already was), 2 when
some were invalid: each is reported on stderr as ``FILE:LINE: JSON.path: reason`` (``FILE[INDEX]``
in an array) and the others are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from governance.cli._context import emit_json, say, state

__all__ = ["register"]


def _replay_spool(catalog: Any, actor: str | None = None) -> str:
    import importlib

    replay_spool = getattr(importlib.import_module("governance.lineage"), "replay_spool", None)
    if replay_spool is None:
        return "spool: replay not available in this installation"
    result = replay_spool(catalog, actor=actor)
    count = result if isinstance(result, int) else getattr(result, "replayed", result)
    return f"spool: replayed {count}"


def register(app: typer.Typer) -> None:
    ingest = typer.Typer(help="Import lineage from other tools.", no_args_is_help=True)

    @app.command("sync")
    def sync_command(ctx: typer.Context,
                     fmt: str = typer.Option("text", "--format", help="text or json")) -> int:
        """Replay the capture spool, then ship pending OpenLineage events."""
        from governance.audit import resolve_actor
        from governance.cli._context import check_format
        from governance.openlineage import sync

        check_format(fmt, ("text", "json"))
        st = state(ctx)
        catalog = st.catalog()
        spool = _replay_spool(catalog, st.actor)
        report = sync(catalog, actor=resolve_actor(st.actor, st.settings))
        if fmt == "json":
            emit_json({"spool": spool, "transport": report.transport, "sent": report.sent,
                       "failed": report.failed, "pending": report.pending, "errors": report.errors})
        else:
            say(spool)
            if report.transport is None:
                say(f"outbox: {report.pending} event(s) pending; no OpenLineage transport configured "
                           "(openlineage.yml, OPENLINEAGE__TRANSPORT__*, OPENLINEAGE_URL) or "
                           "OPENLINEAGE_DISABLED is set")
            else:
                say(f"outbox: sent {report.sent}, failed {report.failed}, pending {report.pending} "
                           f"(transport: {report.transport})")
                for error in report.errors:
                    say(f"gov: not delivered: {error.splitlines()[0] if error else ''}", err=True)
        return 1 if report.failed or report.errors else 0

    @ingest.command("openlineage")
    def ingest_openlineage_command(
        ctx: typer.Context,
        path: Path = typer.Argument(..., metavar="FILE",
                                    help="NDJSON, a JSON array or JSON documents; or a directory of them."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> int:
        """Import OpenLineage events (Spark, Airflow, dbt, Flink...) as jobs, runs and dataset versions."""
        from governance.audit import resolve_actor
        from governance.cli._context import check_format
        from governance.openlineage import ingest_openlineage

        check_format(fmt, ("text", "json"))
        st = state(ctx)
        # this process only imports: no need to scan the batches for garbage cycles (see pause_gc)
        report = ingest_openlineage(st.catalog(), path, resolve_actor(st.actor, st.settings), pause_gc=True)
        for location, reason in report.invalid:
            say(f"gov: {location}: {reason}", err=True)
        if fmt == "json":
            emit_json(report.to_json())
        else:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.kinds.items()))
            say(f"read {report.read} event(s): imported {report.imported}{f' ({kinds})' if kinds else ''}, "
                       f"already imported {report.duplicates}, invalid {len(report.invalid)}; "
                       f"{len(report.runs)} run(s), {len(report.datasets)} dataset(s), "
                       f"{report.column_lineage} column lineage link(s), {report.inferred_inputs} input(s) "
                       f"inferred from column lineage, {report.rebound} input(s) re-bound to an earlier version")
            for reason, count in sorted(report.unlinked.items()):
                say(f"not linked: {count} x {reason}")
        return 0 if report.ok else 2

    app.add_typer(ingest, name="ingest")
