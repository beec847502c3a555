"""The sandbox that keeps embedded Python from forking, exec'ing, killing or
corrupting the Erlang VM.

Inside the VM the sandbox is installed by the NIF before any Python code runs
(``c_src/sandbox/sandbox.c``, ``guards.c``, ``interpose.c``); nothing here needs to be
called.  This module holds the *policy tables* and the small public API:

- :func:`is_sandboxed` tells code whether it runs under the sandbox;
- :func:`policy` names the policy in force (``"default"`` or ``"strict"``);
- :class:`SandboxError` is what a blocked operation raises: a
  ``RuntimeError`` that is also a ``PermissionError`` (so library code that
  catches ``OSError`` degrades instead of failing); a denied import raises
  :class:`SandboxImportError`, a ``ModuleNotFoundError``, so code probing
  an optional module degrades as when it is missing;
- :func:`install_sandbox` is kept for erlang_python 4.x code.

Trust boundary
--------------
The tables below are plain immutable data (tuples of strings).  The C side
reads them **once**, when the interpreter starts and before any application
code runs, and copies them into C memory; it enforces those copies and
never looks at this module again.  Rebinding or patching anything here
afterwards (``erlang._sandbox.AUDIT_RULES = ()``, replacing a function's
``__code__``, swapping ``sys.modules['erlang._sandbox']``) changes what Python
code *reads*, never what the sandbox *enforces*.  The decisions themselves
(the ``check`` names below) are implemented in C, so no Python function sits
on the enforcement path.  Outside the VM, :func:`install_sandbox` installs a
pure-Python audit hook built from the same tables (process creation only):
that one is an ordinary Python hook, as in 4.x, and no stronger.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Final

__all__ = [
    "SandboxError",
    "SandboxImportError",
    "blocked",
    "install_sandbox",
    "is_sandboxed",
    "message",
    "policy",
    "protected_fds",
    "protected_signals",
]

#: First line of every denial: ``"<operation> is blocked in Erlang VM context."``
HEADLINE: Final = " is blocked in Erlang VM context."

#: Why each class of operation is blocked, and what to do instead; these are
#: the second and third lines of the message.
REASONS: Final[tuple[tuple[str, str], ...]] = (
    ("process",
     "fork()/exec() would corrupt the Erlang runtime.\n"
     "Use Erlang ports (open_port/2) for subprocess management."),
    ("exit",
     "It would terminate the Erlang VM.\n"
     "Raise an exception instead: the Erlang caller receives it as an error."),
    ("kill",
     "Python in the VM has no processes of its own: any other is the VM's or a stranger's.\n"
     "Signal a program through its erlang.subprocess.Popen, or ask Erlang (erlang.send)."),
    ("signal",
     "The Erlang runtime owns the signal handlers and timers of its process.\n"
     "Handle OS signals in Erlang (os:set_signal/2) and use Erlang timers."),
    ("rlimit",
     "Lowering the resource limits of the Erlang VM could starve the runtime.\n"
     "Set limits on the OS process that starts the VM instead."),
    ("sandbox",
     "It would disable or escape the sandbox that protects the Erlang runtime.\n"
     "Run untrusted code in a separate OS process (an Erlang port)."),
    ("fd",
     "The file descriptor belongs to the Erlang VM.\n"
     "Close or replace only file descriptors that your code opened."),
    ("children",
     "Child processes of the Erlang VM belong to the Erlang runtime.\n"
     "Python code in the VM cannot start processes, so it has none to wait for."),
    ("strict",
     "The strict sandbox policy keeps foreign function interfaces out of the VM.\n"
     "Make this change from Erlang, or run with {sandbox, default}."),
    ("state",
     "It would change the process-wide state that the Erlang VM and its ports share.\n"
     "Make the change in Erlang, or in a program run through erlang.subprocess."),
    ("interpreter",
     "It would change the interpreter for every Erlang process that shares it.\n"
     "Keep the change in your own namespace, or use a context of your own."),
    ("programs",
     "The application environment programs of erlang_python does not allow it.\n"
     "Add the executable to {programs, [...]}, or run it from Erlang."),
    ("stdin",
     "The standard input of the Erlang VM belongs to the VM (its shell).\n"
     "Pass input to Python as call arguments, or read a file or a socket."),
)

#: Audit events (PEP 578) the C hook handles: (event, check, class, policy).
#: check ``deny`` blocks the event; the other checks look at its arguments
#: (implemented in c_src/sandbox/sandbox.c).  The operation named in the message is
#: the event name.
AUDIT_RULES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("os.exec", "deny", "process", "default"),
    ("os.fork", "deny", "process", "default"),
    ("os.forkpty", "deny", "process", "default"),
    ("os.posix_spawn", "deny", "process", "default"),
    ("os.spawn", "deny", "process", "default"),
    ("os.system", "deny", "process", "default"),
    ("subprocess.Popen", "deny", "process", "default"),
    ("os.kill", "kill_target", "kill", "default"),
    ("os.killpg", "killpg_target", "kill", "default"),
    ("signal.pthread_kill", "thread_signal", "kill", "default"),
    ("resource.setrlimit", "rlimit", "rlimit", "default"),
    ("resource.prlimit", "prlimit", "rlimit", "default"),
    ("open", "proc_mem_path", "sandbox", "default"),
    ("cpython.PyInterpreterState_New", "from_python", "sandbox", "default"),
    ("ctypes.dlsym", "native_symbol", "sandbox", "default"),
    ("ctypes.dlsym/handle", "native_symbol", "sandbox", "default"),
    ("import", "module", "sandbox", "default"),
    ("os.chdir", "chdir", "state", "default"),
    ("socket.sethostname", "deny", "state", "default"),
    ("sys.addaudithook", "deny", "interpreter", "default"),
)

#: Builtin functions that raise no audit event, guarded below Python (their
#: C entry point is replaced in the module's method table, so fresh module
#: instances are guarded too): (module, function, operation, check, class,
#: policy).  ``Type.method`` names a method of a type of the module.
GUARDED_FUNCTIONS: Final[tuple[tuple[str, str, str, str, str, str], ...]] = (
    ("_posixsubprocess", "fork_exec", "_posixsubprocess.fork_exec", "deny", "process", "default"),
    ("posix", "_exit", "os._exit", "deny", "exit", "default"),
    ("posix", "abort", "os.abort", "deny", "exit", "default"),
    ("faulthandler", "_sigsegv", "faulthandler._sigsegv", "deny", "exit", "default"),
    ("faulthandler", "_sigabrt", "faulthandler._sigabrt", "deny", "exit", "default"),
    ("faulthandler", "_sigfpe", "faulthandler._sigfpe", "deny", "exit", "default"),
    ("faulthandler", "_read_null", "faulthandler._read_null", "deny", "exit", "default"),
    ("faulthandler", "_fatal_error_c_thread", "faulthandler._fatal_error_c_thread", "deny",
     "exit", "default"),
    ("faulthandler", "_stack_overflow", "faulthandler._stack_overflow", "deny", "exit",
     "default"),
    ("faulthandler", "dump_traceback_later", "faulthandler.dump_traceback_later(exit=True)",
     "exit_flag", "exit", "default"),
    ("faulthandler", "register", "faulthandler.register", "deny", "signal", "default"),
    ("_signal", "signal", "signal.signal", "signal_handler", "signal", "default"),
    ("_signal", "siginterrupt", "signal.siginterrupt", "signal", "signal", "default"),
    ("_signal", "raise_signal", "signal.raise_signal", "deny", "kill", "default"),
    ("_signal", "alarm", "signal.alarm", "deny", "signal", "default"),
    ("_signal", "setitimer", "signal.setitimer", "deny", "signal", "default"),
    ("_signal", "sigwait", "signal.sigwait", "deny", "signal", "default"),
    ("_signal", "sigwaitinfo", "signal.sigwaitinfo", "deny", "signal", "default"),
    ("_signal", "sigtimedwait", "signal.sigtimedwait", "deny", "signal", "default"),
    ("posix", "close", "os.close", "fd", "fd", "default"),
    ("posix", "closerange", "os.closerange", "fd_range", "fd", "default"),
    ("posix", "dup2", "os.dup2", "fd2", "fd", "default"),
    ("posix", "login_tty", "os.login_tty", "deny", "fd", "default"),
    ("posix", "dup", "os.dup", "fd_internal", "fd", "default"),
    ("posix", "read", "os.read", "fd_read", "fd", "default"),
    ("posix", "readv", "os.readv", "fd_read", "fd", "default"),
    ("posix", "pread", "os.pread", "fd_read", "fd", "default"),
    ("posix", "write", "os.write", "fd_internal", "fd", "default"),
    ("posix", "writev", "os.writev", "fd_internal", "fd", "default"),
    ("posix", "pwrite", "os.pwrite", "fd_internal", "fd", "default"),
    ("select", "epoll.fromfd", "select.epoll.fromfd", "fd_internal", "fd", "default"),
    ("posix", "open", "os.open", "proc_mem_fd", "sandbox", "default"),
    ("posix", "wait", "os.wait", "deny", "children", "default"),
    ("posix", "waitpid", "os.waitpid", "deny", "children", "default"),
    ("posix", "wait3", "os.wait3", "deny", "children", "default"),
    ("posix", "wait4", "os.wait4", "deny", "children", "default"),
    ("posix", "waitid", "os.waitid", "deny", "children", "default"),
    ("_imp", "create_dynamic", "_imp.create_dynamic", "extension", "sandbox", "default"),
    ("_imp", "create_builtin", "_imp.create_builtin", "extension", "sandbox", "default"),
    ("_imp", "exec_dynamic", "_imp.exec_dynamic", "extension_exec", "sandbox", "default"),
    ("_imp", "exec_builtin", "_imp.exec_builtin", "extension_exec", "sandbox", "default"),
    ("_ctypes", "dlopen", "_ctypes.dlopen", "loader", "sandbox", "default"),
    ("_cffi_backend", "load_library", "cffi.load_library", "loader", "sandbox", "default"),
    ("_cffi_backend", "CLibrary.load_function", "cffi", "native_symbol", "sandbox", "default"),
    ("posix", "umask", "os.umask", "deny", "state", "default"),
    ("posix", "fchdir", "os.fchdir", "deny", "state", "default"),
    ("posix", "chroot", "os.chroot", "deny", "state", "default"),
    ("posix", "setuid", "os.setuid", "deny", "state", "default"),
    ("posix", "setgid", "os.setgid", "deny", "state", "default"),
    ("posix", "seteuid", "os.seteuid", "deny", "state", "default"),
    ("posix", "setegid", "os.setegid", "deny", "state", "default"),
    ("posix", "setreuid", "os.setreuid", "deny", "state", "default"),
    ("posix", "setregid", "os.setregid", "deny", "state", "default"),
    ("posix", "setresuid", "os.setresuid", "deny", "state", "default"),
    ("posix", "setresgid", "os.setresgid", "deny", "state", "default"),
    ("posix", "setgroups", "os.setgroups", "deny", "state", "default"),
    ("posix", "initgroups", "os.initgroups", "deny", "state", "default"),
    ("posix", "setsid", "os.setsid", "deny", "state", "default"),
    ("posix", "setpgid", "os.setpgid", "deny", "state", "default"),
    ("posix", "setpgrp", "os.setpgrp", "deny", "state", "default"),
    ("posix", "tcsetpgrp", "os.tcsetpgrp", "deny", "state", "default"),
    ("posix", "nice", "os.nice", "deny", "state", "default"),
    ("posix", "setpriority", "os.setpriority", "deny", "state", "default"),
    ("posix", "sched_setaffinity", "os.sched_setaffinity", "deny", "state", "default"),
    ("posix", "sched_setscheduler", "os.sched_setscheduler", "deny", "state", "default"),
    ("posix", "sched_setparam", "os.sched_setparam", "deny", "state", "default"),
    ("_locale", "setlocale", "locale.setlocale", "setlocale", "state", "default"),
    ("posix", "unshare", "os.unshare", "deny", "state", "default"),
    ("posix", "setns", "os.setns", "deny", "state", "default"),
    ("sys", "setswitchinterval", "sys.setswitchinterval", "deny", "interpreter", "default"),
    ("sys", "addaudithook", "sys.addaudithook", "deny", "interpreter", "default"),
    ("_thread", "interrupt_main", "_thread.interrupt_main", "deny", "interpreter", "default"),
    ("faulthandler", "enable", "faulthandler.enable", "deny", "signal", "default"),
    ("posix", "putenv", "os.putenv", "ignore", "state", "default"),
    ("posix", "unsetenv", "os.unsetenv", "ignore", "state", "default"),
    ("posix", "register_at_fork", "os.register_at_fork", "ignore", "process", "default"),
    ("builtins", "input", "input", "stdin", "stdin", "default"),
    ("termios", "tcsetattr", "termios.tcsetattr", "fd", "fd", "default"),
    ("termios", "tcflush", "termios.tcflush", "fd", "fd", "default"),
    ("termios", "tcflow", "termios.tcflow", "fd", "fd", "default"),
    ("termios", "tcsendbreak", "termios.tcsendbreak", "fd", "fd", "default"),
    ("termios", "tcsetwinsize", "termios.tcsetwinsize", "fd", "fd", "default"),
)

#: Native functions that ctypes and cffi may not look up or call, with the
#: class of the operation: (symbol, class).  A lookup by name raises
#: SandboxError; a call through a raw address fails with EPERM (the C side
#: resolves these names to addresses once and checks every foreign call).
NATIVE_SYMBOLS: Final[tuple[tuple[str, str], ...]] = (
    *((s, "process") for s in (
        "fork", "_Fork", "__fork", "vfork", "__vfork", "clone", "__clone", "clone3",
        "execve", "execveat", "fexecve", "execv", "execvp", "execvpe", "execl", "execlp",
        "execle", "posix_spawn", "posix_spawnp", "system", "popen", "daemon", "syscall",
        "PyOS_AfterFork_Child", "PyOS_BeforeFork", "PyOS_AfterFork")),
    *((s, "exit") for s in (
        "exit", "_exit", "_Exit", "quick_exit", "abort", "Py_Exit", "Py_FatalError",
        "_Py_FatalErrorFunc", "_Py_FatalErrorFormat")),
    *((s, "kill") for s in (
        "kill", "killpg", "tgkill", "tkill", "pthread_kill", "raise", "sigqueue",
        "pidfd_send_signal", "PyErr_SetInterrupt", "PyErr_SetInterruptEx")),
    *((s, "signal") for s in (
        "signal", "sigaction", "__sigaction", "bsd_signal", "sysv_signal", "ssignal", "sigset",
        "alarm", "ualarm", "setitimer", "timer_create", "PyOS_setsig")),
    *((s, "rlimit") for s in ("setrlimit", "setrlimit64", "prlimit", "prlimit64")),
    *((s, "fd") for s in ("close", "__close", "close_range", "closefrom", "dup2", "__dup2",
                          "dup3", "login_tty")),
    *((s, "children") for s in ("wait", "waitpid", "__waitpid", "wait3", "wait4", "waitid")),
    *((s, "sandbox") for s in (
        "Py_Finalize", "Py_FinalizeEx", "_PySys_ClearAuditHooks", "Py_NewInterpreter",
        "Py_NewInterpreterFromConfig", "_Py_NewInterpreterFromConfig", "Py_EndInterpreter",
        "PyInterpreterState_New", "PyInterpreterState_Clear", "PyInterpreterState_Delete",
        "ptrace", "process_vm_writev", "dlvsym", "mount", "umount", "umount2", "unshare",
        "setns", "pivot_root", "chroot")),
)

#: Symbol prefixes treated like NATIVE_SYMBOLS: loading an extension module's
#: init function by hand would skip the guards applied on import.
NATIVE_PREFIXES: Final[tuple[tuple[str, str], ...]] = (("PyInit_", "sandbox"),)

#: Modules that may not be imported or loaded: (name, class, policy).  The
#: first ones create sub-interpreters or crash the process on purpose (test
#: helpers); the strict policy adds the foreign function interfaces.
DENIED_MODULES: Final[tuple[tuple[str, str, str], ...]] = (
    ("_xxsubinterpreters", "sandbox", "default"),
    ("_interpreters", "sandbox", "default"),
    ("_xxinterpchannels", "sandbox", "default"),
    ("_testcapi", "sandbox", "default"),
    ("_testinternalcapi", "sandbox", "default"),
    ("_testlimitedcapi", "sandbox", "default"),
    ("_ctypes", "strict", "strict"),
    ("_cffi_backend", "strict", "strict"),
)

#: Signals the VM relies on, protected whatever their disposition when
#: Python starts (every signal the VM handles or ignores then is protected too).
VM_SIGNALS: Final[tuple[str, ...]] = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
    "SIGCHLD", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGIO", "SIGPROF",
    "SIGVTALRM", "SIGXCPU", "SIGXFSZ",
)

_REASON = dict(REASONS)


class _PySandboxError(RuntimeError, PermissionError):
    """An operation the sandbox blocks (``RuntimeError`` and ``PermissionError``)."""

    __erlang_name__ = "RuntimeError"


class _PySandboxImportError(ModuleNotFoundError):
    """A module the sandbox does not let Python import (``ModuleNotFoundError``)."""

    __erlang_name__ = "ModuleNotFoundError"


def _c_half() -> ModuleType | None:
    """``_erlang_sandbox``, the C half (c_src/sandbox/sandbox.c), present only in the VM."""
    try:
        return importlib.import_module("_erlang_sandbox")
    except ImportError:
        return None


_c = _c_half()

SandboxError: type[RuntimeError] = _c.SandboxError if _c is not None else _PySandboxError
SandboxImportError: type[ModuleNotFoundError] = (
    _c.SandboxImportError if _c is not None else _PySandboxImportError
)
_hook_installed = False


def message(operation: str, cls: str) -> str:
    """The message of a denial of ``operation``, an operation of class ``cls``.

    >>> print(message("os.fork", "process"))
    os.fork is blocked in Erlang VM context.
    fork()/exec() would corrupt the Erlang runtime.
    Use Erlang ports (open_port/2) for subprocess management.
    """
    return f"{operation}{HEADLINE}\n{_REASON[cls]}"


def blocked(operation: str, cls: str = "process") -> RuntimeError:
    """The error to raise when Python code refuses ``operation`` itself (an
    event loop refusing subprocesses, say): a :class:`SandboxError` with the
    documented message, logged and counted like every denial in the VM.

    >>> raise blocked("asyncio subprocess_exec()")  # doctest: +SKIP
    """
    if _c is not None:
        _c.note_denial(operation, cls)
    return SandboxError(message(operation, cls))


def is_sandboxed() -> bool:
    """True inside the Erlang VM (where the sandbox is always on), and in a
    plain interpreter after :func:`install_sandbox`."""
    if _c is not None:
        return bool(_c.active())
    return _hook_installed


def policy() -> str | None:
    """The policy in force: ``"default"`` or ``"strict"`` (the application
    environment ``sandbox``); ``"hook"`` for the process-creation hook of
    :func:`install_sandbox` in a plain interpreter; None when unsandboxed."""
    if _c is not None:
        return str(_c.policy())
    return "hook" if _hook_installed else None


def protected_fds() -> frozenset[int]:
    """File descriptors the sandbox keeps Python from closing or replacing
    (those the VM had open when Python started); empty outside the VM."""
    return frozenset(_c.protected_fds()) if _c is not None else frozenset()


def protected_signals() -> frozenset[int]:
    """Signal numbers whose handlers Python may not replace; empty outside the VM."""
    return frozenset(_c.protected_signals()) if _c is not None else frozenset()


if _c is not None:
    # Inside the VM these are the C module's own functions: there is no
    # __code__ to replace, and erlang._confine makes the module's names
    # read-only, so what they report cannot be spoofed from Python.
    is_sandboxed = _c.active  # noqa: F811
    policy = _c.policy  # noqa: F811


_PROCESS_EVENTS: Final = frozenset(
    event for event, check, cls, _ in AUDIT_RULES if check == "deny" and cls == "process"
)


def _audit_hook(event: str, args: tuple[object, ...]) -> None:
    """The pure-Python hook of :func:`install_sandbox` (process creation only)."""
    if event in _PROCESS_EVENTS:
        raise _PySandboxError(message(event, "process"))


def install_sandbox() -> None:
    """Kept for erlang_python 4.x code.

    Inside the VM it does nothing: the sandbox is already installed, below
    Python, and cannot be removed.  In a plain interpreter it installs, once,
    a Python audit hook that blocks process creation with the same messages
    (a Python-level hook, as in 4.x; no protection beyond that).
    """
    global _hook_installed
    if _c is not None or _hook_installed:
        return
    sys.addaudithook(_audit_hook)
    _hook_installed = True
