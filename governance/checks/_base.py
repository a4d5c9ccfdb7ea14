"""The check plugin contract.

A check measures one property of a model version and returns a :class:`Measurement`.  It never
decides pass or fail: the policy engine (:mod:`governance.policy`) applies the pack's assertion and
severity to the measurement, so results can be stored and re-asserted later.

Writing a check::

    from governance.checks import Check, CheckContext, CheckParams, Measurement

    class MaxRows(CheckParams):
        limit: int = 1000

    class RowCount(Check):
        id = "acme.row_count"             # what a pack's ``uses:`` names
        version = "1"                     # bump when the computation changes
        Params = MaxRows                  # pydantic model; YAML keys may be camelCase
        requires = frozenset({"predictions"})

        def compute(self, ctx: CheckContext, params: MaxRows) -> Measurement:
            frame = ctx.require_predictions()
            return Measurement(value=float(len(frame)))

Register it through the entry-point group ``governance.checks``; the entry point names either a
:class:`Check` subclass, a check instance, or a callable returning an iterable of instances::

    [project.entry-points."governance.checks"]
    acme = "acme_checks:all_checks"

Inputs a check may require (``requires``), as :meth:`CheckContext.available` reports them:

* ``predictions``: labels and predicted labels (a predictions frame, or stored per-group confusion
  counts or metrics in the evidence; a regressor's evidence has metrics only);
* ``scores``: predicted scores/probabilities (a score column, or stored score-based metrics);
* ``features``: the evaluation feature frame;
* ``data``: the evaluation feature frame or its stored summaries (null rates, correlations);
* ``estimator``: the fitted model object;
* ``importance``: global feature importance (stored, or computable from estimator and features);
* ``baseline``: the training dataset version's column statistics (drift, schema);
* ``catalog``: a read-only catalog session (lineage, documentation, champion comparison);
* ``model_version``: the subject is a registered model version.

``ctx.evidence`` is the stored evidence document, typed (:class:`governance.domain.EvidenceDocument`:
``ctx.evidence.metrics.by_group``, ``ctx.evidence.importance.by_feature``, ``ctx.evidence.confusion``...);
keys it does not define are in ``ctx.evidence.extra``.

A check whose inputs are missing is not run (status NOT_RUN, which fails the gate), unless the subject
cannot have them by its nature (:attr:`CheckContext.inapplicable`: a predictions table has no registered
model version, catalog record, model object, importance or training baseline; a model without
probabilities has no scores): then the check is NOT_APPLICABLE, shown as such and not counted for or
against the gate.  A check that raises is an ERROR; a check
that cannot measure reliably (too few rows in a group) returns ``Measurement(insufficient="why")``.
Raise :class:`governance.errors.EvaluationError` with a one-line reason for a computation that fails.
"""

from __future__ import annotations

import abc
import importlib.metadata
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from governance.domain import EvidenceDocument
from governance.errors import ConfigError, EvaluationError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from sqlmodel import Session

__all__ = [
    "ENTRY_POINT_GROUP",
    "INPUTS",
    "Check",
    "CheckContext",
    "CheckParams",
    "CheckRegistry",
    "Measurement",
    "NoParams",
]

ENTRY_POINT_GROUP = "governance.checks"
INPUTS = frozenset(
    {
        "predictions",
        "scores",
        "features",
        "data",
        "estimator",
        "importance",
        "baseline",
        "catalog",
        "model_version",
    }
)


