"""Scale-out on Spark: evidence pushed down to the cluster, Spark DataFrames captured.

Needs the ``spark`` extra (``pip install 'ml-governance[spark]'``: pyspark, and deltalake for Delta
tables).  Importing this package does not import pyspark; a function that needs it raises a one-line
:class:`governance.errors.ConfigError` with the install command when it is missing.

* :func:`predictions_evidence`, :func:`confusion_counts`, :func:`data_evidence` - aggregates computed
  on the cluster, in the evidence format the checks read (bounds in ``_evidence``);
* :func:`evaluation_evidence` - what ``governance.evaluate`` computes for a Spark DataFrame;
* :func:`spark_predictions_context` - ``gov check --predictions PATH --engine spark``;
* :func:`read_table` - Parquet or a Delta snapshot as a DataFrame (Delta through delta-rs, see ``_read``);
* capture of Spark DataFrames by ``@governance.step`` lives in :mod:`governance.lineage` (the adapter
  registry); :func:`spark_identity` and :func:`is_spark_frame` are re-exported here.
"""

from governance.lineage import delta_snapshot, is_spark_frame, spark_identity
from governance.spark._evaluate import evaluation_evidence, identity_fingerprint, spark_predictions_context
from governance.spark._evidence import (
    DEFAULT_SCORE_BINS,
    auc_from_histograms,
    confusion_counts,
    data_evidence,
    predictions_evidence,
)
from governance.spark._read import read_table
from governance.spark._session import INSTALL, active_session, require_pyspark

__all__ = [
    "DEFAULT_SCORE_BINS",
    "INSTALL",
    "active_session",
    "auc_from_histograms",
    "confusion_counts",
    "data_evidence",
    "delta_snapshot",
    "evaluation_evidence",
    "identity_fingerprint",
    "is_spark_frame",
    "predictions_evidence",
    "read_table",
    "require_pyspark",
    "spark_identity",
    "spark_predictions_context",
]
