"""Column lineage of a Spark DataFrame, read from its analysed logical plan.

The plan comes from the JVM in one call (``queryExecution().analyzed().toJSON()``: every node and
expression, with the expression ids Spark gives each attribute).  Each output column is traced through
the plan to the columns of the step's input DataFrames, and each link is classified in the vocabulary of
OpenLineage's ``columnLineage`` facet, the way the OpenLineage Spark integration classifies them:

* ``DIRECT``: ``IDENTITY`` (the column itself, or renamed), ``TRANSFORMATION`` (an expression of it:
  arithmetic, a cast, a function, a Python or Scala UDF; ``masking`` when the function is a hash such as
  ``sha2`` or ``md5``), ``AGGREGATION`` (inside an aggregate or window function);
* ``INDIRECT`` for one column: ``CONDITIONAL`` (a ``CASE WHEN``/``IF`` predicate), ``WINDOW`` (a window's
  partition or order);
* ``INDIRECT`` for the whole output (the facet's ``dataset`` list): ``FILTER``, ``JOIN`` (join
  condition), ``GROUP_BY``, ``SORT``.

Along a chain the stronger kind wins, as in OpenLineage (``TransformationInfo.merge``): INDIRECT over
DIRECT, AGGREGATION over TRANSFORMATION over IDENTITY; masking is kept once set.

An input is recognised where the step's input DataFrame's own analysed plan appears unchanged inside
the output's plan (then what happened inside the input - its filters, joins - is the input's business,
not this step's), and by the expression ids of its columns.  What is not traced: a source the step reads
itself rather than receiving as an argument (its columns have no input dataset of the run to point at),
and the right side of a self-join (Spark gives it fresh expression ids); those links are left out, never
guessed.  Column lineage costs one py4j call per DataFrame and no Spark job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SparkPlan", "Transform", "column_lineage", "spark_plan"]

_RANK = {"AGGREGATION": 0, "TRANSFORMATION": 1, "IDENTITY": 2}
_MASKING = frozenset({"Sha1", "Sha2", "Md5", "Crc32", "Murmur3Hash", "XxHash64", "HiveHash", "Mask", "AesEncrypt"})
_LEAVES_OUTPUT = "output"
# ranking functions carry the window's order expressions as children: those are the WINDOW dependency
_RANKING = frozenset({"Rank", "DenseRank", "PercentRank", "CumeDist"})


@dataclass(frozen=True, order=True)
class Transform:
    """One OpenLineage transformation: ``type`` DIRECT|INDIRECT, ``subtype``, ``masking``."""

    type: str
    subtype: str
    masking: bool = False

    def then(self, inner: Transform) -> Transform:
        """This (nearer the output) composed with ``inner`` (nearer the input)."""
        if self.type == "INDIRECT":
            pick = self
        elif inner.type == "INDIRECT":
            pick = inner
        else:
            pick = inner if _RANK.get(inner.subtype, 3) < _RANK.get(self.subtype, 3) else self
        return Transform(pick.type, pick.subtype, self.masking or inner.masking)


IDENTITY = Transform("DIRECT", "IDENTITY")
_TRANSFORMATION = Transform("DIRECT", "TRANSFORMATION")
_AGGREGATION = Transform("DIRECT", "AGGREGATION")


@dataclass
class _Node:
    doc: dict[str, Any]
    children: list[_Node] = field(default_factory=list)
    start: int = 0
    end: int = 0

    @property
    def kind(self) -> str:
        return str(self.doc.get("class", "")).rsplit(".", 1)[-1]


def _build(items: Sequence[dict[str, Any]], at: int = 0) -> tuple[_Node, int]:
    """A tree from Spark's flattened pre-order JSON (each item says how many children follow)."""
    node = _Node(dict(items[at]), start=at)
    nxt = at + 1
    for _ in range(int(items[at].get("num-children", 0))):
        child, nxt = _build(items, nxt)
        node.children.append(child)
    node.end = nxt
    return node, nxt


def _expr(value: Any) -> _Node | None:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "class" in value[0]:
        return _build(value)[0]
    return None


def _exprs(value: Any) -> list[_Node]:
    if not isinstance(value, list):
        return []
    single = _expr(value)
    if single is not None:
        return [single]
    return [e for e in (_expr(v) for v in value) if e is not None]


