"""The ``gov`` command line."""

from governance.cli._app import app, main

__all__ = ["app", "main"]
