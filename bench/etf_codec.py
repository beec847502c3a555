"""Micro-benchmark of erlang._etf, the term codec of an isolated context's child.

    python3 bench/etf_codec.py                  # this tree's priv/python/erlang/_etf.py
    python3 bench/etf_codec.py --against main   # ... side by side with main's
    python3 bench/etf_codec.py --quick          # fewer, shorter rounds

Every request an isolated context runs is decoded by ``Decoder.decode`` and
every reply encoded by ``Encoder.encode`` in the child, in pure Python, so
their cost is part of each call.  Each row times one operation on one
payload: small requests and replies of the shapes py:call/eval send and get
back (the request bytes are ``term_to_binary/1``'s on OTP 25, which writes
atoms as ATOM_EXT), and large ones (a 100,000-integer list, a 10,000-key
map with binary keys).

Method: the variants (this tree's module, and the ``--against`` revision's)
run in turns, round 1 of each, then round 2, ...; a round repeats the
operation for ~20 ms (the count is fixed per row after a warm-up) and gives
µs per operation; the value is the median of the rounds.  Run it on an idle
machine; the figures of a shared one move by 10-20 %.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = "priv/python/erlang/_etf.py"
sys.path.insert(0, os.path.join(ROOT, "priv", "python"))

from erlang._types import Atom  # noqa: E402

# term_to_binary/1 on OTP 25 of:
REQUESTS = {
    # {call, math, sqrt, [2.0]}: what py:call(Ctx, math, sqrt, [2.0]) sends
    "call math:sqrt([2.0])": "83680464000463616C6C6400046D617468640004737172746C00000001"
                             "4640000000000000006A",
    # {call, json, dumps, [#{<<"key">> => [1,2,3], <<"name">> => <<"x">>}],
    #  #{<<"indent">> => 2}, term}
    "call with map + kwargs": "83680664000463616C6C6400046A736F6E64000564756D70736C000000"
                              "0174000000026D000000036B65796B00030102036D000000046E616D65"
                              "6D00000001786A74000000016D00000006696E64656E74610264000474"
                              "65726D",
    # {eval, <<"x * y">>, #{x => 5, y => 5}, term}
    "eval with locals": "8368046400046576616C6D0000000578202A207974000000026400017861"
                        "056400017961056400047465726D",
}


def erlang_list(values: list[int]) -> bytes:
    """A list of integers as term_to_binary writes it (LIST_EXT, each item
    SMALL_INTEGER_EXT or INTEGER_EXT)."""
    out = bytearray(b"\x83l" + struct.pack(">I", len(values)))
    for v in values:
        out += bytes((97, v)) if 0 <= v < 256 else b"b" + struct.pack(">i", v)
    return bytes(out + b"j")


def erlang_map(n: int) -> bytes:
    """#{<<"key1">> => 1, ...} as term_to_binary writes it."""
    out = bytearray(b"\x83t" + struct.pack(">I", n))
    for i in range(n):
        key = b"key%d" % i
        out += b"m" + struct.pack(">I", len(key)) + key
        out += bytes((97, i)) if i < 256 else b"b" + struct.pack(">i", i)
    return bytes(out)


def workloads() -> list[tuple[str, str, Any]]:
    """(name, "decode" or "encode", payload)."""
    ok = Atom("ok")
    rows: list[tuple[str, str, Any]] = [
        ("decode", name, bytes.fromhex(hexa)) for name, hexa in REQUESTS.items()]
    rows = [(name, kind, data) for kind, name, data in rows]
    rows += [
        ("decode list of 100k ints", "decode", erlang_list(list(range(100_000)))),
        ("decode map of 10k binary keys", "decode", erlang_map(10_000)),
        ("encode (ok, 1.4142)", "encode", (ok, 1.4142)),
        ("encode (ok, 'a string')", "encode", (ok, "a string")),
        ("encode (ok, {'key': [1, 2, 3], 'name': 'x'})", "encode",
         (ok, {"key": [1, 2, 3], "name": "x"})),
        ("encode (ok, nested)", "encode",
         (ok, {"rows": [(1, "a", 2.5, None), (2, "b", 3.5, True)], "count": 2,
               "tags": [Atom("x"), Atom("y")]})),
        ("encode (ok, list of 100k ints)", "encode", (ok, list(range(100_000)))),
        ("encode (ok, list of 100k floats)", "encode",
         (ok, [i * 0.5 for i in range(100_000)])),
        ("encode (ok, dict of 10k str keys)", "encode",
         (ok, {f"key{i}": i for i in range(10_000)})),
    ]
    return rows


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def operation(module: ModuleType, kind: str, payload: Any) -> Callable[[], Any]:
    if kind == "decode":
        decoder = module.Decoder()
        return lambda: decoder.decode(payload)
    encoder = module.Encoder()
    return lambda: encoder.encode(payload)


def calls_for(op: Callable[[], Any], round_s: float) -> int:
    """How many calls take about ``round_s`` seconds (after a warm-up)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            op()
        dt = time.perf_counter() - t0
        if dt > round_s / 4:
            return max(1, int(n * round_s / dt))
        n *= 4


def timed(op: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        op()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", metavar="REV",
                        help="also measure _etf.py of this git revision (e.g. main)")
    parser.add_argument("--quick", action="store_true", help="5 rounds of ~10 ms")
    args = parser.parse_args()
    rounds, round_s = (5, 0.01) if args.quick else (9, 0.02)
    variants = [("this tree", load(os.path.join(ROOT, MODULE), "etf_this"))]
    if args.against:
        source = subprocess.run(["git", "-C", ROOT, "show", f"{args.against}:{MODULE}"],
                                check=True, capture_output=True).stdout
        with tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False) as f:
            f.write(source)
        try:
            variants.insert(0, (args.against, load(f.name, "etf_against")))
        finally:
            os.unlink(f.name)
    print(f"erlang._etf codec, Python {sys.version.split()[0]}, median of {rounds} rounds, "
          f"us per operation")
    head = f"{'':46}" + "".join(f"{name:>12}" for name, _ in variants)
    print(head + ("     speed-up" if len(variants) == 2 else ""))
    for name, kind, payload in workloads():
        ops = [operation(module, kind, payload) for _, module in variants]
        results = [op() for op in ops]
        if len(results) == 2 and kind == "decode" and results[0] != results[1]:
            raise SystemExit(f"{name}: the two modules decode differently")
        counts = [calls_for(op, round_s) for op in ops]
        samples: list[list[float]] = [[] for _ in ops]
        for r in range(rounds):
            order = list(range(len(ops)))
            if r % 2:
                order.reverse()
            for k in order:
                samples[k].append(timed(ops[k], counts[k]))
        medians = [statistics.median(s) for s in samples]
        line = f"{name:46}" + "".join(f"{m:12.2f}" for m in medians)
        if len(medians) == 2:
            line += f"{medians[0] / medians[1]:12.1f}x"
        print(line)


if __name__ == "__main__":
    main()
