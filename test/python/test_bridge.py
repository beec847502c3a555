"""The child's half of the shared dict and channel bridge
(``erlang._bridge``), over a test double of the VM's half
(``src/py_bridge.erl``) that answers with the same terms, decoded as
``erlang._etf`` decodes them.  The real pair is tested from Erlang
(test/py_isolated_data_SUITE.erl); this file runs in a plain interpreter
and inside the VM (python_SUITE)."""

from __future__ import annotations

import queue
import select
import threading
from collections import deque
from typing import Any

import pytest

from erlang import _bridge
from erlang._bridge import WAIT_SLICE_MS, Bridge, Notifier
from erlang._types import Atom, Ref

A = Atom


def _ref(n: int) -> Ref:
    return Ref(b"\x83Z\x00\x03w\rnonode@nohost\x00\x00\x00\x00" + n.to_bytes(12, "big"))


class FakeVM:
    """``erlang_python.data`` as py_bridge answers it, over Python tables."""

    def __init__(self) -> None:
        self.kinds: dict[Ref, str] = {}
        self.dicts: dict[Ref, dict[Any, Any] | None] = {}  # None: destroyed
        self.queues: dict[Ref, deque[Any]] = {}
        self.closed: set[Ref] = set()
        self.calls: list[tuple[Any, ...]] = []
        self.script: deque[Any] = deque()  # answers to ch_recv / ch_await first
        self.gate: queue.Queue[Any] | None = None  # ch_await blocks on it when set

    def call(self, name: str, args: tuple[Any, ...]) -> tuple[Any, Any]:
        assert name == _bridge.NAME
        self.calls.append(args)
        return A("ok"), self._run(str(args[0]), *args[1:])

    def _run(self, op: str, h: Ref, *rest: Any) -> Any:
        if op == "kind":
            return A(self.kinds[h]) if h in self.kinds else None
        if op.startswith("sdict_"):
            d = self.dicts[h]
            if d is None:
                return A("destroyed")
            if op == "sdict_get":
                return (A("ok"), d[rest[0]]) if rest[0] in d else A("not_found")
            if op == "sdict_set":
                d[rest[0]] = rest[1]
                return A("ok")
            if op == "sdict_del":
                return d.pop(rest[0], A("none")) != A("none")
            if op == "sdict_keys":
                return (A("ok"), list(d))
            if op == "sdict_len":
                return (A("ok"), len(d))
            if op == "sdict_items":
                return (A("ok"), [(k, v) for k, v in d.items()])
            if op == "sdict_destroy":
                self.dicts[h] = None
                return A("ok")
        if op == "ch_await" and self.gate is not None:
            return self.gate.get(timeout=10)
        if op in ("ch_recv", "ch_await") and self.script:
            return self.script.popleft()
        q = self.queues[h]
        if op in ("ch_take", "ch_recv"):
            if q:
                return (A("ok"), q.popleft())
            if h in self.closed:
                return A("closed")
            return A("empty") if op == "ch_take" else A("timeout")
        if op == "ch_await":
            return A("ready") if q or h in self.closed else A("timeout")
        if op == "ch_send":
            if h in self.closed:
                return A("closed")
            q.append(rest[0])
            return A("ok")
        if op == "ch_close":
            self.closed.add(h)
            return A("ok")
        if op == "ch_info":
            return {A("size"): 0, A("count"): len(q), A("max_size"): None,
                    A("closed"): h in self.closed}
        raise AssertionError(op)

    def sdict(self, n: int) -> Ref:
        h = _ref(n)
        self.kinds[h] = "shared_dict"
        self.dicts[h] = {}
        return h

    def channel(self, n: int, kind: str = "channel") -> Ref:
        h = _ref(n)
        self.kinds[h] = kind
        self.queues[h] = deque()
        return h


@pytest.fixture
def vm() -> FakeVM:
    return FakeVM()


@pytest.fixture
def bridge(vm: FakeVM) -> Bridge:
    return Bridge(vm.call)


