"""Documentation of a model version: card fields (intended use, limitations, ...) and model details.

Captured model versions start with an empty card; teams fill it in (from code or ``gov document``)
before a documentation check can pass.  Every change is audited with the fields that changed.  The
fields are the card's own (:data:`governance.domain.CARD_FIELDS`): every section the card renders can
be set here, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from governance.audit import audited
from governance.catalog import Catalog, Model, resolve_model_version
from governance.domain import CARD_FIELD_KEYS
from governance.errors import InputError
from governance.registry._common import resolve_catalog, resolve_who
from governance.registry._register import _RISK_TIERS

__all__ = ["CARD_FIELDS", "DocumentedVersion", "document"]

#: The card fields :func:`document` accepts: every field the model card renders.
CARD_FIELDS: tuple[str, ...] = CARD_FIELD_KEYS


@dataclass(frozen=True)
class DocumentedVersion:
    """A model version's documentation after :func:`document`.

    ``card`` is the whole card as stored; ``changed`` the card fields and model details this call
    changed (empty when it changed nothing, and then nothing was audited).
    """

    model: str
    version: int
    card: Mapping[str, Any]
    owner: str | None = None
    description: str | None = None
    risk_tier: str | None = None
    changed: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


def _validated_card(card: Mapping[str, Any] | None) -> dict[str, Any]:
    fields = dict(card or {})
    unknown = sorted(set(fields) - set(CARD_FIELDS))
    if unknown:
        raise InputError(f"card: unknown field {unknown[0]!r}; known: {', '.join(CARD_FIELDS)}")
    for key, value in fields.items():
        if not isinstance(value, (str, list)):
            raise InputError(f"card.{key}: expected text or a list of text, got {type(value).__name__}")
    return fields


def document(
    ref: str,
    *,
    card: Mapping[str, Any] | None = None,
    owner: str | None = None,
    description: str | None = None,
    risk_tier: str | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
) -> DocumentedVersion:
    """Merge ``card`` fields into ``MODEL@VERSION``'s card and update the model's details."""
    fields = _validated_card(card)
    if risk_tier is not None and risk_tier not in _RISK_TIERS:
        raise InputError(f"risk_tier: expected one of {', '.join(_RISK_TIERS)}, got {risk_tier!r}")
    cat = resolve_catalog(catalog)
    with audited(cat, resolve_who(actor)) as tx:
        model, mv = resolve_model_version(tx.session, ref)
        subject = f"model:{model.name}@{mv.version}"
        changed = {k: v for k, v in fields.items() if mv.card.get(k) != v}
        if changed:
            mv.card = {**mv.card, **changed}
            tx.session.add(mv)
            tx.record("model_version.document", subject, {"card": changed})
        details = {k: v for k, v in (("owner", owner), ("description", description), ("risk_tier", risk_tier))
                   if v is not None and getattr(model, k) != v}
        row = model
        if details:
            row = tx.session.exec(select(Model).where(Model.id == model.id)).one()
            for key, value in details.items():
                setattr(row, key, value)
            tx.session.add(row)
            tx.record("model.update", f"model:{model.name}", details)
        tx.session.flush()
        return DocumentedVersion(model=model.name, version=mv.version, card=dict(mv.card or {}), owner=row.owner,
                                 description=row.description, risk_tier=row.risk_tier,
                                 changed=(*changed, *details))
