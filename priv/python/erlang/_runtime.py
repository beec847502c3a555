"""Introspection helpers that py.erl calls (py:memory_stats/0)."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

__all__ = ["memory_stats"]


def memory_stats() -> dict[str, Any]:
    """Garbage-collector counters and, while tracemalloc traces, its totals."""
    stats: dict[str, Any] = {
        "gc_count": gc.get_count(),
        "gc_threshold": gc.get_threshold(),
        "gc_stats": gc.get_stats(),
    }
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        stats["traced_memory_current"] = current
        stats["traced_memory_peak"] = peak
    return stats
