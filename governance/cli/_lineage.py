"""Lineage commands: ``gov lineage``, ``gov diff``, ``gov verify-data``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from governance._display import guard_lines, printable
from governance.cli._context import check_format, emit_json, state
from governance.errors import InputError, NotFoundError

__all__ = ["register"]

_LINEAGE_FORMATS = ("text", "json", "dot")
_DIFF_FORMATS = ("text", "json")


def _dot(graph: Any) -> str:
    shapes = {"dataset": "cylinder", "model": "box3d", "run": "box"}
    lines = ["digraph lineage {", "  rankdir=LR;"]
    for node in graph.nodes:
        style = ', style="bold"' if node.key == graph.root else ""
        lines.append(f"  {json.dumps(node.key)} [label={json.dumps(node.label)}, shape={shapes[node.kind]}{style}];")
    for edge in graph.edges:
        label = f" [label={json.dumps(edge.role)}]" if edge.role else ""
        lines.append(f"  {json.dumps(edge.source)} -> {json.dumps(edge.target)}{label};")
    lines.append("}")
    return "\n".join(lines)


def _text(graph: Any) -> str:
    """The graph as an indented tree from the root, following data flow backwards (upstream) or
    forwards (downstream); a node reached twice is printed once and referred to after that."""
    nodes = {node.key: node for node in graph.nodes}
    children: dict[str, list[tuple[str, str | None]]] = {}
    for edge in graph.edges:
        parent, child = (edge.target, edge.source) if graph.direction == "upstream" else (edge.source, edge.target)
        children.setdefault(parent, []).append((child, edge.role))
    root = nodes.get(graph.root)
    out = [f"{graph.direction} of {printable(root.label if root else graph.root)}"]
    seen = {graph.root}

    def describe(node: Any) -> str:
        label = printable(node.label)
        if node.kind == "dataset":
            if node.attrs.get("hash_algo") == "delta-version":
                return f"[dataset] {label} Delta version {printable(node.attrs.get('content_hash'))}"
            if node.attrs.get("hash_algo") == "iceberg-snapshot":
                return f"[dataset] {label} Iceberg snapshot {printable(node.attrs.get('content_hash'))}"
            return f"[dataset] {label} {printable(str(node.attrs.get('content_hash') or '')[:16])}"
        if node.kind == "run":
            return f"[run] {label} {printable(node.attrs.get('status'))} {node.attrs.get('started_at')}"
        return f"[{node.kind}] {label}"

    def walk(key: str, level: int) -> None:
        ordered = sorted(children.get(key, []), key=lambda kr: nodes[kr[0]].label if kr[0] in nodes else kr[0])
        for child, role in ordered:
            node = nodes.get(child)
            if node is None:
                continue
            via = f" ({printable(role)})" if role else ""
            if child in seen:
                out.append(f"{'  ' * level}- {describe(node)}{via} (see above)")
                continue
            seen.add(child)
            out.append(f"{'  ' * level}- {describe(node)}{via}")
            walk(child, level + 1)

    walk(graph.root, 1)
    out.append(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges")
    return guard_lines("\n".join(out))


def _diff_text(doc: dict[str, Any]) -> str:
    a, b = doc["a"], doc["b"]
    out = [
        f"{printable(a['model'])}@{a['version']} -> {printable(b['model'])}@{b['version']}: "
        + ("changed" if doc["changed"] else "no differences")
    ]
    for item in doc["data"]:
        if item["change"] != "same":
            da, db = item["a"], item["b"]
            left = f"{printable(da['name'])}@{da['version']}" if da else "-"
            right = f"{printable(db['name'])}@{db['version']}" if db else "-"
            out.append(f"  data {printable(item['role'])}: {item['change']} ({left} -> {right})")
    for key, value in doc["code"].items():
        if value["changed"]:
            out.append(f"  code {key}: {printable(value['a'])} -> {printable(value['b'])}")
    for section in ("params", "run_params"):
        for key, value in doc[section].items():
            out.append(f"  {section} {printable(key)}: {printable(repr(value['a']))} -> {printable(repr(value['b']))}")
    if doc["artifact"]["changed"]:
        out.append(f"  artifact: {doc['artifact']['a']} -> {doc['artifact']['b']}")
    return guard_lines("\n".join(out))


def _dataset_version_id(session: Any, ref: str) -> int | None:
    """The dataset version of ``NAMESPACE/NAME[@VERSION]`` (or a URI such as ``file:///data/x.csv`` or
    ``s3://bucket/key``, named by OpenLineage's conventions), the latest when no version is given; None
    when ``ref`` names no dataset (it may be a model).  Without a version: the version current last
    (ingested versions are numbered in the order they arrived, not in the order they were written)."""
    from sqlmodel import col, select

    from governance.catalog import Dataset, DatasetVersion
    from governance.errors import NotFoundError
    from governance.openlineage import dataset_identity

    text, version = ref, None
    head, at, tail = ref.rpartition("@")
    if at and tail.isdigit():
        text, version = head, int(tail)
    candidates = [(text[:i], text[i + 1:]) for i, c in enumerate(text) if c == "/" and 0 < i < len(text) - 1]
    if "://" in text or text.startswith("/"):
        candidates.insert(0, dataset_identity(text))
    for namespace, name in candidates:
        dataset_id = session.exec(select(Dataset.id).where(Dataset.namespace == namespace,
                                                            Dataset.name == name)).first()
        if dataset_id is None:
            continue
        stmt = select(DatasetVersion.id).where(DatasetVersion.dataset_id == dataset_id)
        if version is not None:
            stmt = stmt.where(DatasetVersion.version == version)
        # the latest by time (ingested versions are numbered in arrival order); a written one before a read one
        found = session.exec(stmt.order_by(col(DatasetVersion.created_at).desc(),
                                           col(DatasetVersion.produced_by_run_id).is_(None),
                                           col(DatasetVersion.id).desc()).limit(1)).first()
        if found is None:
            raise NotFoundError(f"dataset {namespace}/{name} has no version {version if version else '(any)'}")
        return int(found)
    return None


def register(app: typer.Typer) -> None:
    @app.command("lineage")
    def lineage(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL@VERSION | NAMESPACE/NAME[@VERSION]"),
        up: bool = typer.Option(False, "--upstream", help="What the version was built from (default)."),
        down: bool = typer.Option(False, "--downstream", help="What was built from the version."),
        depth: int | None = typer.Option(None, "--depth", min=0, help="How many runs to walk (default: all)."),
        as_of: str | None = typer.Option(None, "--as-of", metavar="TIME", help="Only edges recorded by this time."),
        fmt: str = typer.Option("text", "--format", help="text, json or dot"),
    ) -> None:
        """Show the lineage graph of a model version or a dataset version (a table another producer
        wrote, e.g. ``s3://warehouse/sales.orders@3`` or ``file:///data/raw.csv``; latest by default)."""
        from governance.catalog import downstream, parse_as_of, parse_ref, resolve_model_version, upstream

        check_format(fmt, _LINEAGE_FORMATS)
        if up and down:
            raise InputError("gov lineage: give --upstream or --downstream, not both")
        when = parse_as_of(as_of)
        with state(ctx).catalog().read() as session:
            walk = downstream if down else upstream
            dataset_version = _dataset_version_id(session, ref) if "/" in ref else None
            if dataset_version is not None:
                graph = walk(session, "dataset", dataset_version, depth=depth, as_of=when)
            else:
                if "/" in ref and "@" not in ref:
                    raise NotFoundError(f"gov lineage: no dataset {ref!r} in the catalog (NAMESPACE/NAME, "
                                        "e.g. s3://bucket/path or file:///data/x.csv)")
                _, mv = resolve_model_version(session, parse_ref(ref))
                graph = walk(session, "model", int(mv.id or 0), depth=depth, as_of=when)
        if fmt == "json":
            emit_json(graph.to_json())
        elif fmt == "dot":
            typer.echo(_dot(graph))
        else:
            typer.echo(_text(graph))

    @app.command("diff")
    def diff(
        ctx: typer.Context,
        ref_a: str = typer.Argument(..., metavar="MODEL@V1"),
        ref_b: str = typer.Argument(..., metavar="MODEL@V2"),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> None:
        """What changed between two model versions: training data, code, parameters."""
        from governance.catalog import diff_versions, parse_ref, resolve_model_version

        check_format(fmt, _DIFF_FORMATS)
        with state(ctx).catalog().read() as session:
            _, mv_a = resolve_model_version(session, parse_ref(ref_a, "MODEL@V1"))
            _, mv_b = resolve_model_version(session, parse_ref(ref_b, "MODEL@V2"))
            doc = diff_versions(session, mv_a, mv_b).to_json()
        if fmt == "json":
            emit_json(doc)
        else:
            typer.echo(_diff_text(doc))

    @app.command("verify-data")
    def verify_data(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="DATASET@VERSION"),
        path: Path | None = typer.Argument(
            None,
            metavar="[PATH]",
            help="File, directory or table file (Parquet/Feather/CSV) to re-hash; default: the version's uri.",
        ),
    ) -> None:
        """Re-hash data and say whether it matches the recorded fingerprint (exit 0) or not (exit 1)."""
        from governance.catalog import resolve_dataset_version
        from governance.lineage import verify_dataset

        with state(ctx).catalog().read() as session:
            dataset, dv = resolve_dataset_version(session, ref)
        result = verify_dataset(dataset, dv, path)
        typer.echo(result.message)
        if not result.match:
            raise typer.Exit(1)
