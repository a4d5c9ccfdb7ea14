"""``@governance.step``: record every call of a pipeline function as a run.

    @gov.step(kind="training", model="credit-scorer", tags={"protected": ["sex"], "label": "y"})
    def train(features: pd.DataFrame, labels: pd.Series, C: float = 1.0) -> LogisticRegression: ...

The decorator validates its arguments when applied (an :class:`~governance.errors.InputError` at
import time) and stores a frozen :class:`StepSpec` on the wrapper as ``__governance_step__``; it does
catalog I/O only when the function is called.  The current run lives in a ``ContextVar``: nested
steps record their parent run; threads and asyncio tasks each keep their own.

Per call: inputs are captured before the function runs (so in-place mutation cannot change what is
recorded as consumed), outputs after; the run is written when the function returns or raises.  A
raising function records a FAILED run and the original exception propagates unchanged.  Capture
never fails or changes the user's call: problems are logged and the run is spooled (see
:mod:`governance.lineage._runtime`).  ``GOVERNANCE_DISABLED=1`` reduces the wrapper to one
environment lookup.
"""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast, overload

from governance.audit import resolve_actor
from governance.catalog import utcnow
from governance.config import Settings
from governance.errors import InputError
from governance.lineage._adapters import CaptureRole, DatasetCapture, ModelCapture, capture_adapter, json_safe
from governance.lineage._record import ID_CACHE, RunFrame, RunRecord
from governance.lineage._runtime import Runtime, runtime
from governance.lineage._settings import env_disabled
from governance.lineage._tags import normalise_tag_spec
from governance.lineage._uuid7 import uuid7

__all__ = ["KINDS", "StepSpec", "current_run", "step"]

KINDS = ("feature", "training", "evaluation", "inference", "other")
_TRANSFORMATIONS = {"direct": "DIRECT", "indirect": "INDIRECT"}
_MAX_ERROR = 4000
_MAX_TRACEBACK = 20000

F = TypeVar("F", bound=Callable[..., Any])

_CURRENT: ContextVar[RunFrame | None] = ContextVar("governance_current_run", default=None)


def current_run() -> RunFrame | None:
    """The run of the innermost step executing in this context (None outside any step)."""
    return _CURRENT.get()


@dataclass(frozen=True)
class StepSpec:
    """What ``@step(...)`` was given, validated and frozen."""

    kind: str
    name: str | None
    model: str | None
    tags: Mapping[str, list[str]] = field(default_factory=dict)  # column -> tags
    derived: tuple[tuple[str, str, str], ...] = ()  # (output column, input column, DIRECT|INDIRECT)
    capture_stats: bool = True


def _validate_derived(derived: object) -> tuple[tuple[str, str, str], ...]:
    if derived is None:
        return ()
    if not isinstance(derived, Mapping):
        raise InputError(
            "step(derived=...): expected a mapping of output column -> input columns, "
            f"e.g. {{'ratio': ['income', 'debt']}}, got {type(derived).__name__}"
        )
    out: list[tuple[str, str, str]] = []
    for target, sources in derived.items():
        if not isinstance(target, str):
            raise InputError(f"step(derived=...): output column names must be strings, got {target!r}")
        groups: dict[str, object]
        if isinstance(sources, Mapping):
            unknown = set(sources) - set(_TRANSFORMATIONS)
            if unknown:
                raise InputError(
                    f"step(derived={{{target!r}: ...}}): unknown key {sorted(unknown)[0]!r}; "
                    "expected 'direct' and/or 'indirect'"
                )
            groups = dict(sources)
        else:
            groups = {"direct": sources}
        for key, cols in groups.items():
            items = [cols] if isinstance(cols, str) else cols
            if not isinstance(items, list | tuple) or not items or not all(isinstance(c, str) for c in items):
                raise InputError(
                    f"step(derived={{{target!r}: ...}}): expected a non-empty list of input column names, got {cols!r}"
                )
            out.extend((target, c, _TRANSFORMATIONS[key]) for c in items)
    return tuple(out)