def _expr_id(doc: dict[str, Any]) -> int | None:
    ident = doc.get("exprId")
    return int(ident["id"]) if isinstance(ident, dict) and "id" in ident else None


def _named_id(expr: _Node) -> int | None:
    """The expression id a named expression (an attribute or an alias) gives its output column."""
    return _expr_id(expr.doc) if expr.kind in ("AttributeReference", "Alias") else None


def _refs(expr: _Node, t: Transform) -> Iterator[tuple[int, Transform]]:
    """The attributes an expression reads, each with how its value reaches the expression's result."""
    kind = expr.kind
    if kind == "AttributeReference":
        ident = _expr_id(expr.doc)
        if ident is not None:
            yield ident, t
        return
    if kind in {"Alias", "SortOrder"}:
        for child in expr.children[:1]:
            yield from _refs(child, t)
        return
    if kind in _RANKING:
        return
    if kind == "AggregateExpression":
        for child in expr.children:
            yield from _refs(child, t.then(_AGGREGATION))
        return
    if kind == "WindowExpression":
        function, spec = [*expr.children, None, None][:2]
        if function is not None:
            yield from _refs(function, t.then(_AGGREGATION))
        if spec is not None:
            yield from _refs(spec, t.then(Transform("INDIRECT", "WINDOW")))
        return
    if kind in ("CaseWhen", "If"):
        branches = expr.doc.get("branches")
        conditions = {2 * i for i in range(len(branches))} if isinstance(branches, list) else {0}
        for i, child in enumerate(expr.children):
            inner = Transform("INDIRECT", "CONDITIONAL") if i in conditions else _TRANSFORMATION
            yield from _refs(child, t.then(inner))
        return
    inner = Transform("DIRECT", "TRANSFORMATION", kind in _MASKING)
    for child in expr.children:
        yield from _refs(child, t.then(inner))


@dataclass(frozen=True)
class SparkPlan:
    """A DataFrame's analysed plan (Spark's JSON nodes) and its output columns' expression ids."""

    nodes: tuple[dict[str, Any], ...]
    columns: tuple[tuple[int, str], ...]  # (expression id, column name), in column order


def spark_plan(df: Any) -> SparkPlan | None:
    """The analysed plan of ``df`` (one py4j call), or None when it cannot be read."""
    try:
        nodes = json.loads(str(df._jdf.queryExecution().analyzed().toJSON()))
        if not isinstance(nodes, list) or not nodes:
            return None
        ids = _output(_build(nodes)[0])
    except Exception:  # noqa: BLE001 - a plan node Spark cannot write as JSON: no column lineage, capture goes on
        return None
    names = list(df.columns)
    if len(ids) != len(names) or any(i is None for i in ids):
        return None
    return SparkPlan(tuple(nodes), tuple((int(i), n) for i, n in zip(ids, names, strict=True) if i is not None))


def _output(node: _Node) -> list[int | None]:
    kind = node.kind
    doc = node.doc
    if kind == "Project":
        return [_named_id(e) for e in _exprs(doc.get("projectList"))]
    if kind == "Aggregate":
        return [_named_id(e) for e in _exprs(doc.get("aggregateExpressions"))]
    if kind == "Window":
        return [*_output(node.children[0]), *(_named_id(e) for e in _exprs(doc.get("windowExpressions")))]
    if kind == "Join":
        join_type = str((doc.get("joinType") or {}).get("object", ""))
        if "LeftSemi" in join_type or "LeftAnti" in join_type or "ExistenceJoin" in join_type:
            return _output(node.children[0])
        return [*_output(node.children[0]), *_output(node.children[1])]
    if kind == "Generate":
        generated = [_named_id(e) for e in _exprs(doc.get("generatorOutput"))]
        return [*_output(node.children[0]), *generated] if node.children else generated
    if _LEAVES_OUTPUT in doc and not node.children:
        return [_named_id(e) for e in _exprs(doc.get(_LEAVES_OUTPUT))]
    if node.children:
        return _output(node.children[0])
    return []


