"""Waking an asyncio loop from other threads without polling.

Each loop that awaits Erlang (``Channel.async_receive``,
``erlang.async_call``) gets one :class:`LoopNotifier`: a ``_erlang.Notifier``
(an eventfd the loop watches with ``add_reader``) and the callbacks waiting
on it.  A C thread that has something for the loop (a channel's sender, the
reply of an Erlang function) signals the notifier with the token of the
waiting callback; the loop's reader then runs exactly the callbacks whose
tokens came.  Works on any loop with ``add_reader`` (ErlangEventLoop and
asyncio's selector loops).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["LoopNotifier", "for_loop"]


class LoopNotifier:
    """The notifier of one event loop; used on the loop's thread only."""

    __slots__ = ("__weakref__", "_callbacks", "_next", "native")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import _erlang

        self.native: Any = _erlang.Notifier()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        loop.add_reader(self.native.fileno(), self._fire)

    def register(self, callback: Callable[[], None]) -> int:
        """A token that, signalled, runs ``callback`` once on the loop."""
        self._next += 1
        self._callbacks[self._next] = callback
        return self._next

    def unregister(self, token: int) -> None:
        """Forget ``token`` (signalled later, it runs nothing)."""
        self._callbacks.pop(token, None)

    def _fire(self) -> None:
        for token in self.native.take():
            callback = self._callbacks.pop(token, None)
            if callback is not None:
                callback()


_notifiers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopNotifier] = (
    weakref.WeakKeyDictionary()
)


def for_loop(loop: asyncio.AbstractEventLoop) -> LoopNotifier:
    """The notifier of ``loop`` (made on first use, on the loop's thread)."""
    notifier = _notifiers.get(loop)
    if notifier is None:
        notifier = _notifiers[loop] = LoopNotifier(loop)
    return notifier


async def wait_token(register: Callable[[LoopNotifier, int], Any]) -> None:
    """Await one signal: ``register(notifier, token)`` arranges for it and
    returns a handle kept while waiting (dropped after), or ``None`` when
    what is awaited is there already."""
    loop = asyncio.get_running_loop()
    notifier = for_loop(loop)
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    token = notifier.register(wake)
    try:
        handle = register(notifier, token)
        if handle is None:
            return
        try:
            await future
        finally:
            cancel = getattr(handle, "cancel", None)
            if cancel is not None:
                cancel()
    finally:
        notifier.unregister(token)
