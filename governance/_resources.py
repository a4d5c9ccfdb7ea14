"""Where shipped data lives: ``policies/``, ``reports/`` and ``examples/``.

In a built wheel they are packaged as ``governance/_data/{policies,reports}``; in a source checkout
(editable install) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]


def resource_dir(kind: str) -> Path:
    """The directory of shipped ``policies``, ``reports`` or ``examples``."""
    if kind not in {"policies", "reports", "examples"}:
        raise ValueError(f"unknown resource kind {kind!r}")
    package = Path(__file__).resolve().parent
    installed = package / "_data" / kind
    if installed.is_dir():
        return installed
    return package.parent / kind
