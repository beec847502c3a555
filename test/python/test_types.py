"""erlang.Atom, Pid, Ref, Term and CallInterrupted: the value types that stand
for Erlang terms in Python.  Pure Python; the same assertions hold in a plain
interpreter and inside the VM."""

from __future__ import annotations

import copy
import pickle
import struct

import pytest

from erlang import Atom, CallInterrupted, Pid, Ref, Term

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def _atom_ext(text: str) -> bytes:
    """SMALL_ATOM_UTF8_EXT, without the version byte."""
    data = text.encode()
    return bytes([119, len(data)]) + data


def pid_etf(node: str = "nonode@nohost", ident: int = 83, serial: int = 0) -> bytes:
    """term_to_binary of a pid (NEW_PID_EXT), as the C layer hands it over."""
    return b"\x83" + bytes([88]) + _atom_ext(node) + struct.pack(">III", ident, serial, 0)


def ref_etf(node: str = "nonode@nohost", ids: tuple[int, ...] = (1, 2, 3)) -> bytes:
    """term_to_binary of a reference (NEWER_REFERENCE_EXT)."""
    return (
        b"\x83"
        + bytes([90])
        + struct.pack(">H", len(ids))
        + _atom_ext(node)
        + struct.pack(">I", 0)
        + b"".join(struct.pack(">I", i) for i in ids)
    )


# A fun would do as well; a bitstring <<1:3>> (BIT_BINARY_EXT) is shorter.
TERM_ETF = b"\x83" + bytes([77]) + struct.pack(">I", 1) + bytes([3, 0x20])

OPAQUE = [(Pid, pid_etf()), (Ref, ref_etf()), (Term, TERM_ETF)]
OPAQUE_IDS = ["Pid", "Ref", "Term"]


# --------------------------------------------------------------------- Atom


def test_atom_is_a_str_equal_to_its_text() -> None:
    a = Atom("ok")
    assert isinstance(a, str)
    assert a == "ok"
    assert "ok" == a
    assert a != "error"
    assert str(a) == "ok"
    assert type(str(a)) is str


def test_atom_hashes_like_its_text() -> None:
    assert hash(Atom("ok")) == hash("ok")
    table = {"ok": 1}
    assert table[Atom("ok")] == 1
    assert {Atom("ok"), "ok"} == {"ok"}


def test_atom_repr_names_the_type() -> None:
    assert repr(Atom("ok")) == "Atom('ok')"
    assert repr(Atom("it's")) == 'Atom("it\'s")'
    assert repr(Atom("")) == "Atom('')"


def test_atom_keeps_non_ascii_text() -> None:
    a = Atom("héllo_世界")
    assert a == "héllo_世界"
    assert len(a) == 8


def test_atom_has_no_instance_dict() -> None:
    with pytest.raises(AttributeError):
        Atom("ok").extra = 1  # type: ignore[attr-defined]


def test_atom_str_operations_return_plain_str() -> None:
    # An Atom must not leak out of string arithmetic: "ok" + "!" is text.
    assert type(Atom("ok") + "!") is str
    assert type(Atom("ok").upper()) is str


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_atom_pickle_round_trip(protocol: int) -> None:
    back = pickle.loads(pickle.dumps(Atom("ok"), protocol))
    assert type(back) is Atom
    assert back == "ok"


def test_atom_copy_keeps_type() -> None:
    assert type(copy.copy(Atom("ok"))) is Atom
    assert type(copy.deepcopy([Atom("ok")])[0]) is Atom


# ----------------------------------------------------- Pid, Ref and Term


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_holds_its_bytes(cls: type[Pid], etf: bytes) -> None:
    obj = cls(etf)
    assert obj.etf == etf
    assert obj._etf == etf  # the attribute the C layer reads
    assert type(obj.etf) is bytes


