"""Documentation of a model version: card fields (intended use, limitations, ...) and model details.

Captured model versions start with an empty card; teams fill it in (from code or ``gov document``)
before a documentation check can pass.  Every change is audited with the fields that changed.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from governance.audit import audited
from governance.catalog import Catalog, Model, ModelVersion, resolve_model_version
from governance.errors import InputError
from governance.registry._common import resolve_catalog, resolve_who
from governance.registry._register import _RISK_TIERS

__all__ = ["CARD_FIELDS", "document"]

CARD_FIELDS = (
    "intended_use", "out_of_scope_use", "users", "factors", "training_data", "evaluation_data",
    "limitations", "ethical_considerations", "caveats", "recommendations", "license", "contact",
)


def document(
    ref: str,
    *,
    card: dict[str, Any] | None = None,
    owner: str | None = None,
    description: str | None = None,
    risk_tier: str | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Merge ``card`` fields into ``MODEL@VERSION``'s card and update the model's details."""
    card = dict(card or {})
    unknown = sorted(set(card) - set(CARD_FIELDS))
    if unknown:
        raise InputError(f"card: unknown field {unknown[0]!r}; known: {', '.join(CARD_FIELDS)}")
    for key, value in card.items():
        if not isinstance(value, (str, list)):
            raise InputError(f"card.{key}: expected text or a list of text, got {type(value).__name__}")
    if risk_tier is not None and risk_tier not in _RISK_TIERS:
        raise InputError(f"risk_tier: expected one of {', '.join(_RISK_TIERS)}, got {risk_tier!r}")
    cat = resolve_catalog(catalog)
    with audited(cat, resolve_who(actor)) as tx:
        model, mv = resolve_model_version(tx.session, ref)
        subject = f"model:{model.name}@{mv.version}"
        changed = {k: v for k, v in card.items() if mv.card.get(k) != v}
        if changed:
            mv.card = {**mv.card, **changed}
            tx.session.add(mv)
            tx.record("model_version.document", subject, {"card": changed})
        details = {k: v for k, v in (("owner", owner), ("description", description), ("risk_tier", risk_tier))
                   if v is not None and getattr(model, k) != v}
        if details:
            row = tx.session.exec(select(Model).where(Model.id == model.id)).one()
            for key, value in details.items():
                setattr(row, key, value)
            tx.session.add(row)
            tx.record("model.update", f"model:{model.name}", details)
        tx.session.flush()
    return mv
