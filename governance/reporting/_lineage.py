"""The upstream lineage of a model version, as nodes and edges for the report.

Walks model version <- training run <- input dataset versions <- the runs that produced them <- their
inputs, up to a bounded depth and size (a report shows the neighbourhood; ``gov lineage`` answers
deep queries).  Evaluation datasets hang off the model version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from governance.catalog import dataset_version_label, producing_run, run_input_datasets, run_label

if TYPE_CHECKING:  # pragma: no cover
    from governance.registry import VersionFacts

__all__ = ["MAX_DEPTH", "MAX_NODES", "build_lineage"]

MAX_DEPTH = 6
MAX_NODES = 60


def _short(value: str | None, n: int = 12) -> str | None:
    if not value:
        return None
    head = value.split(":", 1)[-1]
    return head[:n]


class _Graph:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[dict[str, Any]] = []
        self.truncated = False

    def full(self) -> bool:
        if len(self.nodes) >= MAX_NODES:
            self.truncated = True
            return True
        return False

    def add_edge(self, source: str, target: str, label: str | None) -> None:
        edge = {"source": source, "target": target, "label": label}
        if edge not in self.edges:
            self.edges.append(edge)

    def dataset(self, dv_id: int) -> str | None:
        key = f"dataset:{dv_id}"
        if key in self.nodes:
            return key
        found = dataset_version_label(self.s, dv_id)
        if found is None or self.full():
            return None
        self.nodes[key] = {"id": key, "kind": "dataset", "label": found[0], "detail": _short(found[1])}
        return key

    def run(self, run_id: int) -> str | None:
        key = f"run:{run_id}"
        if key in self.nodes:
            return key
        found = run_label(self.s, run_id)
        if found is None or self.full():
            return None
        job, run_uuid = found
        self.nodes[key] = {"id": key, "kind": "run", "label": job or run_uuid[:8], "detail": run_uuid[:8]}
        return key

    def walk_run(self, run_id: int, run_key: str, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self.truncated = True
            return
        for dv_id, role in run_input_datasets(self.s, run_id):
            fresh = f"dataset:{dv_id}" not in self.nodes
            ds_key = self.dataset(dv_id)
            if ds_key is None:
                continue
            self.add_edge(ds_key, run_key, role)
            if not fresh:
                continue
            producer = producing_run(self.s, dv_id)
            if producer is None:
                continue
            fresh_run = f"run:{producer}" not in self.nodes
            prod_key = self.run(producer)
            if prod_key is None:
                continue
            self.add_edge(prod_key, ds_key, None)
            if fresh_run:
                self.walk_run(producer, prod_key, depth + 1)


def build_lineage(session: Session, mv: VersionFacts, evaluation_dataset_ids: list[int]) -> dict[str, Any]:
    """Nodes (``dataset``, ``run``, ``model``) and edges pointing downstream."""
    g = _Graph(session)
    model_key = f"model:{mv.model_version_id}"
    g.nodes[model_key] = {
        "id": model_key,
        "kind": "model",
        "label": mv.label,
        "detail": _short(mv.artifact_hash),
    }
    if mv.training_run_id is not None:
        run_key = g.run(mv.training_run_id)
        if run_key is not None:
            g.add_edge(run_key, model_key, "trained")
            g.walk_run(mv.training_run_id, run_key, 0)
    for dv_id in evaluation_dataset_ids:
        ds_key = g.dataset(dv_id)
        if ds_key is not None:
            g.add_edge(model_key, ds_key, "evaluated on")
    return {"nodes": list(g.nodes.values()), "edges": g.edges, "truncated": g.truncated}
