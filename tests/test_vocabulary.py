"""The shared vocabulary (:mod:`governance.domain`): one placeholder list, one card field list, one
evidence document with a checked schema version, one exit-code mapping, one waiver vocabulary."""

from __future__ import annotations

import pytest

from governance.domain import (
    CARD_FIELDS,
    EvidenceDocument,
    Status,
    WaiverState,
    is_placeholder,
    verdict_exit_code,
)
from governance.errors import EvaluationError


@pytest.mark.parametrize("text", ["[More Information Needed]", "FIXME", "To do", "TBD.", "  todo ", "n/a"])
def test_one_placeholder_list(text: str) -> None:
    assert is_placeholder(text) and is_placeholder([text, ""]) and not is_placeholder("Loan triage")


def test_evidence_document_round_trips_and_has_one_importance_shape() -> None:
    stored = {"schema": 1, "n": 3, "score": None, "importance": {"importance": {"a": 0.5}, "explainer": "T",
                                                                 "sample_size": 3}, "future_key": [1]}
    doc = EvidenceDocument.read(stored)
    assert doc.stored() == stored and doc.importance is not None and doc.importance.by_feature == {"a": 0.5}
    assert doc.extra == {"future_key": [1]}
    with pytest.raises(EvaluationError, match="schema 0 is not an evidence schema version"):
        EvidenceDocument.read({"schema": 0})
    with pytest.raises(EvaluationError, match="importance"):
        EvidenceDocument.read({"importance": {"a": 0.5, "b": "x"}})  # the flat shape is not evidence


@pytest.mark.parametrize(("status", "warned", "fail_on_warn", "code"), [
    ("PASS", False, False, 0), ("PASS", True, True, 1), ("WARN", False, False, 0), ("WARN", False, True, 1),
    ("FAIL", False, False, 1), ("ERROR", False, False, 3), ("NOT_RUN", False, False, 3), ("bogus", False, False, 3),
])
def test_one_exit_code_mapping(status: str, warned: bool, fail_on_warn: bool, code: int) -> None:
    assert verdict_exit_code(status, fail_on_warn=fail_on_warn, warned=warned) == code
    parsed = Status.parse(status)
    if parsed is not None:
        assert parsed.exit_code(fail_on_warn=fail_on_warn, warned=warned) == code


def test_card_fields_are_one_list() -> None:
    keys = [f.key for f in CARD_FIELDS]
    assert len(keys) == len(set(keys)) and "tradeoffs" in keys and "intended_use" in keys


def test_waiver_states_read_documents_stored_before_the_vocabulary() -> None:
    assert WaiverState.parse("valid") is WaiverState.ACTIVE and WaiverState.parse("expired") is WaiverState.EXPIRED
    assert WaiverState.parse("bogus") is None
