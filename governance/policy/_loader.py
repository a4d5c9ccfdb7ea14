"""Load and validate policy packs: errors name the file, the line and the field, and say what is expected.

YAML is read with the safe loader only (no ``!!python`` tags, no templates); a compose pass keeps the
node tree so that a pydantic error location can be mapped back to a line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from governance._resources import resource_dir
from governance.checks import CheckRegistry
from governance.errors import InputError, NotFoundError
from governance.policy._schema import PolicyPack

__all__ = ["list_packs", "load_pack", "pack_digest", "parse_pack"]

Loc = tuple[str | int, ...]


def pack_digest(data: Any) -> str:
    """``sha256:`` + hex digest of the canonical JSON of the parsed YAML."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _line_index(node: yaml.Node | None, prefix: Loc = ()) -> dict[Loc, int]:
    """Map every path in the document (keys and list indices) to its 1-based line."""
    out: dict[Loc, int] = {}
    if node is None:
        return out
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*prefix, key)] = key_node.start_mark.line + 1
            sub = _line_index(value_node, (*prefix, key))
            sub.pop((*prefix, key), None)
            out.update(sub)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_line_index(item, (*prefix, i)))
    return out


def _line_for(lines: dict[Loc, int], loc: Sequence[str | int]) -> int | None:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _field(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _where(source: str, line: int | None) -> str:
    return f"{source} line {line}" if line else source


def _pydantic_message(err: Any) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "too_short" and "List" in msg:
        return "must not be empty"
    got = err.get("input")
    if kind == "literal_error":
        return msg.replace("Input should be", "expected") + f"; got {got!r}"
    shown = "" if isinstance(got, dict | list) else f"; got {got!r}"
    return msg.removeprefix("Value error, ").replace("Input should be", "expected") + shown


_YAML_TAG = "tag:yaml.org,2002:"


def _tagged(node: yaml.Node | None, prefix: Loc = ()) -> tuple[Loc, yaml.Node] | None:
    """The first node (depth first) with an explicit tag the safe loader refuses, and its path."""
    if node is None:
        return None
    tag = str(node.tag or "")
    if "python" in tag or not (tag.startswith(_YAML_TAG) or not tag.startswith("!")):
        return prefix, node
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            found = _tagged(key_node, prefix) or _tagged(value_node, (*prefix, key_node.value))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _tagged(item, (*prefix, i))
            if found:
                return found
    return None


def _duplicate_key(node: yaml.Node | None, prefix: Loc = ()) -> tuple[Loc, str, int, int] | None:
    """The first key written twice in one mapping (depth first): its path, the key, and both lines.

    YAML loaders keep the last of two equal keys, so a pack that shows ``severity: block`` and later
    ``severity: warn`` would silently mean the second: a duplicate is refused instead.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key != "<<" and key in seen:
                return prefix, key, seen[key], line
            seen.setdefault(key, line)
            found = _duplicate_key(value_node, (*prefix, key))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, (*prefix, i))
            if found:
                return found
    return None


def _shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


MAX_PACK_BYTES = 1024 * 1024
"""A policy pack larger than this (1 MiB) is refused unread; the shipped packs are about 5 KiB."""
MAX_PACK_NODES = 20_000
"""A pack whose YAML expands (aliases followed) to more nodes than this is refused: it is either a
mistake or an alias bomb ("billion laughs") meant to stall a CI gate."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded, memoised per node (linear in the source)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes) for item in node.value)
    sizes[id(node)] = min(size, MAX_PACK_NODES + 1)
    return sizes[id(node)]


def _load_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise InputError(_syntax_message(source, exc, text)) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: YAML error: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise InputError(f"{source}: YAML nested too deeply; policy packs are a few levels deep") from exc
    if node is not None and _expanded_size(node, {}) > MAX_PACK_NODES:
        raise InputError(f"{source}: the pack expands to more than {MAX_PACK_NODES} YAML nodes once its "
                         "aliases (*name) are followed; write the values out or simplify the pack")
    duplicate = _duplicate_key(node)
    if duplicate is not None:
        loc, key, first, again = duplicate
        raise InputError(
            f"{_where(source, again)}: {_field((*loc, key))}: duplicate key {key!r} (first at line {first}); "
            "YAML would keep only the last one, so write each key once"
        )
    lines = _line_index(node)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.constructor.ConstructorError as exc:
        found = _tagged(node)
        if found is not None:
            loc, tagged = found
            tag = _shown_tag(str(tagged.tag))
            raise InputError(
                f"{_where(source, tagged.start_mark.line + 1)}: {_field(loc)}: the tag {tag} is not allowed; "
                "policy packs are plain YAML (safe loader only: no !!python tags)"
            ) from exc
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"{_where(source, line)}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: YAML error: {str(exc).splitlines()[0]}") from exc
    return data, lines


_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?:(?P<key>[A-Za-z_][\w.\-]*)\s*:(?:\s|$))?")


