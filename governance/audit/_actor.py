"""Who is acting: ``--actor``, else the CI identity inside CI, else ``GOVERNANCE_ACTOR`` or
``governance.toml``, else the OS user.

Inside a CI job (``GITHUB_ACTIONS``, ``GITLAB_CI``, ``BUILDKITE``, ``CIRCLECI``) the CI system's
identity wins over the repository's configuration: a committed ``actor = "carol"`` cannot rename the
person whose push started the job.  An actor is a claim for ordinary records; decisions that need a
person are signed (:mod:`governance.signing`).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping

from governance.config import Settings

__all__ = ["ci_identity", "resolve_actor"]

# (variable that says "this is that CI", variable holding who started the job)
_CI_IDENTITY = (
    ("GITHUB_ACTIONS", "GITHUB_ACTOR"),
    ("GITLAB_CI", "GITLAB_USER_LOGIN"),
    ("BUILDKITE", "BUILDKITE_BUILD_CREATOR"),
    ("CIRCLECI", "CIRCLE_USERNAME"),
)


def ci_identity(environ: Mapping[str, str] | None = None) -> str | None:
    """The identity of the CI job's user when running inside a known CI system, else None."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    for flag, name in _CI_IDENTITY:
        if env.get(flag, "").strip().lower() in {"true", "1", "yes"} and env.get(name, "").strip():
            return env[name].strip()
    return None


def resolve_actor(explicit: str | None = None, settings: Settings | None = None,
                  environ: dict[str, str] | None = None) -> str:
    """The acting identity, by the documented precedence."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    in_ci = ci_identity(env)
    if in_ci:
        return in_ci
    if settings is not None and settings.actor:
        return settings.actor
    if env.get("GOVERNANCE_ACTOR"):
        return env["GOVERNANCE_ACTOR"]
    for _flag, name in _CI_IDENTITY:
        if env.get(name):
            return env[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"
