"""Checks that read the catalog: lineage completeness and documentation completeness."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from sqlmodel import col, select

from governance.catalog import Dataset, DatasetVersion, ModelVersion, Run, RunIO
from governance.checks._base import Check, CheckContext, CheckParams, Measurement
from governance.domain import is_placeholder

__all__ = ["catalog_checks"]

class LineageParams(CheckParams):
    require_git_commit: bool = False


class LineageCompleteness(Check):
    """1.0 when the version traces to a training run with a code hash and fingerprinted input data."""

    id = "lineage.completeness"
    version = "1"
    Params: ClassVar[type[CheckParams]] = LineageParams
    requires = frozenset({"catalog", "model_version"})
    description = "the model version traces to fingerprinted training data and to code"

    def compute(self, ctx: CheckContext, params: LineageParams) -> Measurement:
        items: dict[str, dict[str, float | int | None]] = {}
        problems: list[str] = []
        datasets: list[dict[str, Any]] = []
        with ctx.session() as session:
            mv = session.get(ModelVersion, ctx.model["model_version_id"])
            run = session.get(Run, mv.training_run_id) if mv is not None and mv.training_run_id else None
            items["artifact_hash"] = {"ok": int(bool(mv is not None and mv.artifact_hash))}
            items["training_run"] = {"ok": int(run is not None)}
            items["code_hash"] = {"ok": int(bool(run is not None and run.code_hash))}
            if params.require_git_commit:
                items["git_commit"] = {"ok": int(bool(run is not None and run.git_commit))}
            if run is not None:
                edges = session.exec(
                    select(RunIO)
                    .where(
                        RunIO.run_id == run.id, RunIO.direction == "input", RunIO.artifact_kind == "dataset"
                    )
                    .order_by(col(RunIO.id))
                ).all()
                for edge in edges:
                    dv = session.get(DatasetVersion, edge.artifact_id)
                    ds = session.get(Dataset, dv.dataset_id) if dv is not None else None
                    if dv is not None and ds is not None:
                        datasets.append(
                            {
                                "dataset": ds.name,
                                "version": dv.version,
                                "role": edge.role,
                                "content_hash": dv.content_hash,
                                "hash_algo": dv.hash_algo,
                            }
                        )
        items["training_data"] = {"ok": int(bool(datasets))}
        items["data_fingerprints"] = {"ok": int(bool(datasets) and all(d["content_hash"] for d in datasets))}
        problems = [k for k, v in items.items() if not v["ok"]]
        message = f"missing: {', '.join(problems)}" if problems else "traces to fingerprinted data and code"
        return Measurement(
            value=0.0 if problems else 1.0,
            by_group=items,
            message=message,
            evidence={"training_datasets": datasets, "missing": problems},
        )


DEFAULT_FIELDS = ["description", "intended_use", "limitations", "ethical_considerations"]


class DocParams(CheckParams):
    required: list[str] = Field(default_factory=lambda: list(DEFAULT_FIELDS))


class DocumentationCompleteness(Check):
    """The fraction of required card fields present and not placeholders (assert ``gte: 1``)."""

    id = "documentation.completeness"
    version = "1"
    Params: ClassVar[type[CheckParams]] = DocParams
    requires = frozenset({"model_version"})
    description = "required model card fields are filled in (no TBD, TODO or [More Information Needed])"

    def compute(self, ctx: CheckContext, params: DocParams) -> Measurement:
        card = dict(ctx.model.get("card") or {})
        if "description" not in card and ctx.model.get("description") is not None:
            card["description"] = ctx.model["description"]
        items: dict[str, dict[str, float | int | None]] = {}
        absent: list[str] = []
        placeholder: list[str] = []
        for name in params.required:
            present = name in card and not is_placeholder(card[name])
            items[name] = {"present": int(present)}
            if not present:
                (placeholder if name in card else absent).append(name)
        missing = [*(f"{n} (absent)" for n in absent), *(f"{n} (placeholder)" for n in placeholder)]
        value = (len(params.required) - len(missing)) / len(params.required) if params.required else 1.0
        parts = []
        if absent:
            parts.append(f"missing card fields: {', '.join(absent)}")
        if placeholder:
            parts.append(f"placeholder card fields: {', '.join(placeholder)}")
        message = "; ".join(parts) or "all required card fields present"
        return Measurement(value=value, by_group=items, message=message, evidence={"missing": missing})


def catalog_checks() -> list[Check]:
    return [LineageCompleteness(), DocumentationCompleteness()]
