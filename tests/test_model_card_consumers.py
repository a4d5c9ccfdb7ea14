"""Model cards load in the consumers' own libraries.

* JSON: Model Card Toolkit's ``ModelCard.from_json`` refuses any key its dataclasses do not define, at
  every level; the card holds only keys the v0.0.2 schema defines (checked against the real schema in
  ``shared/model-card-schema``) and, when the toolkit is importable, loads with ``from_json`` itself.
  The toolkit 2.0 needs TensorFlow 2.15, TFX-BSL and ML Metadata to import at all, so it is not in the
  ``dev`` extra; ``GOVERNANCE_REQUIRE_MODEL_CARD_TOOLKIT=1`` turns its skip into a failure.
* Markdown: ``huggingface_hub.ModelCard`` parses the front matter: ``license``, training datasets only,
  metric names without counts, and a ``model-index`` whose eval results parse
  (``GOVERNANCE_REQUIRE_HUGGINGFACE=1`` turns a missing ``huggingface_hub`` into a failure).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from governance.audit import audited
from governance.catalog import Catalog, DatasetVersion, Evidence, ModelVersion
from governance.registry import document
from governance.reporting import EXTENSION_KEY, render_model_card, sidecar_path
from tests.test_report_model_card import SCHEMA, _validate
from tests.test_report_seed import EVALUATED_AT, seed_model


def _require(module: str, variable: str, install: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        reason = f"{module} is not importable ({exc}); {install}"
        if os.environ.get(variable) == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def card_catalog(sqlite_catalog: Catalog) -> Catalog:
    """The seeded model with a license and evaluation evidence whose overall metrics include a count."""
    seed_model(sqlite_catalog)
    document("credit-scorer@1", card={"license": "Apache-2.0"}, catalog=sqlite_catalog, actor="alice")
    with audited(sqlite_catalog, "ci-bot") as tx:
        mv = tx.session.exec(select(ModelVersion)).one()
        evidence = tx.session.exec(select(Evidence).where(Evidence.model_version_id == mv.id)).first()
        assert evidence is not None
        tx.session.add(Evidence(
            model_version_id=mv.id, dataset_version_id=evidence.dataset_version_id, kind="evaluation",
            data={"metrics": {"overall": {"n": 1000, "accuracy": 0.7712, "roc_auc": 0.8123}}},
            created_at=EVALUATED_AT + timedelta(minutes=1)))
        tx.record("evidence.record", "model:credit-scorer@1", {"metrics": ["accuracy", "roc_auc"]})
    return sqlite_catalog


def _undefined_keys(doc: Any, schema: dict[str, Any], node: dict[str, Any], path: str = "") -> list[str]:
    """Keys of ``doc`` the schema does not define where they appear (what ``from_json`` refuses)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _undefined_keys(doc, schema, schema["definitions"][name], path)
    if isinstance(doc, list):
        return [k for i, item in enumerate(doc) for k in _undefined_keys(item, schema, node.get("items", {}),
                                                                          f"{path}[{i}]")]
    if not isinstance(doc, dict):
        return []
    properties = node.get("properties", {})
    found = [f"{path}.{key}".lstrip(".") for key in doc if key not in properties]
    for key, value in doc.items():
        if key in properties:
            found += _undefined_keys(value, schema, properties[key], f"{path}.{key}")
    return found


def test_json_card_holds_only_what_the_schema_defines(card_catalog: Catalog, tmp_path: Path) -> None:
    output = tmp_path / "card.json"
    text = render_model_card("credit-scorer@1", format="json", output=output, catalog=card_catalog)
    doc = json.loads(text)
    _validate(doc)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert _undefined_keys(doc, schema, schema) == []
    assert doc["model_details"]["licenses"] == [{"identifier": "Apache-2.0"}]
    assert doc["model_details"]["references"] == [{"reference": "card.governance.json"}]
    sidecar = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
    assert sidecar_path(output) == tmp_path / "card.governance.json"
    assert (sidecar["model"], sidecar["version"], sidecar["card"]) == ("credit-scorer", 1, "card.json")
    assert sidecar[EXTENSION_KEY]["policies"][0]["checks"][0]["id"] == "fairness.selection_rate_ratio"


def test_json_card_loads_with_model_card_toolkit(card_catalog: Catalog) -> None:
    toolkit = _require("model_card_toolkit", "GOVERNANCE_REQUIRE_MODEL_CARD_TOOLKIT",
                       "pip install model-card-toolkit (needs TensorFlow 2.15)")
    doc = json.loads(render_model_card("credit-scorer@1", format="json", catalog=card_catalog))
    card = toolkit.ModelCard()
    card.from_json(doc)
    assert card.model_details.name == "credit-scorer"
    assert card.to_proto().model_details.licenses[0].identifier == "Apache-2.0"


def test_markdown_card_parses_with_huggingface_hub(card_catalog: Catalog) -> None:
    hub = _require("huggingface_hub", "GOVERNANCE_REQUIRE_HUGGINGFACE", "pip install 'ml-governance[interop]'")
    text = render_model_card("credit-scorer@1", format="md", catalog=card_catalog)
    assert isinstance(text, str)
    card = hub.ModelCard(text, ignore_metadata_errors=False)
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "sklearn"
    with card_catalog.read() as s:
        evaluated = s.exec(select(Evidence.dataset_version_id)).first()
        evaluation = s.get(DatasetVersion, evaluated)
        assert evaluation is not None
    training = card.data.datasets
    assert training and all("holdout" not in name for name in training)
    assert card.data.metrics == ["accuracy", "roc_auc"]  # no "n": a count is not a metric
    results = {(r.metric_type, r.metric_value, r.dataset_split) for r in card.data.eval_results}
    assert results == {("accuracy", 0.7712, "evaluation"), ("roc_auc", 0.8123, "evaluation")}
    (result, _) = card.data.eval_results
    assert result.task_type == "tabular-classification"
    assert result.dataset_revision == evaluation.content_hash
    assert card.data.model_name == "credit-scorer@1"
