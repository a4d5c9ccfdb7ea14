"""Where shipped data lives: ``policies/`` and ``reports/``.

In a built wheel they are packaged as ``governance/_data/{policies,reports}``; in a source checkout
(editable install) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]


def resource_dir(kind: str) -> Path:
    """The directory of shipped ``policies`` or ``reports``."""
    if kind not in {"policies", "reports"}:
        raise ValueError(f"unknown resource kind {kind!r}")
    package = Path(__file__).resolve().parent
    installed = package / "_data" / kind
    if installed.is_dir():
        return installed
    return package.parent / kind
