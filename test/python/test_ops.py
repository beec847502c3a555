"""The Python half of the operations API: erlang._logging (levels, the
handler, setup_logging), erlang._loghook (logging routed from its first
import), erlang._tracing (spans, the decorator) and erlang._setup (what
every context applies).  Run in a plain interpreter and inside the VM; the
Erlang side of each is tested by py_logging_SUITE, py_tracing_SUITE,
py_setup_SUITE and py_venv_SUITE.  Nothing here changes the state of the
interpreter it runs in for good: module state is monkeypatched and
sys.path restored."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

import erlang
from erlang import _logging, _loghook, _setup, _tracing
from erlang._types import Atom

embedded = erlang.is_embedded()
outside_vm = pytest.mark.skipif(embedded, reason="a plain interpreter (runs a subprocess)")


# ------------------------------------------------------------------ logging


@pytest.mark.parametrize("levelno, level", [
    (0, "debug"), (5, "debug"), (10, "debug"), (11, "info"), (20, "info"),
    (25, "warning"), (30, "warning"), (35, "error"), (40, "error"), (45, "critical"),
    (50, "critical"), (99, "critical"),
])
def test_erlang_level(levelno, level):
    got = _logging.erlang_level(levelno)
    assert got == level and isinstance(got, Atom)


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_setup_logging_replaces_the_handler(root_logger):
    first = erlang.setup_logging(20)
    second = erlang.setup_logging(40, "%(name)s: %(message)s")
    mine = [h for h in root_logger.handlers if isinstance(h, erlang.ErlangHandler)]
    assert mine == [second] and first not in root_logger.handlers
    assert root_logger.level == 40 and second.level == 40
    record = logging.LogRecord("x.y", 40, __file__, 1, "hi %s", ("there",), None)
    assert second.format(record) == "x.y: hi there"


@outside_vm
def test_handler_outside_the_vm_writes_stderr(capsys):
    handler = erlang.ErlangHandler()
    log = logging.getLogger("ops.test.stderr")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("to %s", "stderr")
    finally:
        log.removeHandler(handler)
    assert "to stderr" in capsys.readouterr().err


def test_handler_reports_a_bad_record_without_raising(monkeypatch):
    seen = []
    handler = erlang.ErlangHandler()
    monkeypatch.setattr(handler, "handleError", seen.append)
    record = logging.LogRecord("x", 30, __file__, 1, "%d", ("not a number",), None)
    handler.emit(record)
    assert seen == [record]


@outside_vm
def test_logging_is_routed_from_its_first_import():
    """A fresh interpreter: installing the hook does not import logging; the
    first import does, with an ErlangHandler on the root logger at WARNING."""
    priv = os.path.dirname(os.path.dirname(erlang.__file__))
    code = (
        "import sys\n"
        f"sys.path.insert(0, {priv!r})\n"
        "from erlang import _loghook\n"
        "_loghook.install()\n"
        "print('logging' in sys.modules)\n"
        "import logging, erlang\n"
        "root = logging.getLogger()\n"
        "print([type(h).__name__ for h in root.handlers], root.level)\n"
        "logging.warning('first')\n"
        "_loghook.configure(20, '<%(message)s>')\n"
        "logging.info('second')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.splitlines() == ["False", "['ErlangHandler'] 30"]
    assert out.stderr.splitlines() == ["first", "<second>"]


def test_hook_ignores_other_modules():
    assert _loghook.LoggingHook().find_spec("json", None) is None


# ------------------------------------------------------------------ tracing


@pytest.fixture
def spans(monkeypatch):
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(_tracing, "_emit", sent.append)
    monkeypatch.setattr(_tracing, "_enabled", True)
    return sent


def test_span_tree(spans):
    with erlang.Span("root", a=1) as root:
        root.event("start", n=2)
        with erlang.Span("child") as child:
            child.set_attribute("rows", 3)
    child_span, root_span = spans
    assert root_span["name"] == "root" and root_span["parent_id"] == "undefined"
    assert child_span["parent_id"] == root_span["span_id"] == root.span_id
    assert child_span["attributes"] == {"rows": 3}
    assert root_span["attributes"] == {"a": 1}
    assert [e["name"] for e in root_span["events"]] == ["start"]
    assert root_span["status"] == "ok" and root_span["end_attrs"] == {}
    assert root_span["end_time"] - root_span["start_time"] == root_span["duration_us"]
    assert 0 < root_span["span_id"] < 2**64


def test_span_error(spans):
    with pytest.raises(KeyError), erlang.Span("bad"):
        raise KeyError("k")
    (span,) = spans
    assert span["status"] == "error"
    assert span["end_attrs"] == {"exception": "'k'", "exception_type": "KeyError"}


def test_disabled_span_sends_nothing(monkeypatch):
    sent: list[Any] = []
    monkeypatch.setattr(_tracing, "_emit", sent.append)
    monkeypatch.setattr(_tracing, "_enabled", False)
    with erlang.Span("quiet") as s:
        s.event("e")
    assert sent == [] and s.span_id is None


def test_trace_decorator(spans):
    @erlang.trace()
    def inner(x: int) -> int:
        return x + 1

    @erlang.trace(name="outer", kind="t")
    def outer(x: int) -> int:
        return inner(x) * 2

    @erlang.trace
    async def coro(x: int) -> int:
        await asyncio.sleep(0)
        return x

    assert outer(1) == 4
    assert asyncio.run(coro(7)) == 7
    names = [s["name"] for s in spans]
    assert names == ["test_trace_decorator.<locals>.inner", "outer",
                     "test_trace_decorator.<locals>.coro"]
    assert spans[0]["parent_id"] == spans[1]["span_id"]
    assert spans[1]["attributes"] == {"kind": "t"}
    assert inner.__name__ == "inner"


def test_threads_have_their_own_parents(spans):
    def work() -> None:
        with erlang.Span("in thread"):
            pass

    with erlang.Span("main"):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    thread_span = next(s for s in spans if s["name"] == "in thread")
    assert thread_span["parent_id"] == "undefined"


def test_attribute_values_become_terms(spans):
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    with erlang.Span("s", obj=Thing(), items=[1, Thing()], d={1: "x"}, b=b"\x00"):
        pass
    assert spans[0]["attributes"] == {"obj": "<thing>", "items": [1, "<thing>"],
                                      "d": {"1": "x"}, "b": b"\x00"}


# ------------------------------------------------------------------ _setup


@pytest.fixture
def setup_state(monkeypatch):
    """_setup with its own state: the interpreter's stays as it was."""
    saved_path = list(sys.path)
    data: dict[str, Any] = {}
    logs: list[Any] = []
    monkeypatch.setattr(_setup, "_version", -1)
    monkeypatch.setattr(_setup, "_paths", [])
    monkeypatch.setattr(_setup, "_venv", None)
    monkeypatch.setattr(_setup, "_venv_added", [])
    monkeypatch.setattr(_setup, "_reloads", {})
    monkeypatch.setattr(_setup, "_log_version", None)
    monkeypatch.setattr(_setup, "_context_data", lambda: data)
    monkeypatch.setattr(_loghook, "configure", lambda level, fmt: logs.append((level, fmt)))
    monkeypatch.setattr(_tracing, "_enabled", _tracing._enabled)
    yield data, logs
    sys.path[:] = saved_path