def test_kind_is_asked_once_per_handle(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.sdict(1)
    assert bridge.data_kind(h) == "shared_dict"
    assert bridge.data_kind(Ref(h.etf)) == "shared_dict"
    assert [c for c in vm.calls if c[0] == "kind"] == [(A("kind"), h)]
    assert bridge.data_kind(_ref(99)) is None
    assert bridge.data_kind("not a ref") is None


def test_shared_dict_operations(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.sdict(1)
    assert bridge.sdict_get(h, "k") is None
    bridge.sdict_set(h, "k", [1, 2])
    assert bridge.sdict_get(h, "k") == ([1, 2],)
    assert bridge.sdict_len(h) == 1 and bridge.sdict_keys(h) == ["k"]
    assert bridge.sdict_items(h) == [("k", [1, 2])]
    assert bridge.sdict_del(h, "k") is True and bridge.sdict_del(h, "k") is False
    bridge.sdict_destroy(h)
    with pytest.raises(RuntimeError, match="the shared dict has been destroyed"):
        bridge.sdict_get(h, "k")
    bridge.sdict_destroy(h)  # again: nothing


def test_wrong_handles_raise_type_error(vm: FakeVM, bridge: Bridge) -> None:
    sd, ch, bch = vm.sdict(1), vm.channel(2), vm.channel(3, "byte_channel")
    with pytest.raises(TypeError, match="a shared dict"):
        bridge.sdict_get(ch, "k")
    with pytest.raises(TypeError, match="a channel"):
        bridge.ch_take(sd)
    with pytest.raises(TypeError, match="a byte channel sends bytes"):
        bridge.ch_send(bch, "text")
    assert bridge.ch_send(bch, bytearray(b"x")) == 0


def test_receive_takes_then_waits_without_taking(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.channel(1)
    vm.script.extend([A("ready")])
    vm.queues[h].append("m")
    assert bridge.ch_receive(h, -1) == ("m",)
    recvs = [c for c in vm.calls if c[0] == "ch_recv"]
    assert recvs == [(A("ch_recv"), h, False, WAIT_SLICE_MS)] * 2


def test_receive_timeout_asks_for_what_is_left(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.channel(1)
    assert bridge.ch_receive(h, 0) is None
    assert bridge.ch_receive(h, 2.5) is None
    waits = [c[3] for c in vm.calls if c[0] == "ch_recv"]
    assert waits[0] == 0 and all(0 <= w <= 3 for w in waits[1:])


def test_receive_closed_and_iteration(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.channel(1)
    assert bridge.ch_send(h, 1) == 0 and bridge.ch_send(h, 2) == 0
    bridge.ch_close(h)
    assert bridge.ch_send(h, 3) == 2
    assert list(bridge.ch_iter(h)) == [1, 2]
    assert bridge.ch_take(h) is False and bridge.ch_receive(h, 10) is False
    assert bridge.ch_info(h) == {"size": 0, "count": 0, "max_size": None, "closed": True}


def test_notifier_hands_tokens_across_threads() -> None:
    n = Notifier()
    try:
        assert n.take() == []
        threads = [threading.Thread(target=n.signal, args=(t,)) for t in range(1, 6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        readable, _, _ = select.select([n.fileno()], [], [], 5)
        assert readable == [n.fileno()]
        assert sorted(n.take()) == [1, 2, 3, 4, 5]
        readable, _, _ = select.select([n.fileno()], [], [], 0)
        assert readable == []
    finally:
        n.close()


def test_wait_async_signals_once_ready(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.channel(1)
    n = Notifier()
    try:
        vm.script.extend([A("timeout"), A("ready")])
        waiter = bridge.ch_wait_async(h, n, 7)
        readable, _, _ = select.select([n.fileno()], [], [], 5)
        assert readable and n.take() == [7]
        assert waiter.cancel() is True and waiter.cancel() is False
        with pytest.raises(TypeError, match="Notifier"):
            bridge.ch_wait_async(h, object(), 1)
    finally:
        n.close()


def test_kind_of_reads_the_handle_or_asks_the_native_module() -> None:
    class Handle:
        kind = "channel"

    assert _bridge.kind_of(Handle()) == "channel"
    assert _bridge.kind_of(42) is None
    assert _bridge.kind_of(_ref(1)) is None  # no bridge outside a child


def _tokens(n: Notifier, count: int) -> list[int]:
    """The tokens signalled on ``n``, once ``count`` have come (5 s at most)."""
    got: list[int] = []
    while len(got) < count:
        readable, _, _ = select.select([n.fileno()], [], [], 5)
        assert readable, f"only {got} signalled"
        got += n.take()
    return got


def _wait_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "erlang-channel-wait"]


def test_async_waiters_of_a_channel_share_one_wait(vm: FakeVM, bridge: Bridge) -> None:
    h = vm.channel(1)
    vm.gate = queue.Queue()
    n = Notifier()
    try:
        bridge.ch_wait_async(h, n, 1)
        w2 = bridge.ch_wait_async(h, n, 2)
        w2.cancel()
        bridge.ch_wait_async(h, n, 3)
        vm.gate.put(A("ready"))
        assert sorted(_tokens(n, 2)) == [1, 3]
        assert [c for c in vm.calls if c[0] == "ch_await"] == [(A("ch_await"), h, WAIT_SLICE_MS)]
        for t in _wait_threads():
            t.join(5)
        # a wait whose waiters are all cancelled ends at its slice's end
        bridge.ch_wait_async(h, n, 4).cancel()
        vm.gate.put(A("timeout"))
        for t in _wait_threads():
            t.join(5)
        assert not _wait_threads() and n.take() == []
    finally:
        n.close()
