"""The large-block allocator of the embedded interpreter (c_src/runtime/pyalloc.c).

Inside the VM, blocks of 128 KiB or more are page mappings of the NIF's own
and freed ones are cached for reuse (glibc would map and unmap each one
afresh there).  These tests check that what Python stores in such blocks is
intact through every path (malloc, calloc, realloc growing and shrinking,
across the 128 KiB line both ways, from several threads) and that the
counters and the cache's cap hold.  They need the embedded interpreter."""

from __future__ import annotations

import gc
import hashlib
import threading
from typing import Any

import pytest

from erlang import _runtime

_erlang = pytest.importorskip("_erlang", reason="needs the embedded interpreter")

MIB = 1 << 20
LARGE = 128 * 1024


def stats() -> dict[str, Any]:
    result: dict[str, Any] = _erlang.alloc_stats()
    return result


pytestmark = pytest.mark.skipif(
    not stats()["installed"], reason="PYTHONMALLOC chose another allocator"
)


def pattern(n: int, seed: int) -> bytes:
    """n bytes that differ from any other seed's at every 251st byte."""
    block = bytes((seed + i) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


def test_a_freed_block_is_reused() -> None:
    _erlang.alloc_trim()
    first = pattern(10 * MIB, 1)
    assert stats()["large_blocks"] >= 1
    del first
    assert stats()["cache_bytes"] >= 10 * MIB
    before = stats()
    again = bytes(pattern(10 * MIB, 2))
    after = stats()
    assert after["reused"] > before["reused"]
    assert again == pattern(10 * MIB, 2)


def test_calloc_from_a_reused_block_is_zero() -> None:
    """bytes(n) asks for zeroed memory; a cached block holds old data."""
    _erlang.alloc_trim()
    dirty = b"\xff" * (20 * MIB)
    del dirty
    reused = stats()["reused"]
    zeros = bytes(20 * MIB)
    assert stats()["reused"] == reused + 1
    assert zeros.count(0) == 20 * MIB


def test_realloc_grows_across_the_line_and_keeps_data() -> None:
    ba = bytearray()
    expect = hashlib.sha256()
    for i in range(400):  # 64 KiB steps: small malloc, then mapping, then mremap
        chunk = pattern(64 * 1024, i)
        ba += chunk
        expect.update(chunk)
    assert len(ba) == 400 * 64 * 1024
    assert hashlib.sha256(ba).digest() == expect.digest()


def test_realloc_shrinks_back_below_the_line() -> None:
    data = pattern(4 * MIB, 7)
    ba = bytearray(data)
    del ba[3 * MIB:]  # large -> large, in place or moved
    assert bytes(ba) == data[: 3 * MIB]
    del ba[1000:]  # large -> small malloc block
    assert bytes(ba) == data[:1000]
    ba += data[1000:LARGE * 2]  # small -> large again
    assert bytes(ba) == data[: LARGE * 2]


def test_lists_and_dicts_that_grow_large() -> None:
    items = list(range(1_000_000))
    items.extend(range(1_000_000))
    assert sum(items) == 2 * sum(range(1_000_000))
    table = {i: -i for i in range(200_000)}
    assert all(table[i] == -i for i in range(0, 200_000, 997))
    del items, table


def test_live_counters_follow_allocation() -> None:
    base = stats()
    keep = [bytes(pattern(LARGE + 4096 * i, i)) for i in range(8)]
    grown = stats()
    assert grown["large_blocks"] >= base["large_blocks"] + 8
    assert grown["large_bytes"] >= base["large_bytes"] + 8 * LARGE
    del keep
    gc.collect()
    assert stats()["large_blocks"] <= base["large_blocks"]


def test_cache_stays_under_its_cap() -> None:
    cap = stats()["cache_max"]
    for i in range(40):  # sizes from 1 to 40 MiB: more than the cap and the slots
        block = bytes((i + 1) * MIB)
        del block
        assert stats()["cache_bytes"] <= cap
    assert stats()["cache_blocks"] <= 16


def test_trim_empties_the_cache() -> None:
    block = bytes(8 * MIB)
    del block
    _erlang.alloc_trim()
    assert stats()["cache_bytes"] == 0
    assert stats()["cache_blocks"] == 0


def test_a_full_collection_trims_the_cache() -> None:
    block = bytes(8 * MIB)
    del block
    assert _runtime.collect(2) >= 0
    assert stats()["cache_bytes"] == 0


def test_threads_allocate_and_free_concurrently() -> None:
    errors: list[str] = []

    def churn(seed: int) -> None:
        for i in range(60):
            n = LARGE + ((seed * 7919 + i * 104729) % (3 * MIB))
            data = pattern(n, seed + i)
            ba = bytearray(data)
            ba += data[: n // 3]
            if bytes(ba[:n]) != data or len(ba) != n + n // 3:
                errors.append(f"thread {seed} round {i}")

    threads = [threading.Thread(target=churn, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
