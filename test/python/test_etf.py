"""erlang._etf: the external term format codec of an isolated context's child.

The bytes here are term_to_binary/1's (OTP 25, which writes atoms as
ATOM_EXT; the golden ones were printed by `erl`), or built by the small
independent writer below.  Each shape is checked both ways, item by item and
in the bulk paths that long lists and maps take, with the errors of
malformed input and of nesting past ``max_depth``.
"""

from __future__ import annotations

import enum
import math
import struct
from collections import OrderedDict, namedtuple
from typing import Any

import pytest

from erlang import _etf, _etf_encode
from erlang._etf import Decoder, Encoder, decode, encode
from erlang._types import Atom, Pid, Ref, Term

# term_to_binary/1 on OTP 25 (hex), and the value each decodes to.
GOLDEN = {
    # {call, math, sqrt, [2.0]}: py:call(Ctx, math, sqrt, [2.0])'s request
    "call": ("83680464000463616C6C6400046D617468640004737172746C0000000146400000000000"
             "00006A", (Atom("call"), Atom("math"), Atom("sqrt"), [2.0])),
    # {call, json, dumps, [#{<<"key">> => [1,2,3]}], #{<<"indent">> => 2}, term}
    "call6": ("83680664000463616C6C6400046A736F6E64000564756D70736C0000000174000000016D0000"
              "00036B65796B00030102036A74000000016D00000006696E64656E7461026400047465726D",
              (Atom("call"), Atom("json"), Atom("dumps"), [{"key": [1, 2, 3]}],
               {"indent": 2}, Atom("term"))),
    "latin1_atom": ("8364000568E96C6C6F", Atom("h\xe9llo")),
    "utf8_atom": ("837704F09F9880", Atom("\U0001F600")),
    # {true, false, none, nil, undefined, nan, infinity, neg_infinity}
    "specials": ("8368086400047472756564000566616C73656400046E6F6E656400036E696C640009756E"
                 "646566696E65646400036E616E640008696E66696E69747964000C6E65675F696E66696E"
                 "697479", (True, False, None, None, None, math.nan, math.inf, -math.inf)),
    "string": ("836B0003616263", [97, 98, 99]),
    # #{<<"k">> => [{1, <<"x">>, 2.5}], a => #{}}
    "nested": ("8374000000026400016174000000006D000000016B6C00000001680361016D000000017846"
               "40040000000000006A", {Atom("a"): {}, "k": [(1, "x", 2.5)]}),
    "bytes_tuple": ("83680264000562797465736D00000003726177", b"raw"),
}

# Kept as Terms, holding their own bytes.
OPAQUE = {
    "improper": ("836C00000002610161026103", Term),  # [1, 2 | 3]
    "pid": ("835864000D6E6F6E6F6465406E6F686F7374000000530000000000000000", Pid),
    "fun": ("837164000665726C616E676400036162736101", Term),  # fun erlang:abs/1
    "bits": ("834D000000010320", Term),  # <<1:3>>
}


