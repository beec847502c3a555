"""Introspection helpers that py.erl calls (py:memory_stats/0)."""

from __future__ import annotations

import gc
from typing import Any

from erlang._types import Atom

__all__ = ["memory_stats"]


def memory_stats() -> dict[str, Any]:
    """Garbage-collector counters and, while tracemalloc traces, its totals.

    Keys (atoms in Erlang, as in erlang_python 4.x): ``gc_count``,
    ``gc_threshold`` and ``gc_stats`` always;
    ``traced_memory_current`` and ``traced_memory_peak`` (bytes) only while
    ``tracemalloc`` is tracing.
    """
    stats: dict[str, Any] = {
        Atom("gc_count"): gc.get_count(),
        Atom("gc_threshold"): gc.get_threshold(),
        Atom("gc_stats"): gc.get_stats(),
    }
    traced = _traced_memory()
    if traced is not None:
        stats[Atom("traced_memory_current")], stats[Atom("traced_memory_peak")] = traced
    return stats


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
