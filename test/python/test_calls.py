"""The pure-Python parts of ``erlang._calls`` and ``erlang._stream``.

These run in a plain interpreter, outside the Erlang VM: there the C module
``_erlang`` is absent, so the package must import, answer introspection, and
refuse to call Erlang with a clear error.  The answers the C side gives are
turned into values and exceptions by ``_calls``; that translation is checked
with a stand-in ``_erlang`` module put in ``sys.modules`` for one test.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import erlang
from erlang import _calls, _stream

outside = pytest.mark.skipif(erlang.is_embedded(), reason="checks behaviour outside the VM")
inside = pytest.mark.skipif(not erlang.is_embedded(), reason="needs the embedded interpreter")


# ErlangError ---------------------------------------------------------------


def test_erlang_error_attributes() -> None:
    stack = [("mod", "fun", 1, [])]
    e = erlang.ErlangError("exception error: bad", "throw", ("bad", 7), stack)
    assert isinstance(e, Exception)
    assert str(e) == "exception error: bad"
    assert (e.cls, e.reason, e.stack) == ("throw", ("bad", 7), stack)


def test_erlang_error_defaults() -> None:
    e = erlang.ErlangError("text")
    assert (e.cls, e.reason, e.stack) == ("error", None, None)


def test_erlang_error_is_catchable_as_exception() -> None:
    with pytest.raises(Exception) as info:
        raise erlang.ErlangError("boom", "exit", "normal", [])
    assert info.value.cls == "exit"


# Outside the VM -------------------------------------------------------------


@outside
def test_not_embedded() -> None:
    assert erlang.is_embedded() is False


@outside
def test_is_registered_false_outside() -> None:
    assert erlang._calls.is_registered("anything") is False
    assert _calls.registered() == []


@outside
@pytest.mark.parametrize(
    "action",
    [
        lambda: erlang.call("anything", 1),
        lambda: erlang.send(erlang.Atom("x"), 1),
        lambda: erlang.self(),
        lambda: erlang.state_get("k"),
        lambda: erlang.state_set("k", 1),
        lambda: erlang.state_incr("k"),
    ],
    ids=["call", "send", "self", "state_get", "state_set", "state_incr"],
)
def test_calling_erlang_outside_raises_runtime_error(action: Any) -> None:
    with pytest.raises(RuntimeError, match="only inside the Erlang VM"):
        action()


@outside
def test_unknown_attribute_outside() -> None:
    assert not hasattr(erlang, "some_function")
    with pytest.raises(AttributeError, match="some_function"):
        erlang.some_function  # noqa: B018
    with pytest.raises(ImportError):
        exec("from erlang import some_function", {})


@outside
def test_introspection_outside() -> None:
    names = dir(erlang)
    for public in erlang.__all__:
        assert public in names
    members = dict(inspect.getmembers(erlang))
    assert members["call"] is erlang.call
    assert not hasattr(erlang, "__wrapped__")
    assert inspect.unwrap(erlang) is erlang


# Inside the VM (test/python_SUITE.erl runs this file there too) -----------------


@inside
def test_unregistered_inside() -> None:
    name = "test_calls_never_registered"
    assert not hasattr(erlang, name)
    assert name not in dir(erlang)
    with pytest.raises(NameError, match=name):
        erlang.call(name)


@inside
def test_self_inside_a_request() -> None:
    assert isinstance(erlang.self(), erlang.Pid)


@inside
def test_state_round_trip_inside() -> None:
    key = ("test_calls", 1)
    erlang.state_set(key, {"v": [1, 2]})
    assert erlang.state_get(key) == {"v": [1, 2]}
    assert key in erlang.state_keys()
    erlang.state_delete(key)
    assert erlang.state_get(key, "gone") == "gone"


# With a stand-in for the C module ----------------------------------------------


class FakeNative(types.ModuleType):
    """A stand-in ``_erlang``: answers calls from a table, records them."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("_erlang")
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.calls.append((name, args))
        answer = self.answers.get(name)
        if answer is None:
            return ("error", ("not_registered", name))
        return answer(*args) if callable(answer) else answer

    def is_registered(self, name: str) -> bool:
        return name in self.answers

    def registered(self) -> list[str]:
        return list(self.answers)


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> FakeNative:
    # Inside the VM a stand-in would be seen by every context: never there.
    if erlang.is_embedded():
        pytest.skip("replaces _erlang: only outside the VM")
    fake = FakeNative(
        {
            "add": lambda a, b: ("ok", a + b),
            "fail": (
                "error",
                ("erlang", "error", ("bad", 1), [("m", "f", 1, [])], "exception error"),
            ),
        }
    )
    monkeypatch.setitem(sys.modules, "_erlang", fake)
    # erlang._calls keeps the C module once imported (it is on every call's path).
    monkeypatch.setattr(erlang._calls, "_native_module", None)
    return fake


