"""What ran and where: Python and package versions, the function's code hash, git commit and dirty flag.

All of it is computed once per process (per function, per repository root) and kept in small cache
objects: a step pays for ``git`` at most once per repository.
"""

from __future__ import annotations

import getpass
import hashlib
import inspect
import os
import platform
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["CodeInfo", "CodeInfoCache", "EnvironmentCache", "GitInfo"]

KEY_PACKAGES = (
    "ml-governance",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "fairlearn",
    "shap",
    "xgboost",
    "lightgbm",
    "torch",
)
GIT_TIMEOUT = 2.0


class EnvironmentCache:
    """Python, platform and key package versions; user and host.  Computed on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._env: dict[str, Any] | None = None
        self._user: str | None = None
        self._host: str | None = None

    def environment(self) -> dict[str, Any]:
        if self._env is None:
            with self._lock:
                if self._env is None:
                    packages: dict[str, str] = {}
                    for name in KEY_PACKAGES:
                        try:
                            packages[name] = metadata.version(name)
                        except metadata.PackageNotFoundError:
                            continue
                    self._env = {
                        "python": platform.python_version(),
                        "implementation": platform.python_implementation(),
                        "platform": platform.platform(terse=True),
                        "executable": sys.executable,
                        "packages": packages,
                    }
        return self._env

    def user(self) -> str:
        if self._user is None:
            try:
                self._user = getpass.getuser()
            except (KeyError, OSError):
                self._user = f"uid:{os.getuid()}"
        return self._user

    def host(self) -> str:
        if self._host is None:
            self._host = socket.gethostname()
        return self._host


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    dirty: bool | None


@dataclass(frozen=True)
class CodeInfo:
    """``code_hash`` is ``sha256:`` + hex of the function's source (or bytecode when no source)."""

    code_hash: str
    source_file: str | None
    git: GitInfo


def _source_hash(func: Callable[..., Any]) -> tuple[str, str | None]:
    target = inspect.unwrap(func)
    try:
        source_file = inspect.getsourcefile(target)
    except TypeError:
        source_file = None
    try:
        text = inspect.getsource(target).encode("utf-8")
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        text = code.co_code if code is not None else repr(target).encode()
    return "sha256:" + hashlib.sha256(text).hexdigest(), (
        os.path.abspath(source_file) if source_file else None  # noqa: PTH100 - no symlink resolution
    )


def _repo_root(path: Path) -> Path | None:
    for parent in (path, *path.parents):
        if (parent / ".git").exists():
            return parent
    return None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            ["git", "-C", str(root), *args],  # noqa: S607 - git from PATH, like any git tool
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


class CodeInfoCache:
    """Code hash per function and git state per repository root, each computed once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[Any, CodeInfo] = {}
        self._repos: dict[Path, GitInfo] = {}

    def git_for(self, source_file: str | None) -> GitInfo:
        if source_file is None:
            return GitInfo(None, None)
        root = _repo_root(Path(source_file).parent)
        if root is None:
            return GitInfo(None, None)
        info = self._repos.get(root)
        if info is None:
            head = _git(root, "rev-parse", "HEAD")
            status = _git(root, "status", "--porcelain", "--untracked-files=no") if head else None
            info = GitInfo(head.strip() if head else None, None if status is None else bool(status.strip()))
            with self._lock:
                self._repos[root] = info
        return info

    def for_function(self, func: Callable[..., Any]) -> CodeInfo:
        key = getattr(func, "__code__", func)
        info = self._functions.get(key)
        if info is None:
            code_hash, source_file = _source_hash(func)
            info = CodeInfo(code_hash, source_file, self.git_for(source_file))
            with self._lock:
                self._functions[key] = info
        return info
