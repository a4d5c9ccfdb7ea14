"""``gov demo``: the end-to-end story on an embedded SQLite catalog."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from governance.cli._context import state

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        out: Path = typer.Option(Path("governance-demo"), "--out", help="Directory for the catalog and reports."),
    ) -> None:
        """Capture -> gate blocks a biased model -> mitigated model passes -> promote -> reports -> verify."""
        from governance.catalog import Catalog
        from governance.demo import run_demo
        from governance.errors import InputError

        st = state(ctx)
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True)
        out = out.resolve()
        if out.exists() and not out.is_dir():
            raise InputError(f"--out: {out} exists and is not a directory")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out: cannot create directory {out}: {exc.strerror}") from exc
        url = st.catalog_url or f"sqlite:///{out / '.governance' / 'catalog.db'}"
        started = time.perf_counter()
        console.print(f"[bold]gov demo[/] -> {out}")
        catalog = Catalog(url)
        previous = Path.cwd()
        os.chdir(out)  # capture's home (artifacts, spool) is the demo directory's .governance
        try:
            story = run_demo(out, say=lambda line: console.print(f"  {line}", markup=False), catalog=catalog)
        finally:
            os.chdir(previous)
            catalog.dispose()
        console.print(f"[bold]done in {time.perf_counter() - started:.1f} s[/]; artifacts:")
        for what, where in story.artifacts.items():
            console.print(f"  {what:24} {where}", markup=False)
        console.print(f"next: gov --catalog {catalog.display_url} lineage {story.promoted}", markup=False)
        console.print(f"open it in the web UI: gov --catalog {catalog.display_url} serve, then http://127.0.0.1:5000/ "
                      "(needs pip install 'ml-governance[server]')", markup=False)
