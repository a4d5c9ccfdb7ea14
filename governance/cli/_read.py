"""Read commands: ``gov runs|datasets|models list|show``."""

from __future__ import annotations

from typing import Any

import typer

from governance._display import plain, printable
from governance.cli._context import check_format, emit_json, state

__all__ = ["print_mapping", "print_table", "register"]

_FORMATS = ("text", "json")


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    """Rows as a table; every cell is inert text (no markup, no control characters)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, highlight=False)
    if not rows:
        console.print(f"no {printable(title)}", markup=False)
        return
    table = Table(title=plain(title), show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")  # never truncate names or hashes
    for row in rows:
        table.add_row(*(plain(row.get(c)) for c in columns))
    console.print(table)


def print_mapping(doc: dict[str, Any]) -> None:
    """``key: value`` lines (lists of records as ``- k=v, ...``), each value shown by :func:`printable`."""
    from rich.console import Console

    console = Console(soft_wrap=True, highlight=False)
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            console.print(f"{printable(key)}:", markup=False)
            for item in value:
                console.print("  - " + ", ".join(f"{printable(k)}={printable(v)}" for k, v in item.items()
                                                 if v is not None), markup=False)
        else:
            console.print(f"{printable(key)}: {printable(value)}", markup=False)


def views() -> Any:
    """The catalog's read views, imported when a command runs (``gov --help`` imports no database code)."""
    import governance.catalog

    return governance.catalog


def register(app: typer.Typer) -> None:
    fmt_option = typer.Option("text", "--format", help="text or json")
    runs = typer.Typer(help="Pipeline runs recorded by @governance.step.", no_args_is_help=True)
    datasets = typer.Typer(help="Datasets and their fingerprinted versions.", no_args_is_help=True)
    models = typer.Typer(help="Registered models and versions.", no_args_is_help=True)

    @runs.command("list")
    def runs_list(ctx: typer.Context, job: str | None = typer.Option(None, help="Only runs of this job."),
                  limit: int = typer.Option(50, min=1), fmt: str = fmt_option) -> None:
        """List recent runs."""
        check_format(fmt, _FORMATS)
        with state(ctx).catalog().read() as session:
            rows = views().list_runs(session, limit=limit, job=job)
        if fmt == "json":
            emit_json(rows)
        else:
            print_table(rows, ["run_id", "job", "kind", "status", "started_at", "duration_s"], "runs")

    @runs.command("show")
    def runs_show(ctx: typer.Context, run_id: str = typer.Argument(..., help="Run id or a unique prefix."),
                  fmt: str = fmt_option) -> None:
        """Show one run: params, code, environment, inputs and outputs."""
        check_format(fmt, _FORMATS)
        with state(ctx).catalog().read() as session:
            doc = views().describe_run(session, run_id)
        emit_json(doc) if fmt == "json" else print_mapping(doc)

    @datasets.command("list")
    def datasets_list(ctx: typer.Context, limit: int = typer.Option(100, min=1), fmt: str = fmt_option) -> None:
        """List datasets with their latest version."""
        check_format(fmt, _FORMATS)
        with state(ctx).catalog().read() as session:
            rows = views().list_datasets(session, limit=limit)
        if fmt == "json":
            emit_json(rows)
        else:
            print_table(rows, ["namespace", "name", "kind", "latest_version", "versions"], "datasets")

    @datasets.command("show")
    def datasets_show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="DATASET[@VERSION]"),
                      fmt: str = fmt_option) -> None:
        """Show a dataset version: fingerprint, schema, fields and tags."""
        check_format(fmt, _FORMATS)
        with state(ctx).catalog().read() as session:
            doc = views().describe_dataset_version(session, ref)
        emit_json(doc) if fmt == "json" else print_mapping(doc)

    @models.command("list")
    def models_list(ctx: typer.Context, limit: int = typer.Option(100, min=1), fmt: str = fmt_option) -> None:
        """List models with their latest version and aliases."""
        check_format(fmt, _FORMATS)
        with state(ctx).catalog().read() as session:
            rows = views().list_models(session, limit=limit)
        if fmt == "json":
            emit_json(rows)
        else:
            print_table(rows, ["name", "owner", "risk_tier", "latest_version", "aliases"], "models")

    @models.command("show")
    def models_show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="MODEL[@VERSION]"),
                    fmt: str = fmt_option) -> None:
        """Show a model version: artifact, params, metrics, card fields, aliases."""
        check_format(fmt, _FORMATS)
        with state(ctx).catalog().read() as session:
            doc = views().describe_model_version(session, ref)
        emit_json(doc) if fmt == "json" else print_mapping(doc)

    app.add_typer(runs, name="runs")
    app.add_typer(datasets, name="datasets")
    app.add_typer(models, name="models")