def settings(version: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"version": version, "paths": [], "venv": None, "imports": [],
                            "preload": None, "log_level": 30, "log_format": None,
                            "tracing": False}
    base.update(kw)
    return base


def test_paths_are_reconciled(setup_state, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _setup.apply(settings(1, paths=[a, b]))
    assert sys.path[:2] == [a, b]
    _setup.apply(settings(2, paths=[b]))
    assert sys.path[0] == b and a not in sys.path
    _setup.apply(settings(1, paths=[a]))  # older: ignored
    assert a not in sys.path
    _setup.apply(settings(3))
    assert b not in sys.path


def test_venv_is_added_and_removed(setup_state, tmp_path):
    site = tmp_path / "site-packages"
    extra = tmp_path / "extra"
    site.mkdir()
    extra.mkdir()
    (site / "x.pth").write_text(str(extra) + "\n")
    _setup.apply(settings(1, venv=(str(tmp_path), str(site))))
    assert sys.path[:2] == [str(site), str(extra)]
    assert _setup.venv_info()["active"] is True
    assert _setup.venv_info()["site_packages"] == str(site)
    _setup.apply(settings(2))
    assert str(site) not in sys.path and str(extra) not in sys.path
    assert _setup.venv_info() == {"active": False}


def test_logging_and_tracing_settings(setup_state):
    _, logs = setup_state
    _setup.apply(settings(1, log_level=20, log_format="%(message)s", log_version=7,
                          tracing=True))
    assert logs == [(20, "%(message)s")] and _tracing.is_enabled()
    # applied again (a context starts, another change): logging left alone
    _setup.apply(settings(2, log_level=20, log_format="%(message)s", log_version=7))
    assert logs == [(20, "%(message)s")] and not _tracing.is_enabled()
    # configure_logging again, even with the same values: applied
    _setup.apply(settings(3, log_level=20, log_format="%(message)s", log_version=8))
    assert logs == [(20, "%(message)s")] * 2


def test_import_failures_are_reported(setup_state):
    failed = _setup.apply(settings(1, imports=[("json", Atom("all")), ("json", "dumps"),
                                               ("ops_no_such_module", Atom("all")),
                                               ("json", "no_such_name")]))
    assert failed["preload"] is None
    assert [(m, f, n) for m, f, n, _ in failed["imports"]] == [
        ("ops_no_such_module", "all", "ModuleNotFoundError"),
        ("json", "no_such_name", "AttributeError")]


def test_preload_seed(setup_state):
    data, _ = setup_state
    assert _setup.apply(settings(1, preload="A = 1\ndef f():\n    return A\n"),
                        own_preload="B = A + 1")["preload"] is None
    seed = data["seed"]
    assert seed["A"] == 1 and seed["B"] == 2 and seed["f"]() == 1
    assert "__builtins__" not in seed
    _setup.apply(settings(2, preload="A = 10"))  # the context's own code stays
    assert data["seed"]["B"] == 11
    failed = _setup.apply(settings(3, preload="1 / 0"))
    assert failed["preload"] == ("ZeroDivisionError", "division by zero")
    assert "seed" not in data
    failed = _setup.apply(settings(4))  # B = A + 1 without A
    assert failed["preload"][0] == "NameError" and "seed" not in data


def test_reload_once_per_token(setup_state, tmp_path):
    (tmp_path / "ops_reload_probe.py").write_text("COUNT = [0]\nCOUNT[0] += 1\nLOADS = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import ops_reload_probe as probe  # type: ignore[import-not-found]

        probe.LOADS = 0
        assert _setup.reload("ops_reload_probe", 1) == "reloaded"
        assert probe.LOADS == 1
        probe.LOADS = 0
        assert _setup.reload("ops_reload_probe", 1) == "done"
        assert probe.LOADS == 0
        assert _setup.reload("ops_never_imported", 2) == "not_loaded"
    finally:
        sys.modules.pop("ops_reload_probe", None)
