"""The policy pack schema (``apiVersion: governance/v1``, ``kind: PolicyPack``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = ["AppliesTo", "Approvals", "Assertion", "CheckSpec", "Metadata", "PolicyPack"]

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$")
COMPARATORS = ("gte", "lte", "gt", "lt", "eq", "between")


class _Strict(BaseModel):
    # a threshold of .nan or .inf would make every comparison false (or true): refused as bad input
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)


class Metadata(_Strict):
    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    description: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class AppliesTo(_Strict):
    risk_tier: list[str] = Field(default_factory=list, alias="riskTier")


class Approvals(_Strict):
    required: int = Field(default=0, ge=0)
    roles: list[str] = Field(default_factory=list)


class Assertion(_Strict):
    """Exactly one comparator; ``bound`` picks the measured value or an end of its confidence interval."""

    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None
    eq: float | bool | str | None = None
    between: tuple[float, float] | None = None
    bound: Literal["value", "ci_low", "ci_high"] = "value"

    @model_validator(mode="after")
    def _one_comparator(self) -> Assertion:
        given = [c for c in COMPARATORS if getattr(self, c) is not None]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise ValueError(f"needs exactly one of {', '.join(COMPARATORS)}; got {got}")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between: low {self.between[0]} is above high {self.between[1]}")
        return self

    @property
    def comparator(self) -> str:
        return next(c for c in COMPARATORS if getattr(self, c) is not None)

    def to_dict(self) -> dict[str, Any]:
        """The assertion as written in the pack (bound only when not the default)."""
        comp = self.comparator
        target = getattr(self, comp)
        out: dict[str, Any] = {comp: list(target) if comp == "between" else target}
        if self.bound != "value":
            out["bound"] = self.bound
        return out

    def holds(self, value: float) -> bool:
        comp = self.comparator
        if comp == "gte":
            return value >= float(self.gte)  # type: ignore[arg-type]
        if comp == "lte":
            return value <= float(self.lte)  # type: ignore[arg-type]
        if comp == "gt":
            return value > float(self.gt)  # type: ignore[arg-type]
        if comp == "lt":
            return value < float(self.lt)  # type: ignore[arg-type]
        if comp == "between":
            low, high = self.between  # type: ignore[misc]
            return low <= value <= high
        target = self.eq
        if isinstance(target, bool):
            return bool(value) is target
        if isinstance(target, str):
            return str(value) == target
        return value == float(target)  # type: ignore[arg-type]

    def describe(self) -> str:
        comp = self.comparator
        symbol = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<", "eq": "=="}.get(comp)
        where = "" if self.bound == "value" else f" ({self.bound})"
        if comp == "between":
            low, high = self.between  # type: ignore[misc]
            return f"between {low} and {high}{where}"
        target = getattr(self, comp)
        shown = str(target).lower() if isinstance(target, bool) else target
        return f"{symbol} {shown}{where}"


class CheckSpec(_Strict):
    id: str
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    assert_: Assertion | None = Field(default=None, alias="assert")
    severity: Literal["block", "warn"] = "block"
    maps_to: list[str] = Field(default_factory=list)
    required: bool = True
    description: str = ""

    @field_validator("id", "uses")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                f"expected a dotted identifier such as fairness.demographic_parity_ratio, got {value!r}"
            )
        return value

    @field_validator("with_", mode="before")
    @classmethod
    def _null_with(cls, value: Any) -> Any:
        return {} if value is None else value


class PolicyPack(_Strict):
    api_version: Literal["governance/v1"] = Field(alias="apiVersion")
    kind: Literal["PolicyPack"]
    metadata: Metadata
    applies_to: AppliesTo = Field(default_factory=AppliesTo, alias="appliesTo")
    approvals: Approvals | None = None
    signatures: Literal["required", "optional"] = "required"
    checks: list[CheckSpec] = Field(min_length=1)

    _digest: str = PrivateAttr(default="")
    _source: str = PrivateAttr(default="<memory>")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the pack's content (comments and layout excluded)."""
        return self._digest

    @property
    def source(self) -> str:
        return self._source

    def check(self, check_id: str) -> CheckSpec:
        for spec in self.checks:
            if spec.id == check_id:
                return spec
        raise KeyError(check_id)
