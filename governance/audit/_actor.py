"""Who is acting: ``--actor``, else ``GOVERNANCE_ACTOR``, else CI identity, else the OS user."""

from __future__ import annotations

import getpass
import os

from governance.config import Settings

__all__ = ["resolve_actor"]

_CI_IDENTITY = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME")


def resolve_actor(explicit: str | None = None, settings: Settings | None = None,
                  environ: dict[str, str] | None = None) -> str:
    """The acting identity, by the documented precedence."""
    if explicit:
        return explicit
    if settings is not None and settings.actor:
        return settings.actor
    env = os.environ if environ is None else environ
    if env.get("GOVERNANCE_ACTOR"):
        return env["GOVERNANCE_ACTOR"]
    for name in _CI_IDENTITY:
        if env.get(name):
            return env[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"