@pytest.mark.parametrize("cls", [Pid, Ref, Term], ids=OPAQUE_IDS)
@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x82\x61\x01",  # wrong version byte
        b"\x61\x01",  # no version byte
        "\x83a\x01",  # str, not bytes
        bytearray(b"\x83a\x01"),
        memoryview(b"\x83a\x01"),
        None,
        131,
        [131, 97, 1],
    ],
    ids=["empty", "version130", "noversion", "str", "bytearray", "memoryview", "None", "int",
         "list"],
)
def test_opaque_rejects_what_is_not_etf(cls: type[Pid], bad: object) -> None:
    with pytest.raises(TypeError, match="131"):
        cls(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [Pid, Ref, Term], ids=OPAQUE_IDS)
def test_opaque_needs_exactly_one_argument(cls: type[Pid]) -> None:
    with pytest.raises(TypeError):
        cls()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cls(pid_etf(), pid_etf())  # type: ignore[call-arg]


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_equal_by_bytes(cls: type[Pid], etf: bytes) -> None:
    a, b = cls(etf), cls(bytes(etf))
    assert a is not b
    assert a == b
    assert not a != b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


def test_opaque_different_bytes_differ() -> None:
    assert Pid(pid_etf(ident=1)) != Pid(pid_etf(ident=2))
    assert Pid(pid_etf(node="a@h")) != Pid(pid_etf(node="b@h"))
    assert Ref(ref_etf(ids=(1, 2, 3))) != Ref(ref_etf(ids=(1, 2, 4)))
    assert len({Pid(pid_etf(ident=i)) for i in range(100)}) == 100


def test_same_bytes_different_type_differ() -> None:
    etf = pid_etf()
    p, r, t = Pid(etf), Ref(etf), Term(etf)
    assert p != r and r != t and p != t
    assert r != p and t != r and t != p
    assert len({p, r, t}) == 3
    table = {p: "pid", r: "ref", t: "term"}
    assert table[Pid(etf)] == "pid"
    assert table[Ref(etf)] == "ref"
    assert table[Term(etf)] == "term"


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_not_equal_to_its_bytes(cls: type[Pid], etf: bytes) -> None:
    obj = cls(etf)
    assert obj != etf
    assert etf != obj
    assert obj != etf[1:]
    assert obj != None  # noqa: E711  (exercises __eq__ with None)


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_is_not_ordered(cls: type[Pid], etf: bytes) -> None:
    with pytest.raises(TypeError):
        _ = cls(etf) < cls(etf)  # type: ignore[operator]


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_repr_names_type_and_bytes(cls: type[Pid], etf: bytes) -> None:
    assert repr(cls(etf)) == f"{cls.__name__}({etf!r})"


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_opaque_pickle_round_trip(cls: type[Pid], etf: bytes, protocol: int) -> None:
    back = pickle.loads(pickle.dumps(cls(etf), protocol))
    assert type(back) is cls
    assert back == cls(etf)
    assert back.etf == etf


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_copy(cls: type[Pid], etf: bytes) -> None:
    obj = cls(etf)
    for dup in (copy.copy(obj), copy.deepcopy(obj)):
        assert type(dup) is cls
        assert dup == obj


@pytest.mark.parametrize(("cls", "etf"), OPAQUE, ids=OPAQUE_IDS)
def test_opaque_has_no_instance_dict(cls: type[Pid], etf: bytes) -> None:
    with pytest.raises(AttributeError):
        cls(etf).extra = 1  # type: ignore[attr-defined]


# ---------------------------------------------------------- CallInterrupted


def test_call_interrupted_is_base_exception_not_exception() -> None:
    assert issubclass(CallInterrupted, BaseException)
    assert not issubclass(CallInterrupted, Exception)


def test_call_interrupted_passes_through_except_exception() -> None:
    def library_code() -> str:
        try:
            raise CallInterrupted("timeout")
        except Exception:  # what careless library code does
            return "swallowed"

    with pytest.raises(CallInterrupted, match="timeout"):
        library_code()
