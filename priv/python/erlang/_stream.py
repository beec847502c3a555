"""Generators to Erlang: the helpers behind ``py:stream`` and ``py:stream_start``.

``collect`` turns an iterable (or async iterable) into a list in one go.
``pump`` sends items one by one as ``{py_stream, Ref, {data, Item}}`` messages;
``_erlang.stream_item`` waits for credit from the consumer, so a slow consumer
keeps memory bounded.  If the consumer cancels, ``CallInterrupted`` is raised
at the next item and the generator is closed, so its ``finally`` runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterable
from typing import Any

__all__ = ["collect", "pump"]


def collect(source: Iterable[Any] | AsyncIterable[Any]) -> list[Any]:
    """All the items of ``source``, sync or async, as a list."""
    if isinstance(source, AsyncIterable):
        return asyncio.run(_collect_async(source))
    return list(source)


async def _collect_async(source: AsyncIterable[Any]) -> list[Any]:
    return [item async for item in source]


def pump(source: Iterable[Any] | AsyncIterable[Any]) -> None:
    """Send every item of ``source`` to the stream's consumer."""
    import _erlang

    if isinstance(source, AsyncIterable):
        asyncio.run(_pump_async(source, _erlang.stream_item))
        return
    iterator = iter(source)
    try:
        for item in iterator:
            _erlang.stream_item(item)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _pump_async(source: AsyncIterable[Any], send: Any) -> None:
    iterator = aiter(source)
    try:
        async for item in iterator:
            send(item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