class _Tracer:
    def __init__(self, nodes: Sequence[dict[str, Any]], inputs: Sequence[tuple[str, SparkPlan]]) -> None:
        self.nodes = list(nodes)
        self.inputs = inputs
        self.sources: dict[int, tuple[str, str]] = {}
        for key, plan in inputs:
            for ident, name in plan.columns:
                self.sources.setdefault(ident, (key, name))
        self.deps: dict[int, list[tuple[int, Transform]]] = {}
        self.dataset: list[tuple[int, Transform]] = []
        self._memo: dict[int, list[tuple[tuple[str, str], Transform]]] = {}

    def _is_input(self, node: _Node) -> bool:
        size = node.end - node.start
        window = self.nodes[node.start:node.end]
        return any(len(plan.nodes) == size and list(plan.nodes) == window for _, plan in self.inputs)

    def _named(self, exprs: list[_Node]) -> None:
        for e in exprs:
            if e.kind == "Alias":
                ident = _expr_id(e.doc)
                if ident is not None:
                    self.deps.setdefault(ident, []).extend(_refs(e, IDENTITY))

    def _whole(self, exprs: list[_Node], subtype: str) -> None:
        for e in exprs:
            self.dataset.extend(_refs(e, Transform("INDIRECT", subtype)))

    def walk(self, node: _Node) -> None:
        if self._is_input(node):
            return
        kind, doc = node.kind, node.doc
        if kind == "Project":
            self._named(_exprs(doc.get("projectList")))
        elif kind == "Aggregate":
            self._named(_exprs(doc.get("aggregateExpressions")))
            self._whole(_exprs(doc.get("groupingExpressions")), "GROUP_BY")
        elif kind == "Window":
            self._named(_exprs(doc.get("windowExpressions")))
        elif kind == "Filter":
            self._whole(_exprs(doc.get("condition")), "FILTER")
        elif kind == "Join":
            self._whole(_exprs(doc.get("condition")), "JOIN")
        elif kind == "Sort":
            self._whole(_exprs(doc.get("order")), "SORT")
        elif kind == "Generate":
            self._generate(doc)
        elif kind == "Union" and node.children:
            self._union(node.children)
        for child in node.children:
            self.walk(child)

    def _generate(self, doc: dict[str, Any]) -> None:
        """An ``explode``-like generator: each column it produces comes from what the generator reads."""
        produced = [_named_id(e) for e in _exprs(doc.get("generatorOutput"))]
        read = [r for e in _exprs(doc.get("generator")) for r in _refs(e, _TRANSFORMATION)]
        for ident in produced:
            if ident is not None:
                self.deps.setdefault(ident, []).extend(read)

    def _union(self, children: list[_Node]) -> None:
        """A union's output columns are its first branch's, and also each other branch's by position."""
        first = _output(children[0])
        for other in children[1:]:
            for mine, theirs in zip(first, _output(other), strict=False):
                if mine is not None and theirs is not None:
                    self.deps.setdefault(mine, []).append((theirs, IDENTITY))

    def resolve(self, ident: int, depth: int = 0) -> list[tuple[tuple[str, str], Transform]]:
        if ident in self._memo:
            return self._memo[ident]
        # an input's column is a source; a union's output column is also its other branches' columns
        out: list[tuple[tuple[str, str], Transform]] = (
            [(self.sources[ident], IDENTITY)] if ident in self.sources else [])
        if depth < 500:
            self._memo[ident] = []  # a cycle (never in an analysed plan) resolves to nothing
            for dep, t in self.deps.get(ident, ()):
                out.extend((src, t.then(inner)) for src, inner in self.resolve(dep, depth + 1))
        self._memo[ident] = out
        return out


@dataclass(frozen=True)
class LineageLink:
    """Output column (None: the whole output) <- an input's column, through one transformation."""

    output: str | None
    input: str
    field: str
    transform: Transform

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "input": self.input, "field": self.field, "type": self.transform.type,
                "subtype": self.transform.subtype, "masking": self.transform.masking}


def column_lineage(output: SparkPlan, inputs: Sequence[tuple[str, SparkPlan]]) -> list[LineageLink]:
    """Links from each column of ``output`` (and dataset-level links) to columns of ``inputs``, each
    input keyed by the caller (``(key, plan)``); sorted, without repeats."""
    tracer = _Tracer(output.nodes, inputs)
    tracer.walk(_build(output.nodes)[0])
    links: set[LineageLink] = set()
    for ident, name in output.columns:
        for (key, col), t in tracer.resolve(ident):
            links.add(LineageLink(name, key, col, t))
    for ident, t in tracer.dataset:
        for (key, col), inner in tracer.resolve(ident):
            links.add(LineageLink(None, key, col, t.then(inner)))
    return sorted(links, key=lambda k: (k.output is None, k.output or "", k.input, k.field, k.transform))
