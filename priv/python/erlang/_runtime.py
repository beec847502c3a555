"""Introspection helpers that py.erl calls (py:memory_stats/0)."""

from __future__ import annotations

import gc
import sys
from typing import Any

from erlang._calls import _native_or_none
from erlang._types import Atom

__all__ = ["collect", "install", "memory_stats", "tracemalloc_start", "tracemalloc_stop"]


def install() -> None:
    """Set-up run once by the NIF when the interpreter starts in the VM.

    ``time.sleep`` becomes a sleep that an Erlang timeout or cancel can
    interrupt: CPython raises an asynchronous exception only between
    bytecodes, so without this a ``time.sleep(10)`` whose caller gave up
    after 200 ms would hold its context for the full ten seconds.  And
    ``logging`` sends its records to OTP logger (``erlang._loghook``).
    """
    import time

    import _erlang

    from erlang import _confine, _loghook

    _confine.install()
    _loghook.install()  # logging -> OTP logger, from logging's first import

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


def tracemalloc_start(nframes: int = 1) -> None:
    """Start tracing memory allocations (``tracemalloc.start(nframes)``);
    ``py:memory_stats/0`` then reports ``traced_memory_current`` and
    ``traced_memory_peak``.

    Only in the main interpreter (worker contexts): tracemalloc's hooks are
    the process's allocator, which own-GIL interpreters must not swap while
    others run.
    """
    _main_interpreter_only("tracemalloc_start")
    import tracemalloc

    tracemalloc.start(nframes)


def tracemalloc_stop() -> None:
    """Stop tracing memory allocations and drop the traces."""
    _main_interpreter_only("tracemalloc_stop")
    import tracemalloc

    tracemalloc.stop()


def _main_interpreter_only(what: str) -> None:
    from erlang._owngil import ExtensionGuard

    if any(isinstance(f, ExtensionGuard) for f in sys.meta_path):
        raise RuntimeError(f"{what} runs in the main interpreter: use a worker context")
