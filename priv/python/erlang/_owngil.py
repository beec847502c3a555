"""Imports in an own-GIL sub-interpreter (``py_context:new(#{mode => owngil})``).

Two sub-interpreters with their own GIL run Python in parallel, but not
every C extension module survives that: on CPython 3.12.1 importing
``_hashlib``, ``_ssl``, ``_asyncio``, ``_decimal``, ``_datetime`` or
``_sqlite3`` in such an interpreter corrupts the process's heap, and
3.13.0 crashes at teardown after ``_datetime``.  An own-GIL context lives in
the Erlang VM's process, so a crash there kills the node.

:class:`ExtensionGuard` is put first on ``sys.meta_path`` in every own-GIL
interpreter.  Pure-Python modules and the modules built into libpython import
as usual; an extension module (a shared library) imports only if
:data:`SAFE_EXTENSIONS` lists it for the running Python version, and
otherwise raises :class:`ImportError` naming it.  Most of the standard
library falls back to pure Python when its accelerator is refused
(``asyncio`` without ``_asyncio``, ``decimal`` with ``_pydecimal``,
``datetime`` with ``_pydatetime``, ``hashlib`` with the built-in hashes),
so those modules still work, only slower.

The allow-list is data, one entry per Python version, and the project's
tests import and use every entry in an own-GIL context on that version.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ExtensionFileLoader, ModuleSpec
from types import ModuleType

__all__ = ["SAFE_EXTENSIONS", "ExtensionGuard", "install", "safe_extensions"]

# Extension modules (shared libraries) known to work in an own-GIL
# sub-interpreter, by (major, minor) (_posixsubprocess because asyncio
# imports subprocess; creating a process stays refused: the interpreter is
# made with allow_fork and allow_exec off, and the sandbox denies it): each
# was imported and used by two
# own-GIL interpreters at once, 100 times each, on that version
# (test/python/test_owngil.py, test/python/owngil_usage.py says how).
# Left out after crashes there: _datetime, _decimal, _asyncio, _zoneinfo
# (both versions); on 3.12.1 also binascii (base64.b64encode, a keyword
# argument to b2a_base64, corrupts the heap) and _statistics (statistics
# imports decimal through fractions).
_COMMON = frozenset({
    "_json", "_pickle", "math", "_struct", "array", "zlib", "_random",
    "_csv", "unicodedata", "_socket", "select", "_bisect", "_heapq",
    "_contextvars", "_opcode", "fcntl", "cmath", "_blake2", "_sha2",
    "_md5", "_sha1", "_sha3", "_queue", "grp", "_posixsubprocess",
})

SAFE_EXTENSIONS: dict[tuple[int, int], frozenset[str]] = {
    (3, 12): _COMMON,
    (3, 13): _COMMON | {"binascii", "_statistics"},
}


def safe_extensions(version: Sequence[int] | None = None) -> frozenset[str]:
    """The extension modules allowed in an own-GIL interpreter on ``version``
    (default: the running Python); empty for a version with no entry."""
    v = tuple(version if version is not None else sys.version_info[:2])[:2]
    return SAFE_EXTENSIONS.get((v[0], v[1]), frozenset())


class ExtensionGuard:
    """A ``sys.meta_path`` finder that refuses unlisted extension modules.

    It asks the finders after it for the module's spec, and raises
    :class:`ImportError` when that spec would load a shared library not in
    ``allowed``; otherwise it returns the spec (so the search is not made
    twice).
    """

    def __init__(self, allowed: frozenset[str], version: str | None = None) -> None:
        self.allowed = allowed
        self.version = version or "{}.{}".format(*sys.version_info[:2])

    def find_spec(
        self,
        name: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        """The spec the other finders give for ``name``, after the check."""
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec: ModuleSpec | None = find(name, path, target)
            if spec is None:
                continue
            if isinstance(spec.loader, ExtensionFileLoader) and name not in self.allowed:
                raise ImportError(
                    f"extension module {name!r} is not known to be safe in an own-GIL "
                    f"sub-interpreter on Python {self.version}; use a worker or an "
                    f"isolated context for it",
                    name=name,
                )
            return spec
        return None


def install(version: Sequence[int] | None = None) -> ExtensionGuard:
    """Put an :class:`ExtensionGuard` first on ``sys.meta_path`` (once)."""
    for finder in sys.meta_path:
        if isinstance(finder, ExtensionGuard):
            return finder
    guard = ExtensionGuard(safe_extensions(version))
    sys.meta_path.insert(0, guard)
    return guard
