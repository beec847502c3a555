"""Python objects -> Erlang's external term format: the encoder of ``erlang._etf``.

``erlang._etf`` (the decoder, and the rules both follow) re-exports
:class:`Encoder`; see its module documentation.  Containers encode their
items in one loop (``Encoder._items``) that writes the common scalars
inline and calls back into ``Encoder._put`` for the rest; atoms are cached
(bounded); a long list of only ints that fit in 32 bits, or of only finite
floats, is written in bulk (``_bulk``), at C speed.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from itertools import chain

from erlang._types import Atom, Pid, Ref, Term

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal, TypeVar

    _T = TypeVar("_T")

__all__ = ["Encoder"]

_U16 = struct.Struct(">H")
_TAG_F64 = struct.Struct(">Bd").pack  # NEW_FLOAT_EXT
_TAG_I32 = struct.Struct(">Bi").pack  # INTEGER_EXT
_TAG_U32 = struct.Struct(">BI").pack  # a tag and a 32-bit length
_SMALL_INTS = [bytes((97, v)) for v in range(256)]  # SMALL_INTEGER_EXT
_SMALL_TUPLES = [bytes((104, n)) for n in range(256)]  # SMALL_TUPLE_EXT heads
_INF = math.inf
_ATOM_CACHE_MAX = 65536
_BULK_MIN = 16  # a list this long is tried for bulk conversion
_LITTLE = sys.byteorder == "little"
_I4: Literal["i", "l"] = "i" if array("i").itemsize == 4 else "l"  # a native 32-bit int


def deep(max_depth: int, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` with room for ``max_depth`` levels of nesting (two
    frames each) above the interpreter's recursion limit.  A term or value
    nested deeper than the limit allows (1000 frames by default) is rare, so
    it is tried first as it is, then again here."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 2 * max(max_depth, 0) + 100)
    try:
        return fn(*args)
    finally:
        sys.setrecursionlimit(limit)


class Encoder:
    """Python objects -> bytes of the external term format.

    ``opaque`` turns an object with no term form into a term (an isolated
    child keeps the object and returns a reference).
    """

    __slots__ = ("_atoms", "_heads", "max_depth", "opaque")

    def __init__(self, max_depth: int = 1000,
                 opaque: Callable[[Any], Any] | None = None) -> None:
        self.max_depth = max_depth
        self.opaque = opaque
        self._atoms: dict[str, bytes] = {}  # Atom -> its encoding
        self._heads: dict[str, bytes] = {}  # Atom -> encode((Atom, _)) up to the value

    def encode(self, obj: Any) -> bytes:
        """``term_to_binary`` of ``obj``."""
        out = bytearray(b"\x83")
        try:
            self._put(out, obj, 0)
        except RecursionError:
            out = bytearray(b"\x83")
            deep(self.max_depth, self._put, out, obj, 0)
        return bytes(out)

    def encode_tagged(self, tag: Atom, value: Any) -> bytes:
        """``encode((tag, value))``, the head ``{Tag, `` written once per tag:
        the shape of every reply (``{ok, Value}``, ``{error, Reason}``)."""
        if type(tag) is not Atom:  # (a str equal to a cached atom is no atom)
            return self.encode((tag, value))
        head = self._heads.get(tag)
        if head is None:
            head = self.encode((tag, 0))[:-2]  # without the 0
            if len(self._heads) < 64:
                self._heads[tag] = head
        out = bytearray(head)
        try:
            self._items(out, (value,), 1)
        except RecursionError:
            out = bytearray(head)
            deep(self.max_depth, self._items, out, (value,), 1)
        return bytes(out)

    def _put(self, out: bytearray, o: Any, depth: int) -> None:
        """Append ``o`` (at nesting level ``depth``): every kind of value."""
        if depth > self.max_depth:
            raise ValueError(f"value nested deeper than {self.max_depth} levels")
        t = type(o)
        if t is tuple:
            n = len(o)
            out += _SMALL_TUPLES[n] if n < 256 else _TAG_U32(105, n)
            self._items(out, o, depth + 1)
        elif t is list:
            self._list(out, o, depth)
        elif t is dict:
            self._dict(out, o, depth)
        elif t is int or t is str or t is Atom or t is float or t is bytes or o is None \
                or o is True or o is False:
            self._items(out, (o,), depth)
        elif t is Pid or t is Ref or t is Term:
            etf = o.etf
            out += etf[1:]
        elif isinstance(o, Atom):
            self._atom(out, o)
        elif isinstance(o, bool):
            out += b"w\x04true" if o else b"w\x05false"
        elif isinstance(o, int):
            _int(out, int(o))
        elif isinstance(o, float):
            _float(out, float(o))
        elif isinstance(o, str):
            raw = str(o).encode("utf-8", "surrogatepass")
            out += _TAG_U32(109, len(raw))
            out += raw
        elif isinstance(o, (bytes, bytearray, memoryview)):
            raw = bytes(o)
            out += _TAG_U32(109, len(raw))
            out += raw
        elif isinstance(o, tuple):
            n = len(o)
            out += _SMALL_TUPLES[n] if n < 256 else _TAG_U32(105, n)
            self._items(out, o, depth + 1)
        elif isinstance(o, list):
            self._list(out, o, depth)
        elif isinstance(o, dict):
            self._dict(out, o, depth)
        elif isinstance(o, (Pid, Ref, Term)):
            out += o.etf[1:]
        elif self.opaque is not None:
            self._put(out, self.opaque(o), depth + 1)
        else:
            raise TypeError(f"{type(o).__name__} has no Erlang term form, and outside a "
                            "request there is no context to hold a reference to it")

    def _items(self, out: bytearray, items: tuple[Any, ...] | list[Any], depth: int) -> None:
        """Append each of ``items`` (at nesting level ``depth``): the common
        scalars here, inline, the rest through ``_put``."""
        if items and depth > self.max_depth:
            raise ValueError(f"value nested deeper than {self.max_depth} levels")
        atoms = self._atoms
        for o in items:
            t = type(o)
            if t is int:
                if 0 <= o < 256:
                    out += _SMALL_INTS[o]
                elif -2147483648 <= o <= 2147483647:
                    out += _TAG_I32(98, o)
                else:
                    _int(out, o)
            elif t is str:
                raw = o.encode() if o.isascii() else o.encode("utf-8", "surrogatepass")
                out += _TAG_U32(109, len(raw))
                out += raw
            elif t is Atom:
                e = atoms.get(o)
                if e is None:
                    self._atom(out, o)
                else:
                    out += e
            elif t is float:
                if -_INF < o < _INF:
                    out += _TAG_F64(70, o)
                else:
                    _float(out, o)
            elif t is tuple:
                n = len(o)
                out += _SMALL_TUPLES[n] if n < 256 else _TAG_U32(105, n)
                if n:
                    self._items(out, o, depth + 1)
            elif t is list:
                self._list(out, o, depth)
            elif t is dict:
                self._dict(out, o, depth)
            elif o is None:
                out += b"w\x04none"
            elif o is True:
                out += b"w\x04true"
            elif o is False:
                out += b"w\x05false"
            elif t is bytes:
                out += _TAG_U32(109, len(o))
                out += o
            else:
                self._put(out, o, depth)

    def _atom(self, out: bytearray, a: str) -> None:
        if len(a) > 255:
            raise ValueError("an atom has at most 255 characters")
        raw = str(a).encode("utf-8")
        if len(raw) < 256:
            e = bytes((119, len(raw))) + raw
        else:
            e = b"v" + _U16.pack(len(raw)) + raw
        if type(a) is Atom and len(self._atoms) < _ATOM_CACHE_MAX:
            self._atoms[a] = e
        out += e

    def _list(self, out: bytearray, o: list[Any], depth: int) -> None:
        if not o:
            out += b"j"
            return
        n = len(o)
        if n >= _BULK_MIN:
            bulk = _bulk(o)
            if bulk is not None:
                if depth >= self.max_depth:
                    raise ValueError(f"value nested deeper than {self.max_depth} levels")
                out += bulk
                return
        out += _TAG_U32(108, n)
        self._items(out, list(o), depth + 1)
        out += b"j"

    def _dict(self, out: bytearray, o: dict[Any, Any], depth: int) -> None:
        out += _TAG_U32(116, len(o))
        if _SAFE_KEYS.issuperset(map(type, o)):
            # Keys of these types never collide as terms: no check needed.
            self._items(out, list(chain.from_iterable(o.items())), depth + 1)
            return
        seen: set[bytes] = set()
        for k, v in list(o.items()):
            start = len(out)
            self._put(out, k, depth + 1)
            key = bytes(out[start:])
            if key in seen:
                raise ValueError("dict keys collide after conversion to Erlang terms "
                                 f"(e.g. 'a' and b'a' both become <<\"a\">>): {o!r:.200}")
            seen.add(key)
            self._put(out, v, depth + 1)


# Dict keys of these exact types become terms that differ whenever the keys
# differ (a binary, an integer, an atom: three kinds that never meet).
_SAFE_KEYS = frozenset({str, int, Atom})
_INT_ONLY = frozenset({int})
_FLOAT_ONLY = frozenset({float})


def _int(out: bytearray, v: int) -> None:
    if 0 <= v < 256:
        out += _SMALL_INTS[v]
    elif -2147483648 <= v <= 2147483647:
        out += _TAG_I32(98, v)
    else:
        mag = -v if v < 0 else v
        digits = mag.to_bytes((mag.bit_length() + 7) // 8, "little")
        if len(digits) < 256:
            out += b"n"
            out.append(len(digits))
        else:
            out += _TAG_U32(111, len(digits))
        out.append(1 if v < 0 else 0)
        out += digits


def _float(out: bytearray, d: float) -> None:
    if d != d:
        out += b"w\x03nan"
    elif d == _INF:
        out += b"w\x08infinity"
    elif d == -_INF:
        out += b"w\x0cneg_infinity"
    else:
        out += _TAG_F64(70, d)


def _bulk(o: list[Any]) -> bytes | None:
    """A list of only ints that fit in 32 bits, or only finite floats, as
    one LIST_EXT (STRING_EXT for small ints) built in bulk; None for any
    other list, which is encoded item by item."""
    types = set(map(type, o))
    n = len(o)
    if types == _INT_ONLY:
        try:
            native = array(_I4, o)
        except OverflowError:
            return None
        if _LITTLE:
            native.byteswap()
        be = native.tobytes()  # big-endian
        high = be[0::4] + be[1::4] + be[2::4]
        if high.count(0) == len(high):  # all in 0..255
            if n < 65536:
                return b"k" + _U16.pack(n) + be[3::4]
            out = bytearray(2 * n)
            out[0::2] = b"a" * n
            out[1::2] = be[3::4]
        else:
            out = bytearray(5 * n)
            out[0::5] = b"b" * n
            for lane in range(4):
                out[lane + 1::5] = be[lane::4]
        return _TAG_U32(108, n) + out + b"j"
    if types == _FLOAT_ONLY:
        if not -_INF < sum(o) < _INF:  # nan or an infinity in it (or an overflow)
            return None
        native = array("d", o)
        if _LITTLE:
            native.byteswap()
        be = native.tobytes()
        out = bytearray(9 * n)
        out[0::9] = b"F" * n
        for lane in range(8):
            out[lane + 1::9] = be[lane::8]
        return _TAG_U32(108, n) + out + b"j"
    return None
