"""A real local Spark session for the Spark tests, and the data they share.

``spark`` is session-scoped (one JVM for the whole run, ``local[2]``).  Without pyspark or Java the
tests skip with the reason, unless ``GOVERNANCE_REQUIRE_SPARK=1`` (set by ``.ci/run``) turns the skip
into a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("GOVERNANCE_REQUIRE_SPARK") == "1":
        pytest.fail(f"GOVERNANCE_REQUIRE_SPARK=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] SparkSession shared by every Spark test."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _unavailable("pyspark is not installed: pip install 'ml-governance[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _unavailable("no Java runtime (java on PATH or JAVA_HOME) for Spark")
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers need this venv's sklearn and pyarrow
    session = (
        SparkSession.builder.master("local[2]")
        .appName("governance-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if saved is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = saved


def predictions_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A predictions table with three sensitive attributes, a score, and two features (one with NaN)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"], dtype=object), n)
    race = rng.choice(np.array(["A", "B", "C"], dtype=object), n, p=[0.5, 0.3, 0.2])
    age_band = rng.integers(0, 4, n)
    income = rng.normal(50.0, 15.0, n)
    income[rng.random(n) < 0.02] = np.nan
    region = rng.choice(np.array(["north", "south", "east", "west", "moon"], dtype=object), n,
                        p=[0.3, 0.3, 0.2, 0.19, 0.01])
    logit = 0.04 * (np.nan_to_num(income, nan=50.0) - 50.0) + (sex == "M") * 0.4 - 0.2 * age_band
    score = 1.0 / (1.0 + np.exp(-(logit + rng.normal(0.0, 1.0, n))))
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame({
        "sex": sex, "race": race, "age_band": age_band, "income": income, "region": region,
        "label": label, "prediction": (score >= 0.5).astype(np.int64), "score": score,
    })
