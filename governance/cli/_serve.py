"""``gov serve`` and ``gov serve-token``."""

from __future__ import annotations

import typer

from governance.cli._context import state

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(5000, "--port", help="Port to listen on."),
    ) -> None:
        """Serve the catalog: web UI, read API and POST /api/v1/lineage (needs the [server] extra)."""
        import dataclasses

        from governance.server import default_inbox_dir, load_server_config, serve

        config = load_server_config()
        catalog = state(ctx).catalog()
        if config.inbox_dir is None:
            config = dataclasses.replace(config, inbox_dir=default_inbox_dir(catalog, state(ctx).settings.home))
        serve(catalog, config, host=host, port=port, say=typer.echo)

    @app.command("serve-token")
    def token_command(
        name: str = typer.Argument(..., help="Who uses the token (shown as the actor in the audit log)."),
        scope: list[str] = typer.Option(["read"], "--scope", help="read and/or write (repeat the option)."),
    ) -> None:
        """Make a random API token; print it once, and the hashed line for governance.toml."""
        from governance.errors import InputError
        from governance.server import hash_token, new_token

        bad = [s for s in scope if s not in ("read", "write")]
        if bad:
            raise InputError(f"--scope: expected read or write, got {bad[0]!r}")
        if not name.strip() or any(c in name for c in ',:"\n'):
            raise InputError(f"NAME: expected a plain name without , : or quotes, got {name!r}")
        token = new_token()
        scopes = sorted(set(scope))
        typer.echo(f"token (shown once; give it to {name}): {token}")
        typer.echo("add to governance.toml:")
        typer.echo("[[server.tokens]]")
        typer.echo(f'name = "{name}"')
        typer.echo(f'sha256 = "{hash_token(token)}"')
        typer.echo(f"scopes = [{', '.join(repr(s).replace(chr(39), chr(34)) for s in scopes)}]")
        typer.echo(f"or: GOVERNANCE_SERVER_TOKENS={name}:{'+'.join(scopes)}:{hash_token(token)}")
