"""Coroutines started from Erlang: the Python half of ``py:async_call``.

``src/py_async.erl`` submits ``Module.Func(*Args, **Kwargs)`` with a cast to
the caller's context, which runs :func:`submit` (or :func:`submit_main` for
``'__main__'``): it resolves the function there (imports happen on the
context thread, not on the loop), registers the call and hands it to the
shared loop with ``call_soon_threadsafe``.  On the loop a coroutine function
runs as a task; a plain function runs in the loop's default executor (so a
blocking function never stalls the loop) and, if it returns an awaitable,
that is awaited on the loop.  The outcome goes back to the caller as the
message ``{py_async, Ref, {ok, Value} | {error, {ExceptionName, Message}}}``.

Cancellation (a timeout in ``py:async_await``, the caller's death) comes on
py_async's own context through :func:`cancel`, :func:`cancel_many` and
:func:`cancel_owner`.  One lock orders it with completion: a result is sent
while the call is still registered, under the lock, and a cancellation
unregisters it under the lock.  So after ``cancel`` answers ``cancelled`` no
message will come, and after it answers ``not_found`` the message is already
in the caller's mailbox, or will never be sent (the call was not submitted
yet: a tombstone makes the late submission a no-op).

In an isolated context's child the calls run on the child's own loop, and
the Ref is an alias of the caller's (``alias([reply])``: ``reply_to_ref``):
the outcome is sent to it, so that once the caller has dropped the alias (a
timeout) a late outcome is dropped by the VM.  The VM does not wait for the
child's cancellation there: it comes as a frame the child runs in order
with its requests (``erlang._isolated``).
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import importlib
import inspect
import sys
import threading
from collections import OrderedDict
from typing import Any

from erlang._calls import self as _self
from erlang._calls import send as _send
from erlang._loop import shared_loop
from erlang._types import Atom, Pid, ProcessError, Ref

__all__ = ["cancel", "cancel_many", "cancel_owner", "pending", "submit", "submit_main"]

_PY_ASYNC = Atom("py_async")
_OK = Atom("ok")
_ERROR = Atom("error")
_CANCELLED = Atom("cancelled")
_NOT_FOUND = Atom("not_found")

# How many cancelled-before-submitted refs and dead callers are remembered
# (so that a submission that arrives after its cancellation is dropped).
_REMEMBER = 65536


class _Call:
    __slots__ = ("dest", "owner", "task")

    def __init__(self, owner: Pid, dest: Pid | Ref) -> None:
        self.owner = owner
        self.dest = dest  # where the outcome goes: the owner, or an alias of its
        self.task: asyncio.Task[Any] | None = None


_lock = threading.Lock()
_calls: dict[Ref, _Call] = {}
_by_owner: dict[Pid, set[Ref]] = {}
_tombstones: OrderedDict[Ref, None] = OrderedDict()
_dead: OrderedDict[Pid, None] = OrderedDict()


def _remember(table: OrderedDict[Any, None], key: Any) -> None:
    table[key] = None
    if len(table) > _REMEMBER:
        table.popitem(last=False)


def _error_term(exc: BaseException) -> tuple[Atom, tuple[Atom, list[int]]]:
    """``{error, {'Name', "message"}}`` as sync calls report it."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return (_ERROR, (Atom(type(exc).__name__), [ord(c) for c in text]))


def _deliver(dest: Pid | Ref, ref: Ref, result: Any) -> None:
    """Send the outcome; a value with no term form becomes an error."""
    try:
        _send(dest, (_PY_ASYNC, ref, result))
    except ProcessError:
        pass  # the caller is gone
    except Exception as exc:
        try:
            _send(dest, (_PY_ASYNC, ref, _error_term(exc)))
        except ProcessError:
            pass


def submit(ref: Ref, module: str, func: str, args: list[Any], kwargs: dict[str, Any],
           reply_to_ref: bool = False) -> None:
    """Start ``module.func(*args, **kwargs)`` for the calling Erlang process
    (its outcome sent to ``ref`` itself, an alias, when ``reply_to_ref``)."""
    owner = _self()
    dest = ref if reply_to_ref else owner
    try:
        mod = sys.modules.get(module) or importlib.import_module(module)
        fn = _walk(mod, func)
    except Exception as exc:
        _start(owner, dest, ref, None, exc, (), {})
        return
    _start(owner, dest, ref, fn, None, args, kwargs)


