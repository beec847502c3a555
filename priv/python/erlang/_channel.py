"""Channels: Erlang terms (or raw bytes) queued for Python.

Erlang makes a channel with ``py_channel:new/0,1`` (or
``py_byte_channel:new/0,1``), passes it to Python and sends to it; Python
wraps it: ``ch = erlang.Channel(ref)``.  Messages convert when taken, as
every term does (atoms stay :class:`erlang.Atom`).  The queue lives in C
(``c_src/shared/channel.c``), so any number of senders and receivers on any
context, thread or own-GIL interpreter share one channel.

- ``receive(timeout_ms=-1)`` waits with the GIL released (a request's
  timeout or cancel still interrupts it);
- ``await async_receive()`` is woken by the next message through the loop's
  notifier (``erlang._notify``): no polling, on any selector loop;
- ``try_receive()`` never waits.

After ``py_channel:close/1`` the messages still queued are received, then
:class:`ChannelClosed` is raised (and ``for``/``async for`` end).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

from erlang._bridge import kind_of
from erlang._calls import _native
from erlang._calls import send as _send
from erlang._notify import LoopNotifier, wait_token

__all__ = ["ByteChannel", "ByteChannelClosed", "Channel", "ChannelClosed", "reply"]

_KINDS = ("channel", "byte_channel")


class ChannelClosed(Exception):
    """The channel is closed and everything sent before has been received."""


class ByteChannelClosed(ChannelClosed):
    """A :class:`ByteChannel` is closed and drained."""


def _handle(ref: Any, kinds: tuple[str, ...], what: str) -> Any:
    if isinstance(ref, Channel):
        ref = ref._h
    if kind_of(ref) in kinds:
        return ref
    raise TypeError(f"expected {what} (from Erlang), got {ref!r}")


class Channel:
    """A channel made by ``py_channel:new/0,1``, seen from Python."""

    __slots__ = ("_h",)
    _closed_error: type[ChannelClosed] = ChannelClosed

    def __init__(self, channel_ref: Any) -> None:
        self._h = _handle(channel_ref, _KINDS, "a channel")

    def receive(self, timeout_ms: float = -1) -> Any:
        """The next message; waits (GIL released) up to ``timeout_ms``
        milliseconds, for ever when negative.  :class:`TimeoutError` at the
        timeout, :class:`ChannelClosed` when closed and drained."""
        got = _native().ch_receive(self._h, timeout_ms)
        if got is None:
            raise TimeoutError("channel receive timeout")
        if got is False:
            raise self._closed_error("the channel is closed")
        return got[0]

    def try_receive(self) -> Any:
        """The next message, or ``None`` when none is queued (never waits)."""
        got = _native().ch_take(self._h)
        if got is False:
            raise self._closed_error("the channel is closed")
        return None if got is None else got[0]

    async def async_receive(self) -> Any:
        """The next message, for a coroutine: the loop runs other tasks until
        it comes (woken by the sender, not by polling)."""
        native = _native()
        h = self._h
        while True:
            got = native.ch_take(h)
            if got is not None:
                if got is False:
                    raise self._closed_error("the channel is closed")
                return got[0]

            def register(n: LoopNotifier, token: int) -> Any:
                return native.ch_wait_async(h, n.native, token)

            await wait_token(register)

    def send(self, value: Any) -> None:
        """Queue ``value`` (an Erlang process takes it with
        ``py_channel:recv/1,2``).  ``RuntimeError`` when the channel is full,
        :class:`ChannelClosed` when closed."""
        rc = _native().ch_send(self._h, value)
        if rc == 1:
            raise RuntimeError("channel busy (backpressure)")
        if rc == 2:
            raise self._closed_error("the channel is closed")

    def close(self) -> None:
        """Close the channel (for every sender and receiver)."""
        _native().ch_close(self._h)

    def info(self) -> dict[str, Any]:
        """``size`` (bytes queued), ``count``, ``max_size`` (None: no
        limit) and ``closed``."""
        info: dict[str, Any] = _native().ch_info(self._h)
        return info

    @property
    def closed(self) -> bool:
        """Whether the channel has been closed (messages may still be queued)."""
        return bool(self.info()["closed"])

    def __iter__(self) -> Iterator[Any]:
        """The messages until the channel is closed and drained (a C
        iterator: one call per message, waiting with the GIL released)."""
        it: Iterator[Any] = _native().ch_iter(self._h)
        return it

    def __next__(self) -> Any:
        got = _native().ch_receive(self._h, -1.0)
        if got is False:
            raise StopIteration
        return got[0]

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.async_receive()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Channel) and other._h == self._h

    def __hash__(self) -> int:
        return hash(self._h)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._h!r}>"


class ByteChannel(Channel):
    """A channel of raw bytes (``py_byte_channel:new/0,1``): every message
    is ``bytes``, whatever its content."""

    __slots__ = ()
    _closed_error = ByteChannelClosed

    def __init__(self, channel_ref: Any) -> None:
        self._h = _handle(channel_ref, ("byte_channel",), "a byte channel")

    def receive_bytes(self, timeout_ms: float = -1) -> bytes:
        """:meth:`Channel.receive` of a byte channel."""
        data: bytes = self.receive(timeout_ms)
        return data

    def try_receive_bytes(self) -> bytes | None:
        """:meth:`Channel.try_receive` of a byte channel."""
        data: bytes | None = self.try_receive()
        return data

    async def async_receive_bytes(self) -> bytes:
        """:meth:`Channel.async_receive` of a byte channel."""
        data: bytes = await self.async_receive()
        return data

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` (Erlang takes it with ``py_byte_channel:recv/1,2``)."""
        self.send(data)


def reply(pid: Any, term: Any) -> bool:
    """Send ``term`` to the Erlang process ``pid`` (``erlang.send``)."""
    _send(pid, term)
    return True
