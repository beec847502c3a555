"""``erlang.PyBuffer`` of an isolated context's child (``erlang._pybuffer``)
and the decoder's hook for NIF resources (``erlang._etf``), over a test
double of the VM's half (``py_bridge``'s ``buf_*`` operations) that answers
with the same terms.  The real pair is tested from Erlang
(test/py_isolated_buffer_SUITE.erl); this file runs in a plain interpreter
and inside the VM (python_SUITE)."""

from __future__ import annotations

import gc
import pickle
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from erlang import _pybuffer
from erlang._etf import Decoder, names_resource
from erlang._pybuffer import Buffers, PyBuffer, _split_lines
from erlang._types import Atom, Ref

A = Atom


def _ref(n: int, resource: bool = True) -> Ref:
    """A reference's external form; ``resource``: with the VM's marker bit."""
    words = bytearray(n.to_bytes(12, "big"))
    if resource:
        words[5] |= 0x02  # bit 17 of the second number
    else:
        words[5] &= ~0x02 & 0xFF
    return Ref(b"\x83Z\x00\x03w\rnonode@nohost\x00\x00\x00\x00" + bytes(words))


class FakeBuffer:
    def __init__(self, data: bytes = b"", eof: bool = False) -> None:
        self.data = bytearray(data)
        self.pos = 0
        self.eof = eof
        self.closed = False

    def takeable(self, n: int, mode: str) -> int:
        avail = len(self.data) - self.pos
        span = min(avail, n)
        at = bytes(self.data[self.pos:self.pos + span])
        if mode == "any":
            return span if span > 0 or n == 0 or self.eof else -1
        i = at.find(b"\n") if mode == "line" else at.rfind(b"\n") if mode == "lines" else -1
        if i >= 0:
            return i + 1
        return span if avail >= n or self.eof else -1


class FakeVM:
    """py_bridge's buffer operations over FakeBuffers."""

    def __init__(self) -> None:
        self.kinds: dict[Ref, str] = {}
        self.bufs: dict[Ref, FakeBuffer] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.pinned: set[Ref] = set()
        self.on_wait: Callable[[], None] | None = None  # a "writer", when a read waits
        self.script: deque[Any] = deque()  # answers to buf_read first

    def add(self, data: bytes = b"", eof: bool = True, n: int = 1) -> Ref:
        ref = _ref(n)
        self.kinds[ref] = "buffer"
        self.bufs[ref] = FakeBuffer(data, eof)
        return ref

    def op(self, name: Any, *args: Any) -> Any:
        assert type(name) is Atom
        self.calls.append((str(name), *args))
        return getattr(self, "_" + name)(*args)

    def _open(self, h: Ref, dropped: list[Any] | None = None) -> Any:
        if dropped is not None:
            self._buf_release(dropped)
        kind = self.kinds.get(h)
        if kind == "buffer":
            self.pinned.add(h)
        return A(kind) if kind else None

    def _buf_release(self, dropped: list[Any]) -> Any:
        for h in dropped:
            self.pinned.discard(h)
        return A("ok")

    def _buf(self, h: Ref) -> FakeBuffer:
        assert type(h) is Ref  # the proxy sends a plain reference
        return self.bufs[h]

    def _buf_read(self, h: Ref, n: int, mode: Atom, ms: int) -> Any:
        if self.script:
            return self.script.popleft()
        if h not in self.bufs:
            return A("gone")
        b = self._buf(h)
        n = min(n, 1 << 20)
        if b.closed:
            return A("closed")
        k = b.takeable(n, str(mode))
        if k < 0:
            if ms > 0 and self.on_wait is not None:
                self.on_wait()
                return A("ready")
            return A("timeout")
        if k == 0 and n > 0 and b.eof:
            return A("eof")
        got = bytes(b.data[b.pos:b.pos + k])
        b.pos += k
        return got

    def _buf_peek(self, h: Ref, off: int, n: int) -> Any:
        b = self._buf(h)
        start = min(b.pos + off, len(b.data))
        return bytes(b.data[start:start + n])

    def _buf_seek(self, h: Ref, offset: int, whence: int) -> Any:
        b = self._buf(h)
        base = (0, b.pos, len(b.data))[whence] if 0 <= whence <= 2 else 0
        to = base + offset
        err = ("closed" if b.closed else "whence" if not 0 <= whence <= 2
               else "not_eof" if whence == 2 and not b.eof
               else "outside" if not 0 <= to <= len(b.data) else None)
        if err:
            return (A("error"), A(err))
        b.pos = to
        return (A("ok"), to)

    def _buf_find(self, h: Ref, sub: bytes, start: int, end: int) -> Any:
        b = self._buf(h)
        unread = bytes(b.data[b.pos:])
        end = min(end, len(unread))
        if start < 0 or start > end or len(sub) > end - start:
            return -1
        return unread.find(sub, start, end)

    def _buf_state(self, h: Ref) -> Any:
        b = self._buf(h)
        return {A("size"): len(b.data), A("read"): b.pos, A("eof"): b.eof,
                A("closed"): b.closed}

    def _buf_close(self, h: Ref) -> Any:
        self._buf(h).closed = True
        return A("ok")

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture()
def vm() -> FakeVM:
    return FakeVM()


