"""Model cards load in the consumers' own libraries.

* JSON: Model Card Toolkit's ``ModelCard.from_json`` refuses any key its dataclasses do not define, at
  every level; the card holds only keys the v0.0.2 schema defines (checked against the real schema in
  ``shared/model-card-schema``) and loads with the toolkit's own ``from_json``.
  The toolkit 2.0's package ``__init__`` imports TensorFlow 2.15, TFX-BSL and ML Metadata (none of
  which install on Python 3.11), while ``model_card_toolkit.model_card`` itself needs only protobuf and
  jsonschema.  So when the toolkit is installed without its dependencies
  (``pip install --no-deps model-card-toolkit==2.0.0``, as ``.ci/run`` does) and the package does not
  import, the test loads the toolkit's own ``model_card`` module in a subprocess with the package
  ``__init__`` files not run and protobuf's pure-Python backend (the toolkit's generated ``_pb2`` predates
  protobuf 4's C backend), and calls the real ``ModelCard.from_json`` there.  Not installed at all: the
  test skips; ``GOVERNANCE_REQUIRE_MODEL_CARD_TOOLKIT=1`` turns that skip into a failure.
* Markdown: ``huggingface_hub.ModelCard`` parses the front matter: ``license``, training datasets only,
  metric names without counts, and a ``model-index`` whose eval results parse
  (``GOVERNANCE_REQUIRE_HUGGINGFACE=1`` turns a missing ``huggingface_hub`` into a failure).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
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


# Run in a subprocess: loads the installed toolkit's ``model_card`` module with the package ``__init__``
# files (which import TensorFlow) not executed, then the real ``ModelCard.from_json`` on stdin's card.
_TOOLKIT_FROM_JSON = """
import importlib, importlib.util, json, os, sys
root = os.path.dirname(importlib.util.find_spec("model_card_toolkit").origin)
for name, path in (("model_card_toolkit", root), ("model_card_toolkit.utils", os.path.join(root, "utils"))):
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                  submodule_search_locations=[path])
    sys.modules[name] = importlib.util.module_from_spec(spec)
toolkit = importlib.import_module("model_card_toolkit.model_card")
card = toolkit.ModelCard()
card.from_json(json.load(sys.stdin))
print(json.dumps({"name": card.model_details.name,
                  "licenses": [item.identifier for item in card.model_details.licenses]}))
"""


def _from_json_with_toolkit(doc: dict[str, Any]) -> dict[str, Any]:
    """What the real toolkit's ``ModelCard.from_json`` made of ``doc`` (raises with its error)."""
    try:
        toolkit = importlib.import_module("model_card_toolkit")
    except ImportError:
        toolkit = None
    if toolkit is not None:  # a complete install (TensorFlow and all): the package as users import it
        card = toolkit.ModelCard()
        card.from_json(doc)
        return {"name": card.model_details.name,
                "licenses": [item.identifier for item in card.model_details.licenses]}
    if importlib.util.find_spec("model_card_toolkit") is None:
        _require("model_card_toolkit", "GOVERNANCE_REQUIRE_MODEL_CARD_TOOLKIT",
                 "pip install --no-deps model-card-toolkit==2.0.0 (its TensorFlow dependencies are not needed)")
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run([sys.executable, "-c", _TOOLKIT_FROM_JSON], input=json.dumps(doc), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ModelCard.from_json refused the card: {done.stderr.strip()[-2000:]}")
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def test_json_card_loads_with_model_card_toolkit(card_catalog: Catalog) -> None:
    doc = json.loads(render_model_card("credit-scorer@1", format="json", catalog=card_catalog))
    assert _from_json_with_toolkit(doc) == {"name": "credit-scorer", "licenses": ["Apache-2.0"]}


def test_model_card_toolkit_refuses_an_unknown_key(card_catalog: Catalog) -> None:
    """The check above can fail: the toolkit refuses the extension key inside ``model_details`` that
    the first version of our card carried (what issue 17 reported)."""
    doc = json.loads(render_model_card("credit-scorer@1", format="json", catalog=card_catalog))
    doc["model_details"][EXTENSION_KEY] = {"policies": []}
    with pytest.raises((AssertionError, ValueError), match=r"x-governance|Additional properties|no such field"):
        _from_json_with_toolkit(doc)


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