# A small writer of the external term format, independent of erlang._etf.
def t_int(v: int) -> bytes:
    if 0 <= v < 256:
        return bytes((97, v))
    if -2**31 <= v < 2**31:
        return b"b" + struct.pack(">i", v)
    mag = abs(v).to_bytes((abs(v).bit_length() + 7) // 8, "little")
    head = bytes((110, len(mag))) if len(mag) < 256 else b"o" + struct.pack(">I", len(mag))
    return head + bytes((v < 0,)) + mag


def t_float(v: float) -> bytes:
    return b"F" + struct.pack(">d", v)


def t_atom(text: str, tag: int = 100) -> bytes:
    raw = text.encode("latin-1" if tag in (100, 115) else "utf-8")
    size = bytes((len(raw),)) if tag in (115, 119) else struct.pack(">H", len(raw))
    return bytes((tag,)) + size + raw


def t_bin(raw: bytes) -> bytes:
    return b"m" + struct.pack(">I", len(raw)) + raw


def t_list(items: list[bytes], tail: bytes = b"j") -> bytes:
    return b"l" + struct.pack(">I", len(items)) + b"".join(items) + tail


def t_tuple(items: list[bytes]) -> bytes:
    head = bytes((104, len(items))) if len(items) < 256 else b"i" + struct.pack(">I", len(items))
    return head + b"".join(items)


def t_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"t" + struct.pack(">I", len(pairs)) + b"".join(k + v for k, v in pairs)


def etf(body: bytes) -> bytes:
    return b"\x83" + body


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (nan equal to nan, -0.0
    not equal to 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or \
            (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True))
    return bool(a == b)


# ------------------------------------------------------------------ decoding

@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_decode_golden(name: str) -> None:
    hexa, value = GOLDEN[name]
    got = decode(bytes.fromhex(hexa))
    if isinstance(value, dict):  # key order is Erlang's
        assert same(dict(sorted(got.items(), key=repr)), dict(sorted(value.items(), key=repr)))
    else:
        assert same(got, value)


@pytest.mark.parametrize("name", ["improper", "pid", "fun", "bits"])
def test_decode_opaque_keeps_bytes(name: str) -> None:
    hexa, cls = OPAQUE[name]
    data = bytes.fromhex(hexa)
    got = decode(data)
    assert type(got) is cls
    assert got.etf == data
    assert encode(got) == data


def test_decode_reference() -> None:
    data = etf(b"Z\x00\x03" + t_atom("nonode@nohost") + b"\x00\x00\x00\x00" + b"\x00" * 12)
    got = decode(data)
    assert type(got) is Ref and got.etf == data


def test_decode_atom_encodings() -> None:
    for tag in (100, 115, 118, 119):
        assert same(decode(etf(t_atom("ok", tag))), Atom("ok"))
        assert decode(etf(t_atom("true", tag))) is True
        assert decode(etf(t_atom("undefined", tag))) is None
    assert same(decode(etf(t_atom("h\xe9", 118))), Atom("h\xe9"))
    assert same(decode(etf(t_atom("h\xe9", 115))), Atom("h\xe9"))


def test_decode_atom_cache_keeps_encodings_apart() -> None:
    # The same bytes are another atom in latin-1 and in UTF-8.
    d = Decoder()
    latin = etf(bytes((100, 0, 2)) + "é".encode())
    utf8 = etf(bytes((118, 0, 2)) + "é".encode())
    for _ in range(2):
        assert d.decode(latin) == "Ã©"
        assert d.decode(utf8) == "é"
    with pytest.raises(UnicodeDecodeError):
        d.decode(etf(bytes((119, 1, 0xE9))))
    assert d.decode(etf(bytes((115, 1, 0xE9)))) == "é"


def test_decode_atom_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_etf, "_ATOM_CACHE_MAX", 3)
    d = Decoder()
    names = [f"a{i}" for i in range(10)]
    data = etf(t_list([t_atom(n) for n in names]))
    assert d.decode(data) == names
    assert d.decode(data) == names
    assert len(d._atoms) == 3


def test_decode_integers() -> None:
    values = [0, 255, 256, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**64, -2**64,
              2**2100, -2**2100]
    got = decode(etf(t_list([t_int(v) for v in values])))
    assert got == values and all(type(v) is int for v in got)


def test_decode_floats() -> None:
    values = [0.0, -0.0, 1.5, -2.25e300, 5e-324]
    assert same(decode(etf(t_list([t_float(v) for v in values]))), values)
    # FLOAT_EXT, the old textual one (minor_version 0)
    old = b"c" + b"1.50000000000000000000e+00".ljust(31, b"\0")
    assert same(decode(etf(old)), 1.5)
    assert same(decode(etf(t_list([old, t_int(1)]))), [1.5, 1])


def test_decode_binaries() -> None:
    assert same(decode(etf(t_bin(b"text"))), "text")
    assert same(decode(etf(t_bin("é".encode()))), "é")
    assert same(decode(etf(t_bin(b"\xff\x00"))), b"\xff\x00")
    assert same(decode(etf(t_list([t_bin(b""), t_bin(b"\xc3")]))), ["", b"\xc3"])


@pytest.mark.parametrize("tag", [100, 115, 118, 119])
def test_decode_bytes_tuple(tag: int) -> None:
    assert same(decode(etf(t_tuple([t_atom("bytes", tag), t_bin(b"ok")]))), b"ok")
    # not {bytes, Binary}: an ordinary tuple
    assert same(decode(etf(t_tuple([t_atom("bytes", tag), t_int(1)]))), (Atom("bytes"), 1))
    assert same(decode(etf(t_tuple([t_atom("bytez", tag), t_bin(b"x")]))),
                (Atom("bytez"), "x"))


def test_decode_tuples() -> None:
    assert same(decode(etf(t_tuple([]))), ())
    big = list(range(300))
    assert same(decode(etf(t_tuple([t_int(v) for v in big]))), tuple(big))
    assert same(decode(etf(t_tuple([t_tuple([t_int(1)]), t_list([])]))), ((1,), []))