def proxy(vm: FakeVM, data: bytes = b"", eof: bool = True, n: int = 1) -> tuple[PyBuffer, Buffers]:
    ref = vm.add(data, eof, n)
    bufs = Buffers(vm.op)
    buf = bufs.resource(ref, {})
    assert isinstance(buf, PyBuffer)
    return buf, bufs


# ------------------------------------------------------------ the decoder's hook


def test_names_resource_reads_the_marker_bit() -> None:
    for ref, marked in ((_ref(7), True), (_ref(7, resource=False), False)):
        b = ref.etf
        assert names_resource(b, 1, len(b)) is marked


def test_decoder_asks_only_about_resources() -> None:
    seen: list[Ref] = []
    dec = Decoder()
    dec.resource = lambda r: (seen.append(r), ("res", r))[1]
    plain, res = _ref(1, resource=False), _ref(2)
    term = pickle.loads(pickle.dumps([plain, res]))  # the same refs, fresh objects
    from erlang._etf import encode

    out = dec.decode(encode([term[0], {"k": (term[1],)}, term[1]]))
    assert out[0] == plain and type(out[0]) is Ref
    assert out[1]["k"][0] == ("res", res) and out[2] == ("res", res)
    assert seen == [res, res]
    assert Decoder().decode(encode(res)) == res  # no hook: a Ref


# ------------------------------------------------------------ Buffers


def test_one_proxy_per_buffer_and_the_cache_of_others(vm: FakeVM) -> None:
    ref = vm.add(b"x")
    chan = _ref(5)
    vm.kinds[chan] = "channel"
    other = _ref(6)  # an ETS table's: none of the VM's handles
    bufs = Buffers(vm.op)
    kinds: dict[bytes, str] = {}
    a = bufs.resource(ref, kinds)
    assert bufs.resource(ref, kinds) is a and a.etf == ref.etf
    assert bufs.resource(chan, kinds) is chan and kinds == {chan.etf: "channel"}
    assert bufs.resource(other, kinds) is other
    assert bufs.resource(chan, kinds) is chan and bufs.resource(other, kinds) is other
    assert vm.names() == ["open", "open", "open"]
    assert vm.pinned == {ref}


def test_a_dropped_proxy_is_released_with_the_next_call(vm: FakeVM) -> None:
    r1, r2 = vm.add(b"1", n=1), vm.add(b"2", n=2)
    bufs = Buffers(vm.op)
    b1 = bufs.resource(r1, {})
    assert vm.pinned == {r1}
    del b1
    gc.collect()
    b2 = bufs.resource(r2, {})
    assert vm.calls[-1] == ("open", r2, [r1]) and vm.pinned == {r2}
    del b2
    gc.collect()
    b1 = bufs.resource(r1, {})  # a new proxy of r1
    assert vm.pinned == {r1}
    del b1
    gc.collect()
    b2 = bufs.resource(r2, {})
    assert b2.read() == b"2"
    assert [c[0] for c in vm.calls[-2:]] == ["open", "buf_read"]


