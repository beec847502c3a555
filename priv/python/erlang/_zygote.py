"""A zygote: a prepared Python that forks fresh isolated children in milliseconds.

``src/py_zygote.erl`` starts ``python -m erlang._zygote SOCKET`` as it starts
an isolated context's child (the same HELLO, CONFIG, READY over a Unix
socket), but the zygote serves no requests: it runs the ``preload`` code
once (imports numpy, say), then waits for FORK frames.  Each forks a child
that already has the interpreter and the preloaded modules, and becomes an
isolated context's child for the socket and token the frame names
(``erlang._child.serve``), its namespaces seeded from the preload's globals.
FORKED answers with the child's pid; EXITED reports each child's exit
(``{signal, N}`` or ``{exit, Status}``), which the zygote reaps.

The child a FORK gets is forked ahead (the spare): it has run the first
steps of a child's start-up and waits on a pipe for its socket and token,
so that neither the fork nor the copying of the pages a new child writes
to first is on the path of a FORK; the next spare is forked when FORKED is
sent.  (Forked later, once the child is ready, it was not ready itself
for FORKs that come one after the other.)  What every child imports is
imported by the zygote, and the zygote's objects are frozen
(``gc.freeze``) before any fork.

The zygote is single-threaded (forking a process with threads is unsafe)
and runs no user code but the preload.  Its children (the spare too) die
with it (``PR_SET_PDEATHSIG``), and it dies with the VM.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
from typing import Any

from erlang import _chan, _child, _isolated
from erlang._chan import Channel
from erlang._etf import Decoder, Encoder
from erlang._types import Atom, Pid

__all__ = ["main"]

# The server and caller of the spare's warm-up request (nobody reads it).
_NOBODY = Pid(b"\x83X\x77\x0dnonode@nohost" + bytes(12))

FORK = 1  # to the zygote: A = sequence number, Body = {Socket, Token, SpinUs}
FORKED = 1  # from it: A = sequence number, B = the child's pid
EXITED = 2  # from it: A = the child's pid, Body = {signal, N} | {exit, Status}


def _reason(status: int) -> tuple[Atom, int]:
    code = os.waitstatus_to_exitcode(status)
    return (Atom("signal"), -code) if code < 0 else (Atom("exit"), code)


class _Spare:
    """The next child, forked ahead of its FORK: it waits on a pipe for the
    socket and token it is for.  A FORK then costs a write to the pipe, and
    the fork itself (milliseconds: the zygote's page tables are copied) is
    paid between two FORKs instead of in one."""

    __slots__ = ("pid", "pipe")

    def __init__(self) -> None:
        self.pid = 0  # 0: none
        self.pipe = -1  # the write end of its pipe

    def drop(self) -> None:
        if self.pipe >= 0:
            os.close(self.pipe)
        self.pid, self.pipe = 0, -1


class _Sender:
    """The zygote's sends, safe from its SIGCHLD handler.  Python runs a
    signal's handler between two bytecodes of the main thread, or inside a
    blocking call such as ``socket.sendall``: also while the main code is
    in the middle of a send, holding the channel's write lock, and
    blocking SIGCHLD does not stop a signal that came just before.  So a
    frame the handler sends while a send is under way is queued, and sent
    by that send when it is done."""

    __slots__ = ("busy", "chan", "queued")

    def __init__(self, chan: Channel) -> None:
        self.chan = chan
        self.busy = False
        self.queued: list[tuple[int, int, int, bytes]] = []

    def send(self, kind: int, a: int, b: int, body: bytes = b"") -> None:
        """Send a frame, now or (from a signal handler that cut into a send)
        at the end of the send under way."""
        if self.busy:
            self.queued.append((kind, a, b, body))
            return
        self.busy = True
        try:
            self.chan.send(kind, a, b, body)
            while self.queued:
                self.chan.send(*self.queued.pop(0))
        finally:
            self.busy = False
        while self.queued:  # queued after the loop above ended: no send is under way
            self.send(*self.queued.pop(0))


def _reaper(sender: _Sender, spare: _Spare) -> Any:
    encoder = Encoder()

    def reap(signum: int, frame: Any) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == spare.pid:  # died before it was given a job
                spare.drop()
            sender.send(EXITED, pid, 0, encoder.encode(_reason(status)))

    return reap


def _prefork(chan: Channel, spare: _Spare, scope: dict[str, Any]) -> None:
    """Fork the spare child, unless there is one (with SIGCHLD blocked)."""
    if spare.pid:
        return
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(wfd)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            chan.close()
            _child.die_with_parent()
            try:
                _warm_up()
            except Exception:  # noqa: BLE001 - a child not warmed up starts all the same
                pass
            body = b""
            while chunk := os.read(rfd, 65536):
                body += chunk
            if not body:  # the zygote is gone
                os._exit(0)
            path, token, spin_us = Decoder().decode(body)
            _child.serve(str(path), str(token), int(spin_us) / 1e6, scope)
        finally:
            os._exit(70)
    os.close(rfd)
    spare.pid, spare.pipe = pid, wfd


def _warm_up() -> bytes:
    """What a child does first, done by the spare while it waits: the
    first run of each piece of code in a forked child writes to (and so
    copies) the pages of the objects it uses, which took longer than the
    work itself (some 1.5 ms of a 2 ms start-up; and a first request took
    1.7 ms where the next takes 0.3).  So a Child is made, runs a request
    and is dropped; what it sent is returned (for tests)."""
    config = {Atom("server"): Atom("warm_up"), Atom("generation"): 1, Atom("paths"): [],
              Atom("rlimits"): {}, Atom("functions"): [Atom("f")], Atom("sandbox"): True,
              Atom("setup"): {Atom("version"): 1, Atom("log_level"): 30, Atom("paths"): []}}
    Decoder().decode(Encoder().encode((config, ("token", _child.info()))))
    a, b = socket.socketpair()
    try:
        encoder = Encoder()
        child = _isolated.Child(Channel(a), _NOBODY, 1)
        child._dispatch((_chan.PID, 1, 0, encoder.encode(_NOBODY)))
        request = encoder.encode((Atom("eval"), "1 + 1", {}, Atom("term")))
        child._handle((_chan.REQ_SYNC, 1, (1 << 32) | 1, request))
        child._handle((_chan.DOWN, 1, 0, b""))
        return b.recv(65536, socket.MSG_DONTWAIT)
    finally:
        _isolated.current = None
        a.close()
        b.close()


def _fork(chan: Channel, sender: _Sender, spare: _Spare, seq: int, body: bytes,
          scope: dict[str, Any]) -> None:
    """Give the FORK to the spare child (forked now if there is none), then
    fork the next spare.  SIGCHLD waits meanwhile (its handler drops a
    spare that died)."""
    Decoder().decode(body)  # (checked here: a bad FORK is the zygote's error, not a child's)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        for _ in range(3):
            _prefork(chan, spare, scope)
            pid, pipe = spare.pid, spare.pipe
            spare.pid, spare.pipe = 0, -1
            try:
                os.write(pipe, body)
            except OSError:  # it died meanwhile (the reaper will tell the VM)
                continue
            finally:
                with contextlib.suppress(OSError):  # (closed if the handler dropped it)
                    os.close(pipe)
            sender.send(FORKED, seq, pid)
            _prefork(chan, spare, scope)
            return
        raise RuntimeError("the zygote's children die before they start")
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def main(argv: list[str]) -> None:
    """``python -m erlang._zygote SOCKET``: set up, then fork on request."""
    token = os.environ.pop("ERLANG_PYTHON_TOKEN", "")
    spin = float(os.environ.pop("ERLANG_PYTHON_SPIN_US", "500")) / 1e6
    chan, config = _child.connect(argv[1], token, spin)
    # What every child imports (_child.setup), imported once here: in a
    # child, importing the logging and setup modules took longer than the
    # fork and the handshake together.
    _child.load_prctl()  # PR_SET_PDEATHSIG in each child
    import resource  # noqa: F401

    from erlang import (  # noqa: F401
        _bridge,
        _isolated,
        _logging,
        _loghook,
        _sandbox,
        _setup,
        _stream,
        _tracing,
    )

    for path in reversed(list(config.get("paths") or [])):
        sys.path.insert(0, str(path))
    scope: dict[str, Any] = {"__name__": "__main__"}
    preload = config.get("preload")
    if preload:
        try:
            exec(compile(str(preload), "<preload>", "exec"), scope)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - reported to the VM
            chan.send(_chan.STARTUP_ERROR, 0, 0,
                      Encoder().encode((Atom("preload"), f"{type(exc).__name__}: {exc}")))
            os._exit(3)
    scope = {k: v for k, v in scope.items() if k != "__builtins__"}
    # Children share the zygote's objects until they write to them: with
    # them frozen, a child's collections never visit them (no copy of their
    # pages, no time spent on them).
    gc.collect()
    gc.freeze()
    spare = _Spare()
    sender = _Sender(chan)
    signal.signal(signal.SIGCHLD, _reaper(sender, spare))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        _prefork(chan, spare, scope)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    sender.send(_chan.READY, 0, 0)
    while True:
        try:
            kind, seq, _b, body = chan.recv_frame(None)
        except _chan.Closed:  # the VM let go of the zygote
            os._exit(0)
        if kind == FORK:
            _fork(chan, sender, spare, seq, body, scope)


if __name__ == "__main__":
    main(sys.argv)
