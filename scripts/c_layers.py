#!/usr/bin/env python3
"""The C side's one-way rule: a file of c_src/ uses its own folder and the
folders below it, never one above (docs/architecture.md, "C layout").

Layers, top to bottom: c_src/*.c (nif.c, start.c), pymod, context, convert,
sandbox, runtime, shared (the data plane: terms only), core.  A lower layer
reaches a higher one only through a function pointer the higher one
registers at load (the hooks).

Checks:
  1. every `#include "..."` of a project header names it by its path from
     c_src/ and is of the file's own layer or a lower one;
  2. when the objects are built (_build/c_src/obj, `make -C c_src`), every
     symbol an object uses from another object is defined at its own layer
     or a lower one (the calls, read from `nm`).
Usage: scripts/c_layers.py [-v]      (exit status 0 when the rule holds)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "c_src"
OBJ = ROOT / "_build" / "c_src" / "obj"
LAYERS = [".", "pymod", "context", "convert", "sandbox", "runtime", "shared", "core"]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else "."


def check_includes(verbose: bool) -> list[str]:
    errors = []
    # program/ is a program of its own (the port's exec wrapper), not a layer
    files = sorted(p for p in SRC.rglob("*") if p.suffix in (".c", ".h")
                   and p.relative_to(SRC).parts[0] != "program")
    for path in files:
        rel = path.relative_to(SRC)
        if layer_of(rel) not in RANK:
            errors.append(f"{rel}: folder {layer_of(rel)!r} is not a known layer")
            continue
        mine = RANK[layer_of(rel)]
        for inc in INCLUDE.findall(path.read_text()):
            target = SRC / inc
            if not target.is_file():
                errors.append(f"{rel}: #include \"{inc}\" is not a path from c_src/")
                continue
            theirs = RANK.get(layer_of(Path(inc)))
            if verbose:
                print(f"{rel} -> {inc}")
            if theirs is None or theirs < mine:
                errors.append(f"{rel}: includes {inc}, a layer above its own")
    return errors


def nm(args: list[str], obj: Path) -> list[str]:
    out = subprocess.run(["nm", *args, str(obj)], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def check_calls(verbose: bool) -> list[str]:
    objs = sorted(OBJ.rglob("*.o")) if OBJ.is_dir() else []
    if not objs or not shutil.which("nm"):
        print("c_layers: no objects built, calls not checked")
        return []
    defined: dict[str, Path] = {}
    for obj in objs:
        for line in nm(["--defined-only", "-g"], obj):
            parts = line.split()
            if len(parts) == 3:
                defined[parts[2]] = obj.relative_to(OBJ)
    errors = []
    for obj in objs:
        rel = obj.relative_to(OBJ)
        if not (SRC / rel.with_suffix(".c")).is_file():
            continue  # left over from a source that is gone
        mine = RANK.get(layer_of(rel))
        for line in nm(["-u"], obj):
            sym = line.split()[-1]
            owner = defined.get(sym)
            if owner is None or owner == rel:
                continue
            theirs = RANK.get(layer_of(owner))
            if verbose:
                print(f"{rel.with_suffix('.c')} calls {sym} ({owner.with_suffix('.c')})")
            if mine is None or theirs is None or theirs < mine:
                errors.append(f"{rel.with_suffix('.c')}: uses {sym} of "
                              f"{owner.with_suffix('.c')}, a layer above its own")
    return errors


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    errors = check_includes(verbose) + check_calls(verbose)
    for e in errors:
        print(f"c_layers: {e}")
    if not errors:
        print("c_layers: every include and call goes to the same layer or a lower one")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
