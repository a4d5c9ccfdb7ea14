"""Bind the rows of a catalog that predates state binding (migration 0006): ``gov audit adopt``.

Events written before 0006 carry no state map, so after the upgrade every existing row is unbound
and the gate refuses it.  Adoption looks, for each unbound row, for the event that created it and
checks the fields that event recorded against the row (a waiver's id and check, an evaluation's id,
status and policy digest, a model version's artifact digest, a run's uuid and final status...).
Rows that match are bound, all in one ``audit.adopt`` event whose state map holds their digests as
they are now; rows that match nothing are reported (counted per table, the first ones named) and
stay unbound: nothing is blessed because it happens to be in the catalog.

What adoption can and cannot tell: it proves a row agrees with what the log recorded about it, on the
fields the log recorded.  A column the old events never recorded (a waiver's reason, an evidence
document beyond its ids and artifact digest) is bound as it is found.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from governance.audit._chain import GENESIS_HASH
from governance.audit._index import _ChainWalk, _events_from, replay_projection
from governance.audit._state import row_digest
from governance.audit._write import audited
from governance.catalog import STATE_TABLES, Catalog, state_table
from governance.errors import GovernanceError

__all__ = ["ADOPT_ACTION", "AdoptReport", "adopt_existing"]

ADOPT_ACTION = "audit.adopt"
_TERMINAL = {"COMPLETE", "FAIL", "ABORT", "COMPLETED", "FAILED", "ABORTED"}


@dataclass
class AdoptReport:
    """What adoption bound and what it could not."""

    bound: dict[str, int] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
    first_unmatched: list[str] = field(default_factory=list)
    already_bound: int = 0
    audit_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.unmatched

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "bound": self.bound, "unmatched": self.unmatched,
                "first_unmatched": self.first_unmatched, "already_bound": self.already_bound,
                "audit_seq": self.audit_seq}


class _Log:
    """What the old events recorded, indexed by the keys adoption matches on."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
        self.subjects: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)

    def add(self, action: str, subject: str, data: dict[str, Any]) -> None:
        self.subjects[subject].append((action, data))
        for key in ("waiver_id", "evaluation_id", "event_id", "evidence_id", "approval_id", "statement_id"):
            if data.get(key) is not None:
                self.by_key[(key, data[key])].append({"action": action, **data})

    def find(self, key: str, value: Any, action: str | None = None) -> list[dict[str, Any]]:
        found = self.by_key.get((key, value), [])
        return [d for d in found if action is None or d["action"] == action or d["action"].startswith(action)]


def _read_log(session: Session) -> tuple[_Log, dict[tuple[str, int], Any]]:
    log = _Log()
    events = list(_events_from(session, 1))
    projection, _ = replay_projection(iter(events), _ChainWalk(1, GENESIS_HASH))
    for event in events:
        body = json.loads(event.payload)
        log.add(str(body.get("action")), str(body.get("subject")), body.get("data") or {})
    return log, projection


def _rows(session: Session, table: str) -> Iterator[dict[str, Any]]:
    t = state_table(table)
    for row in session.connection().execute(sa.select(t).order_by(t.c.id)).mappings():
        yield dict(row)


