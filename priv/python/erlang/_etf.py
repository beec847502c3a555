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

Speed (``bench/etf_codec.py``): every request and reply of an isolated
context crosses this module, so it is written for CPython's interpreter
loop.  A container decodes or encodes its items in one loop that handles
the common scalars (atoms, integers, floats, binaries, strings) inline and
calls back into the general method only for nested containers and rare
kinds; atoms are cached both ways (bounded); a run of integers or floats in
a long list is converted in bulk with slices, ``memoryview.cast`` and
``array``, at C speed.  The results are those of the item-by-item rules.
The encoder is in ``erlang._etf_encode``.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array

from erlang._etf_encode import Encoder, deep
from erlang._types import Atom, Pid, Ref, Term

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal

__all__ = ["Decoder", "Encoder", "decode", "encode"]

_VERSION = 131
_FLOAT = struct.Struct(">d")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_ATOM_CACHE_MAX = 65536
_BULK_MIN = 16  # a list this long is tried for bulk conversion
_LITTLE = sys.byteorder == "little"
_I4: Literal["i", "l"] = "i" if array("i").itemsize == 4 else "l"  # a native 32-bit int
# Where each byte of a big-endian number goes in a native one.
_LANES4 = (3, 2, 1, 0) if _LITTLE else (0, 1, 2, 3)
_LANES8 = (7, 6, 5, 4, 3, 2, 1, 0) if _LITTLE else (0, 1, 2, 3, 4, 5, 6, 7)

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


def _depth_error(max_depth: int) -> ValueError:
    return ValueError(f"term nested deeper than {max_depth} levels")


