"""``gov import mlflow`` and ``gov mlflow reconcile`` (the MLflow bridge; extra ``[mlflow]``).

``gov import mlflow --tracking-uri URI [--experiment NAME ...] [--model NAME ...]``: exit 0 when
everything selected was imported (or already was), 2 when something was left out (each named on
stderr with its reason; the rest is imported).

``gov mlflow reconcile [--tracking-uri URI] [--model NAME ...] [--alias NAME ...]``: exit 0 when every
MLflow alias matches a gated promotion, 1 when one moved without a matching PASS (each named).
"""

from __future__ import annotations

import typer

from governance.cli._context import check_format, emit_json, state
from governance.errors import PolicyViolation

__all__ = ["register"]

_FORMATS = ("text", "json")
_URI_HELP = "MLflow tracking server URI (else MLFLOW_TRACKING_URI)."


def register(app: typer.Typer) -> None:
    importer = typer.Typer(help="Import runs and models from other tools.", no_args_is_help=True)
    bridge = typer.Typer(help="The MLflow bridge: reconcile MLflow's aliases with gated promotions.",
                         no_args_is_help=True)

    @importer.command("mlflow")
    def import_mlflow_cmd(
        ctx: typer.Context,
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", metavar="URI", help=_URI_HELP),
        experiment: list[str] | None = typer.Option(None, "--experiment", help="Only this experiment (repeat)."),
        model: list[str] | None = typer.Option(None, "--model", help="Only this registered model (repeat)."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> int:
        """Import MLflow runs, dataset inputs, registered models, versions and aliases (only what is new)."""
        from governance.mlflow import import_mlflow

        check_format(fmt, _FORMATS)
        st = state(ctx)
        report = import_mlflow(tracking_uri, experiments=experiment or (), models=model or (),
                               catalog=st.catalog(), actor=st.actor)
        if fmt == "json":
            emit_json({**report.as_dict(), "audit_seq": report.audit_seq})
        else:
            typer.echo(f"imported from {report.tracking_uri}: {report.runs_imported} run(s) "
                       f"({report.runs_unchanged} already in the catalog), {report.datasets} dataset input(s), "
                       f"{report.versions_imported} model version(s) ({report.versions_unchanged} already), "
                       f"{report.aliases_moved} alias move(s); audit seq {report.audit_seq}")
        for where, reason in report.problems:
            typer.echo(f"gov: {where}: {reason}", err=True)
        return 2 if report.problems else 0

    @bridge.command("reconcile")
    def reconcile_cmd(
        ctx: typer.Context,
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", metavar="URI", help=_URI_HELP),
        model: list[str] | None = typer.Option(None, "--model", help="Only this registered model (repeat)."),
        alias: list[str] | None = typer.Option(None, "--alias", help="Only this alias (repeat)."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> int:
        """Report every MLflow alias that moved without a matching PASS of our gate (exit 1 if any)."""
        from governance.mlflow import reconcile

        check_format(fmt, _FORMATS)
        st = state(ctx)
        report = reconcile(tracking_uri, models=model or (), aliases=alias or (), catalog=st.catalog(),
                           actor=st.actor)
        if fmt == "json":
            emit_json(report.as_dict())
        else:
            for finding in report.findings:
                typer.echo(f"{finding.kind}: {finding.message}")
            typer.echo(f"{report.checked} alias(es) checked on {report.tracking_uri}, "
                       f"{len(report.findings)} without a matching PASS; audit seq {report.audit_seq}")
        if report.findings:
            raise PolicyViolation(f"{len(report.findings)} MLflow alias(es) moved without a matching PASS")
        return 0

    app.add_typer(importer, name="import")
    app.add_typer(bridge, name="mlflow")

