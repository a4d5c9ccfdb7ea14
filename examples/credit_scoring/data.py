"""A synthetic credit-scoring data set, generated deterministically (no download, no licence).

The generating process is written out here so the bias in it is known:

* ``repaid`` (1 = the applicant repaid) depends on income, debt ratio, late payments, credit history
  and employment;
* historical decisions were biased: the observed label is flipped against women with a fixed
  probability, so a model trained on it learns to use ``sex`` (and ``region``, which correlates with
  ``race``, as a proxy);
* ``sex`` and ``race`` are protected attributes; ``region`` is a candidate proxy.

Same ``seed`` and ``n`` -> the same frame, on every machine (numpy's PCG64 is stable across versions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FEATURES", "LABEL", "PROTECTED", "make_credit_data"]

FEATURES = ["age", "income", "debt_ratio", "credit_history_years", "late_payments", "employment_years",
            "region_code", "sex_code"]
PROTECTED = ["sex", "race"]
LABEL = "repaid"


def make_credit_data(n: int = 6000, seed: int = 7) -> pd.DataFrame:
    """Applicants with protected attributes, features and the (historically biased) outcome."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["female", "male"]), size=n, p=[0.5, 0.5])
    race = rng.choice(np.array(["group_a", "group_b", "group_c"]), size=n, p=[0.6, 0.25, 0.15])
    age = rng.integers(21, 70, size=n)
    income = np.round(rng.lognormal(mean=10.6, sigma=0.45, size=n) * np.where(sex == "male", 1.08, 1.0), 2)
    debt_ratio = np.round(rng.beta(2.0, 5.0, size=n), 4)
    credit_history_years = np.clip(age - 18 - rng.integers(0, 10, size=n), 0, None)
    late_payments = rng.poisson(lam=np.where(debt_ratio > 0.35, 1.6, 0.6))
    employment_years = np.clip(np.round(rng.gamma(2.0, 3.0, size=n), 1), 0, age - 18)
    region_bias = {"group_a": [0.6, 0.3, 0.1], "group_b": [0.2, 0.3, 0.5], "group_c": [0.15, 0.35, 0.5]}
    region = np.empty(n, dtype=object)
    for group, probs in region_bias.items():
        mask = race == group
        region[mask] = rng.choice(np.array(["north", "central", "south"]), size=int(mask.sum()), p=probs)

    score = (
        1.3 * (np.log(income) - 10.6) - 3.2 * (debt_ratio - 0.28) - 0.55 * (late_payments - 0.9)
        + 0.035 * (credit_history_years - 20) + 0.05 * (employment_years - 6) + rng.normal(0, 0.9, size=n) + 0.55
    )
    repaid = (score > 0).astype(np.int64)
    # the historical bias: a share of women who repaid were recorded as defaults
    flipped = (sex == "female") & (repaid == 1) & (rng.random(n) < 0.25)
    repaid[flipped] = 0
    frame = pd.DataFrame({
        "applicant_id": np.arange(1, n + 1, dtype=np.int64),
        "age": age.astype(np.int64),
        "income": income,
        "debt_ratio": debt_ratio,
        "credit_history_years": credit_history_years.astype(np.int64),
        "late_payments": late_payments.astype(np.int64),
        "employment_years": employment_years,
        "region": pd.Categorical(region, categories=["north", "central", "south"]),
        "sex": pd.Categorical(sex, categories=["female", "male"]),
        "race": pd.Categorical(race, categories=["group_a", "group_b", "group_c"]),
        LABEL: repaid,
    })
    return frame
