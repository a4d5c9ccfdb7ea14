"""After launch: re-run drift and performance checks on production data for the version a stage
points at, alert a webhook and optionally roll the stage back."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance._version import __version__
from governance.audit import audited
from governance.catalog import Catalog, parse_ref
from governance.errors import InputError
from governance.registry._common import resolve_catalog, resolve_who
from governance.registry._gate import (
    GateReport,
    evaluate_subject,
    load_policy,
    pack_applicability,
    predictions_spec,
    resolve_subject,
    store,
)
from governance.registry._promote import Rollback, rollback
from governance.registry._verdict import EXIT_BLOCKED, EXIT_OK, Outcome, classify

if TYPE_CHECKING:  # pragma: no cover
    from governance.policy import PolicyPack

__all__ = ["MonitorReport", "monitor", "post_json"]


@dataclass
class MonitorReport:
    """A monitoring evaluation, plus what was done about it (notification, rollback)."""

    gate: GateReport
    stage: str
    notified: dict[str, Any] | None = None
    rolled_back: Rollback | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def exit_code(self, *, fail_on_warn: bool = False) -> int:
        return self.gate.exit_code(fail_on_warn=fail_on_warn)


def post_json(url: str, payload: dict[str, Any], *, timeout: float = 5.0) -> int:
    """POST ``payload`` as JSON; the HTTP status.  Only ``http``/``https`` URLs."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in {"http", "https"}:
        raise InputError(f"--notify: expected an http(s) URL, got {url!r}")
    body = json.dumps(payload, default=str).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"ml-governance/{__version__}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        return int(response.status)


def monitor(
    ref: str,
    *,
    data: str | Path,
    policy: str | Path | PolicyPack,
    label: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    sensitive: Sequence[str] | str | None = None,
    notify: str | None = None,
    rollback_on_fail: bool = False,
    catalog: Catalog | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    timeout: float = 5.0,
    force: bool = False,
) -> MonitorReport:
    """Evaluate ``policy`` on production ``data`` for the version ``MODEL@STAGE`` points at.

    Drift checks compare ``data`` with the training baseline stored for that version; performance
    checks use the ``label``/``prediction`` columns.  The evaluation is stored (purpose ``monitor``)
    and audited.  When the gate does not pass, ``notify`` gets a JSON summary; on a blocking failure
    (not on a check that could not be evaluated) ``rollback_on_fail`` moves the stage back to the
    previous version that passed its gate.
    """
    parsed = parse_ref(ref)
    if parsed.alias is None:
        raise InputError(f"MODEL@STAGE: expected a stage such as {parsed.name}@production, got {ref!r}")
    if notify is not None and urllib.parse.urlsplit(notify).scheme not in {"http", "https"}:
        raise InputError(f"--notify: expected an http(s) URL, got {notify!r}")
    spec = predictions_spec(data, label, prediction, score, sensitive) if label or prediction else None
    if spec is None and not Path(data).is_file():
        raise InputError(f"--data: no such file {data}")
    who = resolve_who(actor)
    pack, source = load_policy(policy)
    cat = resolve_catalog(catalog)
    subject = resolve_subject(cat, ref, spec)
    override = pack_applicability(pack, subject, force=force)
    result, document = evaluate_subject(cat, subject, pack, now=now, monitoring=True,
                                        features=None if spec is not None else Path(data))
    with audited(cat, who) as tx:
        evaluation_id = store(tx, result, subject, "monitor",
                              {"stage": parsed.alias, "data": str(data), **override})
    gate = GateReport(document, subject, source, evaluation_id, result=result)
    report = MonitorReport(gate, parsed.alias)
    code = gate.exit_code()
    if code == EXIT_BLOCKED and rollback_on_fail:
        report.rolled_back = rollback(
            parsed.name, stage=parsed.alias, catalog=cat, actor=who,
            reason=f"monitoring evaluation {evaluation_id} failed: " + ", ".join(
                str(r.get("id")) for r in document.get("results", []) if classify(r) is Outcome.FAILURE),
        )
    report.summary = {
        "event": "governance.monitor", "model": subject.model, "stage": parsed.alias,
        "version": subject.version,
        "status": document.get("status"), "exit_code": code, "evaluation_id": evaluation_id,
        "policy": document.get("policy"), "data": str(data),
        "failed": [{"id": r.get("id"), "status": r.get("status"), "message": r.get("message")}
                   for r in document.get("results", []) if classify(r) in (Outcome.FAILURE, Outcome.ERROR)],
        "rolled_back": None if report.rolled_back is None else report.rolled_back.as_dict(),
    }
    if notify is not None and code != EXIT_OK:
        try:
            report.notified = {"url": notify, "status": post_json(notify, report.summary, timeout=timeout)}
        except (urllib.error.URLError, OSError, ValueError) as exc:
            report.notified = {"url": notify, "error": f"{type(exc).__name__}: {exc}"}
    return report
