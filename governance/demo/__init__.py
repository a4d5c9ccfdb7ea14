"""``gov demo``: the end-to-end story, run from the shipped example ``examples/credit_scoring``.

The example is the demo's source (shipped inside the wheel), so what ``gov demo`` runs is exactly the
readable script a newcomer opens next.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from governance._resources import resource_dir
from governance.errors import GovernanceError

__all__ = ["load_example", "run_demo"]

_MODULE = "credit_scoring"


def load_example() -> ModuleType:
    """Import ``examples/credit_scoring/pipeline.py`` (idempotent within a process)."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    path = resource_dir("examples") / "credit_scoring" / "pipeline.py"
    if not path.is_file():
        raise GovernanceError(f"the demo's source is missing from this installation: {path}")
    spec = importlib.util.spec_from_file_location(_MODULE, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise GovernanceError(f"cannot load the demo's source {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module  # estimators defined there must be picklable by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE]
        raise
    return module


def run_demo(out_dir: Path, say: Callable[[str], None] = print, catalog: Any = None) -> Any:
    """Run the credit-scoring story into ``out_dir``; returns the example's ``Story``."""
    return load_example().run(out_dir, say=say, catalog=catalog)