def _field_at_line(text: str, line: int) -> str:
    """The field a line of (possibly broken) YAML belongs to, from indentation alone: used when the
    document does not parse, so there is no node tree to ask."""
    stack: list[tuple[int, str | int]] = []
    counters: dict[tuple[str | int, ...], int] = {}
    for raw in text.splitlines()[:line]:
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _KEY_LINE.match(raw)
        if m is None:  # pragma: no cover - the pattern matches any line
            continue
        indent = len(m.group("indent"))
        if m.group("dash"):
            while stack and (stack[-1][0] > indent or (stack[-1][0] == indent and isinstance(stack[-1][1], int))):
                stack.pop()
            parent = tuple(part for _, part in stack)
            counters[parent] = counters.get(parent, -1) + 1
            stack.append((indent, counters[parent]))
            indent += len(m.group("dash"))
        elif m.group("key"):
            while stack and stack[-1][0] >= indent:
                stack.pop()
        if m.group("key"):
            stack.append((indent, m.group("key")))
    return _field([part for _, part in stack])


def _syntax_message(source: str, exc: yaml.MarkedYAMLError, text: str) -> str:
    """``FILE line N, column C: FIELD: YAML syntax error: <problem> (<context> at line M)``: the line
    where the problem was found, the field being written, and where the broken construct started."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    where = f"{_where(source, line)}, column {mark.column + 1}" if mark else source
    problem = str(exc.problem or "invalid YAML")
    context = exc.context_mark
    if exc.context and context is not None and context is not mark:
        problem += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
    start = context if context is not None else mark
    field = _field_at_line(text, start.line + 1) if start is not None else "(document)"
    return f"{where}: {field}: YAML syntax error: {problem}"


def parse_pack(text: str, source: str = "<string>", *, registry: CheckRegistry | None = None) -> PolicyPack:
    """Validate a pack's text; ``registry`` (default: the entry points) checks ``uses`` and ``with``."""
    data, lines = _load_yaml(text, source)
    if data is None or (isinstance(data, dict) and not data):
        raise InputError(
            f"{_where(source, 1)}: (document): the policy pack is empty; expected apiVersion, kind, "
            "metadata and checks"
        )
    if not isinstance(data, dict):
        raise InputError(
            f"{_where(source, 1)}: expected a mapping with apiVersion, kind, metadata and checks, "
            f"got a {type(data).__name__}"
        )
    checks = data.get("checks")
    if "checks" in data and (checks is None or checks == []):
        raise InputError(
            f"{_where(source, lines.get(('checks',)))}: checks: the pack has no checks; "
            "expected a list with at least one check"
        )
    try:
        pack = PolicyPack.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        raise InputError(
            f"{_where(source, _line_for(lines, loc))}: {_field(loc)}: {_pydantic_message(first)}"
        ) from exc
    seen: dict[str, int] = {}
    reg = registry if registry is not None else CheckRegistry.from_entry_points()
    for i, spec in enumerate(pack.checks):
        line_id = lines.get(("checks", i, "id"))
        if spec.id in seen:
            raise InputError(
                f"{_where(source, line_id)}: checks[{i}].id: duplicate check id {spec.id!r} "
                f"(first at checks[{seen[spec.id]}]); ids must be unique"
            )
        seen[spec.id] = i
        if spec.uses not in reg:
            close = difflib.get_close_matches(spec.uses, reg.ids(), n=1, cutoff=0.85)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(
                f"{_where(source, lines.get(('checks', i, 'uses')))}: checks[{i}].uses: unknown check "
                f"{spec.uses!r}; {hint}known checks: {', '.join(reg.ids())}"
            )
        try:
            reg.get(spec.uses).parse_params(spec.with_)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ("checks", i, "with", *err["loc"])
            what = "unknown parameter" if err["type"] == "extra_forbidden" else _pydantic_message(err)
            params = reg.get(spec.uses).Params
            known = ", ".join(f.alias or n for n, f in params.model_fields.items()) or "none"
            raise InputError(
                f"{_where(source, _line_for(lines, loc))}: {_field(loc)}: {what} for {spec.uses} "
                f"(parameters: {known})"
            ) from exc
    for i, spec in enumerate(pack.checks):
        if spec.severity == "block" and spec.assert_ is None:
            raise InputError(
                f"{_where(source, lines.get(('checks', i, 'id')))}: checks[{i}]: {spec.id} has severity block "
                "but no `assert`; a blocking check without an assertion would pass whatever it measures "
                "(add an assert, or set severity: warn)"
            )
    pack._digest = pack_digest(data)
    pack._source = source
    return pack


def list_packs() -> list[str]:
    """Names of the packs shipped with the library."""
    folder = resource_dir("policies")
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_pack(name_or_path: str | Path, *, registry: CheckRegistry | None = None) -> PolicyPack:
    """A pack from a file path, or a shipped pack by name (``baseline``, ``high-risk``)."""
    path = Path(name_or_path)
    if not path.is_file():
        text = str(name_or_path)
        shipped = resource_dir("policies") / f"{text.removesuffix('.yaml').removesuffix('.yml')}.yaml"
        if shipped.is_file() and "/" not in text:
            path = shipped
        else:
            names = ", ".join(list_packs()) or "none"
            raise NotFoundError(
                f"policy pack {text!r}: no such file and no shipped pack of that name "
                f"(shipped packs: {names})"
            )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PACK_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the policy pack: {exc.strerror or exc}") from exc
    if len(raw) > MAX_PACK_BYTES:
        raise InputError(f"{path}: larger than {MAX_PACK_BYTES // 1024} KiB; is this a policy pack?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); expected a YAML policy pack") from exc
    return parse_pack(text, str(path), registry=registry)
