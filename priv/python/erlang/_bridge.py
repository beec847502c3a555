"""Shared dicts, channels and buffers in an isolated context's child.

In the VM, ``erlang.SharedDict`` and ``erlang.Channel`` call the C module
``_erlang`` (``c_src/pymod/data_py.c``, ``channel_py.c``), which reaches the
tables in the VM's memory.  A child OS process has no such memory: there
``_erlang`` is the child's own module (``erlang._isolated``), and
:func:`install` adds to it functions of the same names and results that run
each operation in the VM, through the callback path of ``erlang.call``, as
the built-in function ``erlang_python.data`` (``src/py_bridge.erl``).  So
code written for a worker context runs unchanged in an isolated one.

A handle passed to the child (a call argument, an eval local, an
``erlang.call`` result) arrives as the :class:`erlang.Ref` of its reference;
sent back to the VM it is the same handle.  :func:`kind_of` tells what it
names (one call into the VM the first time, then from a cache).

A blocking receive never waits in the child: it asks the VM to take a
message, and when there is none to wait up to a slice of its timeout
(:data:`WAIT_SLICE_MS` at most) for one, *without* taking it; then it takes
it with its next call.  So the request stays interruptible (a timeout's
STOP ends the wait for the callback's answer, as for any ``erlang.call``)
and a message is never taken for a receive that is gone.  An async receive
waits the same way on a thread (one per channel, shared by its async
waiters) and wakes the loop through a :class:`Notifier` (a pipe the loop
watches), as ``erlang._notify`` expects.
"""

from __future__ import annotations

import math
import os
import threading
import time
import types

from erlang._etf import Decoder
from erlang._pybuffer import Buffers, PyBuffer
from erlang._types import Atom, Ref

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    #: ``_erlang.call``: (name, args) -> (status, payload).
    Call = Callable[[str, tuple[Any, ...]], tuple[Any, Any]]

__all__ = ["NAME", "WAIT_SLICE_MS", "Bridge", "Notifier", "install", "kind_of"]

#: The built-in Erlang function that runs the bridge's operations.
NAME = "erlang_python.data"

#: The longest wait of one call into the VM, in ms: a receive that waits
#: longer asks again (so a helper left waiting for a request that was
#: stopped lives at most that long).
WAIT_SLICE_MS = 5000

#: The handles whose kind is remembered (the cache is emptied past that).
_KINDS_MAX = 4096

_SDICT = ("shared_dict",)
_CHANNELS = ("channel", "byte_channel")
_DESTROYED = "the shared dict has been destroyed"


def kind_of(handle: Any) -> str | None:
    """What a handle names: ``'shared_dict'``, ``'channel'``,
    ``'byte_channel'``, ``'buffer'``, or None for anything else.

    In the VM the C module's handles say it themselves; in an isolated
    child a handle is an :class:`erlang.Ref`, and the child's ``_erlang``
    asks the VM (:meth:`Bridge.data_kind`).
    """
    kind = getattr(handle, "kind", None)
    if isinstance(kind, str):
        return kind
    if type(handle) is Ref:
        from erlang._calls import _native_or_none

        probe = getattr(_native_or_none(), "data_kind", None)
        if probe is not None:
            found = probe(handle)
            return found if isinstance(found, str) else None
    return None


def _is(answer: Any, *atoms: str) -> bool:
    return type(answer) is Atom and answer in atoms