# ------------------------------------------------------------ PyBuffer


def test_type_and_term(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"abc")
    assert type(buf).__name__ == "PyBuffer" and type(buf).__module__ == "erlang"
    assert isinstance(buf, Ref)  # it converts back to the same term
    from erlang._etf import encode

    assert encode(buf) == encode(Ref(buf.etf))
    with pytest.raises(TypeError):
        PyBuffer(buf.etf)
    with pytest.raises(TypeError):
        pickle.dumps(buf)
    assert (buf.readable(), buf.writable(), buf.seekable()) == (True, False, True)


def test_reads(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"chunk1chunk2")
    assert buf.read(5) == b"chunk"
    assert (buf.readable_amount(), len(buf), buf.tell()) == (7, 7, 5)
    assert buf.read() == b"1chunk2" and buf.read() == b"" and buf.read(3) == b""
    assert buf.at_eof()
    buf2, _ = proxy(vm, b"abc", n=2)
    assert buf2.read_nonblock(2) == b"ab" and buf2.read_nonblock() == b"c"
    assert buf2.read_nonblock() == b"" and buf2.read(0) == b"" and buf2.read(None) == b""


def test_reads_in_chunks(vm: FakeVM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pybuffer, "CHUNK", 4)
    data = bytes(range(30))
    buf, _ = proxy(vm, data)
    assert buf.read(10) == data[:10]  # 4 + 4 + 2: what is there, up to 10
    assert buf.read() == data[10:]
    assert all(c[2] <= 4 for c in vm.calls if c[0] == "buf_read")
    buf2, _ = proxy(vm, data, n=2)
    assert buf2.read_nonblock() == data
    buf3, _ = proxy(vm, data, n=3)
    assert bytes(buf3) == data and buf3.tell() == 0


def test_lines(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"a\nbb\nccc\n")
    assert buf.readline() == b"a\n" and buf.readline(1) == b"b"
    assert buf.readlines() == [b"b\n", b"ccc\n"] and buf.readline() == b""
    buf2, _ = proxy(vm, b"x\ny\nz\n", n=2)
    assert buf2.readlines(3) == [b"x\n", b"y\n"]
    buf3, _ = proxy(vm, b"a\r\nb\rc\nd", n=3)
    assert list(buf3) == [b"a\r\n", b"b\rc\n", b"d"]
    buf4, _ = proxy(vm, b"line1\nline2\n\nlast", n=4)
    assert next(buf4) == b"line1\n" and list(buf4) == [b"line2\n", b"\n", b"last"]
    with pytest.raises(StopIteration):
        next(buf4)


def test_long_lines_across_chunks(vm: FakeVM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pybuffer, "CHUNK", 4)
    monkeypatch.setattr(_pybuffer, "AHEAD", 8)
    data = b"0123456789\nab\n" + b"x" * 13 + b"\nend"
    buf, _ = proxy(vm, data)
    assert buf.readline() == b"0123456789\n" and buf.readline(1) == b"a"
    assert buf.readline(6) == b"b\n"
    assert buf.readline(5) == b"xxxxx"
    buf2, _ = proxy(vm, data, n=2)
    assert list(buf2) == _split_lines(data)
    buf3, _ = proxy(vm, data, n=3)
    assert buf3.readlines() == _split_lines(data)
    buf4, _ = proxy(vm, data, n=4)
    assert buf4.readlines(12) == [b"0123456789\n", b"ab\n"]


def test_a_loop_gives_back_what_it_took_ahead(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"h1\nh2\n\nbody\nmore\n")
    headers = []
    for line in buf:
        if line == b"\n":
            break
        headers.append(line)
    assert headers == [b"h1\n", b"h2\n"]
    state = vm.bufs[Ref(buf.etf)]
    assert state.pos == 7  # the loop's finally gave back the rest
    assert buf.read() == b"body\nmore\n"
    buf2, _ = proxy(vm, b"one\ntwo\nthree\n", n=2)
    it = iter(buf2)
    assert next(it) == b"one\n" and buf2.tell() == 4
    assert vm.bufs[Ref(buf2.etf)].pos == 14  # read ahead...
    assert buf2.find(b"three") == 4  # ...given back before a find
    assert vm.bufs[Ref(buf2.etf)].pos == 4
    assert next(it) == b"two\n" and buf2.read() == b"three\n"


