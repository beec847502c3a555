"""``erlang.SharedDict``: a dict shared by Erlang and Python.

Erlang makes it (``py:shared_dict_new/0``) and passes it to Python, which
wraps it: ``sd = erlang.SharedDict(handle)``.  Keys and values are Erlang
terms kept in C (``c_src/shared/sdict.c``), converted on every read, so
every context (own-GIL ones too) and every thread sees the same entries and
no Python object is shared between interpreters.  A Python ``str`` key is
the Erlang binary of its UTF-8 (``'config'`` is ``<<"config">>``).  Once
destroyed (``destroy()``, ``py:shared_dict_destroy/1`` or the death of the
Erlang process that made it) every use raises ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from erlang._bridge import kind_of
from erlang._calls import _native

__all__ = ["SharedDict"]

_MISSING: Any = object()


class SharedDict:
    """A mapping over a shared dict handle."""

    __slots__ = ("_h",)
    _h: Any

    def __init__(self, handle: Any) -> None:
        if isinstance(handle, SharedDict):
            handle = handle._h
        if kind_of(handle) != "shared_dict":
            raise TypeError(f"expected a shared dict (py:shared_dict_new/0), got {handle!r}")
        self._h = handle

    def __getitem__(self, key: Any) -> Any:
        got = _native().sdict_get(self._h, key)
        if got is None:
            raise KeyError(key)
        return got[0]

    def get(self, key: Any, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        got = _native().sdict_get(self._h, key)
        return default if got is None else got[0]

    def __setitem__(self, key: Any, value: Any) -> None:
        _native().sdict_set(self._h, key, value)

    def __delitem__(self, key: Any) -> None:
        if not _native().sdict_del(self._h, key):
            raise KeyError(key)

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (``default``, or KeyError)."""
        native = _native()
        got = native.sdict_get(self._h, key)
        if got is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        native.sdict_del(self._h, key)
        return got[0]

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value under ``key``; stores ``default`` first when missing."""
        got = _native().sdict_get(self._h, key)
        if got is not None:
            return got[0]
        self[key] = default
        return default

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every pair of ``other`` (a mapping or pairs) and ``kwargs``."""
        pairs: Iterable[tuple[Any, Any]] = (
            other.items() if hasattr(other, "items") else other
        )
        for key, value in pairs:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __contains__(self, key: Any) -> bool:
        return _native().sdict_get(self._h, key) is not None

    def keys(self) -> list[Any]:
        """Every key (a list, in no particular order)."""
        keys: list[Any] = _native().sdict_keys(self._h)
        return keys

    def values(self) -> list[Any]:
        """Every value."""
        return [v for _, v in self.items()]

    def items(self) -> list[tuple[Any, Any]]:
        """Every (key, value) pair present when read."""
        native = _native()
        items = getattr(native, "sdict_items", None)
        if items is not None:  # an isolated child's: one call into the VM
            pairs: list[tuple[Any, Any]] = items(self._h)
            return pairs
        out = []
        for key in native.sdict_keys(self._h):
            got = native.sdict_get(self._h, key)
            if got is not None:
                out.append((key, got[0]))
        return out

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        n: int = _native().sdict_len(self._h)
        return n

    def to_dict(self) -> dict[Any, Any]:
        """A plain dict copy."""
        return dict(self.items())

    def destroy(self) -> None:
        """Destroy the dict for everyone (Erlang too): idempotent."""
        _native().sdict_destroy(self._h)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedDict) and other._h == self._h

    def __hash__(self) -> int:
        return hash(self._h)

    def __repr__(self) -> str:
        return f"<SharedDict {self._h!r}>"
