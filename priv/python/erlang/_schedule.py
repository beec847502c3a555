"""Explicit scheduling (erlang_python 4.x): ``erlang.schedule``,
``schedule_py``, ``schedule_inline`` and ``consume_time_slice``.

A function called from Erlang may *return* a marker instead of a value; the
caller then continues with what the marker names, and that is the call's
result:

- ``schedule(name, *args)``: the Erlang function registered as ``name``,
  run in the caller's process (``py:register_function/2``);
- ``schedule_py(module, func, args, kwargs)`` and ``schedule_inline(...)``:
  the Python function, as a new request on the same context, in the
  caller's namespace.

In erlang_python 4.x Python runs on a dirty scheduler, which a marker frees.
Here Python runs on the context's own thread and holds no scheduler, so the
effect is on that thread's queue: the continuation is queued behind the
requests already waiting, so a long computation cut into steps lets other
processes' calls on the same context run in between.  ``schedule_inline``
does the same (there is no scheduler to skip).  Markers work from
``py:call`` and ``py:eval`` alike (4.x honours them from ``py:eval`` only).

A marker is a tuple ``('$py_schedule', kind, target, args, kwargs)`` that
converts to that Erlang tuple, which py_context recognises in a reply.
"""

from __future__ import annotations

import threading
from typing import Any

from erlang._types import Atom

__all__ = [
    "InlineScheduleMarker",
    "ScheduleMarker",
    "consume_time_slice",
    "schedule",
    "schedule_inline",
    "schedule_py",
]

_TAG = Atom("$py_schedule")


class ScheduleMarker(tuple[Any, ...]):
    """What :func:`schedule` and :func:`schedule_py` return; return it."""

    __slots__ = ()


class InlineScheduleMarker(ScheduleMarker):
    """What :func:`schedule_inline` returns; return it."""

    __slots__ = ()


def schedule(name: str, *args: Any) -> ScheduleMarker:
    """Continue with the Erlang function registered as ``name``."""
    if not isinstance(name, str):
        raise TypeError("schedule() takes the name of a registered Erlang function")
    return ScheduleMarker((_TAG, Atom("erlang"), name, list(args), {}))


def _python(kind: str, cls: type[ScheduleMarker], module: str, func: str, args: Any,
            kwargs: Any) -> ScheduleMarker:
    if not isinstance(module, str) or not isinstance(func, str):
        raise TypeError(f"schedule_{kind}() takes a module name and a function name")
    return cls((_TAG, Atom(kind), (module, func), list(args or ()), dict(kwargs or {})))


def schedule_py(module: str, func: str, args: Any = None,
                kwargs: dict[str, Any] | None = None) -> ScheduleMarker:
    """Continue with ``module.func(*args, **kwargs)`` as a new request."""
    return _python("py", ScheduleMarker, module, func, args, kwargs)


def schedule_inline(module: str, func: str, args: Any = None,
                    kwargs: dict[str, Any] | None = None) -> InlineScheduleMarker:
    """As :func:`schedule_py` (no scheduler to skip here: see the module doc)."""
    marker = _python("inline", InlineScheduleMarker, module, func, args, kwargs)
    assert isinstance(marker, InlineScheduleMarker)
    return marker


_slice = threading.local()


def consume_time_slice(percent: int) -> bool:
    """Count ``percent`` (1..100) of a time slice as used by this thread;
    ``True`` once 100 has been reached (the count restarts): time to return
    a :func:`schedule_py` marker and let other requests run."""
    if not isinstance(percent, int) or not 1 <= percent <= 100:
        raise ValueError("percent must be an integer from 1 to 100")
    used = getattr(_slice, "used", 0) + percent
    if used >= 100:
        _slice.used = 0
        return True
    _slice.used = used
    return False
