"""``gov keys``: sign-off keys and the allowed_signers line that makes a key trusted."""

from __future__ import annotations

from pathlib import Path

import typer

from governance.cli._context import say, state

__all__ = ["register"]


def _line(principal: str, public_key: str) -> str:
    from governance.signing import NAMESPACE, normalise_identity

    return f'{normalise_identity(principal, "--principal")} namespaces="{NAMESPACE}" {public_key}'


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="Sign-off keys (OpenSSH Ed25519) and the trust store line for them.",
                       no_args_is_help=True)

    @keys.command("init")
    def keys_init(
        ctx: typer.Context,
        principal: str = typer.Option(..., "--principal", help="Your name in the trust store (e.g. alice)."),
        output: Path = typer.Option(Path("~/.ssh/id_ed25519_governance"), "--output", "-o",
                                    help="Where to write the private key (the public key goes to FILE.pub)."),
    ) -> None:
        """Make a key pair and print the allowed_signers line to add to the project's trust store."""
        from governance.signing import generate_key

        state(ctx)
        key = generate_key(output.expanduser(), comment=principal)
        say(f"private key: {key.path} (keep it to yourself)", err=True)
        say(f"fingerprint: {key.fingerprint}", err=True)
        say("add this line to the allowed_signers file named in governance.toml:", err=True)
        say(_line(principal, key.public_key))

    @keys.command("line")
    def keys_line(
        ctx: typer.Context,
        keyfile: Path = typer.Argument(..., metavar="KEYFILE", help="An existing Ed25519 private key."),
        principal: str = typer.Option(..., "--principal", help="Your name in the trust store."),
    ) -> None:
        """Print the allowed_signers line for an existing key (e.g. ~/.ssh/id_ed25519)."""
        from governance.signing import load_signing_key

        state(ctx)
        key = load_signing_key(keyfile, "KEYFILE")
        say(_line(principal, key.public_key))

    app.add_typer(keys, name="keys")
