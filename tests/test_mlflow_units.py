"""The MLflow bridge's pure parts, without a server: artifact digests, run ids, dataset inputs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from governance.mlflow import run_uuid, tree_digest
from governance.mlflow._import import _dataset_capture
from tests._mlflow_support import require_mlflow


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


FILES = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x00\x01weights", "env/requirements.txt": b"scikit-learn\n"}


def test_tree_digest_covers_every_byte_and_name_but_not_the_location(tmp_path: Path) -> None:
    digest = tree_digest(_tree(tmp_path / "a", FILES))
    assert len(digest) == 64
    assert tree_digest(_tree(tmp_path / "elsewhere" / "b", FILES)) == digest
    assert tree_digest(_tree(tmp_path / "c", {**FILES, "model.pkl": b"\x00\x02weights"})) != digest
    renamed = {("env/requirements.in" if k == "env/requirements.txt" else k): v for k, v in FILES.items()}
    assert tree_digest(_tree(tmp_path / "d", renamed)) != digest
    assert tree_digest(_tree(tmp_path / "e", {**FILES, "extra": b""})) != digest
    assert tree_digest(_tree(tmp_path / "f", {k: v for k, v in FILES.items() if k != "MLmodel"})) != digest


def test_run_uuid_is_the_mlflow_run_id_as_a_uuid() -> None:
    assert run_uuid("7432b7428f0d412d8f928b452e8cab43") == "7432b742-8f0d-412d-8f92-8b452e8cab43"
    other = run_uuid("not-hex")
    assert uuid.UUID(other).version == 5 and run_uuid("not-hex") == other


def test_dataset_inputs_become_captures_named_by_their_source() -> None:
    require_mlflow()
    from mlflow.entities import Dataset, DatasetInput, InputTag

    schema = json.dumps({"mlflow_colspec": [{"type": "double", "name": "income", "required": True},
                                            {"type": "string", "name": "sex", "required": True}]})
    on_s3 = DatasetInput(Dataset(name="train", digest="abc123", source_type="s3",
                                 source=json.dumps({"uri": "s3://bank/credit/train.parquet"}), schema=schema,
                                 profile=json.dumps({"num_rows": 1200, "num_elements": 2400})),
                         [InputTag("mlflow.data.context", "training")])
    cap = _dataset_capture(on_s3)
    assert (cap.namespace, cap.name, cap.uri) == ("s3://bank", "credit/train.parquet", "s3://bank/credit/train.parquet")
    assert (cap.role, cap.direction, cap.content_hash, cap.hash_algo, cap.coverage) == (
        "training", "input", "abc123", "mlflow-digest", "sampled")
    assert cap.row_count == 1200
    assert [(f["name"], f["dtype"]) for f in cap.fields] == [("income", "double"), ("sex", "string")]
    assert cap.schema_hash is not None and cap.schema_hash.startswith("sha256:")

    from_code = _dataset_capture(DatasetInput(Dataset(name="holdout", digest="d1", source_type="code",
                                                      source=json.dumps({"tags": {"mlflow.source.name": "x.py"}})),
                                              []))
    assert (from_code.namespace, from_code.name, from_code.uri, from_code.role) == ("mlflow", "holdout", None, "input")
    assert (from_code.fields, from_code.row_count, from_code.schema_hash) == ([], None, None)


@pytest.mark.parametrize("schema", ["not json", json.dumps(["a"]), json.dumps({"mlflow_tensorspec": {}})])
def test_schemas_without_columns_give_no_fields(schema: str) -> None:
    require_mlflow()
    from mlflow.entities import Dataset, DatasetInput

    cap = _dataset_capture(DatasetInput(Dataset(name="t", digest="d", source_type="local",
                                                source=json.dumps({"uri": "/data/t.csv"}), schema=schema), []))
    assert cap.fields == [] and (cap.namespace, cap.name) == ("file", "/data/t.csv")
