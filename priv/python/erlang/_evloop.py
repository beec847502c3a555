"""The Python half of ``py_event_loop`` and ``py_event_loop_pool``.

An Erlang-facing event loop is an asyncio loop plus a channel
(``c_src/shared/channel.c``) on which Erlang queues its requests straight
from the caller's scheduler: no context thread and no Erlang process sit in
between.  :class:`TaskQueue` drains the channel on the loop's thread in
batches (woken by the loop's notifier when it was empty, never polled):

- ``{task, Caller, Ref, Module, Func, Args, Kwargs}``: a coroutine function
  runs as a task, a plain function is called on the loop (as in
  erlang_python 4.x; an awaitable it returns is awaited); the outcome goes
  to ``Caller`` as ``{async_result, Ref, {ok, Value} | {error, Reason}}``
  (``Caller`` ``none``: nobody is told);
- ``{exec, Caller, Ref, Code}`` and ``{eval, Caller, Ref, Code}`` run in
  the caller's own namespace on this loop, answered with
  ``{py_loop_reply, Ref, Result}``; ``{drop, Pid}`` forgets a namespace.

Error shapes are erlang_python 4.x's: a coroutine that raises gives
``{error, <<"Name: message\\nTraceback ...">>}``, a cancelled one
``{error, <<"cancelled">>}``; a plain function that raises, a module that
does not import or an argument that does not convert gives
``{error, {Name, Message}}``, and a missing function
``{error, function_not_found}``.

The default loop is the shared loop (``erlang._loop.shared_loop``) that also
runs ``py:async_call``; each loop of the pool runs on a thread of its own.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import inspect
import sys
import threading
import traceback
import types
from collections.abc import Generator
from typing import Any

from erlang._calls import _native
from erlang._calls import send as _send
from erlang._types import Atom, Pid, ProcessError

__all__ = ["TaskQueue", "attach_shared", "detach", "start_loop", "submit_main"]

_ASYNC_RESULT = Atom("async_result")
_LOOP_REPLY = Atom("py_loop_reply")
_OK = Atom("ok")
_ERROR = Atom("error")
_NONE = Atom("none")
_TASK, _EXEC, _EVAL, _DROP = Atom("task"), Atom("exec"), Atom("eval"), Atom("drop")
_NOT_FOUND = (_ERROR, Atom("function_not_found"))
_BATCH = 256
_COROUTINE = types.CoroutineType

# Queues of this interpreter by the id Erlang knows them by.
_queues: dict[str, TaskQueue] = {}
_queues_lock = threading.Lock()


def _error_pair(exc: BaseException) -> tuple[Atom, tuple[Atom, list[int]]]:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return (_ERROR, (Atom(type(exc).__name__), [ord(c) for c in text]))


def _error_text(exc: BaseException) -> tuple[Atom, str]:
    head = f"{type(exc).__name__}: {exc}"
    return (_ERROR, head + "\n" + "".join(traceback.format_exception(exc)))


def _tell(pid: Any, msg: Any) -> None:
    if pid == _NONE or pid is None:
        return
    try:
        _send(pid, msg)
    except ProcessError:
        pass  # the caller is gone
    except Exception as exc:  # the value has no term form
        try:
            _send(pid, (msg[0], msg[1], _error_pair(exc)))
        except ProcessError:
            pass


def new_namespace() -> dict[str, Any]:
    """A namespace as the contexts make them: ``erlang`` bound (4.x does)."""
    import erlang

    return {"__builtins__": builtins, "__name__": "__main__", "erlang": erlang}


class TaskQueue:
    """Runs the requests Erlang queues on one channel, on one loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Any, name: str,
                 owns_loop: bool) -> None:
        self.loop = loop
        self.handle = handle
        self.name = name
        self.owns_loop = owns_loop
        self.namespaces: dict[Pid, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._waiter: Any = None

    # ------------------------------------------------------------- draining

    def start(self) -> None:
        """On the loop: serve the channel."""
        self.drain()

    def drain(self) -> None:
        from erlang._notify import for_loop

        native = _native()
        take = native.ch_take
        h = self.handle
        while True:
            for _ in range(_BATCH):
                got = take(h)
                if got is None:
                    break
                if got is False:
                    self.closed()
                    return
                try:
                    self.dispatch(got[0])
                except Exception as exc:  # a bug here must not stop the queue
                    self.loop.call_exception_handler(
                        {"message": "py_event_loop: a request failed", "exception": exc})
            else:  # a full batch: let the loop run what it started first
                self.loop.call_soon(self.drain)
                return
            notifier = for_loop(self.loop)
            token = notifier.register(self.drain)
            self._waiter = native.ch_wait_async(h, notifier.native, token)
            if self._waiter is not None:
                return
            notifier.unregister(token)

    def closed(self) -> None:
        """The channel is closed (Erlang stopped this loop)."""
        with _queues_lock:
            if _queues.get(self.name) is self:
                del _queues[self.name]
        for task in list(self.tasks):
            task.cancel()
        self.namespaces.clear()
        if self.owns_loop:
            self.loop.stop()

    def dispatch(self, msg: Any) -> None:
        tag = msg[0]
        if tag == _TASK:
            _, caller, ref, module, func, args, kwargs = msg
            self.start_task(caller, ref, self.resolve(caller, module, func), args, kwargs)
        elif tag == _EXEC or tag == _EVAL:
            _, caller, ref, code = msg
            _tell(caller, (_LOOP_REPLY, ref, self.run_code(tag, caller, code)))
        elif tag == _DROP:
            self.namespaces.pop(msg[1], None)

    # ---------------------------------------------------------------- tasks

    def resolve(self, caller: Any, module: str, func: str) -> Any:
        """The function, or an ``{error, _}`` tuple to answer with."""
        try:
            if module == "__main__":
                ns = self.namespaces.get(caller, {})
                head, _, rest = func.partition(".")
                obj = ns[head] if head in ns else getattr(builtins, head)
                return _walk(obj, rest) if rest else obj
            mod = sys.modules.get(module) or importlib.import_module(module)
        except (AttributeError, KeyError):
            return _NOT_FOUND
        except Exception as exc:
            return _error_pair(exc)
        try:
            return _walk(mod, func)
        except AttributeError:
            return _NOT_FOUND

    def start_task(self, caller: Any, ref: Any, fn: Any, args: Any, kwargs: Any) -> None:
        if isinstance(fn, tuple):
            _tell(caller, (_ASYNC_RESULT, ref, fn))
            return
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            _tell(caller, (_ASYNC_RESULT, ref, _error_pair(exc)))
            return
        if type(result) is not _COROUTINE and not inspect.isawaitable(result):
            _tell(caller, (_ASYNC_RESULT, ref, (_OK, result)))
            return
        # Eagerly, as Python 3.12's eager tasks: the coroutine runs at once
        # up to its first real wait, and one that finishes without waiting
        # is never scheduled.  Otherwise a task takes it over from there.
        coro = _run(result, caller, ref)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except BaseException as exc:  # _run reports every Exception itself
            coro.close()
            raise exc
        task = self.loop.create_task(_continue(coro, yielded))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---------------------------------------------------------------- code

    def run_code(self, tag: Any, caller: Any, code: str) -> Any:
        ns = self.namespaces.get(caller)
        if ns is None:
            ns = self.namespaces[caller] = new_namespace()
        try:
            if tag == _EXEC:
                exec(compile(code, "<py_event_loop>", "exec"), ns)
                return _OK
            return (_OK, eval(compile(code, "<py_event_loop>", "eval"), ns))
        except Exception as exc:
            return _error_pair(exc)


def _walk(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _resume(coro: Any, yielded: Any) -> Generator[Any, Any, Any]:
    """The rest of a coroutine already stepped once: the Task drives this
    generator, which hands every value and exception on (``yield from`` of
    a started coroutine)."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class _Started:
    """An awaitable over :func:`_resume` (a Task takes coroutines only)."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        return _resume(self.coro, self.yielded)


async def _continue(coro: Any, yielded: Any) -> Any:
    return await _Started(coro, yielded)


async def _run(awaitable: Any, caller: Any, ref: Any) -> None:
    try:
        value = await awaitable
    except asyncio.CancelledError:
        _tell(caller, (_ASYNC_RESULT, ref, (_ERROR, "cancelled")))
        raise
    except Exception as exc:
        _tell(caller, (_ASYNC_RESULT, ref, _error_text(exc)))
        return
    _tell(caller, (_ASYNC_RESULT, ref, (_OK, value)))


def _register(queue: TaskQueue) -> None:
    with _queues_lock:
        old = _queues.get(queue.name)
        _queues[queue.name] = queue
    if old is not None and not old.loop.is_closed():
        old.loop.call_soon_threadsafe(old.closed)


def attach_shared(handle: Any, name: str) -> Atom:
    """Serve the channel ``handle`` on the shared loop (py_event_loop's
    default loop, the one of ``py:async_call``)."""
    from erlang._loop import shared_loop

    loop = shared_loop()
    queue = TaskQueue(loop, handle, name, owns_loop=False)
    _register(queue)
    loop.call_soon_threadsafe(queue.start)
    return _OK


def start_loop(handle: Any, name: str) -> Atom:
    """A new ErlangEventLoop on a thread of its own, serving ``handle``
    (a loop of py_event_loop_pool); it ends when the channel is closed."""
    from erlang._loop import new_event_loop

    loop = new_event_loop()
    queue = TaskQueue(loop, handle, name, owns_loop=True)
    started = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.call_soon(queue.start)
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    _register(queue)
    threading.Thread(target=main, name=f"erlang-{name}", daemon=True).start()
    started.wait()
    return _OK


def detach(name: str) -> Atom:
    """Stop serving the queue ``name`` (its channel is being closed)."""
    with _queues_lock:
        queue = _queues.get(name)
    if queue is not None and not queue.loop.is_closed():
        queue.loop.call_soon_threadsafe(queue.closed)
    return _OK


def submit_main(namespace: dict[str, Any], name: str, caller: Any, ref: Any, func: str,
                args: list[Any], kwargs: dict[str, Any]) -> None:
    """On the caller's context: a ``'__main__'`` task.  ``func`` is looked
    up in the caller's namespace there (what ``py:exec`` defined), then in
    its namespace on the loop (``py_event_loop:exec``), then in builtins."""
    head, _, rest = func.partition(".")
    fn: Any = None
    if head in namespace:
        try:
            fn = _walk(namespace[head], rest) if rest else namespace[head]
        except AttributeError:
            fn = _NOT_FOUND
    with _queues_lock:
        queue = _queues.get(name)
    if queue is None:  # an own-GIL context: its interpreter's shared loop
        from erlang._loop import shared_loop

        loop = shared_loop()
        queue = TaskQueue(loop, None, name, owns_loop=False)

    def start() -> None:
        target = fn if fn is not None else queue.resolve(caller, "__main__", func)
        queue.start_task(caller, ref, target, args, kwargs)

    queue.loop.call_soon_threadsafe(start)
