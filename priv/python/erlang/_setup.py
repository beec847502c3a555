"""What the Erlang side applies to every context (``src/py_setup.erl``).

``py_setup`` keeps one set of settings for the whole application (paths,
an active venv, modules to import, preload code, the logging level and
format, whether tracing is on) and calls :func:`apply` with it on every
context when it changes and on every context that starts.  ``apply`` makes
the interpreter match the settings: it is idempotent, undoes what an
earlier version added and a later one no longer lists (a path, a venv),
and ignores settings older than the ones it has applied (two changes made
at once may reach a context in either order).

Interpreter-wide state (``sys.path``, imports, logging, tracing) is kept
here, once per interpreter: worker contexts share the main interpreter,
an own-GIL context has its own.  What belongs to one context (its own
preload code, and the globals that seed its new namespaces) is kept in the
context's own dict (``_erlang.context_data()``).
"""

from __future__ import annotations

import builtins
import importlib
import sys
import threading

from erlang import _loghook
from erlang._calls import _native_or_none
from erlang._types import Atom

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["apply", "reload", "venv_info"]

# This interpreter's applied state.  Worker contexts share the interpreter
# and apply the same settings on their threads at once: the lock makes each
# apply whole (two threads interleaving setup_logging left two handlers).
_lock = threading.RLock()
_version = -1
_paths: list[str] = []
_venv: tuple[str, str] | None = None  # (venv path, site-packages)
_venv_added: list[str] = []
_reloads: dict[str, Any] = {}
_log_version: Any = None
# The context data outside the VM (one "context": the interpreter).
_local_data: dict[str, Any] = {}


def apply(settings: dict[str, Any], own_preload: str | None = None) -> dict[Atom, Any]:
    """Make this interpreter and the running context match ``settings``.

    ``settings`` holds ``version`` (an increasing integer), ``paths``
    (directories, first first), ``venv`` (``None`` or ``(path,
    site_packages)``), ``imports`` (``(module, function or 'all')`` pairs),
    ``preload`` (code or ``None``), ``log_level``, ``log_format`` and
    ``log_version`` (changed by each ``py:configure_logging/1``), ``tracing``.
    ``own_preload`` is the context's own preload code
    (``py_context:new(#{preload => Code})``), given once when it starts.

    Returns the failures, for the Erlang side to report: ``imports``, a list
    of ``(module, function, exception name, message)``, and ``preload``,
    ``(exception name, message)`` or ``None``.
    """
    global _version
    version = int(settings["version"])
    data = _context_data()
    if own_preload is not None:
        data["own_preload"] = own_preload
    failures: dict[Atom, Any] = {Atom("imports"): [], Atom("preload"): None}
    with _lock:
        if version >= _version:
            _apply_venv(settings.get("venv"))
            _apply_paths([str(p) for p in settings.get("paths") or []])
            _apply_logging(settings)
            _set_tracing(bool(settings.get("tracing")))
            _version = version
    failures[Atom("imports")] = _apply_imports(settings.get("imports") or [])
    if version >= data.get("version", -1):
        data["version"] = version
        codes = (settings.get("preload") or None, data.get("own_preload"))
        if own_preload is not None or data.get("codes") != codes:
            failures[Atom("preload")] = _apply_preload(data, codes)
    return failures


def _set_tracing(on: bool) -> None:
    """Tracing on or off; erlang._tracing (off until told) is imported
    only to turn it on, or once it is imported (an isolated child starts
    without it: typing, functools, contextvars)."""
    if on or "erlang._tracing" in sys.modules:
        from erlang import _tracing

        _tracing.set_enabled(on)


def _apply_logging(settings: dict[str, Any]) -> None:
    """The logging level and format, when ``py:configure_logging/1`` set them
    since this interpreter last applied them (``log_version``): a context
    that starts, or another change, leaves alone what Python code set
    itself (``erlang.setup_logging``, ``Logger.setLevel``)."""
    global _log_version
    version = settings.get("log_version")
    if version == _log_version:
        return
    _loghook.configure(int(settings.get("log_level", 30)), settings.get("log_format") or None)
    _log_version = version


def _context_data() -> dict[str, Any]:
    native = _native_or_none()
    if native is None:
        return _local_data
    data: dict[str, Any] = native.context_data()
    return data


def _remove(path: str) -> None:
    while path in sys.path:
        sys.path.remove(path)


def _apply_paths(paths: list[str]) -> None:
    global _paths
    for old in _paths:
        if old not in paths:
            _remove(old)
    for path in paths:
        _remove(path)
    sys.path[0:0] = paths
    _paths = list(paths)


def _apply_venv(venv: Any) -> None:
    global _venv, _venv_added
    wanted = (str(venv[0]), str(venv[1])) if venv else None
    if wanted == _venv:
        return
    for path in _venv_added:
        _remove(path)
    _venv, _venv_added = None, []
    if wanted is None:
        return
    import site

    before = set(sys.path)
    site.addsitedir(wanted[1])  # .pth files too (editable installs)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + [p for p in sys.path if p not in added]
    _venv, _venv_added = wanted, added


def _apply_imports(imports: list[Any]) -> list[tuple[Any, Any, Atom, str]]:
    failed = []
    for module, func in imports:
        try:
            mod = importlib.import_module(str(module))
            if func != "all":
                getattr(mod, str(func))
        except Exception as exc:
            failed.append((module, func, Atom(type(exc).__name__), str(exc)))
    return failed


def _apply_preload(data: dict[str, Any], codes: tuple[Any, Any]) -> Any:
    data["codes"] = codes
    seed: dict[str, Any] = {"__builtins__": builtins, "__name__": "__main__"}
    try:
        for code in codes:
            if code:
                exec(compile(str(code), "<preload>", "exec"), seed)
    except Exception as exc:
        data.pop("seed", None)
        data.pop("codes", None)
        return (Atom(type(exc).__name__), str(exc))
    for name in ("__builtins__", "__name__"):
        seed.pop(name, None)
    if seed:
        data["seed"] = seed
    else:
        data.pop("seed", None)
    return None


def reload(module: str, token: int) -> Atom:
    """``importlib.reload`` of a module already imported, once per
    interpreter for a given ``token`` (``py:reload/1`` asks every context;
    worker contexts share one interpreter).  ``reloaded``, ``not_loaded``
    or ``done`` (this interpreter did it already for ``token``)."""
    name = str(module)
    with _lock:
        if _reloads.get(name) == token:
            return Atom("done")
        _reloads[name] = token
    mod = sys.modules.get(name)
    if mod is None:
        return Atom("not_loaded")
    importlib.reload(mod)
    return Atom("reloaded")


def venv_info() -> dict[str, Any]:
    """The venv active in this interpreter, as erlang_python 4.x reports
    it: ``{'active': False}`` or ``active``, ``venv_path``,
    ``site_packages`` and ``sys_path``."""
    if _venv is None:
        return {"active": False}
    return {"active": True, "venv_path": _venv[0], "site_packages": _venv[1],
            "sys_path": list(sys.path)}
