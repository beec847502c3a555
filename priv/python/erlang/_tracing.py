"""Tracing spans: ``with erlang.Span(name, **attrs) as s`` and
``@erlang.trace()``.

While tracing is off (the default; ``py:enable_tracing/0`` turns it on in
every context) a span does nothing but check one flag.  While it is on, a
span that ends is sent as one message (a map) to the registered Erlang
process ``py_tracer`` (``src/py_tracer.erl``), which keeps the most recent
ones (``py:get_traces/0``).  A span's parent is the span open around it in
the same thread or asyncio task (a ``contextvars`` variable).

The map, as in erlang_python 4.x: ``name``, ``span_id`` (a 64-bit integer),
``parent_id`` (``undefined`` at a root), ``start_time`` and ``end_time``
(microseconds since the epoch, as ``os:system_time(microsecond)``),
``duration_us`` (from a monotonic clock), ``status`` (``ok`` or ``error``),
``attributes``, ``end_attrs`` (``exception`` and ``exception_type`` when
the block raised), ``events`` (``name``, ``attrs``, ``time``), and ``pid``
(the Erlang process whose request ran the span, or ``undefined``).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, TypeVar, overload

from erlang._calls import _native_or_none
from erlang._types import Atom

__all__ = ["Span", "is_enabled", "set_enabled", "trace"]

_enabled = False
_current: ContextVar[Span | None] = ContextVar("erlang_span", default=None)

_DEST = Atom("py_tracer")
_PY_SPAN = Atom("py_span")
_OK, _ERROR, _UNDEFINED = Atom("ok"), Atom("error"), Atom("undefined")
_K = {k: Atom(k) for k in (
    "name", "span_id", "parent_id", "start_time", "end_time", "duration_us", "status",
    "attributes", "end_attrs", "events", "attrs", "time", "pid")}

F = TypeVar("F", bound=Callable[..., Any])


def set_enabled(on: bool) -> None:
    """Turn tracing on or off in this interpreter (``erlang._setup``)."""
    global _enabled
    _enabled = bool(on)


def is_enabled() -> bool:
    """Whether spans are recorded in this interpreter."""
    return _enabled


def _plain(value: Any) -> Any:
    """An attribute value as a term: numbers, strings, bytes, booleans and
    None as they are, lists, tuples and dicts of them; anything else as its
    ``repr`` (a span must not keep Python objects alive in Erlang)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def _attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in attrs.items()}


def _now_us() -> int:
    return time.time_ns() // 1000


class Span:
    """A timed block of work: ``with erlang.Span('fetch', url=u) as s:``.

    ``s.event(name, **attrs)`` records a point in time inside it and
    ``s.set_attribute(key, value)`` adds an attribute.  An exception that
    leaves the block marks the span ``error`` (and is not swallowed).
    ``async with`` works the same.
    """

    __slots__ = ("name", "attributes", "span_id", "parent_id", "_live", "_token",
                 "_start_us", "_t0", "_events")

    def __init__(self, name: str, **attrs: Any) -> None:
        self.name = str(name)
        self.attributes: dict[str, Any] = dict(attrs)
        self.span_id: int | None = None
        self.parent_id: int | None = None
        self._live = False
        self._token: Token[Span | None] | None = None
        self._start_us = 0
        self._t0 = 0
        self._events: list[dict[Atom, Any]] = []

    def __enter__(self) -> Span:
        if not _enabled:
            return self
        parent = _current.get()
        self.parent_id = parent.span_id if parent is not None else None
        self.span_id = int.from_bytes(os.urandom(8), "big") or 1
        self._live = True
        self._token = _current.set(self)
        self._start_us = _now_us()
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._live:
            return
        duration = (time.perf_counter_ns() - self._t0) // 1000
        self._live = False
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # exited in another context than entered
                _current.set(None)
            self._token = None
        end_attrs: dict[str, Any] = {}
        if exc_type is not None:
            end_attrs = {"exception": str(exc), "exception_type": exc_type.__name__}
        _emit({
            _K["name"]: self.name,
            _K["span_id"]: self.span_id,
            _K["parent_id"]: self.parent_id if self.parent_id is not None else _UNDEFINED,
            _K["start_time"]: self._start_us,
            _K["end_time"]: self._start_us + duration,
            _K["duration_us"]: duration,
            _K["status"]: _ERROR if exc_type is not None else _OK,
            _K["attributes"]: _attrs(self.attributes),
            _K["end_attrs"]: end_attrs,
            _K["events"]: self._events,
            _K["pid"]: _caller(),
        })

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def event(self, name: str, **attrs: Any) -> None:
        """Record an event at this instant (nothing while tracing is off)."""
        if self._live:
            self._events.append({_K["name"]: str(name), _K["attrs"]: _attrs(attrs),
                                 _K["time"]: _now_us()})

    def set_attribute(self, key: str, value: Any) -> None:
        """Add or replace an attribute of the span."""
        self.attributes[str(key)] = value


def _caller() -> Any:
    native = _native_or_none()
    if native is None:
        return _UNDEFINED
    try:
        return native.self()
    except RuntimeError:  # a thread outside any request
        return _UNDEFINED


def _emit(span: dict[Atom, Any]) -> None:
    """Send a finished span to ``py_tracer``; dropped outside the VM or while
    ``py_tracer`` does not run."""
    native = _native_or_none()
    if native is None:
        return
    try:
        native.send(_DEST, (_PY_SPAN, span))
    except LookupError:
        pass


@overload
def trace(name: F, **attrs: Any) -> F: ...
@overload
def trace(name: str | None = None, **attrs: Any) -> Callable[[F], F]: ...
def trace(name: Any = None, **attrs: Any) -> Any:
    """Run every call of the decorated function (sync or ``async``) in a
    span named ``name`` (default: the function's qualified name) with
    ``attrs``: ``@erlang.trace()``, ``@erlang.trace(name='load')`` or
    ``@erlang.trace``."""
    if callable(name):
        return trace()(name)

    def decorate(fn: F) -> F:
        span_name = name or getattr(fn, "__qualname__", repr(fn))
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_flags & 0x80:  # CO_COROUTINE: async def

            @functools.wraps(fn)
            async def traced_async(*args: Any, **kwargs: Any) -> Any:
                with Span(span_name, **attrs):
                    return await fn(*args, **kwargs)

            return traced_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with Span(span_name, **attrs):
                return fn(*args, **kwargs)

        return traced  # type: ignore[return-value]

    return decorate
