"""The policy engine: run a pack's checks, apply assertions, severities and waivers; fail closed.

Per check:

* the check id in ``uses`` is unknown or its ``with`` is invalid -> ERROR;
* an input the check requires is missing -> NOT_RUN, unless the subject cannot have it by its nature
  (``CheckContext.inapplicable``: a predictions table has no registered model version; a model without
  probabilities has no scores) -> NOT_APPLICABLE, which neither passes nor blocks;
* the check raised -> ERROR (the message names the exception);
* the measurement says the evidence is insufficient (small groups) -> INSUFFICIENT_EVIDENCE;
* the assertion holds -> PASS, else FAIL (severity ``block``) or WARN (severity ``warn``);
* a FAIL, WARN or INSUFFICIENT_EVIDENCE covered by an active waiver -> WAIVED; an expired waiver does not
  apply and is reported with its expiry.

Overall status, the gate failing closed:

* FAIL when a blocking check is FAIL or INSUFFICIENT_EVIDENCE, or a failing check has only an expired
  waiver;
* else ERROR when a required check is ERROR or NOT_RUN (whatever its severity);
* else WARN when any check is WARN (or INSUFFICIENT_EVIDENCE on a warn check);
* else PASS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from governance.checks import CheckContext, CheckRegistry, Measurement
from governance.domain import Status, WaiverState, as_utc, iso, waiver_state
from governance.errors import GovernanceError
from governance.policy._schema import CheckSpec, PolicyPack

__all__ = [
    "CheckOutcome",
    "EvaluationResult",
    "Status",
    "WaiverInfo",
    "assert_measurement",
    "run_pack",
]


_WAIVABLE = {Status.FAIL, Status.WARN, Status.INSUFFICIENT_EVIDENCE}


@dataclass(frozen=True)
class WaiverInfo:
    """A waiver as the registry hands it to the engine (one check of one model)."""

    id: int | str
    check_id: str
    expires_at: datetime
    revoked_at: datetime | None = None
    approver: str | None = None
    reason: str | None = None
    ticket: str | None = None
    requester: str | None = None

    def state(self, now: datetime) -> WaiverState:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        return waiver_state(self.expires_at, self.revoked_at, now)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state(now).value,
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "approver": self.approver,
            "requester": self.requester,
            "reason": self.reason,
            "ticket": self.ticket,
        }


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


@dataclass
class CheckOutcome:
    """The result of one check of a pack."""

    id: str
    uses: str
    status: Status
    severity: str
    value: float | None = None
    assertion: dict[str, Any] | None = None
    measurement: Measurement | None = None
    message: str = ""
    maps_to: list[str] = field(default_factory=list)
    waiver: dict[str, Any] | None = None
    check_version: str | None = None
    required: bool = True

    @property
    def by_group(self) -> dict[str, dict[str, Any]]:
        if self.measurement is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for group, values in self.measurement.by_group.items():
            row: dict[str, Any] = {}
            if "n" not in values and group in self.measurement.group_sizes:
                row["n"] = self.measurement.group_sizes[group]
            row.update({k: (_finite(v) if isinstance(v, float) else v) for k, v in values.items()})
            out[group] = row
        for group, n in self.measurement.group_sizes.items():
            out.setdefault(group, {"n": n})
        return out

    @property
    def ci(self) -> list[float | None] | None:
        if self.measurement is None or self.measurement.ci is None:
            return None
        return [_finite(self.measurement.ci[0]), _finite(self.measurement.ci[1])]

    def to_dict(self) -> dict[str, Any]:
        """One entry of the JSON contract's ``results``."""
        return {
            "id": self.id,
            "uses": self.uses,
            "status": self.status.value,
            "severity": self.severity,
            "required": self.required,
            "value": _finite(self.value),
            "assert": self.assertion,
            "by_group": self.by_group,
            "message": self.message,
            "maps_to": list(self.maps_to),
            "waiver": self.waiver,
            "ci": self.ci,
        }


