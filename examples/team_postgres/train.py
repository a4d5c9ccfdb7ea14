"""A team's training job: capture into the shared PostgreSQL catalog, record evidence, gate in CI.

    export GOVERNANCE_CATALOG_URL=postgresql+psycopg://gov@db.internal:5432/governance
    python examples/team_postgres/train.py          # prints the model version it produced
    gov promote credit-scorer@<version> --to staging --policy baseline --format github

The steps are the credit-scoring example's (``examples/credit_scoring/pipeline.py``); only the catalog
differs.  Nothing here promotes: promotion is CI's job, through the policy gate.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "credit_scoring"))

from pipeline import CARD, MODEL, build_features, evaluate, load_applicants, split, train_mitigated

import governance as gov


def main() -> str:
    """Train, document and evaluate one candidate; return its ``MODEL@VERSION``."""
    train, test = split(build_features(load_applicants()))
    model = train_mitigated(train)
    ref = gov.version_of(model, model=MODEL)
    gov.document(ref, card=CARD, owner="retail-credit-risk", risk_tier="high",
                 description="Scores consumer credit applications.")
    evaluate(model, test, ref)
    return ref


if __name__ == "__main__":
    print(main())
