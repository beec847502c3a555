"""The Python side of erlang_python.

Inside the Erlang VM this package is on ``sys.path`` and the C extension
``_erlang`` is importable; outside it the same names import, so code and tests
that use them run in a plain interpreter too.

Erlang functions registered with ``py:register_function/2,3`` are reachable
three ways, all equivalent: ``erlang.call("name", *args)``,
``erlang.name(*args)`` and ``from erlang import name``.
"""

from __future__ import annotations

from erlang._calls import (
    ErlangError,
    async_call,
    call,
    is_registered,
    registered,
    self,
    send,
    state_decr,
    state_delete,
    state_get,
    state_incr,
    state_keys,
    state_set,
    whereis,
)
from erlang._types import Atom, CallInterrupted, Pid, ProcessError, Ref, Term

# What this package imports when it is imported is what every interpreter
# that imports it pays for, an isolated context's child at each start: no
# typing, enum, re or functools (10 to 20 ms together on a slow machine,
# when site has not imported them already); the annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from erlang._channel import (
        ByteChannel,
        ByteChannelClosed,
        Channel,
        ChannelClosed,
        reply,
    )
    from erlang._logging import ErlangHandler, setup_logging
    from erlang._loop import (
        ErlangEventLoop,
        ErlangEventLoopPolicy,
        EventLoopPolicy,
        install,
        new_event_loop,
        run,
        sleep,
        spawn_task,
    )
    from erlang._schedule import (
        InlineScheduleMarker,
        ScheduleMarker,
        consume_time_slice,
        schedule,
        schedule_inline,
        schedule_py,
    )
    from erlang._shared_dict import SharedDict
    from erlang._tracing import Span, trace

# asyncio support (erlang._loop, and the channels' async side) is imported
# on first use: importing asyncio would add ~20 ms to every interpreter start.
_LOOP_NAMES = frozenset({
    "ErlangEventLoop", "ErlangEventLoopPolicy", "EventLoopPolicy", "install",
    "new_event_loop", "run", "sleep", "spawn_task",
})
# Logging and tracing are imported on first use too (logging costs ~3 ms),
# and so are schedule markers and shared dicts (typing, threading).
_LAZY = {"ErlangHandler": "_logging", "setup_logging": "_logging",
         "Span": "_tracing", "trace": "_tracing",
         "InlineScheduleMarker": "_schedule", "ScheduleMarker": "_schedule",
         "consume_time_slice": "_schedule", "schedule": "_schedule",
         "schedule_inline": "_schedule", "schedule_py": "_schedule",
         "SharedDict": "_shared_dict"}
_CHANNEL_NAMES = frozenset({
    "ByteChannel", "ByteChannelClosed", "Channel", "ChannelClosed", "reply",
})

__all__ = [
    "Atom",
    "ByteChannel",
    "ByteChannelClosed",
    "CallInterrupted",
    "Channel",
    "ChannelClosed",
    "ErlangError",
    "ErlangEventLoop",
    "ErlangHandler",
    "ErlangEventLoopPolicy",
    "EventLoopPolicy",
    "InlineScheduleMarker",
    "Pid",
    "ProcessError",
    "PyBuffer",
    "Ref",
    "Span",
    "ScheduleMarker",
    "SharedDict",
    "Term",
    "async_call",
    "call",
    "consume_time_slice",
    "install",
    "is_embedded",
    "new_event_loop",
    "reply",
    "run",
    "schedule",
    "schedule_inline",
    "schedule_py",
    "self",
    "send",
    "setup_logging",
    "sleep",
    "spawn_task",
    "state_decr",
    "state_delete",
    "state_get",
    "state_incr",
    "state_keys",
    "state_set",
    "trace",
    "whereis",
]


def is_embedded() -> bool:
    """True when this interpreter runs inside the Erlang VM."""
    from erlang._calls import _native_or_none

    return _native_or_none() is not None


def __getattr__(name: str) -> Callable[..., Any]:
    """``erlang.name`` for a registered Erlang function.

    Looking a name up asks a published copy of the registry, never Erlang,
    so ``hasattr``, ``dir`` and ``inspect`` are safe; dunder names are never
    functions.
    """
    if name in _LOOP_NAMES:
        from erlang import _loop

        value: Callable[..., Any] = getattr(_loop, name)
        globals()[name] = value
        return value
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module("erlang." + _LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _CHANNEL_NAMES:
        from erlang import _channel

        value = getattr(_channel, name)
        globals()[name] = value
        return value
    if name == "PyBuffer":
        from erlang._calls import _native_or_none

        native = _native_or_none()
        value = native.PyBuffer if native is not None else _NoBuffer
        globals()[name] = value
        return value
    if not (name.startswith("__") and name.endswith("__")) and is_registered(name):
        import functools

        fn = functools.partial(call, name)
        functools.update_wrapper(fn, call)
        fn.__name__ = name  # type: ignore[attr-defined]
        fn.__doc__ = f"Call the Erlang function registered as {name!r}."
        return fn
    raise AttributeError(f"module 'erlang' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LOOP_NAMES | set(_LAZY) | _CHANNEL_NAMES | {"PyBuffer"}
                  | set(registered()))


class _NoBuffer:
    """``erlang.PyBuffer`` outside the VM: buffers come only from Erlang
    (``py_buffer``), so nothing is ever an instance."""

    def __init__(self) -> None:
        raise TypeError("PyBuffer objects come from Erlang (py_buffer:new/0,1)")
