"""``gov init`` and ``gov db upgrade``."""

from __future__ import annotations

import typer

from governance.cli._context import say, state

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Catalog database maintenance.", no_args_is_help=True)

    @app.command("init")
    def init(ctx: typer.Context) -> None:
        """Create the catalog (or upgrade it) and say where it is."""
        catalog = state(ctx).catalog()
        say(f"catalog ready: {catalog.display_url} (schema {catalog.current_revision()})")

    @db.command("upgrade")
    def upgrade(ctx: typer.Context) -> None:
        """Apply pending schema migrations (safe with several processes at once)."""
        from governance.catalog import Catalog

        st = state(ctx)
        catalog = Catalog(st.settings.catalog_url, busy_timeout=st.settings.busy_timeout, upgrade=False)
        before = catalog.current_revision()
        catalog.upgrade()
        after = catalog.current_revision()
        catalog.dispose()
        if before == after:
            say(f"catalog {catalog.display_url} is up to date (schema {after})")
        else:
            say(f"catalog {catalog.display_url} upgraded: {before or 'empty'} -> {after}")

    @db.command("current")
    def current(ctx: typer.Context) -> None:
        """Print the schema revision of the catalog."""
        from governance.catalog import Catalog

        st = state(ctx)
        catalog = Catalog(st.settings.catalog_url, busy_timeout=st.settings.busy_timeout, upgrade=False)
        say(catalog.current_revision() or "empty")
        catalog.dispose()

    app.add_typer(db, name="db")
