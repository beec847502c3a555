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

The zygote is single-threaded (forking a process with threads is unsafe)
and runs no user code but the preload.  Its children die with it
(``PR_SET_PDEATHSIG``), and it dies with the VM.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any

from erlang import _chan, _child
from erlang._chan import Channel
from erlang._etf import Decoder, Encoder
from erlang._types import Atom

__all__ = ["main"]

FORK = 1  # to the zygote: A = sequence number, Body = {Socket, Token, SpinUs}
FORKED = 1  # from it: A = sequence number, B = the child's pid
EXITED = 2  # from it: A = the child's pid, Body = {signal, N} | {exit, Status}


def _reason(status: int) -> tuple[Atom, int]:
    code = os.waitstatus_to_exitcode(status)
    return (Atom("signal"), -code) if code < 0 else (Atom("exit"), code)


def _reaper(chan: Channel) -> Any:
    encoder = Encoder()

    def reap(signum: int, frame: Any) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            chan.send(EXITED, pid, 0, encoder.encode(_reason(status)))

    return reap


def _fork(chan: Channel, seq: int, body: bytes, scope: dict[str, Any]) -> None:
    path, token, spin_us = Decoder().decode(body)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                chan.close()
                _child.serve(str(path), str(token), int(spin_us) / 1e6, scope)
            finally:
                os._exit(70)
        chan.send(FORKED, seq, pid)
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
    import ctypes  # noqa: F401 - PR_SET_PDEATHSIG in each child
    import resource  # noqa: F401

    from erlang import (  # noqa: F401
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
    signal.signal(signal.SIGCHLD, _reaper(chan))
    chan.send(_chan.READY, 0, 0)
    while True:
        try:
            kind, seq, _b, body = chan.recv_frame(None)
        except _chan.Closed:  # the VM let go of the zygote
            os._exit(0)
        if kind == FORK:
            _fork(chan, seq, body, scope)


if __name__ == "__main__":
    main(sys.argv)
