"""The ``gov`` command: parses, calls the library, maps the exception tree to exit codes.

Exit codes: 0 passed; 1 blocked by policy (or a chain that does not verify); 2 bad input or usage,
with a one-line reason; 3 a check could not be evaluated (or an unexpected internal error: a gate
fails closed).  ``--verbose`` shows tracebacks.
"""

from __future__ import annotations

import gc
import sys
import traceback
from collections.abc import Sequence

import typer

from governance._display import printable
from governance.cli import (
    _audit,
    _db,
    _demo,
    _keys,
    _lineage,
    _mlflow,
    _openlineage,
    _policy,
    _read,
    _registry,
    _report,
    _serve,
)
from governance.cli._context import CliState
from governance.errors import GovernanceError

__all__ = ["app", "main"]

app = typer.Typer(
    name="gov",
    help="ML governance, lineage and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks on errors."),
    catalog: str | None = typer.Option(
        None, "--catalog", metavar="URL", help="Catalog URL (else GOVERNANCE_CATALOG_URL, governance.toml, "
        "sqlite:///.governance/catalog.db)."
    ),
    actor: str | None = typer.Option(None, "--actor", help="Who is acting (else GOVERNANCE_ACTOR, CI, OS user)."),
) -> None:
    ctx.obj = CliState(verbose=verbose, catalog_url=catalog, actor=actor)


# Every command area lives in its own module and adds its commands to ``app``; all are imported here,
# so a missing or broken module fails ``gov`` loudly instead of dropping its commands.
for _module in (_db, _read, _audit, _lineage, _openlineage, _policy, _registry, _report, _demo, _keys, _mlflow,
                _serve):
    _module.register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gov`` console script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args or "-v" in args
    code = _run(args, verbose)
    if argv is None:
        # The process ends here: moving every object to the permanent generation spares the
        # interpreter's final garbage collections (a fifth of a short command's wall time) while
        # atexit handlers, thread joins and reference-counted finalizers still run.
        gc.freeze()
        sys.exit(code)
    return code


def _run(args: list[str], verbose: bool) -> int:
    try:
        result = app(args=args, prog_name="gov", standalone_mode=False)
    except GovernanceError as exc:
        if verbose:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"gov: error: {printable(message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gov: interrupted", file=sys.stderr)
        return 130
    except typer.Abort:
        print("gov: aborted", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - a gate fails closed on the unexpected too
        # click's (or typer's vendored click's) usage errors: one line naming the command and option
        describe, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if callable(describe) and isinstance(code, int):
            show = getattr(exc, "show", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and callable(show):
                show()  # a bare group: its help is the answer
            else:
                print(printable(_usage_line(exc, str(describe()))), file=sys.stderr)
            return code
        if verbose:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"gov: internal error: {type(exc).__name__}: {printable(first)} (run with --verbose for the "
              "traceback)", file=sys.stderr)
        return 3
    return int(result) if isinstance(result, int) else 0


def _usage_line(exc: Exception, message: str) -> str:
    """``gov: error: gov runs list: Invalid value for '--limit': ... (see gov runs list --help)``."""
    text = " ".join(message.split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    if not isinstance(path, str) or not path:
        return f"gov: error: {text}"
    return f"gov: error: {path}: {text} (see {path} --help)"
