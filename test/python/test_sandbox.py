"""erlang._sandbox: the policy tables, the messages, and the public API.

Runs in a plain interpreter and inside the VM (test/python_SUITE.erl).  The
attacks themselves are in test/py_sandbox_SUITE.erl, on peer nodes: an escape
must not be able to take this interpreter's VM down.  Here are the parts that
are plain Python: that the tables the C side reads are well formed and name
things that exist in this Python, the documented messages, and the 4.x
``install_sandbox()`` hook of a plain interpreter (in a child process, since an
audit hook cannot be removed).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from erlang import _sandbox
from erlang._sandbox import (
    SandboxError,
    SandboxImportError,
    blocked,
    install_sandbox,
    is_sandboxed,
    message,
    policy,
)

try:
    import _erlang_sandbox  # noqa: F401  (the C half: only inside the VM)

    IN_VM = True
except ImportError:
    IN_VM = False

only_in_vm = pytest.mark.skipif(not IN_VM, reason="needs the embedded interpreter")
only_outside = pytest.mark.skipif(IN_VM, reason="starts a child process")

#: The checks c_src/sandbox/sandbox.c and guards.c implement (their closed vocabulary).
AUDIT_CHECKS = {"deny", "kill_target", "killpg_target", "thread_signal", "rlimit", "prlimit",
                "proc_mem_path", "from_python", "native_symbol", "module", "chdir"}
GUARD_CHECKS = {"deny", "exit_flag", "signal", "signal_handler", "fd", "fd2", "fd_range",
                "proc_mem_fd", "extension", "setlocale", "native_symbol", "fd_internal",
                "extension_exec", "ignore", "stdin", "fd_read", "loader"}
POLICIES = {"default", "strict"}

PROCESS = ("fork()/exec() would corrupt the Erlang runtime.\n"
           "Use Erlang ports (open_port/2) for subprocess management.")

#: Guarded functions some supported Python versions lack (3.11: os.unshare, os.setns).
VERSION_SPECIFIC: set[tuple[str, str]] = {("posix", "unshare"), ("posix", "setns")}


# ------------------------------------------------------------ messages

def test_documented_messages() -> None:
    assert message("subprocess.Popen", "process") == (
        "subprocess.Popen is blocked in Erlang VM context.\n" + PROCESS)
    assert message("os.fork", "process") == "os.fork is blocked in Erlang VM context.\n" + PROCESS


def test_every_class_has_a_two_line_reason() -> None:
    for cls, reason in _sandbox.REASONS:
        lines = message("x", cls).split("\n")
        assert len(lines) == 3 and all(lines), cls
        assert lines[0] == "x is blocked in Erlang VM context."
        assert "\n".join(lines[1:]) == reason


def test_sandbox_error_is_a_runtime_and_a_permission_error() -> None:
    assert issubclass(SandboxError, RuntimeError)
    assert issubclass(SandboxError, PermissionError)
    e = SandboxError(message("os.fork", "process"))
    assert str(e) == message("os.fork", "process")
    assert isinstance(e, OSError) and e.errno is None


def test_blocked_builds_the_documented_error() -> None:
    e = blocked("asyncio subprocess_exec()")
    assert isinstance(e, SandboxError) and isinstance(e, PermissionError)
    assert str(e) == "asyncio subprocess_exec() is blocked in Erlang VM context.\n" + PROCESS
    assert str(blocked("x", "fd")).split("\n")[1] == dict(_sandbox.REASONS)["fd"].split("\n")[0]


def test_sandbox_import_error_is_a_module_not_found_error() -> None:
    assert issubclass(SandboxImportError, ModuleNotFoundError)
    e = SandboxImportError(message("import _testcapi", "sandbox"), name="_testcapi")
    assert e.name == "_testcapi" and str(e).startswith("import _testcapi is blocked")


# ------------------------------------------------------------ tables

CLASSES = {cls for cls, _ in _sandbox.REASONS}


def test_audit_rules_are_well_formed() -> None:
    events = [row[0] for row in _sandbox.AUDIT_RULES]
    assert len(events) == len(set(events))
    for event, check, cls, pol in _sandbox.AUDIT_RULES:
        assert check in AUDIT_CHECKS and cls in CLASSES and pol in POLICIES, event


def test_documented_process_events_are_denied() -> None:
    # The C side denies these from the first instruction (its bootstrap rule)
    # and refuses to start when this table does not agree.
    rules = {event: rest for event, *rest in _sandbox.AUDIT_RULES}
    for event in ("os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
                  "os.system", "subprocess.Popen"):
        assert rules[event] == ["deny", "process", "default"], event
    assert dict(_sandbox.REASONS)["process"] == PROCESS


def test_guarded_functions_exist_in_this_python() -> None:
    missing = []
    for module, name, op, check, cls, pol in _sandbox.GUARDED_FUNCTIONS:
        assert check in GUARD_CHECKS and cls in CLASSES and pol in POLICIES, (module, name)
        assert op, (module, name)
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue  # an optional extension (cffi) that is not installed
        owner: object = mod
        for part in name.split("."):
            owner = getattr(owner, part, None)
        if owner is None and (module, name) not in VERSION_SPECIFIC:
            missing.append(f"{module}.{name}")
    assert not missing, missing


def test_native_symbols_and_modules() -> None:
    names = [s for s, _ in _sandbox.NATIVE_SYMBOLS]
    assert len(names) == len(set(names))
    assert {"fork", "vfork", "execve", "system", "posix_spawn", "syscall", "kill",
            "Py_FinalizeEx", "_PySys_ClearAuditHooks"} <= set(names)
    assert all(cls in CLASSES for _, cls in _sandbox.NATIVE_SYMBOLS + _sandbox.NATIVE_PREFIXES)
    for name, cls, pol in _sandbox.DENIED_MODULES:
        assert "." not in name and cls in CLASSES and pol in POLICIES, name


def test_vm_signals_exist() -> None:
    for name in _sandbox.VM_SIGNALS:
        assert isinstance(getattr(signal, name), int), name


def test_tables_are_immutable_data() -> None:
    # The C side copies them once; tuples of str can be copied faithfully.
    for table in (_sandbox.REASONS, _sandbox.AUDIT_RULES, _sandbox.GUARDED_FUNCTIONS,
                  _sandbox.NATIVE_SYMBOLS, _sandbox.NATIVE_PREFIXES, _sandbox.DENIED_MODULES):
        assert isinstance(table, tuple)
        assert all(isinstance(row, tuple) and all(isinstance(c, str) for c in row)
                   for row in table)
    assert all(isinstance(s, str) for s in _sandbox.VM_SIGNALS)


# ------------------------------------------------------------ the Python hook

def test_python_hook_denies_process_creation_only() -> None:
    with pytest.raises(RuntimeError) as info:
        _sandbox._audit_hook("os.system", ("true",))
    assert isinstance(info.value, PermissionError)
    assert str(info.value) == message("os.system", "process")
    _sandbox._audit_hook("open", ("/tmp/x", "r", 0))
    _sandbox._audit_hook("os.kill", (1, 0))


@only_outside
def test_install_sandbox_in_a_plain_interpreter() -> None:
    code = textwrap.dedent("""
        import os, subprocess
        from erlang._sandbox import install_sandbox, is_sandboxed, policy
        assert not is_sandboxed() and policy() is None
        install_sandbox()
        install_sandbox()
        assert is_sandboxed() and policy() == 'hook'
        for f in (lambda: os.system('true'), lambda: subprocess.run(['true'])):
            try:
                f()
            except PermissionError as e:
                assert isinstance(e, RuntimeError)
                print(str(e).split(chr(10))[0])
        import platform
        platform.uname().processor  # degrades: it catches OSError
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert out[:2] == ["os.system is blocked in Erlang VM context.",
                       "subprocess.Popen is blocked in Erlang VM context."]


@only_outside
def test_plain_interpreter_is_not_sandboxed() -> None:
    assert is_sandboxed() is _sandbox._hook_installed
    assert _sandbox.protected_fds() == frozenset()
    assert _sandbox.protected_signals() == frozenset()


# ------------------------------------------------------------ inside the VM

@only_in_vm
def test_in_the_vm() -> None:
    assert is_sandboxed() is True
    assert policy() in POLICIES
    assert install_sandbox() is None
    assert SandboxError is _erlang_sandbox.SandboxError
    assert SandboxImportError is _erlang_sandbox.SandboxImportError
    assert {0, 1, 2} <= _sandbox.protected_fds()
    assert signal.SIGTERM in _sandbox.protected_signals()


@only_in_vm
def test_a_denial_in_the_vm_uses_the_same_message() -> None:
    # waitpid is always refused (the VM's children are its own) and harmless
    # if it were not: WNOHANG returns at once.
    with pytest.raises(SandboxError) as info:
        os.waitpid(-1, os.WNOHANG)
    assert str(info.value) == message("os.waitpid", "children")