def test_call_translates_answers(native: FakeNative) -> None:
    assert erlang.call("add", 2, 3) == 5
    assert native.calls == [("add", (2, 3))]
    with pytest.raises(NameError, match="'nope'"):
        erlang.call("nope")
    with pytest.raises(erlang.ErlangError) as info:
        erlang.call("fail")
    assert (info.value.cls, info.value.reason) == ("error", ("bad", 1))
    assert info.value.stack == [("m", "f", 1, [])]
    assert str(info.value) == "exception error"


def test_attribute_and_import_forms(native: FakeNative) -> None:
    assert erlang.add(1, 2) == 3
    assert erlang.add.__name__ == "add"
    namespace: dict[str, Any] = {}
    exec("from erlang import add\nr = add(4, 5)", namespace)
    assert namespace["r"] == 9
    assert "add" in dir(erlang) and "fail" in dir(erlang)
    assert hasattr(erlang, "add") and not hasattr(erlang, "nope")
    # Dunder names never become functions, even when "registered".
    native.answers["__wrapped__"] = ("ok", None)
    assert not hasattr(erlang, "__wrapped__")
    # Introspection made no call.
    assert native.calls == [("add", (1, 2)), ("add", (4, 5))]


def test_state_get_default(native: FakeNative) -> None:
    store: dict[Any, Any] = {"k": 1}
    native.answers["erlang_python.state_get"] = lambda k: (
        "ok",
        ("found", store[k]) if k in store else "not_found",
    )
    assert erlang.state_get("k") == 1
    assert erlang.state_get("missing") is None
    assert erlang.state_get("missing", "dflt") == "dflt"


def test_state_decr_is_negative_incr(native: FakeNative) -> None:
    native.answers["erlang_python.state_incr"] = lambda k, n: ("ok", n)
    assert erlang.state_decr("c") == -1
    assert erlang.state_decr("c", 5) == -5
    assert erlang.state_incr("c", 3) == 3


# collect ------------------------------------------------------------------------


def test_collect_sync_iterables() -> None:
    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    assert _stream.collect(gen(4)) == [0, 1, 2, 3]
    assert _stream.collect([1, "a", None]) == [1, "a", None]
    assert _stream.collect(x * x for x in range(5)) == [0, 1, 4, 9, 16]
    assert _stream.collect(iter(())) == []


def test_collect_async_generator() -> None:
    async def agen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 10

    assert _stream.collect(agen(3)) == [0, 10, 20]
    assert _stream.collect(agen(0)) == []


def test_collect_async_iterable_class() -> None:
    class Countdown:
        def __init__(self, n: int) -> None:
            self.n = n

        def __aiter__(self) -> Countdown:
            return self

        async def __anext__(self) -> int:
            if self.n == 0:
                raise StopAsyncIteration
            self.n -= 1
            return self.n

    assert _stream.collect(Countdown(3)) == [2, 1, 0]


def test_collect_propagates_errors() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("bad item")

    async def afailing() -> AsyncIterator[int]:
        yield 1
        raise KeyError("k")

    with pytest.raises(ValueError, match="bad item"):
        _stream.collect(failing())
    with pytest.raises(KeyError):
        _stream.collect(afailing())
