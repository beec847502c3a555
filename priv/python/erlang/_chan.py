"""The channel between an isolated context's child and the VM.

Frames are ``<<Length:32, Kind:8, A:64, B:64, Body/binary>>`` (the body is
a term in external term format, or empty), over two stream sockets (see
``src/py_isolated.erl`` and ``src/py_isolated_caller.erl``):

- the *control* socket, which the context process reads (``{packet, 4}``):
  the start-up handshake, then every frame from the child except the
  replies below;
- the *fast* socket, which the VM's callers write directly (requests, and
  the context process's own frames: stops, process numbers...), and on
  which the child answers a synchronous request with a small reply, read
  by the waiting callers themselves.  A zygote has no fast socket.

Reading is done by whichever thread needs a frame and finds no other thread
reading (leader/follower): the main thread when it waits for its next
request or for the answer to an ``erlang.call``, a Python thread when it
waits for the answer to its own ``erlang.call``.  So the common case (the
main thread alone) reads the socket itself, with no hand-off between
threads, and a thread that waits for Erlang while the main thread runs
Python code still gets its answer.  The reader dispatches what it reads
(``Channel.dispatch`` set by the child) with the channel's condition held,
then wakes every waiter to look at the state again.

After sending, a reader polls the socket for ``spin`` seconds before it
blocks in ``recv``: on a virtual machine a blocked process takes tens of
microseconds to wake, several times the cost of the request itself.  It
yields the core between polls, so that the VM and the other children get
it when the machine is busy.
"""

from __future__ import annotations

# _socket, not socket: the socket module costs an isolated child some
# milliseconds at each start (its enums); the channel needs none of it.
import _socket
import os
import select
import struct
import threading
import time

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["Channel", "Frame", "HEADER"]

#: The frame header after the 4-byte length: kind, then two unsigned 64-bit
#: fields whose meaning depends on the kind (a request id, a callback id).
HEADER = struct.Struct(">IBQQ")
_HEAD = struct.Struct(">BQQ")

# Frames from the VM.  REQ_SYNC: a caller waits for the reply on the fast
# socket; RESEND: the fast replies of these request ids again (a caller
# that was reading them died); ASYNC_CANCEL: cancel py:async_call tasks.
(REQ, CB_REPLY, STOP, INTERRUPT, DOWN, CREDIT, PUBLISH, CONFIG, PID, REQ_SYNC,
 RESEND, ASYNC_CANCEL) = range(1, 13)
# Frames to the VM.  DONE: a stopped request had already finished;
# FAST_HELLO: the first frame on the fast socket (the token).
(REPLY, CALLBACK, SEND, STREAM, HELLO, READY, DROPPED, STARTUP_ERROR, DONE,
 FAST_HELLO) = range(1, 11)
#: The largest body a reply on the fast socket has (bigger: control socket).
FAST_MAX = 65536

Frame = tuple[int, int, int, bytes]


class Closed(Exception):
    """The VM closed the channel (the context stopped, or the VM is gone)."""


