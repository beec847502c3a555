"""asyncio subprocesses on ErlangEventLoop: a SubprocessTransport over a port.

``loop.subprocess_exec``/``subprocess_shell`` (and so
``asyncio.create_subprocess_exec``/``_shell``) start the program with
:class:`erlang.subprocess.Popen`, i.e. as an Erlang port, and this transport
relays it: a thread of its own waits in Erlang for the program's next event
(output on stdout or stderr, its exit, the end of both outputs) and hands
each to the loop with ``call_soon_threadsafe``; writing to stdin, closing
it and signals are calls to the port's process, which never block.  The
protocol sees what asyncio's own transport gives it: ``pipe_data_received``,
``pipe_connection_lost``, ``process_exited``, then ``connection_lost``.
Flow control is Erlang's: the port's process buffers the output, so
``pause_reading`` does nothing.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from erlang._calls import call
from erlang._types import Atom

__all__ = ["PortSubprocessTransport"]

_OP = "erlang_python.program"


class _Pipe(asyncio.WriteTransport, asyncio.ReadTransport):
    """One of the program's pipes, as the protocol sees it."""

    def __init__(self, owner: PortSubprocessTransport, fd: int) -> None:
        super().__init__()
        self._owner = owner
        self._fd = fd
        self._closing = False

    # stdin
    def write(self, data: Any) -> None:
        if self._closing:
            return
        chunk = bytes(data)
        if chunk:
            self._owner._op("write", chunk)

    def write_eof(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    # stdout, stderr
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    # all
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._fd == 0:
            self._owner._op("close_stdin")
            self._owner._lost(0)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class PortSubprocessTransport(asyncio.SubprocessTransport):
    """A program run through an Erlang port, for an asyncio protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Any, args: Any,
                 shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int,
                 waiter: asyncio.Future[Any] | None = None, extra: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(extra)
        from erlang.subprocess import PIPE, Popen

        self._loop = loop
        self._protocol = protocol
        self._popen = Popen(args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                            bufsize=bufsize, **kwargs)
        self._pid = self._popen.pid
        self._returncode: int | None = None
        self._exit_waiters: list[asyncio.Future[int]] = []
        self._closed = False
        self._finished = False
        self._pipes: dict[int, _Pipe] = {}
        for fd, mode in ((0, stdin), (1, stdout), (2, stderr)):
            if mode == PIPE:
                self._pipes[fd] = _Pipe(self, fd)
        self._open = set(self._pipes)
        self._ended = False
        loop.call_soon(protocol.connection_made, self)
        if waiter is not None:
            loop.call_soon(_set_result, waiter, None)
        threading.Thread(target=self._relay, name=f"erlang-subprocess-{self._pid}",
                         daemon=True).start()

    def _op(self, op: str, *args: Any) -> Any:
        return call(_OP, op, self._popen._handle, *args)

    # ---------------------------------------------------------- events

    def _relay(self) -> None:
        handle = self._popen._handle
        while True:
            try:
                event = call(_OP, "next", handle, Atom("infinity"))
            except Exception:  # noqa: BLE001  (the VM is stopping)
                event = "done"
            try:
                self._loop.call_soon_threadsafe(self._event, event)
            except RuntimeError:  # the loop is closed
                return
            if not isinstance(event, tuple):
                return

    def _event(self, event: Any) -> None:
        if isinstance(event, tuple):
            kind, value = event
            if kind == "exit":
                self._exited(value)
            elif not self._closed:
                fd = 1 if kind == "stdout" else 2
                if fd in self._open:
                    self._protocol.pipe_data_received(fd, bytes(value))
            return
        self._ended = True  # "done" (or "gone"): every output at its end
        if self._returncode is None:
            self._exited(-1)
        for fd in (1, 2):
            self._lost(fd)
        self._try_finish()

    def _exited(self, status: int) -> None:
        from erlang.subprocess import _returncode

        self._returncode = self._popen.returncode = _returncode(status)
        if not self._closed:
            self._protocol.process_exited()
        for waiter in self._exit_waiters:
            if not waiter.done():
                waiter.set_result(self._returncode)
        self._exit_waiters.clear()
        self._try_finish()

    def _lost(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            self._pipes[fd]._closing = True
            if not self._closed:
                self._protocol.pipe_connection_lost(fd, None)
            self._try_finish()

    def _try_finish(self) -> None:
        if self._finished or self._returncode is None or not self._ended:
            return
        self._finished = True
        self._loop.call_soon(self._protocol.connection_lost, None)

    # ---------------------------------------------------------- the API

    def get_pid(self) -> int:
        return int(self._pid)

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        return self._pipes.get(fd)

    def _check(self) -> None:
        if self._closed:
            raise ProcessLookupError()

    def send_signal(self, signal: int) -> None:
        self._check()
        self._popen.send_signal(signal)

    def terminate(self) -> None:
        self._check()
        self._popen.terminate()

    def kill(self) -> None:
        self._check()
        self._popen.kill()

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pipe in self._pipes.values():
            pipe.close()
        if self._returncode is None:
            self._popen.kill()

    async def _wait(self) -> int:
        """What ``asyncio.subprocess.Process.wait`` awaits."""
        if self._returncode is not None:
            return self._returncode
        waiter: asyncio.Future[int] = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.cancelled():
        fut.set_result(value)
