"""Report commands: ``gov report model-card`` and ``gov report audit``."""

from __future__ import annotations

from pathlib import Path

import typer

from governance.cli._context import check_format, say, state

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    report = typer.Typer(
        help="Reports for auditors: the compliance model card and the audit trail.", no_args_is_help=True
    )

    @report.command("model-card")
    def model_card(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL@VERSION", help="A version number or an alias."),
        fmt: str = typer.Option(
            "html", "--format", help="html, pdf, md, json (Model Card Toolkit; writes the governance sidecar "
            "FILE.governance.json too) or governance (the sidecar alone)"),
        output: Path = typer.Option(..., "--output", "-o", help="File to write."),
        template_dir: Path | None = typer.Option(
            None, "--template-dir", help="Directory overriding shipped templates and styles."
        ),
    ) -> None:
        """Render the compliance model card of one model version."""
        from governance.catalog import parse_ref
        from governance.reporting import MODEL_CARD_FORMATS, render_model_card

        check_format(fmt, MODEL_CARD_FORMATS)
        parsed = parse_ref(ref)
        render_model_card(
            parsed, format=fmt, output=output, catalog=state(ctx).catalog(), template_dir=template_dir
        )
        say(f"wrote {output}")
        if fmt == "json":
            from governance.reporting import sidecar_path

            say(f"wrote {sidecar_path(output)}")

    @report.command("audit")
    def audit(
        ctx: typer.Context,
        model: str | None = typer.Option(None, "--model", help="Only events about this model."),
        since: str | None = typer.Option(
            None, "--since", metavar="T", help="Only events at or after this ISO-8601 date or time."
        ),
        fmt: str = typer.Option("html", "--format", help="html, pdf or json"),
        output: Path = typer.Option(..., "--output", "-o", help="File to write."),
        checkpoint: Path | None = typer.Option(
            None, "--checkpoint", metavar="FILE", help="An exported checkpoint to verify (with --pubkey)."
        ),
        pubkey: Path | None = typer.Option(
            None, "--pubkey", metavar="FILE", help="The public key the checkpoint was signed with."
        ),
    ) -> None:
        """Render the audit trail with the chain's verification status (and a signed checkpoint's)."""
        from governance.reporting import AUDIT_FORMATS, render_audit_report

        check_format(fmt, AUDIT_FORMATS)
        render_audit_report(
            model=model,
            since=since,
            format=fmt,
            output=output,
            catalog=state(ctx).catalog(),
            checkpoint=checkpoint,
            pubkey=pubkey,
        )
        say(f"wrote {output}")

    app.add_typer(report, name="report")
