"""Security as correctness, for what the area tests do not already cover.

Covered elsewhere: hostile names in the model card (HTML, Markdown, PDF) and the PDF fetcher
(test_report_safety.py), ``!!python`` tags in policy packs (test_policy.py), GitHub annotation
escaping (test_formats.py).  Here: source scans (no unsafe deserialisation, no SQL built from
values), autoescape on every template path including a user's template directory, OpenLineage
events as data with a bounded line size, and policy packs that cannot reach outside their file or
blow up in size.
"""

from __future__ import annotations

import ast
import json
import pickle
import re
import tracemalloc
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import governance
from governance.catalog import Catalog, ModelVersion, Ref
from governance.errors import InputError
from governance.openlineage import ingest_openlineage
from governance.openlineage._ingest import MAX_EVENT_BYTES
from governance.policy import parse_pack
from governance.policy._loader import MAX_PACK_NODES, load_pack
from governance.reporting import render_audit_report, render_model_card
from tests.test_report_seed import seed_model

PACKAGE = Path(governance.__file__).resolve().parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
EVIL = "<script>alert(1)</script>{{ 7*7 }}'; DROP TABLE run; --"


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _dotted(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_dotted(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


# ---------------------------------------------------------------------------------- deserialisation
UNSAFE_CALLS = {"yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "pickle.load", "pickle.loads",
                "cloudpickle.load", "cloudpickle.loads", "dill.load", "dill.loads", "marshal.load",
                "marshal.loads", "shelve.open", "pd.read_pickle", "pandas.read_pickle", "torch.load",
                "eval", "exec", "compile", "__import__"}
SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "_PlainLoader"}
# joblib unpickles: allowed only where the artifact's blake3 hash is checked first (tested below)
ALLOWED_CALLS = {("lineage/_artifacts.py", "joblib.load")}


def test_no_unsafe_deserialisation_or_eval_in_the_package() -> None:
    found = []
    for path in SOURCES:
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            name = _dotted(call.func)
            if name == "yaml.load":
                loader = next((kw.value for kw in call.keywords if kw.arg == "Loader"), None)
                if loader is None or _dotted(loader) not in SAFE_YAML_LOADERS:
                    found.append(f"{_rel(path)}:{call.lineno}: yaml.load without a safe Loader")
            elif (name in UNSAFE_CALLS or (name.endswith(".load") and name.startswith("joblib"))) and (
                    (_rel(path), name) not in ALLOWED_CALLS):
                found.append(f"{_rel(path)}:{call.lineno}: {name}")
    assert not found, "unsafe deserialisation or eval:\n" + "\n".join(found)


def test_joblib_artifact_is_not_unpickled_before_its_hash_matches(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    artifact = tmp_path / "model.joblib"
    artifact.write_bytes(pickle.dumps(Exploit()))
    from governance.lineage._artifacts import load_model_artifact

    tampered = ModelVersion(model_id=1, version=1, artifact_uri=str(artifact), artifact_hash="0" * 64,
                            hash_algo="blake3")
    with pytest.raises(InputError, match="hash mismatch"):
        load_model_artifact(tampered)
    unhashed = ModelVersion(model_id=1, version=1, artifact_uri=str(artifact), artifact_hash=None)
    with pytest.raises(InputError, match="no artifact_hash"):
        load_model_artifact(unhashed)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------- SQL text
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|TRUNCATE|PRAGMA|GRANT|REVOKE|WHERE|VALUES)\b")
# Reviewed: every value formatted into SQL text is a constant or an int() of internal configuration.
REVIEWED_SQL = {
    ("catalog/_engine.py", "default_ms"),  # an int (the busy timeout in ms), formatted with :d
    ("catalog/_engine.py", "want"),  # an int (the bounded busy timeout in ms), formatted with :d
    ("catalog/_engine.py", "BACKSTOP_PAGES"),  # a module constant, formatted with :d
    ("audit/_chain.py", "_ADVISORY_KEY"),  # a module constant, formatted with :d
    ("audit/_chain.py", "select"),  # _SELECT with a constant column expression chosen by dialect
    ("audit/_chain.py", "mark"),  # the driver's placeholder, "%s" or "?": the value is bound
    ("audit/_chain.py", "int(batch)"),
    ("audit/_chain.py", "<template _SELECT>"),
    ("audit/_index.py", "<template _EVENTS_FROM>"),  # filled with the placeholder and an int batch size
    ("audit/_index.py", "<template _LATEST_SNAPSHOT>"),  # filled with the placeholder
    ("audit/_index.py", "mark"),
    ("audit/_index.py", "marks"),  # placeholders, one per bound value
    ("audit/_index.py", "ranges"),  # placeholder pairs, one per bound range
    ("audit/_replay.py", "mark"),
    ("audit/_replay.py", "int(batch)"),
    ("audit/_state.py", "name"),  # a table name from the constant STATE_TABLES (TEMP trigger DDL)
    # the trigger function, with the schema quoted by the dialect's identifier preparer
    ("catalog/migrations/versions/0006_state_bound_to_audit_log.py", "<template _TOUCH_FUNCTION>"),
    ("catalog/migrations/versions/0006_state_bound_to_audit_log.py", "table"),  # from the constant STATE_TABLES
}


def _is_sql_template(value: ast.expr) -> bool:
    """A SQL string with ``{name}`` fields, meant for ``.format()``."""
    return (isinstance(value, ast.Constant) and isinstance(value.value, str) and bool(SQL.search(value.value))
            and bool(re.search(r"\{\w*\}", value.value)))


def _sql_hits(path: Path) -> list[tuple[int, str]]:
    """Places where SQL text is assembled: f-strings, %-formatting, .format() and + on SQL text."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL.search(literal):
                hits += [(node.lineno, ast.unparse(v.value)) for v in node.values if isinstance(v, ast.FormattedValue)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str) and SQL.search(side.value):
                    hits.append((node.lineno, ast.unparse(node.right if side is node.left else node.left)))
        elif isinstance(node, ast.Assign) and _is_sql_template(node.value):
            targets = ", ".join(ast.unparse(t) for t in node.targets)
            hits.append((node.lineno, f"<template {targets}>"))
    return hits


def test_sql_is_never_formatted_from_values() -> None:
    unreviewed = [f"{_rel(path)}:{line}: {expr}" for path in SOURCES for line, expr in _sql_hits(path)
                  if (_rel(path), expr) not in REVIEWED_SQL]
    assert not unreviewed, "SQL text built from values (bind them as parameters):\n" + "\n".join(unreviewed)


def test_the_sql_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('def f(conn, name):\n    conn.exec_driver_sql(f"SELECT * FROM t WHERE n = \'{name}\'")\n'
                      '    conn.execute(text("DELETE FROM t WHERE n = %s" % name))\n', encoding="utf-8")
    assert [expr for _, expr in _sql_hits(sample)] == ["name", "name"]


# ---------------------------------------------------------------------------------------- templates
def test_every_jinja_environment_autoescapes() -> None:
    found = []
    for path in SOURCES:
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            name = _dotted(call.func).rsplit(".", 1)[-1]
            if name.endswith("Environment") or name == "Template":
                escape = next((kw.value for kw in call.keywords if kw.arg == "autoescape"), None)
                if not (isinstance(escape, ast.Constant) and escape.value is True):
                    found.append(f"{_rel(path)}:{call.lineno}: {name} without autoescape=True")
    assert not found, "\n".join(found)


def test_user_text_is_escaped_in_the_audit_html_and_in_a_user_template(sqlite_catalog: Catalog,
                                                                      tmp_path: Path) -> None:
    seed_model(sqlite_catalog, name=EVIL, description=EVIL, dataset_name=EVIL)
    audit = render_audit_report(model=EVIL, format="html", catalog=sqlite_catalog)
    assert isinstance(audit, str)
    assert "<script>alert" not in audit and "&lt;script&gt;alert(1)&lt;/script&gt;" in audit
    # a user's template directory gets the same environment: its variables are escaped too
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "model_card.html.j2").write_text("<h1>{{ model.name }}</h1><p>{{ model.description }}</p>\n",
                                               encoding="utf-8")
    html = render_model_card(Ref(EVIL, version=1), format="html", catalog=sqlite_catalog, template_dir=custom)
    assert isinstance(html, str)
    assert "<script>" not in html
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}&#39;; DROP TABLE run; --</h1>" in html
    assert "49" not in html  # user text is never template source


# -------------------------------------------------------------------------------------- OpenLineage
def _event(job: str, dataset: str) -> dict[str, object]:
    return {"eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00Z", "producer": "https://example.com/x",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4()), "facets": {"__class__": {"eval": "__import__('os')"}}},
            "job": {"namespace": "ns", "name": job, "facets": {}},
            "inputs": [{"namespace": "ns", "name": dataset, "facets": {}}], "outputs": []}


def test_event_contents_are_data(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(_event(EVIL, EVIL)) + "\n", encoding="utf-8")
    report = ingest_openlineage(sqlite_catalog, path, "tester")
    assert (report.imported, report.invalid) == (1, [])
    with sqlite_catalog.read() as session:
        conn = session.connection()
        assert conn.execute(sa.text("SELECT name FROM job")).scalars().all() == [EVIL]
        assert conn.execute(sa.text("SELECT name FROM dataset")).scalars().all() == [EVIL]
        assert conn.execute(sa.text("SELECT count(*) FROM run")).scalar_one() == 1  # the table is still there


def test_an_oversized_line_is_skipped_without_loading_it(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    huge = 50 * 1024 * 1024
    assert huge > MAX_EVENT_BYTES
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(_event("before", "a")) + "\n")
        handle.write('{"pad": "' + "x" * huge + '"}\n')
        handle.write(json.dumps(_event("after", "b")) + "\n")
    tracemalloc.start()
    try:
        report = ingest_openlineage(sqlite_catalog, path, "tester")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.imported == 2
    assert report.invalid == [(f"{path}:2", "line longer than 16 MiB (MAX_EVENT_BYTES); skipped")]
    # bounded by the limit (one buffer of MAX_EVENT_BYTES and its copy), not by the 50 MiB line
    assert peak < 2.5 * MAX_EVENT_BYTES < huge, f"peak {peak / 2**20:.0f} MiB: the line was held in memory"


def test_a_binary_file_is_reported_once(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "blob.ndjson"
    path.write_bytes(b"\xff\xfe\x00garbage\n" * 1000)
    report = ingest_openlineage(sqlite_catalog, path, "tester")
    assert report.imported == 0
    assert len(report.invalid) == 1 and "not UTF-8" in report.invalid[0][1]


# ------------------------------------------------------------------------------------- policy packs
HEAD = "apiVersion: governance/v1\nkind: PolicyPack\nmetadata: {name: p, version: 1.0.0}\n"
CHECK = "  - {id: perf.accuracy, uses: performance.accuracy, assert: {gte: 0.7}, severity: block}\n"


@pytest.mark.parametrize(("text", "message"), [
    (HEAD + "include: [/etc/passwd]\nchecks:\n" + CHECK, "include: unknown field"),
    (HEAD + "checks: !include other.yaml\n", "the tag !include is not allowed"),
    (HEAD + "$ref: other.yaml\nchecks:\n" + CHECK, "unknown field"),
    (HEAD + "checks:\n  - {id: a, uses: performance.accuracy, with: {path: /etc/passwd}, assert: {gte: 0.7}}\n",
     "checks[0].with.path: unknown parameter"),
])
def test_a_pack_cannot_reach_outside_its_file(text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        parse_pack(text, "p.yaml")


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = [HEAD.rstrip("\n"), 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines.append("checks:\n  - {id: x, uses: performance.accuracy, with: {aggregate: *a9}, assert: {gte: 0.7}}")
    with pytest.raises(InputError, match=f"more than {MAX_PACK_NODES} YAML nodes"):
        parse_pack("\n".join(lines) + "\n", "bomb.yaml")


def test_anchors_within_reason_still_work() -> None:
    text = HEAD + "checks:\n" + (
        "  - {id: a, uses: performance.accuracy, assert: {gte: 0.7}, severity: block, maps_to: &m [\"X:1\"]}\n"
        "  - {id: b, uses: performance.accuracy, assert: {gte: 0.6}, severity: warn, maps_to: *m}\n")
    pack = parse_pack(text, "p.yaml")
    assert [c.id for c in pack.checks] == ["a", "b"]


def test_an_oversized_pack_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + "checks:\n" + CHECK + "#" + "x" * (2 * 1024 * 1024) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="larger than 1024 KiB"):
        load_pack(path)