@dataclass
class EvaluationResult:
    """A pack evaluated against one subject; ``sources`` says what data it read (the context's
    sources: evidence ids, dataset versions, the predictions file's fingerprint)."""

    status: Status
    results: list[CheckOutcome]
    policy_name: str
    policy_version: str
    policy_digest: str
    subject: dict[str, Any] = field(default_factory=dict)
    evaluated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    approvals: dict[str, Any] | None = None
    sources: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status in (Status.PASS, Status.WARN)

    @property
    def exit_code(self) -> int:
        """0 passed (warnings included), 1 blocked by policy, 3 a check could not be evaluated."""
        return self.status.exit_code()

    def blocking(self) -> list[CheckOutcome]:
        """The results that make the gate fail (FAIL/ERROR), in pack order."""
        return [r for r in self.results if _blocks(r) is not None]

    def to_document(self) -> dict[str, Any]:
        """The stable JSON document of ``gov check --format json`` (DESIGN.md section 6)."""
        return {
            "policy": {
                "name": self.policy_name,
                "version": self.policy_version,
                "digest": self.policy_digest,
            },
            "subject": dict(self.subject),
            "status": self.status.value,
            "results": [r.to_dict() for r in self.results],
        }


def _blocks(r: CheckOutcome) -> Status | None:
    expired = (r.waiver is not None and WaiverState.parse(r.waiver.get("state")) is not WaiverState.ACTIVE
               and r.status in _WAIVABLE)
    if (r.severity == "block" and r.status in (Status.FAIL, Status.INSUFFICIENT_EVIDENCE)) or expired:
        return Status.FAIL
    if r.required and r.status in (Status.ERROR, Status.NOT_RUN):
        return Status.ERROR
    return None


def overall_status(results: Iterable[CheckOutcome]) -> Status:
    items = list(results)
    found = {_blocks(r) for r in items}
    if Status.FAIL in found:
        return Status.FAIL
    if Status.ERROR in found:
        return Status.ERROR
    if any(r.status in (Status.WARN, Status.INSUFFICIENT_EVIDENCE) for r in items):
        return Status.WARN
    return Status.PASS


def assert_measurement(spec: CheckSpec, measurement: Measurement) -> tuple[Status, str]:
    """Apply a pack entry's assertion and severity to a measurement (stored or fresh)."""
    if measurement.insufficient:
        return Status.INSUFFICIENT_EVIDENCE, f"insufficient evidence: {measurement.insufficient}"
    assertion = spec.assert_
    if assertion is None:
        return Status.PASS, measurement.message or "measured (no assertion)"
    if assertion.bound == "value":
        target = measurement.value
    elif measurement.ci is None:
        return Status.ERROR, (
            f"the assertion targets {assertion.bound} but the check computed no confidence "
            "interval; set bootstrap in `with`"
        )
    else:
        target = measurement.ci[0] if assertion.bound == "ci_low" else measurement.ci[1]
    if target is None or (isinstance(target, float) and math.isnan(target)):
        return Status.ERROR, measurement.message or "the check produced no value to assert on"
    shown = f"{target:.6g}" if isinstance(target, float) else str(target)
    if assertion.holds(float(target)):
        return Status.PASS, _with_note(f"{shown} {assertion.describe()}", measurement.message)
    status = Status.FAIL if spec.severity == "block" else Status.WARN
    return status, _with_note(f"{shown} is not {assertion.describe()}", measurement.message)


def _with_note(verdict: str, note: str | None) -> str:
    return f"{verdict}: {note}" if note else verdict