class Decoder:
    """Bytes of the external term format -> Python objects.

    ``resolve_ref`` may turn a 4-tuple ``{'$erlang_python_ref', ...}`` (an
    isolated context's object reference) into the object it names.
    ``resource`` may turn a reference that names a NIF resource (a buffer,
    a channel, an ETS table...) into the object that stands for it (an
    isolated context's ``erlang.PyBuffer``); other references stay
    :class:`Ref`.
    """

    __slots__ = ("_atoms", "max_depth", "resolve_ref", "resource")

    def __init__(self, max_depth: int = 1000,
                 resolve_ref: Callable[[tuple[Any, ...]], Any] | None = None) -> None:
        self.max_depth = max_depth
        self.resolve_ref = resolve_ref
        self.resource: Callable[[Ref], Any] | None = None
        # An atom's whole encoding (tag, length, text) -> its Python value.
        self._atoms: dict[bytes, Any] = {}

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        """The term at ``data[offset:]`` (which starts with the version byte 131)."""
        buf = bytes(data) if not isinstance(data, bytes) else data
        if len(buf) <= offset or buf[offset] != _VERSION:
            raise ValueError("not external term format (no version byte 131)")
        try:
            value, end = self._term(buf, offset + 1, 0)
        except RecursionError:
            value, end = deep(self.max_depth, self._term, buf, offset + 1, 0)
        if end != len(buf):
            raise ValueError("trailing bytes after the term")
        return value

    def _term(self, b: bytes, i: int, depth: int) -> tuple[Any, int]:
        """The term at b[i] (at nesting level ``depth``) and the offset past it."""
        if depth > self.max_depth:
            raise _depth_error(self.max_depth)
        tag = b[i]
        if tag == 104:  # SMALL_TUPLE_EXT
            return self._tuple(b, i + 2, b[i + 1], depth)
        if tag == 108:  # LIST_EXT
            return self._list(b, i, depth)
        if tag == 116:  # MAP_EXT
            return self._map(b, i, depth)
        items, end = self._items(b, i, 1, depth - 1)  # a scalar: the same code
        return items[0], end

    def _items(self, b: bytes, j: int, n: int, depth: int) -> tuple[list[Any], int]:
        """The ``n`` terms from b[j] on, the items of a container at nesting
        level ``depth`` (-1 for the term itself), and the offset past them.
        Scalars are decoded here, inline (the tags in order of how often
        they come), containers by a call each."""
        if depth >= self.max_depth and n:
            raise _depth_error(self.max_depth)
        items: list[Any] = []
        append = items.append
        atoms = self._atoms
        u32 = _U32.unpack_from
        d = depth + 1
        while n:
            tag = b[j]
            if tag == 100 or tag == 119:  # ATOM_EXT (OTP 25), SMALL_ATOM_UTF8_EXT (26+)
                e = j + 3 + _U16.unpack_from(b, j + 1)[0] if tag == 100 else j + 2 + b[j + 1]
                key = b[j:e]
                try:
                    append(atoms[key])
                except KeyError:
                    append(self._atom(key))
                j = e
            elif tag == 97:  # SMALL_INTEGER_EXT
                if n > 2 and len(b) > j + 5 and b[j + 2] == 97 and b[j + 4] == 97:
                    j, n = _small_ints(b, j, n, items)  # a run: in bulk
                    continue
                append(b[j + 1])
                j += 2
            elif tag == 109:  # BINARY_EXT
                e = j + 5 + u32(b, j + 1)[0]
                raw = b[j + 5:e]
                try:
                    append(raw.decode())
                except UnicodeDecodeError:
                    append(raw)
                j = e
            elif tag == 104:  # SMALL_TUPLE_EXT
                v, j = self._tuple(b, j + 2, b[j + 1], d)
                append(v)
            elif tag == 108:  # LIST_EXT
                v, j = self._list(b, j, d)
                append(v)
            elif tag == 70:  # NEW_FLOAT_EXT
                if n >= _BULK_MIN and len(b) > j + 18 and b[j + 9] == 70 and b[j + 18] == 70:
                    j, n = _floats(b, j, n, items)
                    continue
                append(_FLOAT.unpack_from(b, j + 1)[0])
                j += 9
            elif tag == 98:  # INTEGER_EXT
                if n >= _BULK_MIN and len(b) > j + 10 and b[j + 5] == 98 and b[j + 10] == 98:
                    j, n = _ints(b, j, n, items)
                    continue
                append(_I32.unpack_from(b, j + 1)[0])
                j += 5
            elif tag == 116:  # MAP_EXT
                v, j = self._map(b, j, d)
                append(v)
            elif tag == 106:  # NIL_EXT
                append([])
                j += 1
            elif tag == 107:  # STRING_EXT: a list of small integers
                e = j + 3 + _U16.unpack_from(b, j + 1)[0]
                append(list(b[j + 3:e]))
                j = e
            elif tag == 118 or tag == 115:  # ATOM_UTF8_EXT, SMALL_ATOM_EXT
                e = j + 3 + _U16.unpack_from(b, j + 1)[0] if tag == 118 else j + 2 + b[j + 1]
                key = b[j:e]
                try:
                    append(atoms[key])
                except KeyError:
                    append(self._atom(key))
                j = e
            elif tag == 105:  # LARGE_TUPLE_EXT
                v, j = self._tuple(b, j + 5, u32(b, j + 1)[0], d)
                append(v)
            else:
                v, e = _rare(b, j, tag)
                if tag == 90 and self.resource is not None and names_resource(b, j, e):
                    v = self.resource(v)
                append(v)
                j = e
            n -= 1
        return items, j

    def _atom(self, key: bytes) -> Any:
        """The value of the atom whose whole encoding is ``key``, remembered
        for the next time."""
        tag = key[0]
        text = key[3 if tag == 100 or tag == 118 else 2:].decode(
            "utf-8" if tag == 118 or tag == 119 else "latin-1")
        value = _SPECIAL_ATOMS[text] if text in _SPECIAL_ATOMS else Atom(text)
        if len(self._atoms) < _ATOM_CACHE_MAX:
            self._atoms[key] = value
        return value

    def _tuple(self, b: bytes, j: int, n: int, depth: int) -> tuple[Any, int]:
        if n == 2 and b[j] in _ATOM_TAGS and b[j + 1:j + 8] in _BYTES_TAGS:
            k = j + (8 if b[j] in (119, 115) else 9)  # {bytes, Binary}
            if b[k - 1] == 109:
                m = _U32.unpack_from(b, k)[0]
                return b[k + 4:k + 4 + m], k + 4 + m
        items, j = self._items(b, j, n, depth)
        t = tuple(items)
        if n == 4 and t[0] == "$erlang_python_ref" and type(t[0]) is Atom \
                and self.resolve_ref is not None:
            return self.resolve_ref(t), j
        return t, j

    def _list(self, b: bytes, i: int, depth: int) -> tuple[Any, int]:
        items, j = self._items(b, i + 5, _U32.unpack_from(b, i + 1)[0], depth)
        if b[j] != 106:  # improper: the whole list stays a Term
            end = _skip(b, j)
            return Term(bytes([_VERSION]) + b[i:end]), end
        return items, j + 1

    def _map(self, b: bytes, i: int, depth: int) -> tuple[dict[Any, Any], int]:
        n = _U32.unpack_from(b, i + 1)[0]
        if not n:
            return {}, i + 5
        items, j = self._items(b, i + 5, 2 * n, depth)
        try:
            if n == 1:
                out = {items[0]: items[1]}
            else:
                it = iter(items)
                out = dict(zip(it, it))  # noqa: B905 - (strict= costs 150 ns a call)
        except TypeError:
            out = _unhashable(items, b, i)
        if len(out) != n:
            raise ValueError("map keys collide in Python (e.g. 1 and 1.0, or ok and "
                             "<<\"ok\">>)")
        return out, j


