"""Model card fields and placeholders: what ``gov document`` accepts, the card renders and the
documentation check requires, defined once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CARD_FIELDS", "CARD_FIELD_KEYS", "PLACEHOLDERS", "CardField", "card_field", "is_placeholder"]


@dataclass(frozen=True)
class CardField:
    """A model card field: its key in ``ModelVersion.card``, its title, and whether the card gives it a
    section of its own (``section=False``: listed with the other card fields when set)."""

    key: str
    title: str
    section: bool = True


#: Every field the card renders, in card order; ``gov document`` accepts exactly these (the model's
#: description, owner and risk tier are details of the model, set with their own options).
CARD_FIELDS: tuple[CardField, ...] = (
    CardField("intended_use", "Intended use"),
    CardField("out_of_scope_use", "Out-of-scope use"),
    CardField("users", "Intended users"),
    CardField("factors", "Factors"),
    CardField("metrics", "Metrics (rationale)"),
    CardField("training_data", "Training data"),
    CardField("evaluation_data", "Evaluation data"),
    CardField("limitations", "Limitations"),
    CardField("tradeoffs", "Trade-offs"),
    CardField("ethical_considerations", "Ethical considerations"),
    CardField("caveats", "Caveats"),
    CardField("recommendations", "Recommendations"),
    CardField("license", "License", section=False),
    CardField("contact", "Contact", section=False),
)

CARD_FIELD_KEYS: tuple[str, ...] = tuple(f.key for f in CARD_FIELDS)

_BY_KEY: Mapping[str, CardField] = {f.key: f for f in CARD_FIELDS}

#: Text that only stands in for content, compared lower-cased, stripped and without a final period.
PLACEHOLDERS: frozenset[str] = frozenset({
    "", "tbd", "tba", "todo", "to do", "fixme", "xxx", "n/a", "na", "none", "null", "-", "...", "?",
    "[more information needed]", "more information needed", "[tbd]", "[todo]", "placeholder", "lorem ipsum",
})


def card_field(key: str) -> CardField | None:
    """The card field named ``key`` (None for a key the card does not know)."""
    return _BY_KEY.get(key)


def is_placeholder(value: Any) -> bool:
    """Empty, or text that only stands in for content ("TBD", "[More Information Needed]", "FIXME").

    A list or mapping is a placeholder when every item is."""
    if value is None:
        return True
    if isinstance(value, list | tuple | dict | set):
        items = value.values() if isinstance(value, dict) else value
        return all(is_placeholder(v) for v in items)
    text = str(value).strip().lower().rstrip(".").strip()
    return text in PLACEHOLDERS or "[more information needed]" in text
