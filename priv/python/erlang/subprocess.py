"""Run programs from Python inside the Erlang VM, through Erlang ports.

A drop-in for the parts of the standard :mod:`subprocess` that programs use:
:func:`run`, :class:`Popen` (``communicate``, ``wait``, ``poll``, ``kill``,
``terminate``, ``send_signal``, ``returncode``, ``pid``, ``stdin``/``stdout``/
``stderr`` pipes), :func:`call`, :func:`check_call`, :func:`check_output`,
:data:`PIPE`, :data:`DEVNULL`, :data:`STDOUT`, and the standard exceptions
(:class:`CalledProcessError`, :class:`TimeoutExpired` are the stdlib's own,
so ``except subprocess.CalledProcessError`` catches them).

Every program is an Erlang port (``src/py_program.erl``), spawned by the VM's
child-setup process: nothing forks the VM.  The port runs a small wrapper
(``priv/py_program_exec``) that keeps stderr apart from stdout, closes the
program's stdin on request, passes signals and reports the exact exit
status.  No shell runs unless ``shell=True``.  A timeout kills the program
(``run``), as the standard module does.

Differences from :mod:`subprocess`, all because the VM, not Python, owns
the process: ``stdin=None`` gives the program ``/dev/null`` (the VM's stdin
is its own); ``stdout``/``stderr`` given as a file or a descriptor are
written by Python as the output arrives (in ``wait``/``communicate``);
``preexec_fn``, ``pass_fds``, ``user``, ``group``, ``umask`` and
``start_new_session`` are refused (``ValueError``); signal a program with
``send_signal``, not ``os.kill``.  The application environment ``programs``
(``allow``, ``deny`` or a list of executables) decides what may run; a
denial is a ``RuntimeError`` (``erlang._sandbox.SandboxError``).

Outside the VM this module is the standard :mod:`subprocess`'s API.
"""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess as _std
from collections.abc import Mapping
from typing import IO, Any

from erlang._calls import _native_or_none, send
from erlang._calls import call as _erl_call
from erlang._types import Atom

__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "CalledProcessError",
    "CompletedProcess",
    "Popen",
    "SubprocessError",
    "TimeoutExpired",
    "call",
    "check_call",
    "check_output",
    "getoutput",
    "getstatusoutput",
    "run",
]

PIPE = _std.PIPE
STDOUT = _std.STDOUT
DEVNULL = _std.DEVNULL
SubprocessError = _std.SubprocessError
CalledProcessError = _std.CalledProcessError
TimeoutExpired = _std.TimeoutExpired
CompletedProcess = _std.CompletedProcess

_OP = "erlang_python.program"
_REFUSED = ("preexec_fn", "pass_fds", "user", "group", "extra_groups", "umask",
            "start_new_session", "process_group")


def _ms(timeout: float | None) -> int | Atom:
    return Atom("infinity") if timeout is None else max(0, math.ceil(timeout * 1000))


def _returncode(status: int) -> int:
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:
        return status