class CheckParams(BaseModel):
    """Base of every check's parameter schema: unknown keys are refused, YAML may use camelCase."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, allow_inf_nan=False
    )


class NoParams(CheckParams):
    """A check without parameters."""


GroupValues = dict[str, dict[str, float | int | None]]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Measurement:
    """What a check measured.

    ``value`` is the number the assertion is applied to (booleans as 1.0/0.0); ``by_group`` holds
    per-group (or per-feature) values and ``group_sizes`` the rows behind each group; ``ci`` is an
    optional (low, high) confidence interval of ``value``; ``evidence`` is anything else worth keeping
    (JSON-safe); ``insufficient`` is the reason the measurement cannot be trusted (status
    INSUFFICIENT_EVIDENCE).
    """

    value: float | None = None
    by_group: GroupValues = field(default_factory=dict)
    group_sizes: dict[str, int] = field(default_factory=dict)
    ci: tuple[float, float] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    insufficient: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (non-finite numbers become null)."""
        return {
            "value": _clean(self.value),
            "by_group": {g: {k: _clean(v) for k, v in vals.items()} for g, vals in self.by_group.items()},
            "group_sizes": dict(self.group_sizes),
            "ci": None if self.ci is None else [_clean(self.ci[0]), _clean(self.ci[1])],
            "evidence": self.evidence,
            "insufficient": self.insufficient,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        """Inverse of :meth:`to_dict` (stored measurements are re-asserted from this)."""
        ci = data.get("ci")
        return cls(
            value=None if data.get("value") is None else float(data["value"]),
            by_group={str(g): dict(v) for g, v in (data.get("by_group") or {}).items()},
            group_sizes={str(g): int(n) for g, n in (data.get("group_sizes") or {}).items()},
            ci=None if ci is None else (float(ci[0]), float(ci[1])),
            evidence=dict(data.get("evidence") or {}),
            insufficient=data.get("insufficient"),
            message=data.get("message"),
        )


SessionFactory = Callable[[], AbstractContextManager["Session"]]


@dataclass
class CheckContext:
    """Everything a check may read.

    ``model``: facts about the subject (``name``, ``version``, ``model_version_id``, ``model_id``,
    ``risk_tier``, ``card``, ``description``, ``features``, ``training_run_id``); empty in data-only
    mode.  ``evidence``: the stored evidence document (:class:`governance.domain.EvidenceDocument`; a
    mapping given here is read as one, its schema version checked).
    ``predictions``: a frame with the ``label``, ``prediction``, optional ``score`` and ``sensitive``
    columns.  ``features``: the evaluation feature frame (explainability, data quality, drift).
    ``catalog``: a factory of read-only sessions.  ``baseline``: the training baseline (column
    statistics of the training dataset versions, see :func:`governance.checks.training_baseline`),
    resolved when the context is built; drift and schema checks compare with it.
    """

    model: dict[str, Any] = field(default_factory=dict)
    evidence: EvidenceDocument = field(default_factory=EvidenceDocument)
    predictions: pd.DataFrame | None = None
    label: str | None = None
    prediction: str | None = None
    score: str | None = None
    sensitive: tuple[str, ...] = ()
    features: pd.DataFrame | None = None
    estimator: Any = None
    catalog: SessionFactory | None = None
    subject: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    #: inputs this subject cannot have, with the reason (checks needing only these are NOT_APPLICABLE)
    inapplicable: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.evidence, EvidenceDocument):
            self.evidence = EvidenceDocument.read(self.evidence)

    def available(self) -> frozenset[str]:
        """The input names this context can provide (see the module docstring)."""
        have: set[str] = set()
        ev = self.evidence
        framed = self.predictions is not None and self.label and self.prediction
        if framed or ev.confusion or ev.metrics:
            have.add("predictions")
        if (self.predictions is not None and self.score) or ev.score_metrics:
            have.add("scores")
        if self.features is not None:
            have.update(("features", "data"))
        if ev.data_quality or ev.proxy_correlations:
            have.add("data")
        if self.estimator is not None:
            have.add("estimator")
        if (ev.importance and ev.importance.by_feature) or (self.estimator is not None and self.features is not None):
            have.add("importance")
        if self.baseline or ev.baseline or (self.features is None and ev.drift):
            have.add("baseline")
        if self.catalog is not None:
            have.add("catalog")
        if self.model.get("model_version_id") is not None:
            have.add("model_version")
        return frozenset(have)

    def require_predictions(self) -> pd.DataFrame:
        """The predictions frame, or :class:`EvaluationError` when only stored evidence exists."""
        if self.predictions is None:
            raise EvaluationError("this check needs a predictions table (label and prediction columns)")
        return self.predictions

    def session(self) -> AbstractContextManager[Session]:
        """A read-only catalog session."""
        if self.catalog is None:
            raise EvaluationError("this check needs the catalog; pass a model version reference")
        return self.catalog()


