"""The shared vocabulary: concepts that cross subpackages, defined once, typed and versioned.

* the evidence document (:class:`EvidenceDocument`, schema version checked on read);
* model card fields and the one placeholder list (:data:`CARD_FIELDS`, :func:`is_placeholder`);
* waiver states (:class:`WaiverState`, :func:`waiver_state`);
* check statuses and the verdict with its exit code (:class:`Status`, :func:`verdict_exit_code`);
* UTC times (:func:`as_utc`, :func:`iso`, the column type :class:`UTCDateTime`).

It sits just above :mod:`governance.config` and :mod:`governance.errors`: every other subpackage may
import it, and it imports none of them.
"""

from governance.domain._card import (
    CARD_FIELD_KEYS,
    CARD_FIELDS,
    PLACEHOLDERS,
    CardField,
    card_field,
    is_placeholder,
)
from governance.domain._evidence import EVIDENCE_SCHEMA_VERSION, EvidenceDocument, Importance, Metrics
from governance.domain._time import UTCDateTime, as_utc, iso, parse_utc
from governance.domain._verdict import EXIT_BLOCKED, EXIT_ERROR, EXIT_OK, Status, verdict_exit_code
from governance.domain._waiver import WaiverState, waiver_state

__all__ = [
    "CARD_FIELDS",
    "CARD_FIELD_KEYS",
    "EVIDENCE_SCHEMA_VERSION",
    "EXIT_BLOCKED",
    "EXIT_ERROR",
    "EXIT_OK",
    "PLACEHOLDERS",
    "CardField",
    "EvidenceDocument",
    "Importance",
    "Metrics",
    "Status",
    "UTCDateTime",
    "WaiverState",
    "as_utc",
    "card_field",
    "is_placeholder",
    "iso",
    "parse_utc",
    "verdict_exit_code",
    "waiver_state",
]