class Channel:
    """Frames over a connected stream socket, safe to use from any thread."""

    def __init__(self, sock: _socket.socket, spin: float = 0.0005) -> None:
        self._sock = sock
        self._rsock = sock  # the socket frames are read from (fast, once attached)
        self._fast: _socket.socket | None = None
        self._spin = spin
        self._wlock = threading.Lock()
        self._flock = threading.Lock()
        self.cond = threading.Condition(threading.Lock())
        self._waiting = 0  # threads in cond.wait (none: no notify needed)
        self._reading = False
        self._buf = bytearray()
        self._rbuf = bytearray(262144)
        self._rview = memoryview(self._rbuf)
        self._poll = select.poll()  # of the socket frames are read from
        self._poll.register(sock, select.POLLIN)
        self._pending: list[Frame] = []
        #: Called with each frame read, with ``cond`` held.
        self.dispatch: Callable[[Frame], None] = lambda frame: None

    def send(self, kind: int, a: int, b: int, body: bytes = b"") -> None:
        """Send one frame (whole, even when several threads send at once)."""
        head = HEADER.pack(17 + len(body), kind, a, b)
        with self._wlock:
            if len(body) < 65536:
                self._sock.sendall(head + body)
            else:
                self._sock.sendall(head)
                self._sock.sendall(body)

    def attach_fast(self, fast: _socket.socket) -> None:
        """Read frames from the fast socket from now on (the control socket
        only carries frames to the VM after start-up)."""
        self._fast = fast
        self._rsock = fast
        self._poll = select.poll()
        self._poll.register(fast, select.POLLIN)

    def send_fast(self, kind: int, a: int, b: int, body: bytes = b"") -> None:
        """Send one frame on the fast socket (the control one without it)."""
        fast = self._fast
        if fast is None:
            self.send(kind, a, b, body)
            return
        head = HEADER.pack(17 + len(body), kind, a, b)
        with self._flock:
            fast.sendall(head + body)

    def wait(self, ready: Callable[[], T], timeout: float | None = None) -> T | None:
        """Wait until ``ready()`` (called with ``cond`` held) returns a true
        value, and return it, reading and dispatching frames while no other
        thread does.  None when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        cond = self.cond
        with cond:
            while not (value := ready()):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                if self._reading:
                    self._waiting += 1
                    try:
                        cond.wait(left)
                    finally:
                        self._waiting -= 1
                    continue
                self._reading = True
                cond.release()
                try:
                    frames = self._read(left)
                finally:
                    cond.acquire()
                    self._reading = False
                dispatch = self.dispatch
                for frame in frames:
                    dispatch(frame)
                if self._waiting:
                    cond.notify_all()
            return value

    def poll(self) -> None:
        """Read and dispatch what has arrived, without blocking, unless
        another thread is reading (it will dispatch it)."""
        cond = self.cond
        if not cond.acquire(timeout=0.05):
            return
        try:
            if self._reading:
                return
            self._reading = True
            cond.release()
            try:
                frames = self._read(0.0)
            finally:
                cond.acquire()
                self._reading = False
            for frame in frames:
                self.dispatch(frame)
            if self._waiting:
                cond.notify_all()
        finally:
            cond.release()

    def close(self) -> None:
        """Close the sockets (a zygote's child lets go of the zygote's)."""
        self._sock.close()
        if self._fast is not None:
            self._fast.close()

    def recv_frame(self, timeout: float | None) -> Frame:
        """One frame, read directly by the only thread that reads (start-up,
        a zygote); None waits for ever."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._pending:
                return self._pending.pop(0)
            self._pending = self._parse()
            if self._pending:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("no frame from the VM")
            self._rsock.settimeout(left)
            try:
                data = self._rsock.recv(262144)
            finally:
                self._rsock.settimeout(None)
            if not data:
                raise Closed()
            self._buf += data

    def _read(self, timeout: float | None) -> list[Frame]:
        """At least one frame (unless ``timeout`` passes), and every other
        frame already arrived."""
        frames = self._parse()
        if frames:
            return frames
        sock = self._rsock
        # Into one buffer made once: recv(n) would allocate n bytes a call
        # (an mmap and munmap for a big n, on every turn of the spin).
        rbuf = self._rbuf
        ready = self._poll.poll
        spin_end = time.perf_counter() + self._spin
        while True:
            if not ready(0):
                if timeout is not None and timeout <= 0:
                    return []
                # Poll (a poll(2) costs a third of a recv that fails with
                # EAGAIN), yielding the core to whatever else is runnable
                # on it: the VM's schedulers, the other children.
                clock = time.perf_counter
                while clock() < spin_end:
                    os.sched_yield()
                    if ready(0):
                        break
            if timeout is not None:
                sock.settimeout(timeout)
            try:
                n = sock.recv_into(rbuf)
            except TimeoutError:
                return []
            finally:
                if timeout is not None:
                    sock.settimeout(None)
            if not n:  # the context stopped, or the VM is gone: so is this child
                os._exit(0)
            self._buf += self._rview[:n]
            frames = self._parse()
            if frames:
                return frames

    def _parse(self) -> list[Frame]:
        buf = self._buf
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            n = int.from_bytes(buf[pos:pos + 4], "big")
            if end - pos - 4 < n:
                break
            kind, a, b = _HEAD.unpack_from(buf, pos + 4)
            frames.append((kind, a, b, bytes(buf[pos + 21:pos + 4 + n])))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return frames