class Check(abc.ABC):
    """Base class of checks; see the module docstring for the contract."""

    id: ClassVar[str]
    version: ClassVar[str] = "1"
    Params: ClassVar[type[CheckParams]] = NoParams
    requires: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def compute(self, ctx: CheckContext, params: Any) -> Measurement:
        """Measure; never apply thresholds here."""

    def parse_params(self, raw: Mapping[str, Any] | None) -> CheckParams:
        """Validate a pack's ``with`` block (pydantic ``ValidationError`` on bad input)."""
        return self.Params.model_validate(dict(raw or {}))

    def __repr__(self) -> str:
        return f"<check {self.id} v{self.version}>"


def _as_checks(obj: Any, source: str) -> list[Check]:
    if isinstance(obj, type) and issubclass(obj, Check):
        return [obj()]
    if isinstance(obj, Check):
        return [obj]
    if callable(obj):
        produced = obj()
        items = produced if isinstance(produced, Iterable) else [produced]
        out: list[Check] = []
        for item in items:
            out.extend(_as_checks(item, source) if isinstance(item, type) else [item])
        for item in out:
            if not isinstance(item, Check):
                raise ConfigError(f"entry point {source}: {item!r} is not a governance.checks.Check")
        return out
    raise ConfigError(f"entry point {source}: expected a Check subclass, instance or factory, got {obj!r}")


class CheckRegistry:
    """Checks by id.  An object, not a global: build one per evaluation or test."""

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        for check in checks:
            self.register(check)

    @classmethod
    def from_entry_points(
        cls, group: str = ENTRY_POINT_GROUP, *, disabled: Iterable[str] = ()
    ) -> CheckRegistry:
        """Every check registered under the entry-point ``group`` (built-ins included)."""
        registry = cls()
        skip = set(disabled)
        for ep in sorted(
            importlib.metadata.entry_points(group=group), key=lambda e: (e.name != "builtin", e.name)
        ):
            if ep.name in skip:
                continue
            source = f"{ep.name} = {ep.value}"
            try:
                loaded = ep.load()
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"check plugin {source!r} in group {group} cannot be loaded: {exc}"
                ) from exc
            for check in _as_checks(loaded, source):
                registry.register(check)
        return registry

    def register(self, check: Check) -> Check:
        """Add a check; a different check under an existing id is refused."""
        check_id = getattr(check, "id", None)
        if not isinstance(check_id, str) or not check_id:
            raise ConfigError(f"{check!r} has no id")
        unknown = set(check.requires) - INPUTS
        if unknown:
            raise ConfigError(
                f"check {check_id}: unknown required inputs {sorted(unknown)}; "
                f"known: {', '.join(sorted(INPUTS))}"
            )
        existing = self._checks.get(check_id)
        if existing is not None and type(existing) is not type(check):
            raise ConfigError(
                f"check id {check_id!r} is registered twice ({type(existing).__module__}."
                f"{type(existing).__name__} and {type(check).__module__}.{type(check).__name__})"
            )
        self._checks[check_id] = check
        return check

    def get(self, check_id: str) -> Check:
        try:
            return self._checks[check_id]
        except KeyError:
            raise NotFoundError(
                f"unknown check {check_id!r}; known checks: {', '.join(sorted(self._checks))}"
            ) from None

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(self._checks.values())

    def __len__(self) -> int:
        return len(self._checks)

    def ids(self) -> list[str]:
        return sorted(self._checks)
