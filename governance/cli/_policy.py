"""``gov check``: evaluate a policy pack without promoting, in CI-native output formats."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from governance._outputs import check_output_path, write_output
from governance.cli._context import check_format, say, state

__all__ = ["check_output", "register", "sensitive_columns", "write_report"]

FORMATS = ("text", "json", "junit", "sarif", "github")


def sensitive_columns(values: list[str] | None) -> list[str]:
    """``--sensitive a,b --sensitive c`` -> ``[a, b, c]``."""
    return [c.strip() for v in values or [] for c in v.split(",") if c.strip()]


def check_output(output: Path | None) -> Path | None:
    """Refuse an ``--output`` that cannot be a report file before any work is done."""
    if output is not None:
        check_output_path(output)
    return output


def write_report(document: dict[str, Any], fmt: str, output: Path | None, policy_path: Path | None) -> None:
    """Render ``document`` as ``fmt`` to ``output`` (or stdout).

    ``github``: the Markdown summary goes to ``output``, else is appended to ``$GITHUB_STEP_SUMMARY``,
    else printed; the ``::error``/``::warning`` lines always go to stdout (that is where the runner
    reads them).  With ``--output`` and a machine format, a readable table still goes to stdout.
    """
    from governance._version import __version__
    from governance.registry import render, render_github, summary_line

    if fmt == "github":
        gh = render_github(document, policy_path=policy_path)
        target = output or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY")
                            else None)
        if target is None:
            sys.stdout.write(gh.summary)
        else:
            write_output(target, gh.summary, append=True,
                         option="--output" if output is not None else "GITHUB_STEP_SUMMARY")
        sys.stdout.write(gh.annotations)
        return
    text = render(document, fmt, policy_path=policy_path, tool_version=__version__)
    if output is None:
        sys.stdout.write(text)
        return
    write_output(output, text)
    say(f"{summary_line(document)}; {fmt} report written to {output}")


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        ctx: typer.Context,
        ref: str | None = typer.Argument(None, metavar="[MODEL@VERSION]",
                                         help="Model version (number or alias) to check."),
        policy: str = typer.Option(..., "--policy", help="Policy pack: path or shipped name."),
        predictions: Path | None = typer.Option(None, "--predictions", help="Predictions CSV/Parquet."),
        label: str | None = typer.Option(None, "--label", help="Label column of --predictions."),
        prediction: str | None = typer.Option(None, "--prediction", help="Predicted label column."),
        score: str | None = typer.Option(None, "--score", help="Score/probability column."),
        sensitive: list[str] | None = typer.Option(None, "--sensitive", help="COL[,COL]"),
        fmt: str = typer.Option("text", "--format", help="text, json, junit, sarif or github."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
        fail_on_warn: bool = typer.Option(False, "--fail-on-warn", help="Exit 1 on warnings too."),
        engine: str = typer.Option("pandas", "--engine",
                                   help="pandas, or spark: compute the --predictions table's evidence on Spark "
                                        "(Parquet or Delta paths; needs ml-governance[spark])."),
        force: bool = typer.Option(False, "--force",
                                   help="Evaluate even if the pack's appliesTo.riskTier leaves out the model's."),
    ) -> int:
        """Evaluate a policy pack against a model version or a predictions table (no promotion).

        Exit codes: 0 passed; 1 blocked (or warnings with --fail-on-warn); 2 bad input; 3 a check could
        not be evaluated.
        """
        from governance.registry import check

        check_format(fmt, FORMATS)
        check_output(output)
        st = state(ctx)
        report = check(ref, policy=policy, predictions=predictions, label=label, prediction=prediction,
                       score=score, sensitive=sensitive_columns(sensitive),
                       catalog=st.catalog() if ref is not None else None, actor=st.actor, force=force,
                       engine=engine)
        write_report(report.output_document(), fmt, output, report.policy_path)
        missing = report.missing_evidence()
        if missing:
            say(f"gov: {missing}", err=True)
        return report.exit_code(fail_on_warn=fail_on_warn)
