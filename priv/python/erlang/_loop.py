"""asyncio inside the Erlang VM: ``ErlangEventLoop`` and its entry points.

``ErlangEventLoop`` *is* asyncio's selector event loop (CPython's code is
reused, not rewritten): transports, servers, TLS (``sslproto``), ``sock_*``, timers and executors
are CPython's own code, so they behave exactly as CPython's test suite says
(``test/py_asyncio_cpython_SUITE.erl`` runs it against this loop).  It differs
only where the Erlang VM must be involved:

- **Signals** belong to the VM: the embedded interpreter installs no signal
  handlers, so ``add_signal_handler``/``remove_signal_handler`` raise
  ``NotImplementedError``.
- **Subprocesses** run as Erlang ports (``erlang._port_transport``), never
  by a ``fork()`` of the VM: ``asyncio.create_subprocess_exec`` works.
- **Timers** are sub-millisecond: ``epoll_wait`` takes whole milliseconds
  (CPython rounds a 0.3 ms wait up to 1 ms), so ``ErlangSelector`` waits for
  the epoll descriptor itself with ``select()``, which takes microseconds,
  whenever a timeout has a fraction of a millisecond.

Readiness comes from epoll on the loop's own thread, and other threads (a
context thread serving Erlang, a Python thread) wake it through the loop's
self-pipe (``call_soon_threadsafe``), here an eventfd.  docs/asyncio.md gives the measurement
behind that choice (``escript bench/run.escript --only asyncio``).

Everything that runs coroutines *for Erlang* shares one loop, started lazily on
a thread of its own (:func:`shared_loop`); ``erlang._async`` builds
``py:async_call`` on it and :func:`spawn_task` hands it coroutines from sync
code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import select
import selectors
import sys
import threading
import time
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = [
    "ErlangEventLoop",
    "ErlangEventLoopPolicy",
    "ErlangSelector",
    "EventLoopPolicy",
    "install",
    "new_event_loop",
    "run",
    "shared_loop",
    "sleep",
    "spawn_task",
    "stop_shared_loop",
]

_T = TypeVar("_T")

# select() takes descriptors below FD_SETSIZE only (1024 with glibc).
_FD_SETSIZE = 1024
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_NOT_IN, _NOT_OUT = ~select.EPOLLIN, ~select.EPOLLOUT

_SIGNALS_MESSAGE = (
    "signals are handled by the Erlang VM: the embedded Python installs no signal "
    "handlers, so {} is not supported by ErlangEventLoop. React to OS signals in "
    "Erlang (os:set_signal/2) and tell Python with a call or a message."
)


class ErlangSelector(selectors.EpollSelector):
    """epoll with sub-millisecond timeouts.

    ``epoll_wait`` counts in milliseconds, and CPython rounds a timeout up to
    the next one, so the stdlib loop wakes a timer of 0.3 ms after 1 ms and a
    timer of 1.0001 ms after 2 ms.  When a timeout has a fraction of a
    millisecond this selector first waits for the epoll descriptor itself
    with ``select()`` (microseconds; it becomes readable when an event is
    ready), then collects the events with a non-blocking ``epoll_wait``.
    Waits without a timeout, or of whole milliseconds, are one ``epoll_wait``
    as in the stdlib.  An epoll descriptor at or above FD_SETSIZE (only when
    1024 descriptors are already open) keeps the millisecond rounding.
    """

    def __init__(self) -> None:
        super().__init__()
        self._epfd = self.fileno()
        self._fine = self._epfd < _FD_SETSIZE

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        # One frame, as the stdlib's own select: the loop calls this once per
        # iteration, and a wrapper around super().select() cost the TCP echo
        # benchmark about 0.5 % against the stdlib loop.
        if timeout is None:
            wait = -1.0
        elif timeout <= 0:
            wait = 0.0
        elif self._fine and (timeout * 1e3) % 1:
            ready, _, _ = select.select([self._epfd], [], [], timeout)
            if not ready:
                return []
            wait = 0.0
        else:
            wait = timeout  # whole milliseconds: epoll_wait's own unit
        fd_to_key = self._fd_to_key  # type: ignore[attr-defined]
        try:
            events = self._selector.poll(  # type: ignore[attr-defined]
                wait, max(len(fd_to_key), 1)
            )
        except InterruptedError:
            return []
        found = []
        for fd, event in events:
            key = fd_to_key.get(fd)
            if key:
                mask = (_WRITE if event & _NOT_IN else 0) | (_READ if event & _NOT_OUT else 0)
                found.append((key, mask & key.events))
        return found


class ErlangEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop, for Python running inside the Erlang VM.

    ``selector`` defaults to :class:`ErlangSelector`.  See the module
    docstring for what differs from ``asyncio.SelectorEventLoop``.
    """

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        super().__init__(ErlangSelector() if selector is None else selector)

    # The self-pipe is an eventfd: other threads (context threads serving
    # Erlang, Python threads) wake the loop in ~10 us where asyncio's
    # socketpair takes ~18 us (bench: asyncio_wake_*; docs/asyncio.md).  The
    # lock keeps a late call_soon_threadsafe from writing to the descriptor
    # number after close() has freed it (it may already be another file).

    def _make_self_pipe(self) -> None:
        self._ssock = self._csock = None  # asyncio's socketpair, unused
        self._efd_lock = threading.Lock()
        self._efd: int | None = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._internal_fds += 1  # type: ignore[attr-defined]
        self._add_reader(self._efd, self._read_from_self)  # type: ignore[attr-defined]

    def _close_self_pipe(self) -> None:
        with self._efd_lock:
            efd, self._efd = self._efd, None
        if efd is not None:
            self._remove_reader(efd)  # type: ignore[attr-defined]
            os.close(efd)
            self._internal_fds -= 1  # type: ignore[attr-defined]

    def _read_from_self(self) -> None:
        efd = self._efd
        if efd is not None:
            try:
                os.eventfd_read(efd)
            except (BlockingIOError, InterruptedError):
                pass

    def _write_to_self(self) -> None:
        with self._efd_lock:
            if self._efd is not None:
                try:
                    os.eventfd_write(self._efd, 1)
                except OSError:  # the counter is full: the loop is awake anyway
                    pass

    def add_signal_handler(  # type: ignore[override]
        self, sig: int, callback: Any, *args: Any
    ) -> None:
        raise NotImplementedError(_SIGNALS_MESSAGE.format("add_signal_handler()"))

    def remove_signal_handler(self, sig: int) -> bool:
        raise NotImplementedError(_SIGNALS_MESSAGE.format("remove_signal_handler()"))

    async def _make_subprocess_transport(
        self, protocol: Any, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any,
        bufsize: int, extra: Any = None, **kwargs: Any
    ) -> Any:
        # subprocess_exec/subprocess_shell (asyncio's own checks) end here:
        # in the VM the program runs as an Erlang port (erlang._port_transport).
        from erlang._calls import _native_or_none
        from erlang._port_transport import PortSubprocessTransport

        if _native_or_none() is None:  # a plain interpreter: asyncio's own
            return await super()._make_subprocess_transport(  # type: ignore[misc]
                protocol, args, shell, stdin, stdout, stderr, bufsize, extra=extra, **kwargs)

        waiter = self.create_future()
        transport = PortSubprocessTransport(self, protocol, args, shell, stdin, stdout,
                                            stderr, bufsize, waiter=waiter, extra=extra,
                                            **kwargs)
        await waiter
        return transport


class ErlangEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, making :class:`ErlangEventLoop` loops."""

    _loop_factory = ErlangEventLoop

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return ErlangEventLoop()


EventLoopPolicy = ErlangEventLoopPolicy


def new_event_loop() -> ErlangEventLoop:
    """A new :class:`ErlangEventLoop` (``asyncio.Runner(loop_factory=...)``)."""
    return ErlangEventLoop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """``asyncio.run(main)`` on a new :class:`ErlangEventLoop`.

    Like ``asyncio.run`` it may not be called while a loop runs in this
    thread, and it cancels the tasks left over, finalizes asynchronous
    generators and shuts the default executor down before returning.
    """
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)


def install() -> None:
    """Make :class:`ErlangEventLoop` asyncio's default loop (the policy way).

    Deprecated from Python 3.12 on, as ``uvloop.install()`` is: asyncio is
    moving away from policies; use :func:`run` or
    ``asyncio.Runner(loop_factory=erlang.new_event_loop)``.
    """
    if sys.version_info >= (3, 12):
        warnings.warn(
            "erlang.install() is deprecated in favor of erlang.run() "
            "starting with Python 3.12.",
            DeprecationWarning,
            stacklevel=2,
        )
    asyncio.set_event_loop_policy(ErlangEventLoopPolicy())


# Slices of a blocking sleep: an erlang.CallInterrupted (a request's timeout)
# is raised between bytecodes, never inside time.sleep, so a long sleep is
# cut into slices short enough to notice it.
_SLEEP_SLICE = 0.05


def sleep(seconds: float) -> Any:
    """Sleep in either world.

    Called while an event loop runs in this thread (inside a coroutine) it
    returns ``asyncio.sleep(seconds)``, to be awaited:
    ``await erlang.sleep(0.1)``.  Called anywhere else (plain code in a
    request from Erlang, a thread) it blocks for ``seconds`` and returns
    ``None``; a request that times out meanwhile still gets its
    ``erlang.CallInterrupted`` within 50 ms.  The test is
    ``asyncio.get_running_loop()``: sync code called *from* a coroutine sees
    the running loop too, and must await (or use ``time.sleep``).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return asyncio.sleep(seconds)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, _SLEEP_SLICE))
    return None


