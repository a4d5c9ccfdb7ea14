"""Test support: one reset for everything the package keeps per process.

Use it between tests (``tests/conftest.py`` does)::

    import governance.testing

    governance.testing.reset()

The state it forgets, all of it caches that a later call rebuilds:

* the catalog cache of :func:`governance.catalog.open_catalog` (engines are disposed);
* capture's runtime (:func:`governance.lineage.reset_runtime`): cached settings, environment and code
  information, ids of jobs and datasets per catalog, catalog health (fail-open), the once-per-process
  capture warning;
* the OpenLineage shippers and the cached "is a transport configured?" answer
  (:func:`governance.openlineage.forget_shippers`).

Which catalog is active (:func:`governance.catalog.use_catalog`, :func:`governance.lineage.capture_to`)
and which run is current live in context variables: they end with their ``with`` blocks and need no
reset.
"""

from __future__ import annotations

__all__ = ["reset"]


def reset() -> None:
    """Forget every per-process cache of the package (see the module docstring)."""
    from governance.catalog import clear_catalog_cache
    from governance.lineage import reset_runtime
    from governance.openlineage import forget_shippers

    forget_shippers()
    reset_runtime()
    clear_catalog_cache()
