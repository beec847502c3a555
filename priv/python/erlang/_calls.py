"""Python calls Erlang: ``erlang.call``, ``erlang.send``, ``erlang.self``.

The work is done by the C module ``_erlang`` (present only inside the VM); this
module gives it a typed Python face and turns the Erlang side's answers into
return values and exceptions.
"""

from __future__ import annotations

from erlang._types import Pid

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ErlangError",
    "async_call",
    "call",
    "is_registered",
    "registered",
    "self",
    "send",
    "state_decr",
    "state_delete",
    "state_get",
    "state_incr",
    "state_keys",
    "state_set",
    "whereis",
]


class ErlangError(RuntimeError):
    """An Erlang exception raised by a function called from Python.

    A ``RuntimeError``, as erlang_python 4.x raises for a failing function.

    ``cls`` is ``'error'``, ``'exit'`` or ``'throw'``; ``reason`` the
    exception's reason and ``stack`` its stack trace, as terms.
    """

    def __init__(self, text: str, cls: str = "error", reason: Any = None,
                 stack: Any = None) -> None:
        super().__init__(text)
        self.cls = cls
        self.reason = reason
        self.stack = stack


_native_module: Any = None


def _native_or_none() -> Any:
    """The C module, or None outside the VM (imported once: this is on every
    call's path; a failure is not kept, so a later import can succeed)."""
    global _native_module
    if _native_module is None:
        try:
            import _erlang
        except ImportError:
            return None
        _native_module = _erlang
    return _native_module


def _native() -> Any:
    """The C module; RuntimeError outside the VM."""
    native = _native_or_none()
    if native is None:
        raise RuntimeError("the erlang module calls Erlang only inside the Erlang VM")
    return native


def call(name: str, *args: Any) -> Any:
    """Call the Erlang function registered as ``name`` with ``args``.

    Inside a request it runs in the Erlang process that made the request;
    from another thread, in a fresh Erlang process.  An Erlang exception is
    raised as :class:`ErlangError`; an unknown name as :class:`NameError`.
    """
    return _outcome(name, _native().call(name, args))


def _outcome(name: str, answer: tuple[str, Any]) -> Any:
    status, payload = answer
    if status == "ok":
        return payload
    if payload[0] == "not_registered":
        raise NameError(f"no Erlang function is registered as {name!r}")
    _tag, cls, reason, stack, text = payload
    raise ErlangError(text, cls, reason, stack)


async def async_call(name: str, *args: Any) -> Any:
    """``await erlang.async_call(name, *args)``: :func:`call` for coroutines.

    The function runs in a fresh Erlang process while the loop runs other
    tasks; its answer wakes the loop through the loop's notifier (an
    eventfd: no thread waits, nothing polls).  Works on any asyncio loop
    with ``add_reader`` (ErlangEventLoop, the stdlib's selector loops).
    """
    from erlang._notify import wait_token

    native = _native()
    if not hasattr(native, "call_async"):
        # An isolated context's child: the call waits in the loop's default
        # executor instead (its answer comes over the child's channel).
        import asyncio
        import functools

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(call, name, *args))
    calls: list[Any] = []

    def register(notifier: Any, token: int) -> Any:
        calls.append(native.call_async(name, args, notifier.native, token))
        return calls[0]

    await wait_token(register)
    answer = calls[0].result()
    return _outcome(name, answer)


def whereis(name: Any) -> Pid | None:
    """The Pid of the process registered as ``name`` (a str, bytes or
    :class:`Atom`), or ``None``."""
    pid: Pid | None = _native().whereis(name)
    return pid


def send(dest: Any, msg: Any) -> None:
    """Send ``msg`` to an Erlang process: a :class:`Pid`, a registered name
    (an :class:`Atom`) or a ``(name, node)`` tuple.  Never blocks."""
    _native().send(dest, msg)


def self() -> Pid:
    """The Pid of the Erlang process whose request is running."""
    pid: Pid = _native().self()
    return pid


def is_registered(name: str) -> bool:
    """Whether an Erlang function is registered as ``name`` (no Erlang call)."""
    native = _native_or_none()
    return native is not None and bool(native.is_registered(name))


def registered() -> list[str]:
    """The names of the Erlang functions registered for Python."""
    native = _native_or_none()
    if native is None:
        return []
    names: list[str] = native.registered()
    return names


def state_get(key: Any, default: Any = None) -> Any:
    """The value stored under ``key`` in the state shared with Erlang
    (``py:state_store/2``), or ``default``."""
    found = call("erlang_python.state_get", key)
    if found == "not_found":
        return default
    return found[1]


def state_set(key: Any, value: Any) -> None:
    """Store ``value`` under ``key`` (``py:state_fetch/1`` reads it)."""
    call("erlang_python.state_set", key, value)


def state_delete(key: Any) -> None:
    """Remove ``key`` from the shared state."""
    call("erlang_python.state_delete", key)


def state_keys() -> list[Any]:
    """Every key of the shared state."""
    keys: list[Any] = call("erlang_python.state_keys")
    return keys


def state_incr(key: Any, amount: int = 1) -> int:
    """Atomically add ``amount`` to the counter ``key`` and return it."""
    value: int = call("erlang_python.state_incr", key, amount)
    return value


def state_decr(key: Any, amount: int = 1) -> int:
    """Atomically subtract ``amount`` from the counter ``key`` and return it."""
    return state_incr(key, -amount)
