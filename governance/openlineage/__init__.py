"""OpenLineage: catalog runs -> schema-valid ``RunEvent``s through an outbox; ingest from other producers.

* :func:`enqueue_run_event` adds a run's event to the outbox in the caller's (audited) transaction;
  :func:`outbox_documents` builds the documents from the run's catalog rows when they are shipped;
* :func:`kick_shipper` wakes the bounded background shipper when a transport is configured by
  OpenLineage's own conventions (``openlineage.yml``, ``OPENLINEAGE__*``, ``OPENLINEAGE_URL``,
  ``OPENLINEAGE_DISABLED``); :func:`sync` drains on demand (``gov sync``);
* :func:`ingest_openlineage` imports events of Spark, Flink, Airflow, dbt, Marquez... from a file or
  already parsed (``gov ingest openlineage``), bound by time so that arrival order does not matter;
* :func:`dataset_identity` / :func:`dataset_uri` are the one OpenLineage naming that capture and ingest
  share;
* :func:`policy_result_facet` is the custom run facet for policy results;
* :class:`GraphWriter` is the one writer of the lineage graph (capture and ingest), with the one
  shape of a version's schema (:func:`schema_fields`, read back by :func:`schema_of`).
"""

from governance.openlineage._config import TransportConfig, load_transport_config
from governance.openlineage._events import (
    build_run_event,
    build_run_events,
    enqueue_events,
    enqueue_run_event,
    enqueue_run_events,
    outbox_documents,
)
from governance.openlineage._facets import FACET_SCHEMA_URLS, policy_result_facet
from governance.openlineage._graph import GraphWriter, schema_fields, schema_of
from governance.openlineage._ingest import IngestReport, ingest_openlineage
from governance.openlineage._ingest_read import ParsedEvent
from governance.openlineage._ingest_read import validate as validate_event
from governance.openlineage._naming import (
    MODEL_VERSION_FACET,
    POLICY_RESULT_FACET,
    PRODUCER,
    RUN_EVENT_SCHEMA_URL,
    dataset_identity,
    dataset_uri,
    local_path,
    memory_namespace,
    model_dataset,
)
from governance.openlineage._outbox import SyncReport, pending_count, sync, to_client_event
from governance.openlineage._shipper import Shipper, ShipperLimits, forget_shippers, kick_shipper, shipper_for

__all__ = [
    "FACET_SCHEMA_URLS",
    "MODEL_VERSION_FACET",
    "POLICY_RESULT_FACET",
    "PRODUCER",
    "RUN_EVENT_SCHEMA_URL",
    "GraphWriter",
    "IngestReport",
    "ParsedEvent",
    "Shipper",
    "ShipperLimits",
    "SyncReport",
    "TransportConfig",
    "build_run_event",
    "build_run_events",
    "dataset_identity",
    "dataset_uri",
    "enqueue_events",
    "enqueue_run_event",
    "enqueue_run_events",
    "forget_shippers",
    "ingest_openlineage",
    "kick_shipper",
    "load_transport_config",
    "local_path",
    "memory_namespace",
    "model_dataset",
    "outbox_documents",
    "pending_count",
    "policy_result_facet",
    "schema_fields",
    "schema_of",
    "shipper_for",
    "sync",
    "to_client_event",
    "validate_event",
]
