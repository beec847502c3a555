"""Value types that stand for Erlang terms inside Python.

The C conversion layer (``c_src/convert/to_py.c`` and ``c_src/convert/to_term.c``) creates and
reads these classes; they are plain Python so that code using them can be
tested in an ordinary interpreter too.

``Pid``, ``Ref`` and ``Term`` keep the term in Erlang's external term format
(the bytes of ``term_to_binary/1``).  That is what makes them lossless: a
remote pid, a fun or a port travels through Python and comes back as the very
same term.
"""

from __future__ import annotations

__all__ = ["Atom", "Pid", "Ref", "Term", "CallInterrupted", "ProcessError"]


class Atom(str):
    """An Erlang atom.  It is a ``str`` (``Atom("ok") == "ok"``) that converts
    back to an atom, where a plain ``str`` converts to a binary."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


class _Opaque:
    """A term held in external term format; compared and hashed by its bytes."""

    __slots__ = ("_etf",)
    _etf: bytes

    def __init__(self, etf: bytes) -> None:
        if not isinstance(etf, bytes) or not etf[:1] == b"\x83":
            raise TypeError(
                f"{type(self).__name__} takes the external term format bytes "
                "of a term (they start with 131)"
            )
        self._etf = etf

    @property
    def etf(self) -> bytes:
        """The term in Erlang's external term format."""
        return self._etf

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Opaque) and type(other) is type(self) and other._etf == self._etf
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._etf))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._etf!r})"

    def __reduce__(self) -> tuple[type, tuple[bytes]]:
        return (type(self), (self._etf,))


class Pid(_Opaque):
    """An Erlang process identifier (local or remote)."""

    __slots__ = ()


class Ref(_Opaque):
    """An Erlang reference."""

    __slots__ = ()


class Term(_Opaque):
    """Any other Erlang term (a fun, a port, an improper list, a bitstring, a
    list or map used as a dict key); it converts back to the same term."""

    __slots__ = ()


class CallInterrupted(BaseException):
    """Raised inside a request whose Erlang caller timed out, died or cancelled it.

    It derives from ``BaseException`` so that ``except Exception`` in library
    code does not swallow it.
    """


class ProcessError(Exception):
    """``erlang.send`` to a local process that does not exist (erlang_python
    4.x raises it too)."""
