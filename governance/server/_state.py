"""What one server instance holds: the catalog, the lineage inbox, templates and caches."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from governance.catalog import Catalog
from governance.server._config import ServerConfig
from governance.server._inbox import LineageInbox
from governance.server._queries import AuditStatus

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "ServerState", "template_environment", "warm_up"]

TEMPLATE_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")


def warm_up(done: threading.Event) -> None:
    """Import the report builders (matplotlib, WeasyPrint: about a second), the registry, the
    OpenLineage import and networkx once, in one thread, while ``/healthz`` already answers.

    Handlers wait for ``done`` before they run: two threads importing numpy at once can see it half
    initialised, so nothing imports these lazily on a request thread while this runs."""
    try:
        import networkx  # noqa: F401

        import governance.openlineage
        import governance.registry
        import governance.reporting  # noqa: F401
    finally:
        done.set()


@dataclass
class ServerState:
    catalog: Catalog
    config: ServerConfig
    inbox: LineageInbox
    templates: jinja2.Environment
    audit: AuditStatus = field(default_factory=AuditStatus)
    warmed: threading.Event = field(default_factory=threading.Event, repr=False)
    _frameworks: tuple[Any, ...] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait_warm(self) -> None:
        """Block until :func:`warm_up` has imported what handlers import lazily."""
        self.warmed.wait(timeout=120)

    @property
    def frameworks(self) -> tuple[Any, ...]:
        """The traceability frameworks of the shipped reports (read once)."""
        with self._lock:
            if self._frameworks is None:
                from governance.reporting import ReportTemplates, load_requirements

                self._frameworks = load_requirements(ReportTemplates().find("traceability.yaml"))
            return self._frameworks


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["short"] = lambda value, n=12: "" if value is None else str(value)[:n]
    return env


def _num(value: object, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