def _translate(data: bytes, encoding: str | None, errors: str | None) -> str:
    text = data.decode(encoding or "utf-8", errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _Raw(io.RawIOBase):
    """One of the program's pipes, read or written through its port."""

    def __init__(self, popen: Popen, which: str) -> None:
        self._popen = popen
        self._which = which
        self._pending = b""
        self.used = False

    def readable(self) -> bool:
        return self._which != "stdin"

    def writable(self) -> bool:
        return self._which == "stdin"

    def readinto(self, buffer: Any) -> int:
        self.used = True
        if not self._pending:
            got = self._popen._op("read", self._which, Atom("infinity"))
            if got == "eof":
                return 0
            self._pending = bytes(got[1])
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            self._popen._op("write", chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed and self._which == "stdin" and self._popen._handle is not None:
            self._popen._op("close_stdin")
        super().close()


class Popen:
    """A program started through an Erlang port (see the module docstring)."""

    def __init__(self, args: Any, bufsize: int = -1, executable: Any = None,
                 stdin: Any = None, stdout: Any = None, stderr: Any = None,
                 close_fds: bool = True, shell: bool = False, cwd: Any = None,
                 env: Mapping[Any, Any] | None = None, universal_newlines: bool | None = None,
                 *, text: bool | None = None, encoding: str | None = None,
                 errors: str | None = None, **unsupported: Any) -> None:
        for name in _REFUSED:
            if unsupported.pop(name, None) not in (None, (), False, -1):
                raise ValueError(f"erlang.subprocess does not support {name}: the program "
                                 "is started by the Erlang VM, not by a fork of Python")
        unsupported.pop("startupinfo", None)
        unsupported.pop("creationflags", None)
        unsupported.pop("restore_signals", None)
        unsupported.pop("pipesize", None)
        if unsupported:
            raise TypeError(f"unexpected arguments: {sorted(unsupported)}")
        self.args = args
        self.returncode: int | None = None
        self.text_mode = bool(text or universal_newlines or encoding or errors)
        self.encoding, self.errors = encoding, errors
        self.stdin: IO[Any] | None = None
        self.stdout: IO[Any] | None = None
        self.stderr: IO[Any] | None = None
        self._handle: Any = None
        self._sinks: dict[str, Any] = {}
        self._raws: dict[str, _Raw] = {}
        self._input: bytes | None = None
        argv, exe = _argv(args, executable, shell)
        spec = {
            "executable": exe, "args": argv,
            "cwd": os.fsdecode(os.fspath(cwd)) if cwd is not None else "",
            "env": _env(os.environ if env is None else env),
            "stdin": self._mode("stdin", stdin),
            "stdout": self._mode("stdout", stdout),
            "stderr": self._mode("stderr", stderr),
            "owner": _owner(),
        }
        reply = _erl_call(_OP, "start", spec)
        if reply[0] == "denied":
            from erlang._sandbox import blocked

            raise blocked(f"running {exe}", "programs")
        if reply[0] == "failed":
            errno = reply[1]
            if not isinstance(errno, int) or errno == 0:
                raise OSError(f"cannot start {exe}: {reply[2]!r}")
            where = os.fsdecode(os.fspath(cwd)) if reply[2] == "c" else exe
            raise OSError(errno, os.strerror(errno), where)
        _, self._handle, self.pid = reply
        self._make_files(stdin, stdout, stderr, bufsize)

    # ---------------------------------------------------------- set-up

    def _mode(self, which: str, value: Any) -> str:
        if value is None:
            return "inherit"
        if value == PIPE:
            return "pipe"
        if value == DEVNULL:
            return "devnull"
        if value == STDOUT and which == "stderr":
            return "stdout"
        if which == "stdin":  # a file or descriptor: its content is the input
            fd = value if isinstance(value, int) else value.fileno()
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            self._input = b"".join(chunks)
            return "pipe"
        self._sinks[which] = value  # written by Python as output arrives
        return "pipe"

    def _make_files(self, stdin: Any, stdout: Any, stderr: Any, bufsize: int) -> None:
        buffering = io.DEFAULT_BUFFER_SIZE if bufsize in (-1, 1) else bufsize
        if stdin == PIPE:
            raw: Any = _Raw(self, "stdin")
            f: Any = io.BufferedWriter(raw, buffering) if buffering > 0 else raw
            if self.text_mode:
                f = io.TextIOWrapper(f, self.encoding, self.errors,
                                     line_buffering=bufsize == 1, write_through=True)
            self.stdin = f
        elif self._input is not None:
            self._op("write", self._input)
            self._op("close_stdin")
        for which, value in (("stdout", stdout), ("stderr", stderr)):
            if value == PIPE:
                self._raws[which] = _Raw(self, which)
                reader: Any = io.BufferedReader(self._raws[which])
                if self.text_mode:
                    reader = io.TextIOWrapper(reader, self.encoding, self.errors)
                setattr(self, which, reader)

    def _op(self, op: str, *args: Any) -> Any:
        return _erl_call(_OP, op, self._handle, *args)

    # ---------------------------------------------------------- the API

    def poll(self) -> int | None:
        """The return code if the program has ended, else None."""
        if self.returncode is None:
            status = self._op("poll")
            if status is not None:
                self.returncode = _returncode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the program to end; TimeoutExpired after ``timeout``."""
        if self.returncode is None:
            status = self._op("wait", _ms(timeout))
            if status == "timeout":
                raise TimeoutExpired(self.args, timeout)  # type: ignore[arg-type]
            self.returncode = _returncode(status)
        self._drain_sinks()
        return self.returncode

    def communicate(self, input: Any = None,  # noqa: A002
                    timeout: float | None = None) -> tuple[Any, Any]:
        """Send ``input``, close stdin, read stdout and stderr to their end
        and wait: ``(stdout, stderr)``, each None unless it is a PIPE."""
        if input is not None and self.text_mode and isinstance(input, str):
            input = input.encode(self.encoding or "utf-8", self.errors or "strict")
        if self.stdin is not None and not self.stdin.closed:
            if input:
                self.stdin.write(input.decode(self.encoding or "utf-8") if self.text_mode
                                 else input)
            try:
                self.stdin.flush()
            finally:
                self.stdin.close()
        reply = self._op("communicate", Atom("none"), _ms(timeout))
        if reply[0] == "timeout":
            raise TimeoutExpired(self.args, timeout, output=bytes(reply[1]),  # type: ignore[arg-type]
                                 stderr=bytes(reply[2]))
        _, out, err, status = reply
        self.returncode = _returncode(status)
        return self._result("stdout", out), self._result("stderr", err)

    def _result(self, which: str, data: bytes) -> Any:
        if which in self._sinks:
            _write_sink(self._sinks[which], bytes(data))
            return None
        pipe = getattr(self, which)
        if pipe is None:
            return None
        # what a partial read left buffered in the file object
        rest: Any = pipe.read() if self._raws[which].used else None
        data = bytes(data)
        if self.text_mode:
            return (rest or "") + _translate(data, self.encoding, self.errors)
        return (rest or b"") + data

    def _drain_sinks(self) -> None:
        if self._sinks:
            _, out, err, _status = self._op("communicate", Atom("none"), Atom("infinity"))
            self._result("stdout", out)
            self._result("stderr", err)

    def send_signal(self, sig: int) -> None:
        """Send signal ``sig`` to the program (nothing once it has ended)."""
        if self.returncode is None:
            self._op("signal", int(sig))

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> Popen:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in (self.stdout, self.stderr):
            if f is not None:
                f.close()
        try:
            if self.stdin is not None:
                self.stdin.close()
        finally:
            self.wait()

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            try:
                send(handle, Atom("py_program_release"))
            except Exception:  # noqa: BLE001  (interpreter shutdown)
                pass

    def __repr__(self) -> str:
        return f"<erlang.subprocess.Popen: returncode: {self.returncode} args: {self.args!r}>"


def _argv(args: Any, executable: Any, shell: bool) -> tuple[list[str], str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        argv = [os.fsdecode(os.fspath(args))]
    else:
        argv = [os.fsdecode(os.fspath(a)) for a in args]
    if shell:
        argv = ["/bin/sh", "-c", *argv]
        if executable is not None:
            argv[0] = os.fsdecode(os.fspath(executable))
        return argv, argv[0]
    if not argv:
        raise IndexError("args is an empty sequence")
    exe = os.fsdecode(os.fspath(executable)) if executable is not None else argv[0]
    return argv, exe


def _env(env: Mapping[Any, Any]) -> list[list[str]]:
    return [[os.fsdecode(k), os.fsdecode(v)] for k, v in env.items()]


def _owner() -> Any:
    """The Erlang process whose request runs (the program dies with it), or
    None from a thread of Python's own."""
    native = _native_or_none()
    try:
        return native.self() if native is not None else None
    except Exception:  # noqa: BLE001  (no request on this thread)
        return None


def _write_sink(sink: Any, data: bytes) -> None:
    if not data:
        return
    if isinstance(sink, int):
        os.write(sink, data)
    elif isinstance(sink, io.TextIOBase):
        sink.write(data.decode(getattr(sink, "encoding", None) or "utf-8"))
    else:
        sink.write(data)


def run(*popenargs: Any, input: Any = None, capture_output: bool = False,  # noqa: A002
        timeout: float | None = None, check: bool = False,
        **kwargs: Any) -> CompletedProcess[Any]:
    """Run a program and wait for it: the standard ``subprocess.run``."""
    if input is not None:
        if kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        kwargs["stdin"] = PIPE
    if capture_output:
        if kwargs.get("stdout") is not None or kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        kwargs["stdout"] = kwargs["stderr"] = PIPE
    with Popen(*popenargs, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except TimeoutExpired as exc:
            process.kill()
            process.wait()
            raise exc
        retcode = process.poll()
        assert retcode is not None
        if check and retcode:
            raise CalledProcessError(retcode, process.args, output=stdout, stderr=stderr)
    return CompletedProcess(process.args, retcode, stdout, stderr)


def call(*popenargs: Any, timeout: float | None = None, **kwargs: Any) -> int:  # noqa: F811
    """Run a program and return its return code."""
    with Popen(*popenargs, **kwargs) as p:
        try:
            return p.wait(timeout=timeout)
        except BaseException:
            p.kill()
            raise


def check_call(*popenargs: Any, **kwargs: Any) -> int:
    """Run a program; CalledProcessError unless it returns 0."""
    retcode = call(*popenargs, **kwargs)
    if retcode:
        cmd: Any = kwargs.get("args", popenargs[0] if popenargs else None)
        raise CalledProcessError(retcode, cmd)
    return 0


def check_output(*popenargs: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Run a program and return its stdout; CalledProcessError unless it returns 0."""
    if "stdout" in kwargs:
        raise ValueError("stdout argument not allowed, it will be overridden.")
    if kwargs.get("input") is None and kwargs.get("stdin") is None:
        kwargs.setdefault("stdin", DEVNULL)
    return run(*popenargs, stdout=PIPE, timeout=timeout, check=True, **kwargs).stdout


def getstatusoutput(cmd: str | bytes, *, encoding: str | None = None,
                    errors: str | None = None) -> tuple[int, str]:
    """``(exitcode, output)`` of a shell command, as the standard module."""
    try:
        data = check_output(cmd, shell=True, text=True, stderr=STDOUT,
                            encoding=encoding, errors=errors)
        exitcode = 0
    except CalledProcessError as ex:
        data, exitcode = ex.output, ex.returncode
    if data[-1:] == "\n":
        data = data[:-1]
    return exitcode, data


def getoutput(cmd: str | bytes, *, encoding: str | None = None,
              errors: str | None = None) -> str:
    """The output of a shell command."""
    return getstatusoutput(cmd, encoding=encoding, errors=errors)[1]


def _plain() -> None:
    """Outside the VM: the standard module's functions and class."""
    g = globals()
    for name in ("Popen", "run", "call", "check_call", "check_output", "getoutput",
                 "getstatusoutput"):
        g[name] = getattr(_std, name)


if _native_or_none() is None:
    _plain()