def test_seek_tell_find(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"hello world\nbye\n", eof=False)
    assert (buf.seek(6), buf.read(5), buf.tell(), buf.seek(0)) == (6, b"world", 11, 0)
    found = (buf.find(b"o"), buf.find(b"o w"), buf.find(b"zz"), buf.find(b"l", 3, 4))
    assert found == (4, 4, -1, 3)
    assert buf.find(bytearray(b"w")) == 6 and buf.find(b"x", 0, 10**30) == -1
    for args, text in (((0, 2), "writer's close"), ((100,), "outside"), ((-1,), "outside"),
                       ((0, 3), "whence")):
        with pytest.raises(ValueError, match=text):
            buf.seek(*args)
    vm.bufs[Ref(buf.etf)].eof = True
    assert buf.seek(-4, 2) == 12 and buf.read() == b"bye\n"


def test_bad_arguments(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"abc")
    for call in (lambda: buf.read(1.5), lambda: buf.read("x"), lambda: buf.read(1, 2),
                 lambda: buf.readlines(None, 1), lambda: buf.find("str"),
                 lambda: buf.find(b"a", None), lambda: buf.seek("a"), lambda: buf.seek(0, "x")):
        with pytest.raises(TypeError):
            call()
    for call in (lambda: buf.read(2**70), lambda: buf.seek(2**70), lambda: buf.seek(0, 2**40)):
        with pytest.raises(OverflowError):
            call()
    assert vm.names() == ["open"]  # none reached the VM


def test_closed_and_gone(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"abc\n")
    assert buf.closed is False
    buf.close()
    assert buf.closed is True and buf.tell() == 0 and buf.find(b"b") == 1
    for call in (buf.read, buf.readline, lambda: list(buf), lambda: buf.seek(0)):
        with pytest.raises(ValueError, match="closed buffer"):
            call()
    buf2, _ = proxy(vm, b"x", n=2)
    del vm.bufs[Ref(buf2.etf)]
    vm._buf_state = lambda h: A("gone")  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="gone"):
        buf2.read()
    with pytest.raises(ValueError, match="gone"):
        buf2.tell()
    assert repr(buf2) == "<erlang.PyBuffer gone>"


def test_waits_ask_again(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"", eof=False)
    state = vm.bufs[Ref(buf.etf)]
    writes = deque([b"par", b"tial\nnext"])
    vm.on_wait = lambda: state.data.extend(writes.popleft())
    assert buf.readline() == b"partial\n"
    vm.script.extend([A("timeout"), A("timeout")])
    assert buf.read(2) == b"ne"  # two slices waited, then it came
    vm.on_wait = None
    assert buf.read_nonblock() == b"xt" and buf.read_nonblock() == b""
    assert buf.readable_amount() == 0 and not buf.at_eof()
    assert repr(buf) == "<erlang.PyBuffer 12 bytes written, at 12>"


def test_bytes_and_memoryview(vm: FakeVM) -> None:
    buf, _ = proxy(vm, b"abcdef")
    assert buf.read(2) == b"ab" and bytes(buf) == b"cdef" and buf.tell() == 2
    with pytest.raises(BufferError):
        buf.__buffer__(1)
    view = buf.__buffer__(0)
    assert view.readonly and view.tobytes() == b"cdef"
    if sys.version_info >= (3, 12):
        assert memoryview(buf).tobytes() == b"cdef"
    else:
        with pytest.raises(TypeError):
            memoryview(buf)


def test_split_lines() -> None:
    assert _split_lines(b"a\r\nb\rc\n\nd") == [b"a\r\n", b"b\rc\n", b"\n", b"d"]
    assert _split_lines(b"x\n") == [b"x\n"] and _split_lines(b"") == []
