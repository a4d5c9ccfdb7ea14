"""The traceability matrix: each requirement of a framework and the evidence that covers it.

Requirements and the evidence kinds that cover them live in ``reports/traceability.yaml`` (a data
file, not code).  A requirement is *covered* when evidence of one of its ``covered_by`` kinds exists
and every ``also_needs`` kind exists too, *partial* when only some of that exists, and *missing*
otherwise.  A stored check result whose ``maps_to`` names the requirement (``EU-AI-Act:Annex-IV-2(g)``)
covers it as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from governance.errors import ConfigError

__all__ = ["Framework", "Requirement", "build_matrix", "load_requirements"]


@dataclass(frozen=True)
class Requirement:
    framework: str
    id: str
    title: str
    covered_by: tuple[str, ...]
    also_needs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.framework}:{self.id}"


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    requirements: tuple[Requirement, ...]


def _strings(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {where} must be a list of evidence kinds (strings)")
    return tuple(value)


def load_requirements(path: Path) -> tuple[Framework, ...]:
    """Parse the traceability data file; a malformed file is a :class:`ConfigError` naming it."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the traceability file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("frameworks"), list):
        raise ConfigError(f"{path}: expected a mapping with a `frameworks` list")
    frameworks = []
    for i, fw in enumerate(doc["frameworks"]):
        if (
            not isinstance(fw, dict)
            or not isinstance(fw.get("id"), str)
            or not isinstance(fw.get("requirements"), list)
        ):
            raise ConfigError(f"{path}: frameworks[{i}] needs an `id` and a `requirements` list")
        reqs = []
        for j, req in enumerate(fw["requirements"]):
            where = f"frameworks[{i}].requirements[{j}]"
            if not isinstance(req, dict) or not isinstance(req.get("id"), str):
                raise ConfigError(f"{path}: {where} needs an `id`")
            reqs.append(
                Requirement(
                    framework=fw["id"],
                    id=req["id"],
                    title=str(req.get("title", req["id"])),
                    covered_by=_strings(path, f"{where}.covered_by", req.get("covered_by")),
                    also_needs=_strings(path, f"{where}.also_needs", req.get("also_needs")),
                )
            )
        frameworks.append(Framework(fw["id"], str(fw.get("title", fw["id"])), tuple(reqs)))
    return tuple(frameworks)


def build_matrix(
    frameworks: tuple[Framework, ...], evidence: dict[str, list[str]], mapped_checks: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """One row per requirement: status (covered, partial, missing), the evidence found and what is
    still missing.  ``evidence`` maps an evidence kind to descriptions of the items of that kind;
    ``mapped_checks`` maps a requirement key to the check results that name it in ``maps_to``."""
    rows: list[dict[str, Any]] = []
    for fw in frameworks:
        for req in fw.requirements:
            found: list[str] = []
            for kind in req.covered_by:
                found.extend(evidence.get(kind, []))
            found.extend(mapped_checks.get(req.key, []))
            lacking = [kind for kind in req.also_needs if not evidence.get(kind)]
            needed = [kind for kind in req.also_needs if evidence.get(kind)]
            for kind in needed:
                found.extend(evidence[kind])
            primary = bool(found) and (
                any(evidence.get(k) for k in req.covered_by) or bool(mapped_checks.get(req.key))
            )
            if primary and not lacking:
                status = "covered"
            elif found:
                status = "partial"
            else:
                status = "missing"
            missing = [] if primary else [" or ".join(req.covered_by) or "evidence"]
            missing.extend(lacking)
            rows.append(
                {
                    "framework": fw.id,
                    "framework_title": fw.title,
                    "id": req.id,
                    "key": req.key,
                    "title": req.title,
                    "status": status,
                    "evidence": list(dict.fromkeys(found)),
                    "missing": missing,
                }
            )
    return rows