def _apply_waivers(outcome: CheckOutcome, waivers: list[WaiverInfo], now: datetime) -> None:
    mine = [w for w in waivers if w.check_id == outcome.id]
    if not mine or outcome.status not in _WAIVABLE:
        return
    active = [w for w in mine if w.state(now) is WaiverState.ACTIVE]
    if active:
        waiver = max(active, key=lambda w: as_utc(w.expires_at))
        outcome.waiver = waiver.to_dict(now)
        outcome.message = (
            f"waived ({waiver.id}, approved by {waiver.approver}, until {iso(waiver.expires_at)}): "
            f"{outcome.message}"
        )
        outcome.status = Status.WAIVED
        return
    expired = [w for w in mine if w.state(now) is WaiverState.EXPIRED]
    if expired:
        waiver = max(expired, key=lambda w: as_utc(w.expires_at))
        outcome.waiver = waiver.to_dict(now)
        outcome.message = f"{outcome.message}; waiver {waiver.id} expired at {iso(waiver.expires_at)}"


def _context(ctx_or_inputs: CheckContext | Mapping[str, Any]) -> CheckContext:
    if isinstance(ctx_or_inputs, CheckContext):
        return ctx_or_inputs
    return CheckContext(**dict(ctx_or_inputs))


def run_pack(
    pack: PolicyPack,
    ctx_or_inputs: CheckContext | Mapping[str, Any],
    *,
    registry: CheckRegistry | None = None,
    waivers: Iterable[WaiverInfo] = (),
    now: datetime | None = None,
    measurements: Mapping[str, Measurement] | None = None,
) -> EvaluationResult:
    """Evaluate ``pack`` on a context (or the keyword arguments of one).

    ``measurements`` (by pack check id) are re-asserted instead of computed: stored results can be
    re-checked against a pack without the data.
    """
    ctx = _context(ctx_or_inputs)
    reg = registry if registry is not None else CheckRegistry.from_entry_points()
    when = as_utc(now) if now is not None else datetime.now(UTC)
    waiver_list = list(waivers)
    available = ctx.available()
    stored = dict(measurements or {})
    outcomes: list[CheckOutcome] = []
    for spec in pack.checks:
        outcome = CheckOutcome(
            id=spec.id,
            uses=spec.uses,
            status=Status.ERROR,
            severity=spec.severity,
            assertion=spec.assert_.to_dict() if spec.assert_ else None,
            maps_to=list(spec.maps_to),
            required=spec.required,
        )
        outcomes.append(outcome)
        measurement = stored.get(spec.id)
        if measurement is None:
            if spec.uses not in reg:
                outcome.message = f"unknown check {spec.uses!r}; is the plugin that provides it installed?"
                continue
            check = reg.get(spec.uses)
            outcome.check_version = check.version
            try:
                params = check.parse_params(spec.with_)
            except ValidationError as exc:
                first = exc.errors()[0]
                outcome.message = (
                    f"invalid `with` for {spec.uses}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
                )
                continue
            missing = sorted(set(check.requires) - available)
            if missing:
                reasons = sorted({ctx.inapplicable[m] for m in missing if m in ctx.inapplicable})
                if all(m in ctx.inapplicable for m in missing):
                    outcome.status = Status.NOT_APPLICABLE
                    outcome.message = f"not applicable: {'; '.join(reasons)}"
                else:
                    outcome.status = Status.NOT_RUN
                    outcome.message = f"missing required input(s): {', '.join(missing)}"
                continue
            try:
                measurement = check.compute(ctx, params)
            except GovernanceError as exc:
                outcome.message = f"{type(exc).__name__}: {exc}"
                continue
            except Exception as exc:  # noqa: BLE001 - a plugin's failure is recorded as ERROR, never hidden
                outcome.message = f"check {spec.uses} raised {type(exc).__name__}: {exc}"
                continue
        outcome.measurement = measurement
        outcome.value = measurement.value
        outcome.status, outcome.message = assert_measurement(spec, measurement)
        _apply_waivers(outcome, waiver_list, when)
    return EvaluationResult(
        status=overall_status(outcomes),
        results=outcomes,
        policy_name=pack.name,
        policy_version=pack.version,
        policy_digest=pack.digest,
        subject=dict(ctx.subject),
        evaluated_at=when,
        approvals=pack.approvals.model_dump() if pack.approvals else None,
        sources=dict(ctx.sources),
    )
