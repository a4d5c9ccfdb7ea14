"""The MLflow bridge (extra ``ml-governance[mlflow]``): govern the registry teams already use.

* :func:`import_mlflow` - runs, ``mlflow.data`` inputs, registered models, versions and aliases into
  the catalog: audited, idempotent, incremental (``gov import mlflow``);
* :class:`MlflowRegistry` - the MLflow side of a gated promotion or rollback: the alias moves and the
  version is tagged only after our gate passed (``gov promote ... --registry mlflow``);
* :func:`reconcile` - MLflow aliases that moved without a matching PASS (``gov mlflow reconcile``);
  :class:`WebhookReceiver` does the same per registry webhook delivery, after verifying its HMAC;
* :func:`load_registered_model` - ``models:/NAME/VERSION`` through ``mlflow.pyfunc`` for
  ``governance.evaluate``, bound to the imported version's artifact digest.

``mlflow`` itself is imported only when one of these talks to a server; without it they raise
:class:`~governance.errors.ConfigError` naming ``pip install 'ml-governance[mlflow]'``.
"""

from governance.mlflow._client import INSTALL_HINT, Connection, connect, require_mlflow
from governance.mlflow._digest import TREE_ALGO, tree_digest
from governance.mlflow._import import DATASET_DIGEST_ALGO, ImportReport, import_mlflow, read_watermarks, run_uuid
from governance.mlflow._load import LoadedModel, is_model_uri, load_registered_model
from governance.mlflow._publish import TAG_PREFIX, MlflowPublishError, MlflowRegistry, evidence_digest
from governance.mlflow._reconcile import Finding, ReconcileReport, alias_finding, latest_reconcile, reconcile
from governance.mlflow._webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookOutcome,
    WebhookReceiver,
    WebhookRejected,
    sign_delivery,
    verify_delivery,
)

__all__ = [
    "DATASET_DIGEST_ALGO",
    "DELIVERY_HEADER",
    "INSTALL_HINT",
    "SIGNATURE_HEADER",
    "TAG_PREFIX",
    "TIMESTAMP_HEADER",
    "TREE_ALGO",
    "Connection",
    "Finding",
    "ImportReport",
    "LoadedModel",
    "MlflowPublishError",
    "MlflowRegistry",
    "ReconcileReport",
    "WebhookOutcome",
    "WebhookReceiver",
    "WebhookRejected",
    "alias_finding",
    "connect",
    "evidence_digest",
    "import_mlflow",
    "is_model_uri",
    "latest_reconcile",
    "load_registered_model",
    "read_watermarks",
    "reconcile",
    "require_mlflow",
    "run_uuid",
    "sign_delivery",
    "tree_digest",
    "verify_delivery",
]