def submit_main(
    namespace: dict[str, Any], ref: Ref, func: str, args: list[Any], kwargs: dict[str, Any],
    reply_to_ref: bool = False,
) -> None:
    """:func:`submit` for ``'__main__'``: ``func`` is looked up in the caller's
    namespace (what it defined with ``py:exec``), then in builtins."""
    owner = _self()
    dest = ref if reply_to_ref else owner
    head, _, rest = func.partition(".")
    try:
        if head in namespace:
            obj = namespace[head]
        elif hasattr(builtins, head):
            obj = getattr(builtins, head)
        else:  # as py:call says it
            raise NameError(f"name {head!r} is not defined in the caller's namespace")
        fn = _walk(obj, rest) if rest else obj
    except Exception as exc:
        _start(owner, dest, ref, None, exc, (), {})
        return
    _start(owner, dest, ref, fn, None, args, kwargs)


def _walk(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _start(
    owner: Pid, dest: Pid | Ref, ref: Ref, fn: Any, error: BaseException | None, args: Any,
    kwargs: Any,
) -> None:
    try:
        loop = shared_loop() if error is None else None
    except Exception as exc:
        loop, error = None, exc
    with _lock:
        if ref in _tombstones or owner in _dead:
            _tombstones.pop(ref, None)
            return
        if loop is None:
            _deliver(dest, ref, _error_term(error or RuntimeError("no loop")))
            return
        _calls[ref] = _Call(owner, dest)
        _by_owner.setdefault(owner, set()).add(ref)
    loop.call_soon_threadsafe(_create, loop, ref, fn, args, kwargs)


def _create(loop: asyncio.AbstractEventLoop, ref: Ref, fn: Any, args: Any, kwargs: Any) -> None:
    """On the loop: make the task, unless the call was cancelled meanwhile."""
    with _lock:
        call = _calls.get(ref)
        if call is None:
            return
        task = loop.create_task(_run(fn, args, kwargs))
        call.task = task
    task.add_done_callback(functools.partial(_done, ref))


async def _run(fn: Any, args: Any, kwargs: Any) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
    if inspect.isawaitable(result):
        result = await result
    return result


def _done(ref: Ref, task: asyncio.Task[Any]) -> None:
    """On the loop: send the outcome, if the call is still registered."""
    if task.cancelled():
        result: Any = _error_term(asyncio.CancelledError("the task was cancelled"))
    elif (exc := task.exception()) is not None:
        result = _error_term(exc)
    else:
        result = (_OK, task.result())
    with _lock:
        call = _unregister(ref)
        if call is not None:
            _deliver(call.dest, ref, result)


def _unregister(ref: Ref) -> _Call | None:
    """With _lock held: forget a call; None when it was not registered."""
    call = _calls.pop(ref, None)
    if call is not None:
        refs = _by_owner.get(call.owner)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del _by_owner[call.owner]
    return call


def _cancel_tasks(calls: list[_Call]) -> None:
    for call in calls:
        task = call.task
        if task is not None:
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has closed: the task is gone
                pass


def cancel(ref: Ref) -> Atom:
    """Cancel a call: ``cancelled`` (no message will come) or ``not_found``
    (its message is in the caller's mailbox, or will never be sent)."""
    with _lock:
        call = _unregister(ref)
        if call is None:
            _remember(_tombstones, ref)
            return _NOT_FOUND
    _cancel_tasks([call])
    return _CANCELLED


def cancel_many(refs: list[Ref]) -> list[Ref]:
    """Cancel several calls; the refs that were ``not_found``."""
    found, missing = [], []
    with _lock:
        for ref in refs:
            call = _unregister(ref)
            if call is None:
                _remember(_tombstones, ref)
                missing.append(ref)
            else:
                found.append(call)
    _cancel_tasks(found)
    return missing


def cancel_owner(owner: Pid) -> int:
    """The Erlang process ``owner`` died: cancel its calls (their ``finally``
    clauses run), drop its later submissions; the number cancelled."""
    with _lock:
        _remember(_dead, owner)
        calls = [c for c in (_calls.pop(r, None) for r in _by_owner.pop(owner, ())) if c]
    _cancel_tasks(calls)
    return len(calls)


def pending() -> int:
    """How many calls from Erlang are running or queued."""
    with _lock:
        return len(_calls)
