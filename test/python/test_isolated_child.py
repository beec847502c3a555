"""The Python half of an isolated context (``erlang._chan``, ``erlang._isolated``)
outside the VM: frames over socket pairs standing for the VM's two sockets.

Checks which socket each reply takes (small replies to synchronous
requests on the fast one, the rest on the control one), that a stop for a
finished request says DONE, and that RESEND sends a fast reply again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from erlang import _chan
from erlang._chan import HEADER, Channel
from erlang._etf import Decoder, Encoder
from erlang._isolated import Child
from erlang._types import Atom, Pid, Ref

_SERVER = Pid(b"\x83X\x77\x0dnonode@nohost" + bytes(12))
_CALLER = Pid(b"\x83X\x77\x0dnonode@nohost" + bytes([0, 0, 0, 7]) + bytes(8))


class Pair:
    """A child's channel; ``vm_ctl`` and ``vm_fast`` are the VM's ends."""

    def __init__(self) -> None:
        self.vm_ctl, child_ctl = socket.socketpair()
        self.vm_fast, child_fast = socket.socketpair()
        self.chan = Channel(child_ctl, spin=0.0)
        self.chan.attach_fast(child_fast)
        self.child = Child(self.chan, _SERVER, 1)
        self.enc = Encoder()
        self.dec = Decoder()
        self._frame(self.vm_fast, _chan.PID, 1, 0, self.enc.encode(_CALLER))
        self.pump()

    def close(self) -> None:
        for s in (self.vm_ctl, self.vm_fast):
            s.close()
        self.chan.close()

    @staticmethod
    def _frame(sock: socket.socket, kind: int, a: int, b: int, body: bytes = b"") -> None:
        sock.sendall(HEADER.pack(17 + len(body), kind, a, b) + body)

    def send(self, kind: int, a: int, b: int, body: bytes = b"") -> None:
        """A frame from the VM (on the fast socket, where they all go)."""
        self._frame(self.vm_fast, kind, a, b, body)

    def pump(self) -> None:
        """Read what the VM sent, run the requests among it."""
        self.chan.poll()
        while self.child.inbox:
            self.child._handle(self.child.inbox.popleft())

    @staticmethod
    def recv(sock: socket.socket) -> tuple[int, int, int, bytes]:
        """One frame the child sent on ``sock``."""
        head = _exactly(sock, HEADER.size)
        length, kind, a, b = HEADER.unpack(head)
        return kind, a, b, _exactly(sock, length - 17)

    def request(self, kind: int, rid: int, payload: Any) -> None:
        self.send(kind, rid, (1 << 32) | 1, self.enc.encode(payload))
        self.pump()


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    sock.settimeout(5)
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the child closed its socket"
        data += chunk
    return data


def _pending(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


@pytest.fixture
def pair() -> Iterator[Pair]:
    p = Pair()
    yield p
    p.close()


def _call(fn: str, *args: Any) -> tuple[Any, ...]:
    return (Atom("call"), Atom("math"), Atom(fn), list(args))


def test_sync_reply_on_fast_socket(pair: Pair) -> None:
    pair.request(_chan.REQ_SYNC, 5, _call("sqrt", 16.0))
    kind, rid, _b, body = pair.recv(pair.vm_fast)
    assert (kind, rid) == (_chan.REPLY, 5)
    assert pair.dec.decode(body) == (Atom("ok"), 4.0)
    assert not _pending(pair.vm_ctl)


def test_async_reply_on_control_socket(pair: Pair) -> None:
    pair.request(_chan.REQ, 6, _call("sqrt", 9.0))
    kind, rid, _b, body = pair.recv(pair.vm_ctl)
    assert (kind, rid) == (_chan.REPLY, 6)
    assert pair.dec.decode(body) == (Atom("ok"), 3.0)
    assert not _pending(pair.vm_fast)


def test_large_sync_reply_on_control_socket(pair: Pair) -> None:
    code = "b'x' * n"
    pair.request(_chan.REQ_SYNC, 7, (Atom("eval"), code, {"n": _chan.FAST_MAX + 1}, Atom("term")))
    kind, rid, _b, body = pair.recv(pair.vm_ctl)
    assert (kind, rid) == (_chan.REPLY, 7)
    status, value = pair.dec.decode(body)
    assert status == Atom("ok") and len(value) == _chan.FAST_MAX + 1
    assert not _pending(pair.vm_fast)


def test_stop_of_finished_request_says_done(pair: Pair) -> None:
    pair.request(_chan.REQ_SYNC, 8, _call("sqrt", 4.0))
    pair.recv(pair.vm_fast)
    pair.send(_chan.STOP, 8, 0)
    pair.pump()
    assert pair.recv(pair.vm_ctl)[:2] == (_chan.DONE, 8)


def test_stop_of_queued_request_drops_it(pair: Pair) -> None:
    pair.send(_chan.REQ_SYNC, 9, (1 << 32) | 1, pair.enc.encode(_call("sqrt", 4.0)))
    pair.send(_chan.STOP, 9, 0)
    pair.chan.poll()  # both read: the stop finds the request still queued
    assert pair.recv(pair.vm_ctl)[:2] == (_chan.DROPPED, 9)
    assert not pair.child.inbox


def test_resend_sends_a_fast_reply_again(pair: Pair) -> None:
    pair.request(_chan.REQ_SYNC, 10, _call("sqrt", 25.0))
    first = pair.recv(pair.vm_fast)
    pair.send(_chan.RESEND, 0, 0, pair.enc.encode([10, 11]))  # 11: never made
    pair.pump()
    assert pair.recv(pair.vm_fast) == first
    assert not _pending(pair.vm_fast)


def test_frames_split_across_reads(pair: Pair) -> None:
    body = pair.enc.encode(["f"])
    whole = HEADER.pack(17 + len(body), _chan.PUBLISH, 0, 0) + body
    for i in range(0, len(whole), 5):
        pair.vm_fast.sendall(whole[i:i + 5])
        pair.chan.poll()
    assert pair.child.registered == frozenset({"f"})


def _ref(n: int) -> Ref:
    """A plain reference (make_ref()'s kind) of this node."""
    return Ref(b"\x83Z\x00\x03w\x0dnonode@nohost" + bytes(4) + n.to_bytes(4, "big") + bytes(8))


def test_async_cancel_runs_in_order_with_requests(pair: Pair) -> None:
    # py:async_await's timeout on an isolated context: the refs to cancel,
    # queued behind the requests already there (their submissions) and
    # answered with nothing (the caller dropped the aliases the outcomes go to).
    refs = [_ref(1), _ref(2)]
    pair.send(_chan.REQ, 12, (1 << 32) | 1, pair.enc.encode(_call("sqrt", 4.0)))
    pair.send(_chan.ASYNC_CANCEL, 0, 0, pair.enc.encode(refs))
    pair.chan.poll()
    assert [f[0] for f in pair.child.inbox] == [_chan.REQ, _chan.ASYNC_CANCEL]
    from erlang import _async

    pair.pump()
    assert pair.recv(pair.vm_ctl)[:2] == (_chan.REPLY, 12)
    # Not submitted here: remembered, so that a later submission is dropped.
    assert all(ref in _async._tombstones for ref in refs)
    assert not _pending(pair.vm_ctl) and not _pending(pair.vm_fast)
