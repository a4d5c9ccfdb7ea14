"""The optional pyspark dependency: imported lazily, with the install line when it is missing."""

from __future__ import annotations

from typing import Any

from governance.errors import ConfigError

__all__ = ["INSTALL", "active_session", "require_pyspark"]

INSTALL = "pip install 'ml-governance[spark]'"


def require_pyspark() -> Any:
    """``pyspark.sql.functions``, or a one-line :class:`ConfigError` naming the install command."""
    try:
        from pyspark.sql import functions
    except ImportError as exc:
        raise ConfigError(f"the Spark engine needs pyspark: {INSTALL}") from exc
    return functions


def active_session() -> Any:
    """The active SparkSession, or a new one (under spark-submit or on Databricks this is the cluster's;
    run locally it is ``local[*]``, Spark's default master)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    return SparkSession.builder.appName("gov check").getOrCreate()
