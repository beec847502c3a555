"""erlang.is_embedded(), the C module ``_erlang`` and erlang._runtime (what
py:memory_stats/0 returns).  Run in a plain interpreter and inside the VM; the
expectations that differ between the two follow running_in_beam(), which
looks at the process image, not at the erlang package."""

from __future__ import annotations

import ast
import gc
import importlib
import os
import sys
from types import ModuleType
from typing import Any

import pytest

import erlang
from erlang import _runtime


def running_in_beam() -> bool | None:
    """Whether this process is the Erlang VM, judged without the erlang package
    (an independent oracle for is_embedded).  None where the platform cannot
    tell (no /proc)."""
    try:
        exe = os.readlink("/proc/self/exe")
    except OSError:
        return None
    return os.path.basename(exe).startswith("beam")


IN_BEAM = running_in_beam()
needs_oracle = pytest.mark.skipif(IN_BEAM is None, reason="no /proc/self/exe here")
only_in_vm = pytest.mark.skipif(not IN_BEAM, reason="needs the embedded interpreter")

STUB = os.path.join(os.path.dirname(erlang.__file__), "_erlang.pyi")


# ------------------------------------------------------------ is_embedded


@needs_oracle
def test_is_embedded_matches_the_process() -> None:
    assert erlang.is_embedded() is IN_BEAM


def test_is_embedded_returns_a_bool_and_is_stable() -> None:
    first = erlang.is_embedded()
    assert type(first) is bool
    assert erlang.is_embedded() is first


def test_is_embedded_agrees_with_importability_of_c_module() -> None:
    try:
        importlib.import_module("_erlang")
    except ImportError:
        importable = False
    else:
        importable = True
    assert erlang.is_embedded() is importable


def test_public_names() -> None:
    """The names the C layer and user code rely on stay exported, and
    everything in __all__ exists."""
    required = {"Atom", "CallInterrupted", "Pid", "Ref", "Term", "is_embedded"}
    assert required <= set(erlang.__all__)
    assert len(erlang.__all__) == len(set(erlang.__all__))
    for name in erlang.__all__:
        assert getattr(erlang, name) is not None
    from erlang import _types

    for name in ("Atom", "CallInterrupted", "Pid", "Ref", "Term"):
        assert getattr(erlang, name) is getattr(_types, name)


# -------------------------------------------------- the C module _erlang


@only_in_vm
def test_c_module_marks_the_vm() -> None:
    import _erlang

    assert _erlang.embedded == 1


def _stub_names() -> set[str]:
    with open(STUB, encoding="utf-8") as f:
        tree = ast.parse(f.read(), STUB)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_stub_exists_and_declares_embedded() -> None:
    assert "embedded" in _stub_names()


@only_in_vm
def test_stub_matches_c_module() -> None:
    """_erlang.pyi declares exactly the public names the C module has (the
    uvloop test_sourcecode pattern: a stub that drifts fails here)."""
    import _erlang

    actual = {n for n in dir(_erlang) if not n.startswith("_")}
    assert _stub_names() == actual


# ------------------------------------------------- _runtime.memory_stats


ALLOC_KEYS = {
    "alloc_" + k
    for k in ("installed", "large_blocks", "large_bytes", "cache_blocks", "cache_bytes",
              "cache_max", "mapped", "reused")
}
# The allocator's counters appear only inside the VM (test_alloc.py tests them).
GC_KEYS = {"gc_count", "gc_threshold", "gc_stats"} | (ALLOC_KEYS if IN_BEAM else set())
TRACE_KEYS = {"traced_memory_current", "traced_memory_peak"}


def tracemalloc_or_skip() -> ModuleType:
    """tracemalloc; on CPython 3.11 a skip where the interpreter was
    finalized and started again in this process (the application restarted),
    after which 3.11 cannot import it any more."""
    try:
        import tracemalloc
    except RuntimeError as e:
        if sys.version_info >= (3, 12):
            raise
        pytest.skip(f"CPython 3.11 after re-initialisation: {e}")
    return tracemalloc


