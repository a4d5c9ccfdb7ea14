"""What the pages are built from, without HTTP: threshold lines on the per-group charts, and the
lineage explorer's layout (no overlaps, full labels, every edge drawn) on a graph of a few hundred nodes."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the server tests need the [server] extra")

from governance.catalog import Catalog
from governance.server._charts import check_charts
from governance.server._graph import edge_paths, lineage_view


def _check(uses: str, assertion: dict[str, float], groups: dict[str, dict[str, float]]) -> dict:
    return {"id": "c1", "uses": uses, "status": "FAIL", "family": uses.split(".", maxsplit=1)[0],
            "assertion": assertion, "threshold": str(assertion),
            "groups": [{"group": g, "values": v} for g, v in groups.items()]}


def test_threshold_lines_sit_where_the_policy_bites() -> None:
    groups = {"sex=F": {"selection_rate": 0.30, "tpr": 0.70, "fpr": 0.10},
              "sex=M": {"selection_rate": 0.50, "tpr": 0.90, "fpr": 0.20},
              "sex=F & race=A": {"selection_rate": 0.45, "tpr": 0.80, "fpr": 0.12}}
    dpr = _check("fairness.demographic_parity_ratio", {"gte": 0.8}, groups)
    ratio = check_charts([{"name": "p", "checks": [dpr]}])
    assert [(p["metric"], p["grouping"]) for p in ratio] == [("selection rate", "sex"),
                                                             ("selection rate", "sex × race")]
    sex = ratio[0]
    assert sex["line_label"] == "0.8 × highest rate = 0.400"
    assert sex["line_x"] == pytest.approx(sex["left"] + sex["plot_w"] * 0.4)
    assert [(b["group"], b["below"]) for b in sex["bars"]] == [("sex=F", True), ("sex=M", False)]

    eod = check_charts([{"name": "p",
                         "checks": [_check("fairness.equalized_odds_difference", {"lte": 0.1}, groups)]}])
    tpr = next(p for p in eod if p["metric"] == "true positive rate" and p["grouping"] == "sex")
    assert tpr["line_label"] == "highest rate − 0.1 = 0.800"
    assert [b["below"] for b in tpr["bars"]] == [True, False]
    assert {p["metric"] for p in eod} == {"true positive rate", "false positive rate"}

    floor = check_charts([{"name": "p", "checks": [_check("performance.accuracy", {"gte": 0.75},
                                                          {"sex=F": {"accuracy": 0.7}, "sex=M": {"accuracy": 0.8}})]}])
    assert floor[0]["line_label"] == "threshold 0.75" and [b["below"] for b in floor[0]["bars"]] == [True, False]
    assert check_charts([{"name": "p", "checks": [_check("data.row_count", {"gte": 1.0}, {"a": {"n": 3}})]}]) == []


def test_layout_of_a_few_hundred_nodes_has_no_overlaps_and_full_labels(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_server import build_catalog

    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    build_catalog(catalog, 2_000, inputs=9)
    with catalog.read() as session:
        view = lineage_view(session, "dataset:1000", depth=6, layout=True)
    catalog.dispose()
    nodes = list(view.nodes.values())
    assert 150 <= len(nodes) <= 400
    for node in nodes:
        label = node["data"]["job"] if node["kind"] == "run" else f"{node['data']['name']}@{node['data']['version']}"
        title_lines = node["lines"][: len(node["lines"]) - 1]
        assert "".join(title_lines).replace(" ", "") == label.replace(" ", "")
        assert node["x"] >= 0 and node["y"] >= 0
        assert node["x"] + node["w"] <= view.width and node["y"] + node["h"] <= view.height
    columns: dict[float, list[dict]] = {}
    for node in nodes:
        columns.setdefault(node["x"], []).append(node)
    for members in columns.values():
        members.sort(key=lambda n: n["y"])
        for above, below in itertools.pairwise(members):
            assert above["y"] + above["h"] <= below["y"]
    paths = edge_paths(view)
    assert len(paths) == len(view.edges) > len(nodes)
    for path in paths:  # data flows left to right
        assert view.nodes[path["source"]]["x"] < view.nodes[path["target"]]["x"]
