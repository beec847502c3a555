"""Process-wide state kept out of reach of one Erlang process's Python code.

The C sandbox (``c_src/sandbox/``) denies the operations that would change
the state of the VM's OS process.  Three of them are so common in ordinary
code that a plain denial would break it; here they are confined instead:

- **the environment**: ``os.environ[k] = v`` (and ``setdefault``, ``pop``,
  ``update``...) changes Python's ``os.environ`` mapping only, never the
  process environment that the VM and its ports inherit.  ``os.getenv`` and
  ``erlang.subprocess`` (its default ``env``) see the change; C code calling
  ``getenv()`` does not.  ``os.putenv``/``os.unsetenv`` themselves are denied.
- **builtins**: each Erlang process's namespace gets its own ``__builtins__``
  (a copy of the builtins module), and ``import builtins`` in that
  namespace's code returns that copy, so ``builtins.open = ...`` stays in
  the namespace.  The real module, reached through ``sys.modules`` or an
  attribute of a builtin function, is not guarded: see docs/security.md.
- **subprocess**: with the application environment ``redirect_subprocess``
  set, the standard ``subprocess.Popen`` (and so ``run``, ``call``,
  ``check_output``, ``os.popen``) starts programs through ports; otherwise
  it stays blocked with the sandbox's message.
- **the sandbox's own module**: the public names of ``erlang._sandbox``
  cannot be rebound, and inside the VM ``is_sandboxed``/``policy`` are the
  C module's own functions (no ``__code__`` to replace).

:func:`install` runs once per interpreter, from ``erlang._runtime.install``.
"""

from __future__ import annotations

import builtins
import os
import sys
from types import ModuleType
from typing import Any

__all__ = ["install", "namespace_builtins"]

_real_import = builtins.__import__


def _environ_setitem(self: Any, key: str, value: str) -> None:
    self._data[self.encodekey(key)] = self.encodevalue(value)


def _environ_delitem(self: Any, key: str) -> None:
    encoded = self.encodekey(key)
    try:
        del self._data[encoded]
    except KeyError:
        raise KeyError(key) from None


def _confine_environ() -> None:
    """``os.environ`` writes stay in Python (see the module docstring)."""
    cls = type(os.environ)
    cls.__setitem__ = _environ_setitem  # type: ignore[method-assign]
    cls.__delitem__ = _environ_delitem  # type: ignore[method-assign]


def namespace_builtins() -> dict[str, Any]:
    """A new ``__builtins__`` for one Erlang process's namespace (called by
    the NIF when it makes the namespace): a copy of the builtins module
    whose ``__import__`` hands out the copy for ``import builtins``."""
    module = ModuleType("builtins", builtins.__doc__)
    ns = module.__dict__
    ns.update(builtins.__dict__)

    def __import__(name: str, globals: Any = None, locals: Any = None,  # noqa: A001,A002
                   fromlist: Any = (), level: int = 0) -> Any:
        if name == "builtins" and level == 0:
            return module
        return _real_import(name, globals, locals, fromlist, level)

    __import__.__doc__ = _real_import.__doc__
    ns["__import__"] = __import__
    return ns


class _ReadOnlyModule(ModuleType):
    """A module whose public names cannot be rebound or deleted."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
            return
        from erlang._sandbox import blocked

        raise blocked(f"rebinding erlang._sandbox.{name}", "sandbox")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)


def _protect_sandbox_module() -> None:
    module = sys.modules.get("erlang._sandbox")
    if module is not None and type(module) is ModuleType:
        module.__class__ = _ReadOnlyModule


def _redirecting() -> bool:
    """Whether the application environment redirect_subprocess is true."""
    from erlang._calls import call

    try:
        answer = call("erlang_python.program", "policy")
    except Exception:  # noqa: BLE001  (no Erlang to ask)
        return False
    return bool(answer.get("redirect_subprocess"))


def _redirect_stdlib(module: Any) -> None:
    """Make ``module.Popen`` (the standard subprocess's) start programs
    through ports when the application says so, at each construction."""
    std_popen = module.Popen
    if getattr(std_popen, "__erlang__", False):
        return

    class RedirectablePopen(std_popen):  # type: ignore[misc,valid-type]
        __erlang__ = True
        __doc__ = std_popen.__doc__

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            if cls is RedirectablePopen and _redirecting():
                from erlang.subprocess import Popen

                return Popen(*args, **kwargs)  # not a cls: __init__ is not run
            return super().__new__(cls)

    RedirectablePopen.__name__ = RedirectablePopen.__qualname__ = "Popen"
    RedirectablePopen.__module__ = module.__name__
    module.Popen = RedirectablePopen


class _SubprocessHook:
    """A meta path finder that, when the standard ``subprocess`` module is
    imported, makes its ``Popen`` ask Erlang (app env ``redirect_subprocess``)
    whether programs go through ports (``erlang.subprocess``)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "subprocess":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _redirect_stdlib(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Confine the environment and protect ``erlang._sandbox`` (inside the
    VM only: a plain interpreter is left as it is)."""
    from erlang._sandbox import _c

    if _c is None:  # a plain interpreter: nothing to confine
        return
    _confine_environ()
    if "subprocess" in sys.modules:
        _redirect_stdlib(sys.modules["subprocess"])
    elif not any(isinstance(f, _SubprocessHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _SubprocessHook())
    import erlang._sandbox  # noqa: F401

    _protect_sandbox_module()
