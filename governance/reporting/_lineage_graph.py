"""Draw the lineage graph to SVG: networkx lays it out, a few lines of SVG draw it.

Nodes go in rows by topological generation (sources on top, flowing down to the model) using
networkx's ``multipartite_layout``, which fits a portrait page; the drawing is plain SVG (boxes,
labels, arrows) with every label escaped, so it renders the same in a browser and in WeasyPrint
and carries no script or external reference.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import networkx as nx

__all__ = ["lineage_svg"]

_BOX_W, _BOX_H, _COL_GAP, _ROW_GAP, _MARGIN = 190, 42, 24, 36, 16
_FILL = {"dataset": "#e8f1fb", "run": "#fff4e0", "model": "#e7f6ea"}
_STROKE = {"dataset": "#3b78c3", "run": "#c98a1b", "model": "#2e8b47"}


def _clip(text: str, n: int = 26) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _layers(graph: nx.DiGraph) -> dict[str, int]:
    if nx.is_directed_acyclic_graph(graph):
        return {
            node: i for i, generation in enumerate(nx.topological_generations(graph)) for node in generation
        }
    roots = [n for n in graph.nodes if graph.in_degree(n) == 0] or [next(iter(graph.nodes))]
    depth = nx.multi_source_dijkstra_path_length(graph, roots)
    return {n: int(depth.get(n, 0)) for n in graph.nodes}


def lineage_svg(lineage: dict[str, Any]) -> str:
    """The lineage graph as a standalone SVG document."""
    graph = nx.DiGraph()
    for node in lineage["nodes"]:
        graph.add_node(node["id"])
    for edge in lineage["edges"]:
        graph.add_edge(edge["source"], edge["target"])
    if graph.number_of_nodes() == 0:
        return ""
    layer = _layers(graph)
    nx.set_node_attributes(graph, layer, "layer")
    pos = nx.multipartite_layout(graph, subset_key="layer", align="horizontal")
    rows: dict[int, list[str]] = {}
    for node in graph.nodes:
        rows.setdefault(layer[node], []).append(node)
    widest = max(len(r) for r in rows.values())
    width = widest * (_BOX_W + _COL_GAP) - _COL_GAP + 2 * _MARGIN
    height = len(rows) * (_BOX_H + _ROW_GAP) - _ROW_GAP + 2 * _MARGIN
    xy: dict[str, tuple[float, float]] = {}
    for row_index, members in rows.items():
        # order within a row by the layout's horizontal coordinate (left first)
        ordered = sorted(members, key=lambda n: (float(pos[n][0]), n))
        offset = (widest - len(ordered)) * (_BOX_W + _COL_GAP) / 2
        for col_index, node in enumerate(ordered):
            xy[node] = (
                _MARGIN + offset + col_index * (_BOX_W + _COL_GAP),
                _MARGIN + row_index * (_BOX_H + _ROW_GAP),
            )
    info = {n["id"]: n for n in lineage["nodes"]}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for edge in lineage["edges"]:
        sx, sy = xy[edge["source"]]
        tx, ty = xy[edge["target"]]
        x1, y1, x2, y2 = sx + _BOX_W / 2, sy + _BOX_H, tx + _BOX_W / 2, ty
        dash = ' stroke-dasharray="4 3"' if edge.get("label") == "evaluated on" else ""
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" '
            f'stroke-width="1.2"{dash} marker-end="url(#arrow)"/>'
        )
        if edge.get("label"):
            parts.append(
                f'<text x="{(x1 + x2) / 2 + 5:.1f}" y="{(y1 + y2) / 2 + 3:.1f}" font-size="9" '
                f'fill="#444">{escape(_clip(str(edge["label"]), 14))}</text>'
            )
    for node_id, (x, y) in xy.items():
        node = info[node_id]
        kind = node["kind"]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_BOX_W}" height="{_BOX_H}" rx="5" '
            f'fill="{_FILL[kind]}" stroke="{_STROKE[kind]}" stroke-width="1.3"/>'
        )
        parts.append(
            f'<text x="{x + 8:.1f}" y="{y + 17:.1f}" font-size="11" fill="#111">'
            f"{escape(_clip(str(node['label'])))}</text>"
        )
        detail = f"{kind}" + (f" · {node['detail']}" if node.get("detail") else "")
        parts.append(
            f'<text x="{x + 8:.1f}" y="{y + 32:.1f}" font-size="9" fill="#555">'
            f"{escape(_clip(detail, 32))}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
