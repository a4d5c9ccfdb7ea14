"""The compliance model card: contents, formats, reproducibility, missing information, CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from governance.catalog import Catalog
from governance.cli import main
from governance.errors import InputError, NotFoundError
from governance.reporting import EXTENSION_KEY, render_model_card
from governance.reporting._format import fmt_num
from governance.reporting._traceability import Framework, Requirement, build_matrix
from tests.conftest import SHARED
from tests.test_report_seed import BY_SEX, BY_SEX_RACE, DRIFT, IMPORTANCE, PROMOTED_AT, seed_model

SCHEMA = SHARED / "model-card-schema" / "v0.0.2" / "model_card.schema.json"
SECTIONS = [
    "1. Model details",
    "2. Intended use",
    "3. Factors",
    "4. Metrics",
    "5. Training data",
    "6. Evaluation data",
    "7. Lineage",
    "8. Quantitative analysis by group",
    "9. Explanations",
    "10. Drift",
    "11. Ethical considerations",
    "12. Policy results",
    "13. Waivers",
    "14. Approvals",
    "15. Promotion history",
    "16. Traceability matrix",
]


def _pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _validate(doc: dict[str, object]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.skip(f"Model Card Toolkit schema not found at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_html_card_shows_the_catalog(catalog: Catalog) -> None:
    seeded = seed_model(catalog)
    html = render_model_card("credit-scorer@1", format="html", catalog=catalog)
    assert isinstance(html, str)
    for section in SECTIONS:
        assert section in html
    assert "risk-analytics" in html and "3f2a9c1d0b7e" in html and "sklearn" in html
    assert fmt_num(seeded.metrics["roc_auc"]) in html
    for table in (BY_SEX, BY_SEX_RACE):
        for stats in table.values():
            assert f">{fmt_num(stats['selection_rate'])}<" in html
    assert "Intersectional groups" in html and "sex=F &amp; race=A" in html
    assert fmt_num(IMPORTANCE["income"]) in html and fmt_num(DRIFT["income"]["psi"]) in html
    assert "≥ 0.8" in html and "WAIVED" in html and "MRM-42" in html and "model-risk-officer" in html
    assert "<script" not in html.lower()
    assert 'src="http' not in html and "file://" not in html
    # the alias resolves to the same version
    assert render_model_card("credit-scorer@production", format="html", catalog=catalog) == html


def test_pdf_card_parses_back_with_sections_and_numbers(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    seed_model(sqlite_catalog)
    out = tmp_path / "card.pdf"
    pdf = render_model_card("credit-scorer@1", format="pdf", catalog=sqlite_catalog, output=out)
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF") and out.read_bytes() == pdf
    text = _pdf_text(pdf)
    for section in [
        "Model details",
        "Intended use",
        "Quantitative analysis by group",
        "Explanations",
        "Policy results",
        "Waivers",
        "Approvals",
        "Promotion history",
        "Traceability matrix",
    ]:
        assert section in text
    assert fmt_num(0.8123) in text
    assert fmt_num(BY_SEX["sex=F"]["selection_rate"]) in text
    assert fmt_num(BY_SEX_RACE["sex=M & race=B"]["tpr"]) in text
    assert "fairness.selection_rate_ratio" in text.replace("\n", "")
    # the same catalog gives the same bytes; the PDF's dates come from the catalog, not the clock
    again = render_model_card("credit-scorer@1", format="pdf", catalog=sqlite_catalog)
    assert again == pdf
    from pypdf import PdfReader

    meta = PdfReader(io.BytesIO(pdf)).metadata
    assert meta is not None
    assert str(meta.get("/CreationDate")).startswith(PROMOTED_AT.strftime("D:%Y%m%d%H%M%S"))
    assert str(meta.get("/ModDate")).startswith(PROMOTED_AT.strftime("D:%Y%m%d%H%M%S"))


def test_html_is_byte_identical_across_processes(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    seed_model(sqlite_catalog)
    html = render_model_card("credit-scorer@1", format="html", catalog=sqlite_catalog)
    code = (
        "import sys; from governance.catalog import Catalog; "
        "from governance.reporting import render_model_card;"
        "sys.stdout.write(render_model_card('credit-scorer@1', format='html', catalog=Catalog(sys.argv[1])))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, sqlite_catalog.url],
        capture_output=True,
        check=True,
        text=True,
        encoding="utf-8",
    ).stdout
    assert other == html


def test_json_card_validates_against_the_model_card_toolkit_schema(catalog: Catalog) -> None:
    seed_model(catalog)
    doc = json.loads(render_model_card("credit-scorer@1", format="json", catalog=catalog))
    _validate(doc)
    assert doc["schema_version"] == "0.0.2"
    assert doc["model_details"]["owners"] == [{"name": "risk-analytics"}]
    slices = {
        (m["type"], m.get("slice")): m["value"] for m in doc["quantitative_analysis"]["performance_metrics"]
    }
    assert slices[("selection_rate", "sex=F")] == fmt_num(BY_SEX["sex=F"]["selection_rate"])
    assert slices[("roc_auc", None)] == "0.8123"
    ext = json.loads(render_model_card("credit-scorer@1", format="governance", catalog=catalog))[EXTENSION_KEY]
    assert ext["policies"][0]["checks"][0]["id"] == "fairness.selection_rate_ratio"
    assert {"caveats", "recommendations"} <= set(ext["missing"])
    assert any(
        r["key"] == "EU-AI-Act:Annex-IV-2(h)" and r["status"] == "missing" for r in ext["traceability"]
    )


def test_markdown_card_has_hugging_face_front_matter(sqlite_catalog: Catalog) -> None:
    seed_model(sqlite_catalog)
    md = render_model_card("credit-scorer@1", format="md", catalog=sqlite_catalog)
    assert isinstance(md, str) and md.startswith("---\n")
    _, front, body = md.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "sklearn" and "model-card" in meta["tags"]
    assert meta["metrics"] == ["accuracy", "roc_auc"]
    assert meta["governance"]["policies"] == {"production": "PASS"}
    assert "## Quantitative analysis" in body and f"| {fmt_num(BY_SEX['sex=M']['selection_rate'])} |" in body


def test_missing_information_is_shown_as_missing(sqlite_catalog: Catalog) -> None:
    seed_model(sqlite_catalog, full=False)
    html = render_model_card("credit-scorer@1", format="html", catalog=sqlite_catalog)
    assert html.count('class="missing"') >= 15
    assert "missing: this version has not been evaluated against a policy" in html
    assert "missing: no sign-off recorded for this version" in html
    doc = json.loads(render_model_card("credit-scorer@1", format="json", catalog=sqlite_catalog))
    _validate(doc)
    assert "owners" not in doc["model_details"] and "considerations" not in doc
    ext = json.loads(render_model_card("credit-scorer@1", format="governance", catalog=sqlite_catalog))[
        EXTENSION_KEY]
    assert {"intended_use", "model.owner", "training_run", "policy_results", "approvals"} <= set(
        ext["missing"]
    )
    statuses = {r["key"]: r["status"] for r in ext["traceability"]}
    assert statuses["Model-Cards:Intended-Use"] == "missing"
    assert statuses["NIST-AI-RMF:MEASURE-2.11"] == "missing"
    assert statuses["NIST-AI-RMF:GOVERN-1.6"] == "covered"  # the model is in the inventory


def test_placeholder_card_fields_count_as_missing(sqlite_catalog: Catalog) -> None:
    seed_model(sqlite_catalog)
    doc = json.loads(render_model_card("credit-scorer@1", format="governance", catalog=sqlite_catalog))
    ext = doc[EXTENSION_KEY]
    assert ext["card"]["recommendations"] is None  # stored as "TODO"
    assert "recommendations" in ext["missing"]


def test_check_maps_to_covers_a_requirement() -> None:
    frameworks = (
        Framework(
            "X",
            "X",
            (
                Requirement("X", "R1", "one", ("card.a",)),
                Requirement("X", "R2", "two", ("card.b",), ("approval",)),
            ),
        ),
    )
    rows = build_matrix(frameworks, {"approval": ["approval by bob"]}, {"X:R1": ["check c: PASS"]})
    assert [(r["key"], r["status"]) for r in rows] == [("X:R1", "covered"), ("X:R2", "partial")]
    assert rows[0]["evidence"] == ["check c: PASS"]
    assert rows[1]["missing"] == ["card.b"]
    assert build_matrix(frameworks, {}, {})[1]["status"] == "missing"


def test_user_template_dir_overrides_and_stays_escaped(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    seed_model(sqlite_catalog, name="<b>bold</b>")
    (tmp_path / "report.css").write_text("body { color: #123456; }")
    (tmp_path / "model_card.html.j2").write_text(
        '{% extends "_base.html.j2" %}{% block body %}<h1>{{ model.name }}</h1>{% endblock %}'
    )
    html = render_model_card("<b>bold</b>@1", format="html", catalog=sqlite_catalog, template_dir=tmp_path)
    assert "#123456" in html and "<h1>&lt;b&gt;bold&lt;/b&gt;</h1>" in html
    with pytest.raises(InputError, match="not a directory"):
        render_model_card(
            "<b>bold</b>@1", format="html", catalog=sqlite_catalog, template_dir=tmp_path / "nope"
        )


def test_errors_name_the_problem(sqlite_catalog: Catalog) -> None:
    seed_model(sqlite_catalog)
    with pytest.raises(InputError, match="--format: expected one of html, pdf, md, json"):
        render_model_card("credit-scorer@1", format="docx", catalog=sqlite_catalog)
    with pytest.raises(NotFoundError, match="has no version 7"):
        render_model_card("credit-scorer@7", format="html", catalog=sqlite_catalog)


def test_cli_model_card(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{gov_env / 'cat.db'}"
    catalog = Catalog(url)
    seed_model(catalog)
    catalog.dispose()
    out = gov_env / "card.json"
    assert (
        main(
            [
                "--catalog",
                url,
                "report",
                "model-card",
                "credit-scorer@production",
                "--format",
                "json",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["model_details"]["name"] == "credit-scorer"
    assert (
        main(
            [
                "--catalog",
                url,
                "report",
                "model-card",
                "credit-scorer@1",
                "--format",
                "xml",
                "--output",
                str(out),
            ]
        )
        == 2
    )
    assert "--format: expected one of html, pdf, md, json" in capsys.readouterr().err
    assert (
        main(["--catalog", url, "report", "model-card", "ghost@1", "--format", "md", "--output", str(out)])
        == 2
    )
    assert "unknown model 'ghost'" in capsys.readouterr().err
    # once as a real process
    md = gov_env / "card.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "governance.cli",
            "--catalog",
            url,
            "report",
            "model-card",
            "credit-scorer@1",
            "--format",
            "md",
            "--output",
            str(md),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert md.read_text().startswith("---\n")
