"""The Jinja2 environment for reports: autoescape on for every template, sandboxed, strict.

Templates come from a user's directory first (when given) and then from the shipped ``reports/``
folder, so a user can override one template or the stylesheet and inherit the rest.  User text only
ever reaches templates as data; it is never template source.
"""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from governance._resources import resource_dir
from governance.errors import InputError, NotFoundError
from governance.reporting._format import fmt_assertion, fmt_date, fmt_num, fmt_time, md_escape

__all__ = ["STYLESHEET", "ReportTemplates"]

STYLESHEET = "report.css"


class ReportTemplates:
    """Loads templates and the stylesheet from ``template_dir`` (optional) and the shipped folder."""

    def __init__(self, template_dir: str | os.PathLike[str] | None = None) -> None:
        self.dirs: list[Path] = []
        if template_dir is not None:
            path = Path(template_dir)
            if not path.is_dir():
                raise InputError(f"--template-dir: {path} is not a directory")
            self.dirs.append(path)
        self.dirs.append(resource_dir("reports"))
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters.update(
            num=fmt_num, threshold=fmt_assertion, time=fmt_time, date=fmt_date, md=md_escape
        )

    def find(self, name: str) -> Path:
        for directory in self.dirs:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        raise NotFoundError(f"report file {name!r} not found in {', '.join(map(str, self.dirs))}")

    def stylesheet(self) -> Markup:
        """The CSS to inline (trusted: it comes from the shipped folder or the user's own directory)."""
        css = self.find(STYLESHEET).read_text(encoding="utf-8")
        if "</style" in css.lower():
            raise InputError(f"{self.find(STYLESHEET)}: a stylesheet may not contain '</style'")
        return Markup(css)  # noqa: S704 - a trusted file, checked above, never user data

    def render(self, name: str, context: dict[str, object]) -> str:
        try:
            template = self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise NotFoundError(
                f"report template {name!r} not found in {', '.join(map(str, self.dirs))}"
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"{exc.filename or name} line {exc.lineno}: {exc.message}") from exc
        try:
            return template.render(context)
        except jinja2.UndefinedError as exc:
            raise InputError(f"report template {name}: {exc.message}") from exc
