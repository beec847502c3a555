"""erlang._owngil: the import guard of own-GIL sub-interpreters.

Outside the VM: the guard's decisions, and the allow-list's evidence, each
listed extension module imported and used by two own-GIL sub-interpreters
at once (CPython's ``_interpreters`` module), in a child process so that a
crash fails one test instead of the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import erlang
from erlang import _owngil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from owngil_usage import USAGE  # noqa: E402

outside = pytest.mark.skipif(erlang.is_embedded(), reason="runs child processes")
subinterpreters = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="own-GIL sub-interpreters need Python 3.12+"
)

PROBE = """
import sys, threading
try:
    import _interpreters as I
    create, run = (lambda: I.create("isolated")), I.exec
except ImportError:
    import _xxsubinterpreters as I
    create, run = (lambda: I.create(isolated=True)), I.run_string
code = sys.argv[1] + "\\n"
failed = []
def work():
    for _ in range(5):
        i = create()
        for _ in range(20):
            r = run(i, code)
            if r is not None:
                failed.append(r)
                return
        I.destroy(i)
ts = [threading.Thread(target=work) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print(failed[0] if failed else "ok")
"""


def test_every_listed_module_has_a_usage() -> None:
    for version in _owngil.SAFE_EXTENSIONS:
        assert _owngil.SAFE_EXTENSIONS[version] <= set(USAGE)


def test_unknown_version_allows_nothing() -> None:
    assert _owngil.safe_extensions((3, 11)) == frozenset()
    assert "_json" in _owngil.safe_extensions((3, 13))


@outside
def test_guard_refuses_an_unlisted_extension() -> None:
    guard = _owngil.ExtensionGuard(frozenset({"_json"}), "3.x")
    sys.meta_path.insert(0, guard)
    try:
        with pytest.raises(ImportError, match=r"'_csv' is not known to be safe.*3\.x.*worker"):
            guard.find_spec("_csv", None)
        spec = guard.find_spec("_json", None)
        assert spec is not None and spec.name == "_json"
        assert guard.find_spec("json", None) is not None  # pure Python
        assert guard.find_spec("sys", None) is not None  # built in
        assert guard.find_spec("no_such_module_xyz", None) is None
    finally:
        sys.meta_path.remove(guard)


@outside
def test_install_once() -> None:
    before = list(sys.meta_path)
    try:
        first = _owngil.install((3, 13))
        assert _owngil.install((3, 13)) is first
        assert sys.meta_path[0] is first
    finally:
        sys.meta_path[:] = before


@outside
@subinterpreters
@pytest.mark.parametrize("module", sorted(_owngil.safe_extensions()))
def test_listed_module_works_in_two_owngil_interpreters(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, USAGE[module]],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-500:])
