"""The one writer of files a user names with ``--output`` (reports, CI formats, checkpoints, summaries).

It never follows a symbolic link: an output path that is a link is refused, a new file replaces the
path atomically (a temporary file in the same directory, then a rename, which replaces the path
itself, never a link's target), and appending opens with ``O_NOFOLLOW``.  A link planted at a
predictable report name cannot make a gate overwrite another file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from governance.errors import InputError

__all__ = ["check_output_path", "write_output"]


def check_output_path(path: str | os.PathLike[str], option: str = "--output") -> Path:
    """Refuse, before any work is done, an output that is a symbolic link or a directory."""
    target = Path(path)
    if target.is_symlink():
        raise InputError(f"{option}: {target} is a symbolic link; refusing to write through it "
                         "(name the real file)")
    if target.is_dir():
        raise InputError(f"{option}: {target} is a directory; expected a file name")
    return target


def _target(path: Path, option: str) -> Path:
    check_output_path(path, option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option}: cannot create directory {path.parent}: {exc.strerror or exc}") from exc
    return path


def write_output(path: str | os.PathLike[str], content: bytes | str, *, option: str = "--output",
                 append: bool = False) -> None:
    """Write (or append) ``content`` to ``path``; a bad path is one :class:`InputError` naming ``option``."""
    target = _target(Path(path), option)
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        if append:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            with os.fdopen(fd, "ab") as handle:
                handle.write(data)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise InputError(f"{option}: cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{option}: cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
