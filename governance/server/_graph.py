"""Lineage for the API and the explorer: the catalog's upstream/downstream walks merged into one graph
(Marquez's ``GET /api/v1/lineage?nodeId=`` shape for the API), and a layered layout computed here so
the browser only draws.

Node ids are the catalog's keys: ``model:<model_version.id>``, ``dataset:<dataset_version.id>``,
``run:<run.id>``.  A root may also be given as ``model:NAME@VERSION`` or ``dataset:NAME@VERSION``
(``dataset:NAMESPACE/NAME@VERSION`` when the name is in several namespaces).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from governance.catalog import (
    both_ways,
    downstream,
    parse_as_of,
    resolve_dataset_version,
    resolve_model_version,
    upstream,
)
from governance.errors import InputError

__all__ = ["DIRECTIONS", "GraphView", "lineage_view", "resolve_node"]

DIRECTIONS = ("both", "upstream", "downstream")
MAX_DEPTH = 20
MAX_EXPAND = 50
_WRAP = 44
_CHAR_W = 7.0
_LINE_H = 15.0
_PAD_X = 12.0
_PAD_Y = 9.0
_COL_GAP = 90.0
_ROW_GAP = 18.0


def resolve_node(session: Session, node_id: str) -> tuple[str, int]:
    """``kind:ident`` -> (``model`` | ``dataset``, catalog id)."""
    kind, sep, ident = node_id.partition(":")
    if not sep or kind not in ("model", "dataset") or not ident:
        raise InputError(f"nodeId: expected model:NAME@VERSION, dataset:NAME@VERSION or a key such as "
                         f"dataset:12, got {node_id!r}")
    if ident.isdigit():
        return kind, int(ident)
    if kind == "model":
        _, mv = resolve_model_version(session, ident)
        return kind, int(mv.id or 0)
    _, dv = resolve_dataset_version(session, ident)
    return kind, int(dv.id or 0)


@dataclass
class GraphView:
    root: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    width: float = 0.0
    height: float = 0.0

    def marquez(self) -> dict[str, Any]:
        """``{"graph": [{"id", "type", "data", "inEdges", "outEdges"}]}`` as Marquez answers."""
        ins: dict[str, list[dict[str, str]]] = {k: [] for k in self.nodes}
        outs: dict[str, list[dict[str, str]]] = {k: [] for k in self.nodes}
        for src, dst in sorted(self.edges):
            outs[src].append({"origin": src, "destination": dst})
            ins[dst].append({"origin": src, "destination": dst})
        return {"root": self.root, "graph": [{
            "id": key, "type": node["kind"].upper(), "data": node["data"], "label": node["label"],
            "inEdges": ins[key], "outEdges": outs[key],
        } for key, node in self.nodes.items()]}


def _add(view: GraphView, graph: Any, expanded: bool) -> None:
    for node in graph.nodes:
        data = {k: v for k, v in node.to_json().items() if k not in ("key", "kind", "depth")}
        entry = view.nodes.setdefault(node.key, {"key": node.key, "kind": node.kind, "label": node.label,
                                                 "data": data, "expanded": False})
        if node.key == graph.root and expanded:
            entry["expanded"] = True
    for edge in graph.edges:
        view.edges.add((edge.source, edge.target))


def lineage_view(session: Session, node_id: str, *, depth: int = 3, direction: str = "both",
                 as_of: str | datetime | None = None, expand: list[str] | None = None,
                 layout: bool = False) -> GraphView:
    """The lineage around ``node_id`` (``depth`` runs each way), plus one hop around each ``expand`` key."""
    if direction not in DIRECTIONS:
        raise InputError(f"direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if not 0 <= depth <= MAX_DEPTH:
        raise InputError(f"depth: expected 0 to {MAX_DEPTH}, got {depth}")
    when = parse_as_of(as_of) if as_of not in (None, "") else None
    kind, ident = resolve_node(session, node_id)
    root = f"{kind}:{ident}"
    view = GraphView(root)
    if direction == "both":
        for graph in both_ways(session, kind, ident, depth, when):
            _add(view, graph, True)
    else:
        _add(view, (upstream if direction == "upstream" else downstream)(session, kind, ident, depth, when), True)
    for key in (expand or [])[:MAX_EXPAND]:
        e_kind, _, e_id = key.partition(":")
        if not e_id.isdigit():
            raise InputError(f"expand: expected keys such as dataset:12 or model:3, got {key!r}")
        if e_kind == "run":
            continue  # a run is expanded through its artifacts, which the walks already include
        if e_kind not in ("model", "dataset"):
            raise InputError(f"expand: expected keys such as dataset:12 or model:3, got {key!r}")
        for walk in (upstream, downstream):
            _add(view, walk(session, e_kind, int(e_id), 1, when), True)
    if root in view.nodes:
        view.nodes[root]["root"] = True
    if layout:
        _layout(view)
    return view


def _lines(node: dict[str, Any]) -> list[str]:
    data = node["data"]
    if node["kind"] == "run":
        title = str(data.get("job") or node["label"])
        sub = f"run {str(data.get('run_uuid', ''))[:13]} · {data.get('status') or ''}".strip()
    elif node["kind"] == "dataset":
        title = f"{data.get('name', node['label'])}@{data.get('version', '')}"
        sub = str(data.get("namespace") or "")
    else:
        title = node["label"]
        sub = "model version"
    lines = textwrap.wrap(title, _WRAP, break_long_words=True, break_on_hyphens=False) or [""]
    lines += textwrap.wrap(sub, _WRAP + 8, break_long_words=True, break_on_hyphens=False)[:2]
    return lines


def _layout(view: GraphView) -> None:
    """Layers by longest path (a DAG), order in a layer by the barycentre of neighbours, then boxes."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(view.nodes)
    g.add_edges_from(view.edges)
    if nx.is_directed_acyclic_graph(g):
        layer: dict[str, int] = {}
        for number, generation in enumerate(nx.topological_generations(g)):
            for key in generation:
                layer[key] = number
        for key in reversed(list(nx.topological_sort(g))):  # pull sources right, next to what they feed
            succ = [layer[s] for s in g.successors(key)]
            if succ and not list(g.predecessors(key)):
                layer[key] = min(succ) - 1
    else:  # pragma: no cover - lineage is acyclic; keep a drawing if a producer says otherwise
        layer = {k: i for i, k in enumerate(nx.topological_sort(nx.condensation(g)))}
    columns: dict[int, list[str]] = {}
    for key in sorted(view.nodes, key=lambda k: (view.nodes[k]["kind"], view.nodes[k]["label"], k)):
        columns.setdefault(layer[key], []).append(key)
    order = sorted(columns)
    position = {k: float(i) for c in order for i, k in enumerate(columns[c])}
    for sweep in range(4):
        seq = order if sweep % 2 == 0 else list(reversed(order))
        for c in seq:
            def bary(key: str) -> float:
                near = [position[n] for n in (*g.predecessors(key), *g.successors(key))]
                return sum(near) / len(near) if near else position[key]
            columns[c].sort(key=bary)
            for i, key in enumerate(columns[c]):
                position[key] = float(i)
    spans = [abs(layer[b] - layer[a]) for a, b in view.edges]
    margin = 20.0 + 0.75 * min(30.0 + 22.0 * max(spans, default=0), 600.0) if max(spans, default=0) > 1 else 20.0
    x = 20.0
    tallest = 0.0
    for c in order:
        boxes = []
        for key in columns[c]:
            node = view.nodes[key]
            lines = _lines(node)
            w = max(len(line) for line in lines) * _CHAR_W + 2 * _PAD_X + 18.0
            h = len(lines) * _LINE_H + 2 * _PAD_Y
            boxes.append((key, lines, w, h))
        col_w = max(b[2] for b in boxes)
        y = margin
        for key, lines, _w, h in boxes:
            view.nodes[key].update({"x": x, "y": y, "w": col_w, "h": h, "lines": lines, "column": c})
            y += h + _ROW_GAP
        tallest = max(tallest, y)
        x += col_w + _COL_GAP
    view.width = x
    view.height = tallest + margin
    for node in view.nodes.values():
        node["cy"] = node["y"] + node["h"] / 2
        node["line_y"] = [node["y"] + _PAD_Y + 11.0 + i * _LINE_H for i in range(len(node["lines"]))]


def edge_paths(view: GraphView) -> list[dict[str, Any]]:
    """Cubic curves from the right side of the source box to the left side of the target box."""
    out = []
    for src, dst in sorted(view.edges):
        a, b = view.nodes.get(src), view.nodes.get(dst)
        if a is None or b is None or "x" not in a or "x" not in b:
            continue
        x1, y1 = a["x"] + a["w"], a["cy"]
        x2, y2 = b["x"], b["cy"]
        span = int(b.get("column", 0)) - int(a.get("column", 0))
        if span > 1:  # skips columns: an arc over (or under) the boxes in between, higher for longer spans
            lift = min(30.0 + 22.0 * span, 600.0) * (1 if span % 2 else -1)
            c1, c2 = x1 + 60.0, x2 - 60.0
            d = f"M{x1:.1f},{y1:.1f} C{c1:.1f},{y1 - lift:.1f} {c2:.1f},{y2 - lift:.1f} {x2:.1f},{y2:.1f}"
        else:
            mid = (x1 + x2) / 2
            d = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        out.append({"source": src, "target": dst, "d": d})
    return out
