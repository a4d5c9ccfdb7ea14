"""Tag propagation along column lineage (proxy features).

Each run's column lineage carries the tags of the columns it reads to the columns it writes:

* a column that keeps an input column's name (passed through unchanged, or carried with rows
  filtered or reordered, as in a train/test split), or that an adapter's plan links to an input column
  by IDENTITY, keeps the input's ``protected``, ``pii``, ``label`` and ``proxy:*`` tags;
* a column derived from input columns (declared with ``derived=`` on the step, or a plan's
  TRANSFORMATION, CONDITIONAL or WINDOW link) gets ``proxy:protected`` when any of its inputs is
  ``protected`` or ``proxy:protected`` (likewise ``proxy:pii``), so checks can flag proxy features.
"""

from __future__ import annotations

from governance.lineage._tags import PROXY_PREFIX

__all__ = ["PASSTHROUGH_TAGS", "PROXY_TAGS", "inherit", "propagates"]

#: tags a column passed through keeps
PASSTHROUGH_TAGS = ("protected", "pii", "label")
#: tags whose columns make the columns computed from them proxies (``proxy:protected``, ``proxy:pii``)
PROXY_TAGS = ("protected", "pii")


def propagates(kind: str, subtype: str | None) -> bool:
    """Whether a column lineage link of this transformation type and subtype carries tags (DIRECT links
    do; of INDIRECT ones, only a CONDITIONAL or WINDOW link: the value depends on the column)."""
    return kind == "DIRECT" or subtype in ("CONDITIONAL", "WINDOW")


def inherit(tags: list[str], source: list[str], identity: bool) -> None:
    """Add to ``tags`` (an output column's) what it takes from an input column tagged ``source``: the
    same column passed through (``identity``) keeps a protected attribute protected (and a proxy a
    proxy); a column computed from it is a proxy."""
    if identity:
        tags += [t for t in source if (t in PASSTHROUGH_TAGS or t.startswith(PROXY_PREFIX)) and t not in tags]
        return
    for t in PROXY_TAGS:
        proxy = PROXY_PREFIX + t
        if (t in source or proxy in source) and proxy not in tags:
            tags.append(proxy)
