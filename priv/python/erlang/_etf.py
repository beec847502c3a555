"""Erlang's external term format in Python: the conversion of an isolated context.

An isolated context's interpreter runs in a child OS process
(``erlang._child``) and exchanges terms with the VM as bytes of the external
term format (``term_to_binary/1``).  :func:`decode` and :func:`encode` apply
the same rules as the NIF's conversion (``c_src/convert/to_py.c`` and
``to_term.c``), so a value crosses the boundary the same way in every kind
of context:

- atoms become :class:`erlang.Atom` (``true``/``false`` become bools;
  ``none``, ``nil`` and ``undefined`` become None; ``nan``, ``infinity`` and
  ``neg_infinity`` become floats); an ``Atom`` becomes an atom again;
- integers of any size are ints; a binary is a ``str`` when it is valid UTF-8,
  else ``bytes``; ``{bytes, B}`` is ``bytes``;
- pids and references become :class:`erlang.Pid` and :class:`erlang.Ref`,
  funs, ports, improper lists and bitstrings :class:`erlang.Term`, all of
  them holding the term's own bytes so that they come back unchanged;
- a map key Python cannot hash (a list, a map) stays a ``Term``; keys that
  collide in Python (``1`` and ``1.0``) or in Erlang (``'a'`` and ``b'a'``)
  are an error, never a silent loss.

An object with no term form is handed to ``Encoder.opaque``, which an
isolated child sets to keep the object and return a reference term; without
it the encoder raises ``TypeError``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from erlang._types import Atom, Pid, Ref, Term

__all__ = ["Decoder", "Encoder", "decode", "encode"]

_VERSION = 131
_FLOAT = struct.Struct(">d")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")

_SPECIAL_ATOMS: dict[str, Any] = {
    "true": True,
    "false": False,
    "none": None,
    "nil": None,
    "undefined": None,
    "nan": math.nan,
    "infinity": math.inf,
    "neg_infinity": -math.inf,
}


# The atom `bytes' as the first element of a tuple, in each atom encoding,
# from its length byte(s) on (OTP 25 writes ATOM_EXT, OTP 26 the UTF-8 ones).
_BYTES_TAGS = frozenset({b"\x05bytesm", b"\x00\x05bytes"})
_ATOM_TAGS = frozenset({100, 115, 118, 119})


class Decoder:
    """Bytes of the external term format -> Python objects.

    ``resolve_ref`` may turn a 4-tuple ``{'$erlang_python_ref', ...}`` (an
    isolated context's object reference) into the object it names.
    """

    __slots__ = ("_atoms", "max_depth", "resolve_ref")

    def __init__(self, max_depth: int = 1000,
                 resolve_ref: Callable[[tuple[Any, ...]], Any] | None = None) -> None:
        self.max_depth = max_depth
        self.resolve_ref = resolve_ref
        self._atoms: dict[bytes, Any] = {}

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        """The term at ``data[offset:]`` (which starts with the version byte 131)."""
        buf = bytes(data) if not isinstance(data, bytes) else data
        if len(buf) <= offset or buf[offset] != _VERSION:
            raise ValueError("not external term format (no version byte 131)")
        value, end = self._term(buf, offset + 1, 0)
        if end != len(buf):
            raise ValueError("trailing bytes after the term")
        return value

    # One method, tags in order of how often they come: most calls decode a
    # handful of small terms, and a method call per term is the main cost.
    def _term(self, b: bytes, i: int, depth: int) -> tuple[Any, int]:
        if depth > self.max_depth:
            raise ValueError(f"term nested deeper than {self.max_depth} levels")
        tag = b[i]
        if tag == 97:  # SMALL_INTEGER_EXT
            return b[i + 1], i + 2
        if tag == 98:  # INTEGER_EXT
            return _I32.unpack_from(b, i + 1)[0], i + 5
        if tag == 119 or tag == 115:  # SMALL_ATOM_UTF8_EXT, SMALL_ATOM_EXT
            n = b[i + 1]
            return self._atom(b[i + 2:i + 2 + n], tag == 119), i + 2 + n
        if tag == 118 or tag == 100:  # ATOM_UTF8_EXT, ATOM_EXT
            n = _U16.unpack_from(b, i + 1)[0]
            return self._atom(b[i + 3:i + 3 + n], tag == 118), i + 3 + n
        if tag == 109:  # BINARY_EXT
            n = _U32.unpack_from(b, i + 1)[0]
            raw = b[i + 5:i + 5 + n]
            try:
                return raw.decode("utf-8"), i + 5 + n
            except UnicodeDecodeError:
                return raw, i + 5 + n
        if tag == 104 or tag == 105:  # SMALL_TUPLE_EXT, LARGE_TUPLE_EXT
            if tag == 104:
                n, j = b[i + 1], i + 2
            else:
                n, j = _U32.unpack_from(b, i + 1)[0], i + 5
            if n == 2 and b[j] in _ATOM_TAGS and b[j + 1:j + 8] in _BYTES_TAGS:
                k = j + (8 if b[j] in (119, 115) else 9)  # {bytes, Binary}
                if b[k - 1] == 109:
                    m = _U32.unpack_from(b, k)[0]
                    return b[k + 4:k + 4 + m], k + 4 + m
            items = []
            for _ in range(n):
                v, j = self._term(b, j, depth + 1)
                items.append(v)
            t = tuple(items)
            if n == 4 and self.resolve_ref is not None and t[0] == "$erlang_python_ref" \
                    and type(t[0]) is Atom:
                return self.resolve_ref(t), j
            return t, j
        if tag == 106:  # NIL_EXT
            return [], i + 1
        if tag == 108:  # LIST_EXT
            n = _U32.unpack_from(b, i + 1)[0]
            j = i + 5
            items = []
            for _ in range(n):
                v, j = self._term(b, j, depth + 1)
                items.append(v)
            if b[j] != 106:  # improper: the whole list stays a Term
                end = _skip(b, j)
                return Term(bytes([_VERSION]) + b[i:end]), end
            return items, j + 1
        if tag == 107:  # STRING_EXT: a list of small integers
            n = _U16.unpack_from(b, i + 1)[0]
            return list(b[i + 3:i + 3 + n]), i + 3 + n
        if tag == 70:  # NEW_FLOAT_EXT
            return _FLOAT.unpack_from(b, i + 1)[0], i + 9
        if tag == 116:  # MAP_EXT
            return self._map(b, i, depth)
        if tag == 110 or tag == 111:  # SMALL_BIG_EXT, LARGE_BIG_EXT
            if tag == 110:
                n, j = b[i + 1], i + 2
            else:
                n, j = _U32.unpack_from(b, i + 1)[0], i + 5
            v = int.from_bytes(b[j + 1:j + 1 + n], "little")
            return (-v if b[j] else v), j + 1 + n
        end = _skip(b, i)
        etf = bytes([_VERSION]) + b[i:end]
        if tag == 88 or tag == 103:
            return Pid(etf), end
        if tag in (90, 114, 101):
            return Ref(etf), end
        if tag == 99:  # FLOAT_EXT (old, textual)
            return float(b[i + 1:i + 32].split(b"\0", 1)[0]), end
        return Term(etf), end  # funs, ports, bitstrings

    def _atom(self, raw: bytes, utf8: bool) -> Any:
        try:
            return self._atoms[raw]
        except KeyError:
            pass
        text = raw.decode("utf-8" if utf8 else "latin-1")
        value = _SPECIAL_ATOMS[text] if text in _SPECIAL_ATOMS else Atom(text)
        if len(self._atoms) < 65536:
            self._atoms[raw] = value
        return value

    def _map(self, b: bytes, i: int, depth: int) -> tuple[dict[Any, Any], int]:
        n = _U32.unpack_from(b, i + 1)[0]
        j = i + 5
        out: dict[Any, Any] = {}
        for _ in range(n):
            start = j
            key, j = self._term(b, j, depth + 1)
            try:
                hash(key)
            except TypeError:
                key = Term(bytes([_VERSION]) + b[start:j])
            value, j = self._term(b, j, depth + 1)
            out[key] = value
        if len(out) != n:
            raise ValueError("map keys collide in Python (e.g. 1 and 1.0, or ok and "
                             "<<\"ok\">>)")
        return out, j


def _atom_len(b: bytes, i: int) -> int:
    """The length in bytes of the atom term at b[i]."""
    tag = b[i]
    if tag in (119, 115):
        return 2 + b[i + 1]
    if tag in (118, 100):
        return 3 + int(_U16.unpack_from(b, i + 1)[0])
    raise ValueError(f"expected an atom, found tag {tag}")


def _skip(b: bytes, i: int) -> int:
    """The offset just past the term at b[i]."""
    tag = b[i]
    if tag == 97:
        return i + 2
    if tag == 98:
        return i + 5
    if tag == 70:
        return i + 9
    if tag == 99:
        return i + 32
    if tag in (119, 115, 118, 100):
        return i + _atom_len(b, i)
    if tag == 106:
        return i + 1
    if tag == 107:
        return i + 3 + int(_U16.unpack_from(b, i + 1)[0])
    if tag == 109:
        return i + 5 + int(_U32.unpack_from(b, i + 1)[0])
    if tag == 77:  # BIT_BINARY_EXT
        return i + 6 + int(_U32.unpack_from(b, i + 1)[0])
    if tag in (110, 111):
        n, j = (b[i + 1], i + 2) if tag == 110 else (_U32.unpack_from(b, i + 1)[0], i + 5)
        return j + 1 + n
    if tag in (104, 105, 108, 116):
        if tag == 104:
            n, j = b[i + 1], i + 2
        else:
            n, j = _U32.unpack_from(b, i + 1)[0], i + 5
        count = n * 2 if tag == 116 else n + 1 if tag == 108 else n
        for _ in range(count):
            j = _skip(b, j)
        return j
    if tag == 88:  # NEW_PID_EXT: node, id, serial, creation (4 each)
        return i + 1 + _atom_len(b, i + 1) + 12
    if tag == 103:  # PID_EXT
        return i + 1 + _atom_len(b, i + 1) + 9
    if tag in (90, 114):  # NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT
        n = int(_U16.unpack_from(b, i + 1)[0])
        j = i + 3 + _atom_len(b, i + 3)
        return j + (4 if tag == 90 else 1) + 4 * n
    if tag == 101:  # REFERENCE_EXT
        return i + 1 + _atom_len(b, i + 1) + 5
    if tag == 89:  # NEW_PORT_EXT
        return i + 1 + _atom_len(b, i + 1) + 8
    if tag == 120:  # V4_PORT_EXT
        return i + 1 + _atom_len(b, i + 1) + 12
    if tag == 102:  # PORT_EXT
        return i + 1 + _atom_len(b, i + 1) + 5
    if tag == 112:  # NEW_FUN_EXT: its size counts itself
        return i + 1 + int(_U32.unpack_from(b, i + 1)[0])
    if tag == 113:  # EXPORT_EXT: module, function, arity
        j = i + 1
        for _ in range(3):
            j = _skip(b, j)
        return j
    raise ValueError(f"unsupported external term format tag {tag}")


class Encoder:
    """Python objects -> bytes of the external term format.

    ``opaque`` turns an object with no term form into a term (an isolated
    child keeps the object and returns a reference); ``atoms_made`` is the
    cap on atoms this encoder may write (the VM checks it again).
    """

    __slots__ = ("max_depth", "opaque")

    def __init__(self, max_depth: int = 1000,
                 opaque: Callable[[Any], Any] | None = None) -> None:
        self.max_depth = max_depth
        self.opaque = opaque

    def encode(self, obj: Any) -> bytes:
        """``term_to_binary`` of ``obj``."""
        out = bytearray(b"\x83")
        self._put(out, obj, 0)
        return bytes(out)

    def _put(self, out: bytearray, o: Any, depth: int) -> None:
        if depth > self.max_depth:
            raise ValueError(f"value nested deeper than {self.max_depth} levels")
        t = type(o)
        if t is int:
            self._int(out, o)
        elif t is str:
            raw = o.encode("utf-8", "surrogatepass") if not o.isascii() else o.encode()
            out += b"m"
            out += _U32.pack(len(raw))
            out += raw
        elif t is Atom:
            self._atom(out, o)
        elif o is None:
            out += b"w\x04none"
        elif o is True:
            out += b"w\x04true"
        elif o is False:
            out += b"w\x05false"
        elif t is float:
            self._float(out, o)
        elif t is tuple:
            self._tuple(out, o, depth)
        elif t is list:
            self._list(out, o, depth)
        elif t is dict:
            self._dict(out, o, depth)
        elif t is bytes:
            out += b"m"
            out += _U32.pack(len(o))
            out += o
        elif t is Pid or t is Ref or t is Term:
            etf = o.etf
            out += etf[1:]
        elif isinstance(o, Atom):
            self._atom(out, o)
        elif isinstance(o, bool):
            out += b"w\x04true" if o else b"w\x05false"
        elif isinstance(o, int):
            self._int(out, int(o))
        elif isinstance(o, float):
            self._float(out, float(o))
        elif isinstance(o, str):
            raw = str(o).encode("utf-8", "surrogatepass")
            out += b"m"
            out += _U32.pack(len(raw))
            out += raw
        elif isinstance(o, (bytes, bytearray, memoryview)):
            raw = bytes(o)
            out += b"m"
            out += _U32.pack(len(raw))
            out += raw
        elif isinstance(o, tuple):
            self._tuple(out, o, depth)
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

    @staticmethod
    def _int(out: bytearray, v: int) -> None:
        if 0 <= v < 256:
            out += b"a"
            out.append(v)
        elif -2147483648 <= v <= 2147483647:
            out += b"b"
            out += _I32.pack(v)
        else:
            mag = -v if v < 0 else v
            digits = mag.to_bytes((mag.bit_length() + 7) // 8, "little")
            if len(digits) < 256:
                out += b"n"
                out.append(len(digits))
            else:
                out += b"o"
                out += _U32.pack(len(digits))
            out.append(1 if v < 0 else 0)
            out += digits

    @staticmethod
    def _float(out: bytearray, d: float) -> None:
        if d != d:
            out += b"w\x03nan"
        elif d == math.inf:
            out += b"w\x08infinity"
        elif d == -math.inf:
            out += b"w\x0cneg_infinity"
        else:
            out += b"F"
            out += _FLOAT.pack(d)

    @staticmethod
    def _atom(out: bytearray, a: str) -> None:
        if len(a) > 255:
            raise ValueError("an atom has at most 255 characters")
        raw = str(a).encode("utf-8")
        if len(raw) < 256:
            out += b"w"
            out.append(len(raw))
        else:
            out += b"v"
            out += _U16.pack(len(raw))
        out += raw

    def _tuple(self, out: bytearray, o: tuple[Any, ...], depth: int) -> None:
        n = len(o)
        if n < 256:
            out += b"h"
            out.append(n)
        else:
            out += b"i"
            out += _U32.pack(n)
        for item in o:
            self._put(out, item, depth + 1)

    def _list(self, out: bytearray, o: list[Any], depth: int) -> None:
        if not o:
            out += b"j"
            return
        out += b"l"
        out += _U32.pack(len(o))
        for item in list(o):
            self._put(out, item, depth + 1)
        out += b"j"

    def _dict(self, out: bytearray, o: dict[Any, Any], depth: int) -> None:
        out += b"t"
        out += _U32.pack(len(o))
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


_default_decoder = Decoder()
_default_encoder = Encoder()


def decode(data: bytes | bytearray | memoryview) -> Any:
    """``binary_to_term`` with the conversion rules of erlang_python."""
    return _default_decoder.decode(data)


def encode(obj: Any) -> bytes:
    """``term_to_binary`` with the conversion rules of erlang_python."""
    return _default_encoder.encode(obj)