class RefuseImport:
    """A meta path finder that makes `import <name>` raise `error`."""

    def __init__(self, name: str, error: BaseException) -> None:
        self.name, self.error = name, error

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == self.name:
            raise self.error
        return None


def test_memory_stats_gc_keys() -> None:
    tracemalloc = tracemalloc_or_skip()
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.stop()
    try:
        stats = _runtime.memory_stats()
    finally:
        if was_tracing:
            tracemalloc.start()
    assert set(stats) == GC_KEYS


@pytest.mark.parametrize(
    "error",
    [ImportError("No module named 'tracemalloc'"),
     RuntimeError("the tracemalloc module has been unloaded")],
    ids=["missing", "unloaded"],
)
def test_memory_stats_without_tracemalloc(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """CPython 3.11 raises RuntimeError importing tracemalloc once the
    interpreter was finalized and started again in the same process
    (application:stop/start); memory_stats must still answer."""
    monkeypatch.delitem(sys.modules, "tracemalloc", raising=False)
    monkeypatch.setattr(sys, "meta_path", [RefuseImport("tracemalloc", error), *sys.meta_path])
    with pytest.raises(type(error)):
        import tracemalloc  # noqa: F401
    # A fresh import, as in a re-initialised interpreter; both the module
    # table and the package attribute are put back afterwards.
    monkeypatch.delitem(sys.modules, "erlang._runtime")
    monkeypatch.setattr(erlang, "_runtime", _runtime)
    fresh = importlib.import_module("erlang._runtime")
    assert fresh is not _runtime
    assert set(fresh.memory_stats()) == GC_KEYS


def test_memory_stats_values_come_from_gc() -> None:
    stats = _runtime.memory_stats()
    assert stats["gc_threshold"] == gc.get_threshold()
    count = stats["gc_count"]
    assert isinstance(count, tuple) and len(count) == 3
    assert all(isinstance(n, int) and n >= 0 for n in count)
    gen_stats: list[dict[str, Any]] = stats["gc_stats"]
    assert len(gen_stats) == len(gc.get_stats())
    for gen in gen_stats:
        assert {"collections", "collected", "uncollectable"} <= set(gen)


def test_memory_stats_gc_stats_follow_a_collection() -> None:
    before = _runtime.memory_stats()["gc_stats"][2]["collections"]
    gc.collect(2)
    after = _runtime.memory_stats()["gc_stats"][2]["collections"]
    assert after >= before + 1


@pytest.mark.parametrize("generation", [0, 1, 2])
def test_collect_is_gc_collect(generation: int) -> None:
    """py:gc/1's helper: gc.collect(generation), its count of unreachable
    objects (a cycle made here is found), in and outside the VM."""

    class Node:
        peer: object = None

    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        before = gc.get_stats()[generation]["collections"]
        a, b = Node(), Node()
        a.peer, b.peer = b, a
        del a, b
        found = _runtime.collect(generation)
    finally:
        if enabled:
            gc.enable()
    assert found >= 2
    assert gc.get_stats()[generation]["collections"] == before + 1


def test_memory_stats_while_tracing() -> None:
    tracemalloc = tracemalloc_or_skip()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        keep = [bytearray(64 * 1024) for _ in range(4)]
        stats = _runtime.memory_stats()
        del keep
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert set(stats) == GC_KEYS | TRACE_KEYS
    current, peak = stats["traced_memory_current"], stats["traced_memory_peak"]
    assert isinstance(current, int) and isinstance(peak, int)
    assert peak >= current >= 4 * 64 * 1024


def test_memory_stats_values_are_convertible() -> None:
    """Only types the C layer converts to terms (py:memory_stats/0 returns
    them as a map): ints, str keys, tuples, lists and dicts."""

    def plain(value: object) -> bool:
        if isinstance(value, bool | int | float | str):
            return True
        if isinstance(value, tuple | list):
            return all(plain(v) for v in value)
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return False

    assert plain(_runtime.memory_stats())