def _unhashable(items: list[Any], b: bytes, start: int) -> dict[Any, Any]:
    """The map whose keys and values, in turn, are ``items`` (its term at
    b[start]), one of its keys one Python cannot hash (a list, a map): such
    a key stays a Term."""
    out = {}
    j = start + 5
    for k in range(0, len(items), 2):
        end = _skip(b, j)
        key = items[k]
        try:
            hash(key)
        except TypeError:
            key = Term(bytes([_VERSION]) + b[j:end])
        out[key] = items[k + 1]
        j = _skip(b, end)
    return out


def names_resource(b: bytes, i: int, end: int) -> bool:
    """Whether the NEWER_REFERENCE_EXT at b[i:end] is a NIF resource's (a
    "magic" reference): the VM marks them with bit 17 of their second
    number (erts' ERTS_REF1_MAGIC_MARKER_BIT; test/py_isolated_buffer_SUITE
    checks that it still does).  Plain references (``make_ref()``,
    monitors) have it clear."""
    n = _U16.unpack_from(b, i + 1)[0]
    return n >= 2 and bool(b[end - 4 * n + 5] & 0x02)


def _rare(b: bytes, i: int, tag: int) -> tuple[Any, int]:
    """A term of a kind seldom seen (big integers, pids, references, funs,
    ports, bitstrings, old floats) and the offset past it."""
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


def _small_ints(b: bytes, j: int, n: int, items: list[Any]) -> tuple[int, int]:
    """Append the run of SMALL_INTEGER_EXT at b[j] (at most ``n`` of them,
    whole ones only) to ``items``; the offset past it and how many of the
    ``n`` are left."""
    tags = b[j:j + 2 * n:2]
    m = min(len(tags) - len(tags.lstrip(b"a")), (len(b) - j) >> 1)
    items += b[j + 1:j + 2 * m:2]
    return j + 2 * m, n - m


def _ints(b: bytes, j: int, n: int, items: list[Any]) -> tuple[int, int]:
    """_small_ints for a run of INTEGER_EXT."""
    return _packed(b, j, n, items, b"b", _LANES4, _I4)


def _floats(b: bytes, j: int, n: int, items: list[Any]) -> tuple[int, int]:
    """_small_ints for a run of NEW_FLOAT_EXT."""
    return _packed(b, j, n, items, b"F", _LANES8, "d")


def _packed(b: bytes, j: int, n: int, items: list[Any], tag: bytes,
            lanes: tuple[int, ...], fmt: Literal["i", "l", "d"]) -> tuple[int, int]:
    """A run of fixed-size big-endian values after a one-byte ``tag`` each,
    turned into native order lane by lane and read at C speed."""
    size = len(lanes)
    step = size + 1
    tags = b[j:j + step * n:step]
    m = min(len(tags) - len(tags.lstrip(tag)), (len(b) - j) // step)
    run = b[j:j + step * m]
    native = bytearray(size * m)
    for lane in range(size):
        native[lanes[lane]::size] = run[lane + 1::step]
    items += memoryview(native).cast(fmt).tolist()
    return j + step * m, n - m


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


_default_decoder = Decoder()
_default_encoder = Encoder()


def decode(data: bytes | bytearray | memoryview) -> Any:
    """``binary_to_term`` with the conversion rules of erlang_python."""
    return _default_decoder.decode(data)


def encode(obj: Any) -> bytes:
    """``term_to_binary`` with the conversion rules of erlang_python."""
    return _default_encoder.encode(obj)
