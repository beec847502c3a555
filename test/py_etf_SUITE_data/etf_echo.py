"""The Python end of py_etf_SUITE: frames of the external term format
(``{packet, 4}``) on stdin, answered on stdout by erlang._etf.

A frame ``{value, Name}`` is answered with the value of that name built in
Python (encoded); any other term is decoded and encoded again.
"""

from __future__ import annotations

import math
import struct
import sys
from typing import Any

from erlang._etf import decode, encode
from erlang._types import Atom


def values() -> dict[str, Any]:
    """Values whose terms the suite knows (each a shape the encoder writes
    in a way of its own: in bulk, as STRING_EXT, item by item)."""
    return {
        "ints_100k": list(range(100_000)),
        "negative_ints": [-i * 1000003 for i in range(1000)],
        "small_ints_70k": [7] * 70_000,
        "small_ints_20": list(range(20)),
        "floats": [i * 0.5 - 10 for i in range(1000)],
        "floats_special": [1.5] * 19 + [math.nan, math.inf, -math.inf],
        "mixed": [1, 2**31, True, None, 2.5, "s", b"\xff", Atom("a")] * 4,
        "str_keys_10k": {f"key{i}": i for i in range(10_000)},
        "mixed_keys": {"b": 1, 2: "two", Atom("c"): [3], (1, "t"): None},
        "big_ints": [2**64, -2**64, 2**2100] * 8,
    }


def main() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        term = decode(inp.read(struct.unpack(">I", head)[0]))
        if type(term) is tuple and len(term) == 2 and term[0] == "value":
            reply = encode(values()[str(term[1])])
        else:
            reply = encode(term)
        out.write(struct.pack(">I", len(reply)) + reply)
        out.flush()


if __name__ == "__main__":
    main()