class Notifier:
    """``_erlang.Notifier`` for a child: tokens signalled from any thread,
    taken on the loop's thread, which watches :meth:`fileno` (a pipe)."""

    __slots__ = ("_lock", "_r", "_tokens", "_w")

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._lock = threading.Lock()
        self._tokens: list[int] = []

    def fileno(self) -> int:
        """The descriptor that becomes readable when a token is signalled."""
        return self._r

    def signal(self, token: int) -> None:
        """Hand ``token`` to the loop (any thread)."""
        with self._lock:
            self._tokens.append(token)
            first = len(self._tokens) == 1
        if first and self._w >= 0:
            try:
                os.write(self._w, b"\0")
            except (BlockingIOError, OSError):
                pass  # a full pipe is readable already; a closed one has no reader

    def take(self) -> list[int]:
        """The tokens signalled since the last call."""
        try:
            while os.read(self._r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._lock:
            tokens, self._tokens = self._tokens, []
        return tokens

    def close(self) -> None:
        """Close the pipe (again: nothing)."""
        fds = (getattr(self, "_r", -1), getattr(self, "_w", -1))
        self._r = self._w = -1
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __del__(self) -> None:
        # No waiter thread holds it any more (each keeps its notifier), so
        # no signal can write to a descriptor number reused since.
        self.close()


class _Waiter:
    """What ``ch_wait_async`` returns: ``cancel()`` ends the wait."""

    __slots__ = ("cancelled", "notifier", "token")

    def __init__(self, notifier: Notifier, token: int) -> None:
        self.notifier = notifier
        self.token = token
        self.cancelled = False

    def cancel(self) -> bool:
        """Stop waiting (the token is not signalled after this)."""
        was, self.cancelled = self.cancelled, True
        return not was


class Bridge:
    """The ``_erlang.sdict_*`` and ``_erlang.ch_*`` functions of a child,
    over ``call`` (the child's ``_erlang.call``)."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._kinds: dict[bytes, str] = {}
        self._lock = threading.Lock()
        self._waiters: dict[bytes, list[_Waiter]] = {}  # a channel's async waiters
        self.buffers = Buffers(self._op)

    def _op(self, *args: Any) -> Any:
        from erlang._calls import _outcome

        return _outcome(NAME, self._call(NAME, args))

    # ------------------------------------------------------------ handles

    def data_kind(self, handle: Any) -> str | None:
        """The kind of the handle ``handle`` names (see :func:`kind_of`)."""
        if type(handle) is not Ref:
            return None
        etf = handle.etf
        kind = self._kinds.get(etf)
        if kind is None:
            found = self._op(Atom("kind"), handle)
            if type(found) is not Atom:
                return None  # `none': no handle, or one the VM has freed
            kind = str(found)
            if len(self._kinds) >= _KINDS_MAX:
                self._kinds.clear()
            self._kinds[etf] = kind
        return kind

    def resource(self, ref: Ref) -> Any:
        """The decoder's hook for a reference that names a NIF resource:
        a buffer's becomes its :class:`erlang.PyBuffer`, as in the VM."""
        return self.buffers.resource(ref, self._kinds)

    def _check(self, handle: Any, kinds: tuple[str, ...], what: str) -> str:
        kind = self.data_kind(handle)
        if kind not in kinds:
            raise TypeError(f"expected the handle of {what}, got {handle!r}")
        return kind

    # ------------------------------------------------------------ shared dicts

    def _sdict(self, *args: Any) -> Any:
        self._check(args[1], _SDICT, "a shared dict")
        answer = self._op(Atom(args[0]), *args[1:])
        if _is(answer, "destroyed", "gone"):
            raise RuntimeError(_DESTROYED)
        if _is(answer, "enomem"):
            raise MemoryError("no memory for the shared dict's entry")
        return answer

    def sdict_get(self, handle: Any, key: Any) -> tuple[Any] | None:
        """``(value,)``, or None when ``key`` is missing."""
        answer = self._sdict("sdict_get", handle, key)
        return None if _is(answer, "not_found") else (answer[1],)

    def sdict_set(self, handle: Any, key: Any, value: Any) -> None:
        """Store ``value`` under ``key``."""
        self._sdict("sdict_set", handle, key, value)

    def sdict_del(self, handle: Any, key: Any) -> bool:
        """Remove ``key``; whether it was there."""
        return bool(self._sdict("sdict_del", handle, key))

    def sdict_keys(self, handle: Any) -> list[Any]:
        """Every key."""
        keys: list[Any] = self._sdict("sdict_keys", handle)[1]
        return keys

    def sdict_len(self, handle: Any) -> int:
        """The number of keys."""
        return int(self._sdict("sdict_len", handle)[1])

    def sdict_items(self, handle: Any) -> list[tuple[Any, Any]]:
        """Every (key, value) pair, in one call into the VM."""
        return [(kv[0], kv[1]) for kv in self._sdict("sdict_items", handle)[1]]

    def sdict_destroy(self, handle: Any) -> None:
        """Destroy the dict (again: nothing)."""
        try:
            self._sdict("sdict_destroy", handle)
        except RuntimeError:
            pass  # destroyed already, or freed

    # ------------------------------------------------------------ channels

    def _channel(self, handle: Any) -> bool:
        """Whether ``handle`` is a byte channel (TypeError: no channel)."""
        return self._check(handle, _CHANNELS, "a channel") == "byte_channel"

    @staticmethod
    def _taken(answer: Any) -> tuple[Any] | bool | None:
        if type(answer) is tuple:
            return (answer[1],)
        return False if _is(answer, "closed") else None

    def ch_take(self, handle: Any) -> tuple[Any] | bool | None:
        """``(value,)``, None when empty, False when closed and drained."""
        return self._taken(self._op(Atom("ch_take"), handle, self._channel(handle)))

    def ch_receive(self, handle: Any, timeout_ms: float) -> tuple[Any] | bool | None:
        """As :meth:`ch_take`, waiting up to ``timeout_ms`` (for ever when
        negative) in the VM; None at the timeout."""
        is_bytes = self._channel(handle)
        ms = float(timeout_ms)
        deadline = None if ms < 0 else time.monotonic() + ms / 1000
        recv = Atom("ch_recv")
        while True:
            if deadline is None:
                wait = WAIT_SLICE_MS
            else:
                left = (deadline - time.monotonic()) * 1000
                wait = min(WAIT_SLICE_MS, max(0, math.ceil(left)))
            answer = self._op(recv, handle, is_bytes, wait)
            if _is(answer, "ready"):
                continue
            if _is(answer, "timeout"):
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            return self._taken(answer)

    def ch_iter(self, handle: Any) -> Iterator[Any]:
        """The messages until the channel is closed and drained."""
        self._channel(handle)
        return self._iterate(handle)

    def _iterate(self, handle: Any) -> Iterator[Any]:
        while True:
            got = self.ch_receive(handle, -1.0)
            if type(got) is not tuple:
                return
            yield got[0]

    def ch_send(self, handle: Any, value: Any) -> int:
        """Queue ``value``: 0 sent, 1 busy, 2 closed."""
        if self._channel(handle) and not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"a byte channel sends bytes, not {type(value).__name__}")
        answer = self._op(Atom("ch_send"), handle, value)
        return 0 if _is(answer, "ok") else 1 if _is(answer, "busy") else 2

    def ch_close(self, handle: Any) -> None:
        """Close the channel."""
        self._channel(handle)
        self._op(Atom("ch_close"), handle)

    def ch_info(self, handle: Any) -> dict[str, Any]:
        """``size``, ``count``, ``max_size`` (None: no limit), ``closed``."""
        self._channel(handle)
        return {str(k): v for k, v in self._op(Atom("ch_info"), handle).items()}

    def ch_wait_async(self, handle: Any, notifier: Any, token: int) -> _Waiter:
        """Signal ``token`` on ``notifier`` at the channel's next message or
        close.  The wait is in the VM, on one thread per channel that every
        async waiter of the channel shares: cancelled waits (an
        ``asyncio.wait_for`` timeout) add no thread."""
        self._channel(handle)
        if not isinstance(notifier, Notifier):
            raise TypeError("expected a Notifier")
        waiter = _Waiter(notifier, token)
        with self._lock:
            waiters = self._waiters.get(handle.etf)
            start = waiters is None
            if waiters is None:
                waiters = self._waiters[handle.etf] = []
            waiters.append(waiter)
        if start:
            threading.Thread(target=self._await, args=(handle,), name="erlang-channel-wait",
                             daemon=True).start()
        return waiter

    def _await(self, handle: Any) -> None:
        """The thread of a channel's async waiters: waits in the VM until
        the channel is ready, then signals them all; ends when none is left."""
        await_ = Atom("ch_await")
        while True:
            try:
                ready = _is(self._op(await_, handle, WAIT_SLICE_MS), "ready")
            except Exception:  # noqa: BLE001 - the waiters' next take raises it
                ready = True
            with self._lock:
                waiters = [w for w in self._waiters[handle.etf] if not w.cancelled]
                if ready or not waiters:
                    del self._waiters[handle.etf]
                else:
                    self._waiters[handle.etf] = waiters
            if ready:
                for w in waiters:
                    if not w.cancelled:
                        w.notifier.signal(w.token)
                return
            if not waiters:
                return


def install(mod: types.ModuleType, call: Call, decoder: Decoder | None = None) -> Bridge:
    """Add the bridge's functions to a child's ``_erlang`` module ``mod``,
    over ``call`` (its ``_erlang.call``), and its ``PyBuffer``; with the
    child's ``decoder``, the buffers that come to the child become
    ``PyBuffer`` objects."""
    bridge = Bridge(call)
    mod.PyBuffer = PyBuffer  # type: ignore[attr-defined]
    if decoder is not None:
        decoder.resource = bridge.resource
    for name in ("data_kind", "sdict_get", "sdict_set", "sdict_del", "sdict_keys",
                 "sdict_len", "sdict_items", "sdict_destroy", "ch_take", "ch_receive",
                 "ch_iter", "ch_send", "ch_close", "ch_info", "ch_wait_async"):
        setattr(mod, name, getattr(bridge, name))
    mod.Notifier = Notifier  # type: ignore[attr-defined]
    return bridge
