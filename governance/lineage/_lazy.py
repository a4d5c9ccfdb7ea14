"""Lazy registration of singledispatch implementations for optional libraries.

``import governance.lineage`` must not import pandas, pyarrow or scikit-learn.  An object of one of
those libraries can only exist once the library is imported, so the default implementation of a
dispatcher asks a :class:`LazyRegistrations` to register the implementations for the object's
library (found through its type's MRO) and dispatches again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["LazyRegistrations"]


class LazyRegistrations:
    """Loaders keyed by top-level module name; each runs at most once."""

    def __init__(self, loaders: dict[str, Callable[[], None]]) -> None:
        self._loaders = dict(loaders)
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def load_for(self, obj: object) -> bool:
        """Run the loaders for the libraries ``obj``'s type comes from; True if any ran now."""
        roots = {klass.__module__.partition(".")[0] for klass in type(obj).__mro__}
        pending = [root for root in roots if root in self._loaders and root not in self._done]
        if not pending:
            return False
        with self._lock:
            ran = False
            for root in sorted(pending):
                if root not in self._done:
                    self._loaders[root]()
                    self._done.add(root)
                    ran = True
            return ran