# ------------------------------------------------------------ the shared loop

_shared_lock = threading.Lock()
_shared: ErlangEventLoop | None = None
_shared_thread: threading.Thread | None = None
_background: set[concurrent.futures.Future[Any]] = set()
# Seconds the interpreter's shutdown waits for the shared loop to finish the
# tasks it cancels (their finally clauses) before going on without it.
_SHUTDOWN_GRACE = 10.0


def shared_loop() -> ErlangEventLoop:
    """The loop that runs coroutines for Erlang and for :func:`spawn_task`.

    Started on first use, on a thread of its own named ``erlang-asyncio``.
    When the application stops, py_async stops it (:func:`stop_shared_loop`)
    while Erlang still runs; if it still runs when the interpreter
    finalizes, it is stopped then.
    """
    loop = _shared
    if loop is not None and not loop.is_closed():
        return loop
    with _shared_lock:
        if _shared is None or _shared.is_closed():
            _start_shared()
        assert _shared is not None
        return _shared


def _start_shared() -> None:
    global _shared, _shared_thread
    loop = new_event_loop()
    started = threading.Event()
    thread = threading.Thread(
        target=_run_shared, args=(loop, started), name="erlang-asyncio", daemon=True
    )
    try:
        # Runs in threading._shutdown, i.e. when Py_FinalizeEx starts.
        threading._register_atexit(stop_shared_loop)  # type: ignore[attr-defined]
    except RuntimeError:
        loop.close()
        raise RuntimeError("the interpreter is shutting down") from None
    thread.start()
    started.wait()
    _shared, _shared_thread = loop, thread


def _run_shared(loop: ErlangEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    try:
        loop.run_forever()
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def stop_shared_loop() -> None:
    """Stop the shared loop: its tasks are cancelled, the thread waits (10 s
    at most) for their ``finally`` clauses, then ends.  The next use starts
    a new loop."""
    global _shared, _shared_thread
    with _shared_lock:
        loop, thread = _shared, _shared_thread
        _shared = _shared_thread = None
    if loop is None or thread is None:
        return
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # already closed
        return
    thread.join(_SHUTDOWN_GRACE)


def spawn_task(coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
    """Run ``coro`` on the shared loop, from sync code, and return at once.

    The result is a ``concurrent.futures.Future``: ``.result(timeout)``
    waits for the coroutine's value (never call it on the shared loop's own
    thread), ``.cancel()`` cancels the task.  The task is kept alive until it
    finishes even if the future is dropped.
    """
    future = asyncio.run_coroutine_threadsafe(coro, shared_loop())
    _background.add(future)
    future.add_done_callback(_background.discard)
    return future
