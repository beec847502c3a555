"""Introspection helpers that py.erl calls (py:memory_stats/0)."""

from __future__ import annotations

import gc
from typing import Any

from erlang._calls import _native_or_none
from erlang._types import Atom

__all__ = ["collect", "install", "memory_stats"]


def install() -> None:
    """Set-up run once by the NIF when the interpreter starts in the VM.

    ``time.sleep`` becomes a sleep that an Erlang timeout or cancel can
    interrupt: CPython raises an asynchronous exception only between
    bytecodes, so without this a ``time.sleep(10)`` whose caller gave up
    after 200 ms would hold its context for the full ten seconds.
    """
    import time

    import _erlang

    from erlang import _confine

    _confine.install()

    original = time.sleep
    if getattr(original, "__erlang__", False):
        return

    def sleep(secs: float) -> None:
        if isinstance(secs, (str, bytes)):
            raise TypeError(f"'{type(secs).__name__}' object cannot be interpreted as an integer")
        _erlang.sleep(float(secs))

    sleep.__doc__ = original.__doc__
    sleep.__wrapped__ = original  # type: ignore[attr-defined]
    sleep.__erlang__ = True  # type: ignore[attr-defined]
    time.sleep = sleep  # type: ignore[assignment]


def memory_stats() -> dict[str, Any]:
    """Garbage-collector counters and, while tracemalloc traces, its totals.

    Keys (atoms in Erlang, as in erlang_python 4.x): ``gc_count``,
    ``gc_threshold`` and ``gc_stats`` always;
    ``traced_memory_current`` and ``traced_memory_peak`` (bytes) only while
    ``tracemalloc`` is tracing.  Inside the VM, also the large-block
    allocator's counters, prefixed ``alloc_`` (``alloc_large_bytes``,
    ``alloc_cache_bytes``, ``alloc_reused``...; see ``_erlang.alloc_stats``).
    """
    stats: dict[str, Any] = {
        Atom("gc_count"): gc.get_count(),
        Atom("gc_threshold"): gc.get_threshold(),
        Atom("gc_stats"): gc.get_stats(),
    }
    traced = _traced_memory()
    if traced is not None:
        stats[Atom("traced_memory_current")], stats[Atom("traced_memory_peak")] = traced
    native = _native_or_none()
    if native is not None:  # in plain Python the blocks are malloc's, none ours
        for key, value in native.alloc_stats().items():
            stats[Atom("alloc_" + key)] = value
    return stats


def collect(generation: int = 2) -> int:
    """``gc.collect(generation)``; a full collection (2) then also returns
    the allocator's cached freed large blocks to the system.  Returns the
    number of unreachable objects found, as ``gc.collect`` does."""
    found = gc.collect(generation)
    native = _native_or_none()
    if generation == 2 and native is not None:
        native.alloc_trim()
    return found


def _traced_memory() -> tuple[int, int] | None:
    """tracemalloc's (current, peak) while it traces, else None.

    CPython 3.11 refuses to import tracemalloc again in a process whose
    interpreter was finalized and started anew (``RuntimeError: the
    tracemalloc module has been unloaded``), which is what stopping and
    starting the erlang_python application does.  It cannot be tracing then,
    so the statistics leave its keys out rather than fail.
    """
    try:
        import tracemalloc
    except (ImportError, RuntimeError):
        return None
    if not tracemalloc.is_tracing():
        return None
    return tracemalloc.get_traced_memory()