class _Matcher:
    """Per-table rules: does a row agree with the event that created it?"""

    def __init__(self, session: Session, log: _Log) -> None:
        self.session, self.log = session, log
        self.ok: dict[str, set[int]] = defaultdict(set)
        self.models: dict[int, str] = {r["id"]: r["name"] for r in _rows(session, "model")}
        self.versions: dict[int, tuple[int, int]] = {
            r["id"]: (r["model_id"], r["version"]) for r in _rows(session, "model_version")}

    def _subject(self, subject: str, action: str | None = None) -> list[dict[str, Any]]:
        return [d for a, d in self.log.subjects.get(subject, []) if action is None or a == action]

    def model(self, row: dict[str, Any]) -> bool:
        name = row["name"]
        return any(s == f"model:{name}" or s.startswith(f"model:{name}@") for s in self.log.subjects)

    def model_version(self, row: dict[str, Any]) -> bool:
        name = self.models.get(row["model_id"])
        created = self._subject(f"model:{name}@{row['version']}", "model_version.create")
        return any(d.get("artifact_hash") == row["artifact_hash"] for d in created)

    def model_alias(self, row: dict[str, Any]) -> bool:
        name = self.models.get(row["model_id"])
        moves = [d for a, d in self.log.subjects.get(f"model:{name}@{row['alias']}", [])
                 if a in ("promotion.promote", "promotion.rollback")]
        current = self.versions.get(row["model_version_id"], (None, None))[1]
        return bool(moves) and moves[-1].get("version") == current

    def promotion_event(self, row: dict[str, Any]) -> bool:
        return bool(self.log.find("event_id", row["id"], f"promotion.{row['action']}"))

    def evidence(self, row: dict[str, Any]) -> bool:
        digest = (row["data"] or {}).get("artifact_hash")
        return any(d.get("artifact_hash") == digest for d in self.log.find("evidence_id", row["id"]))

    def policy_evaluation(self, row: dict[str, Any]) -> bool:
        return any(d.get("status") == row["status"] and d.get("digest") == row["policy_digest"]
                   for d in self.log.find("evaluation_id", row["id"], "policy.evaluate"))

    def check_result(self, row: dict[str, Any]) -> bool:
        return any((d.get("results") or {}).get(row["check_id"]) == row["status"]
                   for d in self.log.find("evaluation_id", row["evaluation_id"], "policy.evaluate"))

    def waiver(self, row: dict[str, Any]) -> bool:
        created = [d for d in self.log.find("waiver_id", row["id"], "waiver.create")
                   if d.get("check") == row["check_id"]]
        revoked = self.log.find("waiver_id", row["id"], "waiver.revoke")
        return bool(created) and (row["revoked_at"] is None) == (not revoked)

    def approval(self, row: dict[str, Any]) -> bool:
        created = self.log.find("approval_id", row["id"], "approval.create")
        return any(d.get("stage") == row["stage"] for d in created)

    def signed_statement(self, row: dict[str, Any]) -> bool:
        if self.log.find("statement_id", row["id"]):
            return True
        if row["kind"] in ("promotion", "rollback"):
            prefix = "promotion.rollback" if row["kind"] == "rollback" else "promotion."
            return bool(self.log.find("event_id", row["target_id"], prefix))
        return False

    def run(self, row: dict[str, Any]) -> bool:
        events = self._subject(f"run:{row['run_uuid']}")
        if not events:
            return False
        statuses = {d.get("status") for d in events if d.get("status")}
        return not (row["status"] in _TERMINAL and statuses and row["status"] not in statuses)

    def job(self, row: dict[str, Any]) -> bool:
        return row["id"] in self.ok["_job_of_run"]

    def dataset_version(self, row: dict[str, Any]) -> bool:
        return row["id"] in self.ok["_version_by_event"]

    def dataset(self, row: dict[str, Any]) -> bool:
        return row["id"] in self.ok["_dataset_of_version"]

    def dataset_field(self, row: dict[str, Any]) -> bool:
        return row["dataset_version_id"] in self.ok["dataset_version"]

    def column_lineage(self, row: dict[str, Any]) -> bool:
        return row["run_id"] in self.ok["run"] if row["run_id"] is not None else \
            row["output_version_id"] in self.ok["dataset_version"]

    def run_io(self, row: dict[str, Any]) -> bool:
        return row["run_id"] in self.ok["run"]


# the order parents are decided before their children
_ORDER = ("model", "model_version", "model_alias", "promotion_event", "evidence", "policy_evaluation",
          "check_result", "waiver", "approval", "signed_statement", "run", "job", "dataset_version", "dataset",
          "dataset_field", "column_lineage", "run_io")


def _dataset_versions(session: Session, log: _Log, matcher: _Matcher) -> None:
    """Dataset versions a ``dataset_version.create`` event recorded (name, version, content hash)."""
    datasets = {r["id"]: (r["namespace"], r["name"]) for r in _rows(session, "dataset")}
    for row in _rows(session, "dataset_version"):
        ns, name = datasets.get(row["dataset_id"], ("", ""))
        created = [d for a, d in log.subjects.get(f"dataset:{ns}/{name}@{row['version']}", [])
                   if a == "dataset_version.create"]
        if any(d.get("content_hash") == row["content_hash"] for d in created):
            matcher.ok["_version_by_event"].add(row["id"])
            matcher.ok["_dataset_of_version"].add(row["dataset_id"])


def adopt_existing(catalog: Catalog, actor: str, *, limit: int = 20) -> AdoptReport:
    """Bind every unbound row that agrees with the event that created it, in one ``audit.adopt`` event;
    report the rest (at most ``limit`` named)."""
    if set(_ORDER) != set(STATE_TABLES):  # pragma: no cover - a state table added without its adoption order
        raise GovernanceError("internal: gov audit adopt does not know every state table")
    report = AdoptReport()
    with audited(catalog, actor) as tx:
        session = tx.session
        log, projection = _read_log(session)
        matcher = _Matcher(session, log)
        _dataset_versions(session, log, matcher)
        for run in _rows(session, "run"):
            if matcher.run(run):
                matcher.ok["_job_of_run"].add(run["job_id"])
        state: dict[str, dict[str, str]] = {}
        for table in _ORDER:
            rule = getattr(matcher, table)
            for row in _rows(session, table):
                key = (table, int(row["id"]))
                if key in projection and projection[key][1] is not None:
                    report.already_bound += 1
                    matcher.ok[table].add(int(row["id"]))
                    continue
                if rule(row):
                    matcher.ok[table].add(int(row["id"]))
                    state.setdefault(table, {})[str(row["id"])] = row_digest(table, row)
                    report.bound[table] = report.bound.get(table, 0) + 1
                else:
                    report.unmatched[table] = report.unmatched.get(table, 0) + 1
                    if len(report.first_unmatched) < limit:
                        report.first_unmatched.append(f"{table} {row['id']}: no event recorded it as it is")
        tx.extra_state = state
        report.audit_seq = tx.record(ADOPT_ACTION, "audit:state", {
            "bound": report.bound, "unmatched": report.unmatched, "first_unmatched": report.first_unmatched,
            "already_bound": report.already_bound}).seq
    return report