def test_decode_lists() -> None:
    assert same(decode(etf(b"j")), [])
    assert same(decode(etf(t_list([]))), [])
    assert same(decode(etf(t_list([b"j", b"j"]))), [[], []])
    assert same(decode(etf(b"k\x00\x00")), [])


@pytest.mark.parametrize("n", [3, 15, 16, 17, 40, 1000])
@pytest.mark.parametrize("kind", ["small", "int", "float", "mixed", "negative"])
def test_decode_runs(kind: str, n: int) -> None:
    values: list[Any] = {
        "small": [i % 256 for i in range(n)],
        "int": [1000 + 7919 * i for i in range(n)],
        "float": [i * 0.25 - 3 for i in range(n)],
        "mixed": [[i, 2**20 + i, i * 0.5, "s"][i % 4 if i > n // 2 else i % 3] for i in range(n)],
        "negative": [-i * 1000003 for i in range(n)],
    }[kind]
    items = [t_float(v) if type(v) is float else t_bin(v.encode()) if type(v) is str
             else t_int(v) for v in values]
    assert same(decode(etf(t_list(items))), values)
    # a run that ends the list, then the improper tail of an int: a Term
    improper = etf(t_list(items, t_int(3)))
    got = decode(improper)
    assert type(got) is Term and got.etf == improper
    # in a tuple, and as a map's keys and values
    assert same(decode(etf(t_tuple(items))), tuple(values))
    if len(set(values)) == len(values):
        pairs = list(zip(items[0::2], items[1::2], strict=False))
        assert same(decode(etf(t_map(pairs))), dict(zip(values[0::2], values[1::2],
                                                           strict=False)))


def test_decode_100k_ints_as_erlang_writes_them() -> None:
    values = list(range(1, 100_001))
    assert decode(etf(t_list([t_int(v) for v in values]))) == values
    assert decode(etf(t_list([t_float(float(v)) for v in values]))) == values


def test_decode_maps() -> None:
    n = 10_000
    data = etf(t_map([(t_bin(b"key%d" % i), t_int(i)) for i in range(n)]))
    got = decode(data)
    assert got == {f"key{i}": i for i in range(n)}
    assert list(got) == [f"key{i}" for i in range(n)]
    assert same(decode(etf(t_map([]))), {})
    # keys Python cannot hash stay Terms (their own bytes)
    got = decode(etf(t_map([(t_list([t_int(1)]), t_int(2)), (t_atom("a"), t_int(3))])))
    key = etf(t_list([t_int(1)]))
    assert got == {Term(key): 2, Atom("a"): 3}
    got = decode(etf(t_map([(t_tuple([t_map([])]), t_int(1))])))
    assert got == {Term(etf(t_tuple([t_map([])]))): 1}


def test_decode_map_keys_that_collide() -> None:
    for k1, k2 in [(t_int(1), t_float(1.0)), (t_atom("ok"), t_bin(b"ok")),
                   (t_atom("none"), t_atom("nil"))]:
        with pytest.raises(ValueError, match="map keys collide"):
            decode(etf(t_map([(k1, t_int(1)), (k2, t_int(2))])))


def test_decode_resolve_ref() -> None:
    seen = []

    def resolve(t: tuple[Any, ...]) -> str:
        seen.append(t)
        return "object"

    d = Decoder(resolve_ref=resolve)
    ref = t_tuple([t_atom("$erlang_python_ref"), t_int(1), t_int(2), t_int(3)])
    assert d.decode(etf(t_list([ref, ref]))) == ["object", "object"]
    assert seen == [(Atom("$erlang_python_ref"), 1, 2, 3)] * 2
    # a binary of that text is no reference; nor is another arity
    not_ref = t_tuple([t_bin(b"$erlang_python_ref"), t_int(1), t_int(2), t_int(3)])
    assert d.decode(etf(not_ref)) == ("$erlang_python_ref", 1, 2, 3)
    assert Decoder().decode(etf(ref)) == (Atom("$erlang_python_ref"), 1, 2, 3)


def test_decode_offset_and_buffers() -> None:
    data = etf(t_tuple([t_atom("ok"), t_int(1)]))
    assert decode(bytearray(data)) == (Atom("ok"), 1)
    assert decode(memoryview(data)) == (Atom("ok"), 1)
    assert Decoder().decode(b"xyz" + data, 3) == (Atom("ok"), 1)


def nested(depth: int, kind: str) -> bytes:
    inner = t_int(1)
    for _ in range(depth):
        inner = {"list": lambda x: t_list([x]), "tuple": lambda x: t_tuple([x]),
                 "map": lambda x: t_map([(t_int(0), x)])}[kind](inner)
    return etf(inner)


@pytest.mark.parametrize("kind", ["list", "tuple", "map"])
def test_decode_max_depth(kind: str) -> None:
    # The innermost integer is at level `depth`: allowed up to max_depth.
    assert Decoder(max_depth=5).decode(nested(5, kind)) is not None
    with pytest.raises(ValueError, match="nested deeper than 5 levels"):
        Decoder(max_depth=5).decode(nested(6, kind))
    with pytest.raises(ValueError, match="nested deeper than 0 levels"):
        Decoder(max_depth=0).decode(nested(1, kind))
    assert Decoder(max_depth=0).decode(etf(t_int(7))) == 7
    assert Decoder(max_depth=1000).decode(nested(1000, kind)) is not None
    with pytest.raises(ValueError, match="nested deeper"):
        decode(nested(1001, kind))


def test_decode_max_depth_spares_what_has_no_items() -> None:
    d = Decoder(max_depth=0)
    for body in (t_list([]), b"j", t_tuple([]), t_map([]), b"k\x00\x02ab",
                 t_tuple([t_atom("bytes"), t_bin(b"x")])):
        d.decode(etf(body))
    # a run in bulk at the limit is still an error
    with pytest.raises(ValueError, match="nested deeper"):
        d.decode(etf(t_list([t_int(1000 + i) for i in range(40)])))
    assert Decoder(max_depth=1).decode(etf(t_list([t_int(1000 + i) for i in range(40)])))


def test_decode_errors() -> None:
    with pytest.raises(ValueError, match="version byte"):
        decode(b"")
    with pytest.raises(ValueError, match="version byte"):
        decode(b"\x82a\x01")
    with pytest.raises(ValueError, match="trailing bytes"):
        decode(etf(t_int(1)) + b"\x00")
    with pytest.raises(ValueError, match="unsupported external term format tag 200"):
        decode(etf(t_list([t_int(1), b"\xc8"])))
    with pytest.raises(ValueError, match="trailing bytes"):  # a binary cut short
        decode(etf(t_bin(b"abc"))[:-1])


@pytest.mark.parametrize("kind", ["int", "float", "small"])
def test_decode_truncated_runs(kind: str) -> None:
    item = {"int": t_int(100_000), "float": t_float(0.5), "small": t_int(7)}[kind]
    short = {"int": struct.error, "float": struct.error, "small": IndexError}[kind]
    for n in (1, 40):  # item by item, and a run in bulk: the same errors
        data = etf(t_list([item] * n))
        with pytest.raises(IndexError):  # no tail
            decode(data[:-1])
        for cut in range(1, len(item)):  # the last item cut short
            with pytest.raises(short):
                decode(data[:-1 - cut])


# ------------------------------------------------------------------ encoding

def test_encode_scalars() -> None:
    cases: list[tuple[Any, bytes]] = [
        (1, t_int(1)), (-1, t_int(-1)), (300, t_int(300)), (2**31, t_int(2**31)),
        (-2**2100, t_int(-2**2100)), (1.5, t_float(1.5)), (-0.0, t_float(-0.0)),
        (math.nan, t_atom("nan", 119)), (math.inf, t_atom("infinity", 119)),
        (-math.inf, t_atom("neg_infinity", 119)), (None, t_atom("none", 119)),
        (True, t_atom("true", 119)), (False, t_atom("false", 119)),
        (Atom("ok"), t_atom("ok", 119)), (Atom("\U0001F600"), t_atom("\U0001F600", 119)),
        (Atom("é" * 200), b"v" + struct.pack(">H", 400) + ("é" * 200).encode()),
        ("text", t_bin(b"text")), ("é", t_bin("é".encode())),
        ("\udc80", t_bin("\udc80".encode("utf-8", "surrogatepass"))),
        (b"\xff", t_bin(b"\xff")), (bytearray(b"ab"), t_bin(b"ab")),
        (memoryview(b"ab"), t_bin(b"ab")),
    ]
    for value, body in cases:
        assert encode(value) == etf(body), value
        assert encode([value]) == etf(t_list([body])), value  # inline, in a container


def test_encode_atom_cache() -> None:
    e = Encoder()
    ok = Atom("ok")
    for _ in range(3):
        assert e.encode((ok, ok)) == etf(t_tuple([t_atom("ok", 119)] * 2))

    class Loud(Atom):
        __slots__ = ()

        def __str__(self) -> str:
            return "loud"

    # a subclass of Atom is written as it says, and not cached as the atom
    assert e.encode(Loud("ok")) == etf(t_atom("loud", 119))
    assert e.encode(ok) == etf(t_atom("ok", 119))
    with pytest.raises(ValueError, match="at most 255 characters"):
        e.encode(Atom("a" * 256))
    with pytest.raises(UnicodeEncodeError):
        e.encode([Atom("\udc80")])


def test_encode_atom_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_etf_encode, "_ATOM_CACHE_MAX", 2)
    e = Encoder()
    atoms = [Atom(f"a{i}") for i in range(5)]
    assert e.encode(atoms) == etf(t_list([t_atom(a, 119) for a in atoms]))
    assert e.encode(atoms) == etf(t_list([t_atom(a, 119) for a in atoms]))
    assert len(e._atoms) == 2


class Color(enum.IntEnum):
    RED = 1


class MyStr(str):
    __slots__ = ()


class MyFloat(float):
    __slots__ = ()


Point = namedtuple("Point", "x y")


class MyList(list):  # type: ignore[type-arg]
    __slots__ = ()


def test_encode_subclasses() -> None:
    assert encode(Color.RED) == etf(t_int(1))
    assert encode(MyStr("s")) == etf(t_bin(b"s"))
    assert encode(MyFloat(2.5)) == etf(t_float(2.5))
    assert encode(MyFloat("nan")) == etf(t_atom("nan", 119))
    assert encode(Point(1, 2)) == etf(t_tuple([t_int(1), t_int(2)]))
    assert encode(MyList([1, 2])) == etf(t_list([t_int(1), t_int(2)]))
    assert encode(OrderedDict(a=1)) == etf(t_map([(t_bin(b"a"), t_int(1))]))
    assert encode([Color.RED] * 20) == etf(t_list([t_int(1)] * 20))


def test_encode_containers() -> None:
    assert encode(()) == etf(t_tuple([]))
    assert encode([]) == etf(b"j")
    assert encode({}) == etf(t_map([]))
    big = tuple(range(300))
    assert encode(big) == etf(t_tuple([t_int(v) for v in big]))
    value = {"rows": [(1, "a", 2.5, None)], Atom("n"): 2, 3: [Atom("x"), b"y"]}
    assert encode(value) == etf(t_map([
        (t_bin(b"rows"), t_list([t_tuple([t_int(1), t_bin(b"a"), t_float(2.5),
                                           t_atom("none", 119)])])),
        (t_atom("n", 119), t_int(2)),
        (t_int(3), t_list([t_atom("x", 119), t_bin(b"y")]))]))


def test_encode_tagged() -> None:
    e = Encoder()
    ok, error = Atom("ok"), Atom("error")
    for value in (1.4142, "s", [1, 2], {"k": (1, None)}, list(range(100)), (), b"\xff"):
        for _ in range(2):
            assert e.encode_tagged(ok, value) == e.encode((ok, value))
            assert e.encode_tagged(error, value) == e.encode((error, value))
    assert e.encode_tagged("ok", 1) == e.encode(("ok", 1))  # a str: a binary
    with pytest.raises(ValueError, match="nested deeper than 0 levels"):
        Encoder(max_depth=0).encode_tagged(ok, 1)
    with pytest.raises(ValueError, match="nested deeper than 1 levels"):
        Encoder(max_depth=1).encode_tagged(ok, [1])
    deep: Any = 1
    for _ in range(999):
        deep = [deep]
    assert e.encode_tagged(ok, deep) == e.encode((ok, deep))
    with pytest.raises(TypeError, match="no Erlang term form"):
        e.encode_tagged(ok, object())


def test_encode_opaque() -> None:
    pid = Pid(bytes.fromhex(OPAQUE["pid"][0]))
    assert encode([pid]) == b"\x83" + t_list([pid.etf[1:]])
    e = Encoder(opaque=lambda o: (Atom("ref"), id(o) % 100))
    obj = object()
    assert e.encode([obj]) == etf(t_list([t_tuple([t_atom("ref", 119), t_int(id(obj) % 100)])]))
    with pytest.raises(TypeError, match="object has no Erlang term form"):
        encode([object()])
    with pytest.raises(TypeError, match="set has no Erlang term form"):
        encode({"k": {1}})


def test_encode_dict_keys_that_collide() -> None:
    for d in ({"a": 1, b"a": 2}, {Atom("true"): 1, True: 2}, {Atom("none"): 1, None: 2},
              {Atom("nan"): 1, math.nan: 2}, {(1, "a"): 1, (1, b"a"): 2}):
        with pytest.raises(ValueError, match="dict keys collide"):
            encode(d)
    # keys of the kinds that never collide, many of them (no check needed)
    d = {**{f"k{i}": i for i in range(1000)}, **{i: -i for i in range(1000)},
         **{Atom(f"a{i}"): i for i in range(100)}}
    assert decode(encode(d)) == d


@pytest.mark.parametrize("values", [
    list(range(16)), list(range(300)), list(range(-5, 300)), list(range(100_000)),
    [0, 255] * 40_000, [2**31 - 1, -2**31] * 10, [i * 0.5 for i in range(1000)],
    [-0.0] * 20, [5e-324] * 20, [1.5] * 19 + [math.nan], [math.inf] + [1.5] * 19,
    [1e308] * 20, [1] * 19 + [True], [1] * 19 + [2**31], [1] * 19 + [1.0],
    [1.0] * 19 + [1], [True] * 20, [None] * 20, ["s"] * 20, [Color.RED] * 20,
])
def test_encode_long_lists(values: list[Any]) -> None:
    data = encode(values)
    assert same(decode(data), [int(v) if isinstance(v, enum.IntEnum) else v for v in values])
    # the same term as written item by item (each item alone)
    items = [encode(v)[1:] for v in values]
    assert same(decode(etf(t_list(items))), decode(data))


def test_encode_long_lists_forms() -> None:
    # all small: a STRING_EXT (as term_to_binary writes it) below 65536 items
    assert encode(list(range(20))) == etf(b"k\x00\x14" + bytes(range(20)))
    assert encode([7] * 70_000) == etf(t_list([t_int(7)] * 70_000))
    assert encode([300] * 20) == etf(t_list([b"b" + struct.pack(">i", 300)] * 20))
    assert encode([1, 300] * 10) == etf(t_list([b"b" + struct.pack(">i", v)
                                                for v in [1, 300] * 10]))
    assert encode([0.5] * 20) == etf(t_list([t_float(0.5)] * 20))


@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
def test_encode_max_depth(kind: str) -> None:
    def wrap(x: Any, n: int) -> Any:
        for _ in range(n):
            x = {"list": lambda y: [y], "tuple": lambda y: (y,), "dict": lambda y: {0: y}}[kind](x)
        return x

    Encoder(max_depth=5).encode(wrap(1, 5))
    with pytest.raises(ValueError, match="value nested deeper than 5 levels"):
        Encoder(max_depth=5).encode(wrap(1, 6))
    with pytest.raises(ValueError, match="value nested deeper than 0 levels"):
        Encoder(max_depth=0).encode(wrap(1, 1))
    # the default limit, beyond the interpreter's recursion limit
    deep = encode(wrap(1, 1000))
    assert encode(decode(deep)) == deep
    with pytest.raises(ValueError, match="value nested deeper than 1000 levels"):
        encode(wrap(1, 1001))
    # nothing inside: nothing too deep
    Encoder(max_depth=0).encode(wrap(1, 0))
    Encoder(max_depth=0).encode({"list": [], "tuple": (), "dict": {}}[kind])
    # a long list in bulk at the limit is still an error
    with pytest.raises(ValueError, match="nested deeper"):
        Encoder(max_depth=1).encode(wrap(list(range(40)), 1))
    Encoder(max_depth=2).encode(wrap(list(range(40)), 1))


@pytest.mark.parametrize("value", [
    (Atom("ok"), 1.4142), (Atom("ok"), "a string"), (Atom("ok"), {"key": [1, 2, 3]}),
    (Atom("error"), (Atom("ValueError"), [ord(c) for c in "bad value"])),
    {"rows": [(1, "a", 2.5, None, True), (2, b"\xff", -3.5, False, Atom("x"))]},
    [[[]], (), {}, [1, [2, [3, [4]]]]], list(range(100_000)), {f"k{i}": i for i in range(10_000)},
])
def test_round_trip(value: Any) -> None:
    assert same(decode(encode(value)), value)
