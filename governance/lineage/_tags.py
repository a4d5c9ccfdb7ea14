"""Column tags: ``protected``, ``pii``, ``label``, ``prediction``, ``feature``.

``governance.tag(df, protected=["sex"], label="y")`` attaches tags to the frame without copying it
(in ``df.attrs["governance_tags"]`` as ``{column: [tag, ...]}``; pandas carries ``attrs`` along to
frames derived with most operations).  A step's ``tags=`` argument adds tags by column name to every
table it captures.

How tags travel along column lineage (proxy features): :mod:`governance.lineage._propagation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from governance.errors import InputError

__all__ = ["ATTRS_KEY", "PROXY_PREFIX", "TAGS", "frame_tags", "merge_tag_maps", "normalise_tag_spec", "tag"]

TAGS = ("protected", "pii", "label", "prediction", "feature")
ATTRS_KEY = "governance_tags"
PROXY_PREFIX = "proxy:"

T = TypeVar("T")


def _columns(value: str | Iterable[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise InputError(f"{what}: expected a column name or a list of names, got {value!r}") from None
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"{what}: column names must be strings, got {item!r}")
    return items


def normalise_tag_spec(spec: Mapping[str, str | Iterable[str]] | None, what: str = "tags") -> dict[str, list[str]]:
    """``{"protected": ["sex"], "label": "y"}`` -> ``{"sex": ["protected"], "y": ["label"]}`` (validated)."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise InputError(
            f"{what}: expected a mapping of tag -> column names, e.g. "
            f"{{'protected': ['sex']}}, got {type(spec).__name__}"
        )
    out: dict[str, list[str]] = {}
    for name, cols in spec.items():
        if name not in TAGS:
            raise InputError(f"{what}: unknown tag {name!r}; expected one of {', '.join(TAGS)}")
        for column in _columns(cols, f"{what}[{name!r}]"):
            bucket = out.setdefault(column, [])
            if name not in bucket:
                bucket.append(name)
    return out


def merge_tag_maps(*maps: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for mapping in maps:
        for column, names in mapping.items():
            bucket = out.setdefault(column, [])
            bucket.extend(n for n in names if n not in bucket)
    return out


def tag(
    df: T,
    *,
    protected: str | Iterable[str] | None = None,
    pii: str | Iterable[str] | None = None,
    label: str | Iterable[str] | None = None,
    prediction: str | Iterable[str] | None = None,
    feature: str | Iterable[str] | None = None,
) -> T:
    """Tag columns of a pandas DataFrame in place (no copy) and return the same frame.

    Raises :class:`~governance.errors.InputError` when a named column is not in the frame.
    """
    attrs = getattr(df, "attrs", None)
    columns = getattr(df, "columns", None)
    if not isinstance(attrs, dict) or columns is None:
        raise InputError(f"tag: expected a pandas DataFrame, got {type(df).__name__}")
    spec = {"protected": protected, "pii": pii, "label": label, "prediction": prediction, "feature": feature}
    new = normalise_tag_spec({k: v for k, v in spec.items() if v is not None}, "tag")
    known = {str(c) for c in columns}
    missing = sorted(c for c in new if c not in known)
    if missing:
        raise InputError(f"tag: column {missing[0]!r} is not in the frame; columns: {', '.join(sorted(known))}")
    attrs[ATTRS_KEY] = merge_tag_maps(attrs.get(ATTRS_KEY) or {}, new)
    return df


def frame_tags(obj: Any) -> dict[str, list[str]]:
    """Tags attached with :func:`tag` (empty when none)."""
    attrs = getattr(obj, "attrs", None)
    if not isinstance(attrs, dict):
        return {}
    found = attrs.get(ATTRS_KEY)
    return dict(found) if isinstance(found, dict) else {}
