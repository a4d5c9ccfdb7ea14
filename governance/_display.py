"""The one sanitiser of text that reaches a person: terminals, logs, CI annotations, JUnit and SARIF text.

Names, group values, actors and messages come from data that anyone with catalog or file access can
write.  Shown raw, they could move the cursor or clear the screen (``ESC[2J``), hide a hyperlink
(OSC 8), rewrite a line (``\\r``), start a new line that a CI runner reads as a workflow command
(``::add-mask::``), reorder text (bidi controls) or hide characters (zero-width).  So:

* :func:`printable` shows every control, format and separator character as a visible escape
  (``\\n``, ``\\x1b``, ``\\u202e``) and defuses a leading ``::``;
* :func:`guard_lines` is the last line of defence over a whole rendered block: no line of it can
  start a workflow command;
* :func:`plain` wraps a value for rich so that markup in data (``[bold]``, ``[link=...]``) is
  shown as typed, never interpreted.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

__all__ = ["guard_lines", "plain", "printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_WORKFLOW = re.compile(r"^(\s*):(?=:)")


def _visible(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _needs_escape(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: bidi overrides, zero-width and other invisible format characters;
    # Zl/Zp: line and paragraph separators (some terminals and viewers break lines on them); Cs/Cn: lone
    # surrogates and noncharacters (U+FFFE), which XML cannot carry
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Cn")


def printable(value: Any) -> str:
    """``value`` as one line of inert text: control and invisible characters escaped, and a leading
    ``::`` (after white space) shown as ``\\x3a:`` so that it cannot be read as a workflow command."""
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable() or "::" in text:
        text = "".join(_visible(ch) if _needs_escape(ch) else ch for ch in text)
        text = _WORKFLOW.sub(r"\1\\x3a", text)
    return text


def guard_lines(text: str) -> str:
    """A rendered block with every line that would start a workflow command defused (``\\x3a:``).

    Lines are kept as they are otherwise: the block was built from :func:`printable` values by our own
    renderers; this catches values that only form ``::`` when placed side by side.
    """
    if "::" not in text:
        return text
    return "".join(_WORKFLOW.sub(r"\1\\x3a", line) for line in text.splitlines(keepends=True))


def plain(value: Any) -> Text:
    """A rich ``Text`` of :func:`printable` ``value``: never parsed as console markup."""
    from rich.text import Text

    return Text("" if value is None else printable(value))
