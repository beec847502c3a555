"""The program of an isolated context's child: ``python -m erlang._child SOCKET``.

``src/py_isolated.erl`` starts it with ``open_port`` (no shell) and waits for
it on a Unix socket (the path is the argument; a one-time token in the
environment variable ``ERLANG_PYTHON_TOKEN`` proves the connection is the
child's).  The child's stdout and stderr are the port's, which the context
process logs.  Start-up, in this order:

1. ``PR_SET_PDEATHSIG``: the child gets SIGKILL when the process that
   started it exits, so it never outlives a VM killed with ``kill -9``
   (and it exits on end of file on its channel otherwise).  Set before
   Python starts by ``priv/py_child_exec`` (c_src/program/py_child_exec.c),
   which the port runs and which then executes Python; by
   :func:`die_with_parent` in a child forked from a zygote;
2. HELLO: the token and what ``py_context:child_info/1`` reports;
3. CONFIG from the VM, applied before any user code: the cgroup to join,
   the resource limits, extra ``sys.path`` entries, the sandbox (the
   audit hook of ``erlang._sandbox.install_sandbox``), the preload code;
4. the fast socket (the path with ``.fast`` appended), its first frame
   the token again; READY on the control socket (or STARTUP_ERROR with the
   reason, and no fast socket), then requests until the VM closes the
   channel.
"""

from __future__ import annotations

import _socket
import os
import sys

from erlang import _chan
from erlang._chan import Channel
from erlang._etf import Decoder, Encoder
from erlang._types import Atom

# A child imports as little as it can before it answers: no typing, no
# socket or signal modules (their enums), no ctypes (see __init__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["connect", "main", "serve"]

_START_TIMEOUT = 60.0


_prctl: Any = None  # libc's prctl, once loaded


def load_prctl() -> Any:
    """libc's ``prctl`` through ctypes, loaded once: a zygote loads it
    before it forks, so that its children only call it (loading it took
    0.3 ms of a child's start-up)."""
    global _prctl
    if _prctl is None:
        import ctypes

        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    return _prctl


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return
    import signal

    parent = os.getppid()
    load_prctl()(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent went before the request took effect
        os._exit(1)


def info() -> dict[Atom, Any]:
    """What py_context:child_info/1 reports about this process."""
    v = sys.version_info
    return {
        Atom("os_pid"): os.getpid(),
        Atom("python_version"): (v.major, v.minor, v.micro),
        Atom("executable"): sys.executable,
        Atom("platform"): sys.platform,
    }


def apply_limits(config: dict[Any, Any]) -> None:
    """Join the cgroup and set the resource limits the config names."""
    cgroup = config.get("cgroup")
    if cgroup is not None:
        try:
            with open(os.path.join(str(cgroup), "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError as exc:
            raise _StartupError(Atom("cgroup"), str(exc)) from None
    limits = config.get("rlimits") or {}
    if limits:
        import resource

        names = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU,
                 "nofile": resource.RLIMIT_NOFILE}
        for key, value in limits.items():
            # CPU: SIGXCPU at the soft limit, SIGKILL a second later.
            hard = int(value) + 1 if key == "cpu" else int(value)
            try:
                resource.setrlimit(names[str(key)], (int(value), hard))
            except (OSError, ValueError) as exc:
                raise _StartupError(Atom("rlimit"), f"{key}: {exc}") from None


class _StartupError(Exception):
    def __init__(self, what: Atom, text: str) -> None:
        super().__init__(text)
        self.what = what
        self.text = text


def setup(chan: Channel, config: dict[Any, Any],
          preloaded: dict[str, Any] | None = None) -> Any:
    """Apply a CONFIG; the Child that will serve requests.  ``preloaded``:
    the globals a zygote's preload made, for a child forked from it."""
    from erlang._isolated import Child

    apply_limits(config)
    for path in reversed(list(config.get("paths") or [])):
        sys.path.insert(0, str(path))
    child = Child(chan, config["server"], int(config["generation"]),
                  int(config.get("max_depth", 1000)))
    sys.modules["_erlang"] = child.native
    child.registered = frozenset(str(n) for n in config.get("functions") or [])
    if config.get("sandbox", True):
        from erlang import _sandbox

        _sandbox.install_sandbox()
    if preloaded is not None:
        child.base_globals = dict(preloaded)
    preload = config.get("preload")
    if preload:
        scope: dict[str, Any] = {"__name__": "__main__"}
        try:
            exec(compile(str(preload), "<preload>", "exec"), scope)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - reported to the VM
            raise _StartupError(Atom("preload"), f"{type(exc).__name__}: {exc}") from None
        child.base_globals = {k: v for k, v in scope.items() if k != "__builtins__"}
    # logging -> OTP logger, from logging's first import, as in the VM.
    from erlang import _loghook

    _loghook.install()
    settings = config.get("setup")
    if settings:
        # The application's registry (py_setup: paths, imports, venv,
        # logging, tracing, preload), as every context applies it when it
        # starts; later changes come as requests to erlang._setup.apply.
        from erlang import _setup

        failures = _setup.apply(settings)
        for module, _fn, name, message in failures.get(Atom("imports")) or []:
            print(f"erlang_python: import {module} failed: {name}: {message}", file=sys.stderr)
        if failures.get(Atom("preload")):
            print(f"erlang_python: preload failed: {failures[Atom('preload')]}", file=sys.stderr)
    return child


def connect(path: str, token: str, spin: float) -> tuple[Channel, dict[Any, Any]]:
    """Connect to the VM's socket, say HELLO; the channel and the CONFIG."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.connect(path)
    chan = Channel(sock, spin)
    chan.send(_chan.HELLO, os.getpid(), 0, Encoder().encode((token, info())))
    kind, _a, _b, body = chan.recv_frame(_START_TIMEOUT)
    if kind != _chan.CONFIG:
        os._exit(2)
    return chan, Decoder().decode(body)


def serve(path: str, token: str, spin: float, preloaded: dict[str, Any] | None = None) -> None:
    """Connect, set up, serve requests until the VM closes the channel."""
    chan, config = connect(path, token, spin)
    try:
        child = setup(chan, config, preloaded)
    except _StartupError as exc:
        chan.send(_chan.STARTUP_ERROR, 0, 0, Encoder().encode((exc.what, exc.text)))
        os._exit(3)
    fast = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    fast.connect(path + ".fast")
    chan.attach_fast(fast)
    chan.send_fast(_chan.FAST_HELLO, 0, 0, Encoder().encode(token))
    child.install_signals()
    chan.send(_chan.READY, 0, 0)
    child.serve()


def main(argv: list[str]) -> None:
    """``python -m erlang._child SOCKET`` (the token and spin in the environment)."""
    token = os.environ.pop("ERLANG_PYTHON_TOKEN", "")
    spin = float(os.environ.pop("ERLANG_PYTHON_SPIN_US", "500")) / 1e6
    serve(argv[1], token, spin)


if __name__ == "__main__":
    main(sys.argv)