def _make_spec(
    *, kind: object, name: object, model: object, tags: object, derived: object, capture_stats: object
) -> StepSpec:
    if kind not in KINDS:
        raise InputError(f"step(kind=...): expected one of {', '.join(KINDS)}, got {kind!r}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InputError(f"step(name=...): expected a non-empty string, got {name!r}")
    if model is not None and (not isinstance(model, str) or not model.strip() or "@" in model):
        raise InputError(f"step(model=...): expected a model name (non-empty, no '@'), got {model!r}")
    if not isinstance(capture_stats, bool):
        raise InputError(f"step(capture_stats=...): expected True or False, got {capture_stats!r}")
    return StepSpec(
        kind=str(kind),
        name=name,
        model=model,
        tags=normalise_tag_spec(tags, "step(tags=...)"),  # type: ignore[arg-type]
        derived=_validate_derived(derived),
        capture_stats=capture_stats,
    )


@overload
def step(func: F, /) -> F: ...
@overload
def step(
    *,
    kind: str = "other",
    name: str | None = None,
    model: str | None = None,
    tags: Mapping[str, str | list[str]] | None = None,
    derived: Mapping[str, Any] | None = None,
    capture_stats: bool = True,
) -> Callable[[F], F]: ...


def step(
    func: Any = None,
    /,
    *,
    kind: str = "other",
    name: str | None = None,
    model: str | None = None,
    tags: Mapping[str, str | list[str]] | None = None,
    derived: Mapping[str, Any] | None = None,
    capture_stats: bool = True,
) -> Any:
    """Record each call of the decorated function as a run (see the module docstring).

    ``kind``: feature | training | evaluation | inference | other.  ``name``: the job name (default
    ``module.qualname``).  ``model``: the model name under which returned estimators are versioned.
    ``tags``: ``{"protected": ["sex"], "label": "y"}`` applied by column name to captured tables.
    ``derived``: ``{"out_col": ["in_col", ...]}`` (DIRECT) or ``{"out_col": {"direct": [...],
    "indirect": [...]}}`` declares column lineage.  ``capture_stats``: compute column statistics.
    """
    spec = _make_spec(kind=kind, name=name, model=model, tags=tags, derived=derived, capture_stats=capture_stats)
    if func is not None:
        return _decorate(func, spec)
    return lambda f: _decorate(f, spec)


def _module_path(func: Any) -> str:
    """The dotted module path of ``func``; for a function of a script run as ``__main__``, the module
    path Python would give that file when imported (``python -m pkg.mod`` -> ``pkg.mod``;
    ``python examples/credit/pipeline.py`` -> ``credit.pipeline`` when ``examples/credit`` is a package,
    else ``pipeline``), so job names do not depend on how the pipeline was started."""
    module = getattr(func, "__module__", None) or "main"
    if module != "__main__":
        return str(module)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name.removesuffix(".__main__")
    file = getattr(getattr(func, "__code__", None), "co_filename", None) or getattr(main, "__file__", None)
    if not file or file.startswith("<"):
        return "main"
    path = Path(file).resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def _unbound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """A call's arguments named by position (``args.0``...) and keyword, when no signature binds them."""
    return [(f"args.{i}", v) for i, v in enumerate(args)] + list(kwargs.items())


def _decorate(func: Any, spec: StepSpec) -> Any:
    if not callable(func):
        raise InputError(f"step: expected a function to decorate, got {type(func).__name__} {func!r:.80}")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise InputError(
            f"step: {getattr(func, '__qualname__', func)!r} is a generator function; "
            "decorate a function that returns its result instead"
        )
    job = spec.name or f"{_module_path(func)}.{getattr(func, '__qualname__', repr(func))}"
    try:
        signature: inspect.Signature | None = inspect.signature(func)
    except (TypeError, ValueError):
        signature = None
    caller = _Caller(func, spec, job, signature)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if env_disabled():
                return await func(*args, **kwargs)
            call = caller.begin(args, kwargs)
            if call is None:
                return await func(*args, **kwargs)
            token = _CURRENT.set(call.frame)
            result: Any = None
            error: BaseException | None = None
            try:
                result = await func(*args, **kwargs)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                _CURRENT.reset(token)
                caller.finish(call, result, error)
                del error

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            if env_disabled():
                return func(*args, **kwargs)
            call = caller.begin(args, kwargs)
            if call is None:
                return func(*args, **kwargs)
            token = _CURRENT.set(call.frame)
            result: Any = None
            error: BaseException | None = None
            try:
                result = func(*args, **kwargs)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                _CURRENT.reset(token)
                caller.finish(call, result, error)
                del error

        wrapper = sync_wrapper
    wrapper.__governance_step__ = spec
    wrapper.__governance_job__ = job
    return cast(Any, wrapper)


@dataclass
class _Call:
    settings: Settings
    frame: RunFrame
    params: dict[str, Any]
    datasets: list[DatasetCapture]
    models: list[ModelCapture]


class _Caller:
    """Per-decorated-function state: the spec, job name and signature (immutable after decoration)."""

    def __init__(self, func: Any, spec: StepSpec, job: str, signature: inspect.Signature | None) -> None:
        self.func = func
        self.spec = spec
        self.job = job
        self.signature = signature
        self._skip_first = bool(signature and next(iter(signature.parameters), None) in ("self", "cls"))

    def _role(
        self, rt: Runtime, settings: Settings, name: str, direction: str, inputs: tuple[DatasetCapture, ...] = ()
    ) -> CaptureRole:
        return CaptureRole(
            job=self.job,
            name=name,
            direction=direction,
            namespace=settings.namespace,
            model=self.spec.model,
            tags=self.spec.tags,
            capture_stats=self.spec.capture_stats,
            home=settings.home,
            inputs=inputs,
        )

    def _capture(
        self,
        rt: Runtime,
        settings: Settings,
        call: _Call,
        name: str,
        value: Any,
        *,
        direction: str,
        params: dict[str, Any] | None,
    ) -> None:
        try:
            inputs = tuple(d for d in call.datasets if d.direction == "input") if direction == "output" else ()
            captured = capture_adapter(value, self._role(rt, settings, name, direction, inputs))
        except Exception as exc:  # noqa: BLE001 - a failing adapter must not fail the step; logged
            rt.capture_failed(f"{self.job} {direction} {name!r}", exc)
            captured = None
        if isinstance(captured, DatasetCapture):
            if (
                direction == "input"
                and captured.stats_pending
                and captured.content_hash
                and not ID_CACHE.knows_content(
                    captured.content_hash, captured.hash_algo or "", rt.target(), settings.catalog_url
                )
            ):
                # probably a new version: describe the input now, before the step can change it in place
                # (statistics of known content are never needed, so they stay lazy)
                captured.ensure_stats()
            call.datasets.append(captured)
        elif isinstance(captured, ModelCapture):
            call.models.append(captured)
        elif params is not None:
            params[name] = json_safe(value)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        if self.signature is None:
            return _unbound(args, kwargs)
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        out: list[tuple[str, Any]] = []
        for index, (name, value) in enumerate(bound.arguments.items()):
            if index == 0 and self._skip_first:
                continue
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                out.extend((f"{name}.{i}", v) for i, v in enumerate(value))
            elif kind is inspect.Parameter.VAR_KEYWORD:
                out.extend(value.items())
            else:
                out.append((name, value))
        return out

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call | None:
        rt = runtime()
        try:
            settings = rt.settings.get()
            if settings.disabled:
                return None
            parent = _CURRENT.get()
            code = rt.code.for_function(self.func)
            frame = RunFrame(uuid7(), self.job, settings.namespace, self.spec.kind, utcnow(), code.source_file, parent)
            call = _Call(settings, frame, {}, [], [])
            try:
                arguments = self._arguments(args, kwargs)
            except TypeError as exc:
                # the call does not match the signature (the function raises its own error): the run is
                # still recorded, its arguments by position and keyword, and the reason logged
                rt.capture_failed(f"{self.job} arguments do not match its signature, recorded by position", exc)
                arguments = _unbound(args, kwargs)
            for name, value in arguments:
                self._capture(rt, settings, call, name, value, direction="input", params=call.params)
        except Exception as exc:  # noqa: BLE001 - capture must never fail the step; logged
            rt.capture_failed(f"{self.job} start", exc)
            return None
        return call

    def finish(self, call: _Call, result: Any, error: BaseException | None) -> None:
        rt = runtime()
        try:
            ended = utcnow()
            settings = call.settings
            if error is None and result is not None:
                if isinstance(result, tuple):
                    for i, item in enumerate(result):
                        self._capture(rt, settings, call, f"output.{i}", item, direction="output", params=None)
                elif isinstance(result, dict) and all(isinstance(k, str) for k in result):
                    for key, item in result.items():
                        self._capture(rt, settings, call, f"output.{key}", item, direction="output", params=None)
                else:
                    self._capture(rt, settings, call, "output", result, direction="output", params=None)
            code = rt.code.for_function(self.func)
            status, error_type, message, trace = "COMPLETED", None, None, None
            if error is not None:
                status = "FAILED" if isinstance(error, Exception) else "ABORTED"
                klass = type(error)
                error_type = (
                    klass.__qualname__ if klass.__module__ == "builtins" else f"{klass.__module__}.{klass.__qualname__}"
                )
                message = str(error)[:_MAX_ERROR]
                trace = "".join(traceback.format_exception(error))[-_MAX_TRACEBACK:]
            frame = call.frame
            record = RunRecord(
                run_uuid=frame.run_uuid,
                job=self.job,
                namespace=frame.namespace,
                kind=self.spec.kind,
                status=status,
                started_at=frame.started_at,
                ended_at=ended,
                actor=resolve_actor(None, settings),
                params=call.params,
                environment=rt.environment.environment(),
                user=rt.environment.user(),
                host=rt.environment.host(),
                code_hash=code.code_hash,
                source_file=code.source_file,
                git_commit=code.git.commit,
                git_dirty=code.git.dirty,
                error_type=error_type,
                error_message=message,
                error_traceback=trace,
                ancestors=frame.parent.ancestors() if frame.parent else [],
                datasets=call.datasets,
                models=call.models,
                derived=list(self.spec.derived),
            )
            rt.record(record, settings)
        except Exception as exc:  # noqa: BLE001 - capture must never fail the step; logged
            rt.capture_failed(f"{self.job} finish", exc)
