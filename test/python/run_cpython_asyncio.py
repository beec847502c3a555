"""Run CPython's own asyncio tests (``test.test_asyncio``) against ErlangEventLoop.

``test/py_asyncio_cpython_SUITE.erl`` calls :func:`run` inside the Erlang VM,
one test module per case.  While a module runs, every way those tests make a
selector loop gives an :class:`erlang.ErlangEventLoop`:

- the default policy's loop factory (``asyncio.new_event_loop()``, also
  after a test resets the policy with ``set_event_loop_policy(None)``);
- ``asyncio.SelectorEventLoop(...)``, which test_events, test_server and
  test_sock_lowlevel call directly (with an explicit selector it is used as
  given: select, poll or epoll);
- ``selectors.EpollSelector``/``DefaultSelector``, which become
  :class:`erlang._loop.ErlangSelector`, so the epoll variants run on the
  selector with sub-millisecond timeouts.

Loops are counted by class, and the suite checks that ErlangEventLoop made
them (test_utils.TestLoop, a mock loop of the tests themselves, is counted
apart).  ``SKIPS`` lists the cases that cannot run inside the VM, each with
its reason (docs/asyncio.md has the same list).  As a safety net while the
sandbox is not in place, starting a process fails during the run instead of
forking the VM.

It also runs in a plain interpreter, for comparison:
``python3 test/python/run_cpython_asyncio.py test_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import io
import os
import selectors
import subprocess
import sys
import time
import unittest
import warnings
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":
    sys.path.insert(0, os.path.join(_HERE, "..", "..", "priv", "python"))

import erlang  # noqa: E402
from erlang import _loop  # noqa: E402

SUBPROCESS = "starts a process: fork()/exec() would corrupt the VM (use Erlang ports)"
SIGNALS = "signal handlers: signals belong to the Erlang VM (add_signal_handler raises)"
MAIN_THREAD = (
    "needs Python's main thread: requests run on context threads, and the VM's "
    "main thread runs no Python"
)

# Test ids (fnmatch patterns, without the leading "test.test_asyncio.") that
# are skipped, with the reason.
SKIPS: dict[str, str] = {
    # test_events
    "test_events.*.test_add_signal_handler": SIGNALS,
    "test_events.*.test_signal_handling_while_selecting": SIGNALS,
    "test_events.*.test_signal_handling_args": SIGNALS,
    "test_events.*.test_subprocess_*": SUBPROCESS,
    "test_events.Test*GetEventLoop.test_get_event_loop_new_process": SUBPROCESS,
    "test_events.PolicyTests.test_get_event_loop": MAIN_THREAD,
    "test_events.PolicyTests.test_get_event_loop_calls_set_event_loop": MAIN_THREAD,
    "test_events.Test*GetEventLoop.test_get_event_loop_returns_running_loop2": MAIN_THREAD,
    # test_streams
    "test_streams.*.test_read_all_from_pipe_reader": SUBPROCESS,
    # test_tasks: assert_python_ok starts a Python interpreter
    "test_tasks.*.test_return_coroutine_from_coroutine": SUBPROCESS,
    "test_tasks.*.test_task_source_traceback": SUBPROCESS,
}


def _skip_reason(test_id: str) -> str | None:
    short = test_id.removeprefix("test.test_asyncio.")
    for pattern, reason in SKIPS.items():
        if fnmatch.fnmatchcase(short, pattern):
            return reason
    return None


def _tests(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    found = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            found.extend(_tests(item))
        else:
            found.append(item)
    return found


def _mark_skips(suite: unittest.TestSuite) -> list[str]:
    """Replace the methods of skipped tests; the patterns that matched."""
    matched = set()
    for test in _tests(suite):
        reason = _skip_reason(test.id())
        if reason is None:
            continue
        matched.update(
            p for p in SKIPS
            if fnmatch.fnmatchcase(test.id().removeprefix("test.test_asyncio."), p)
        )
        name = getattr(test, "_testMethodName", None)
        if name:
            method = getattr(test, name)
            setattr(test, name, unittest.skip(reason)(method))
    return sorted(matched)


def _no_process(*_args: Any, **_kwargs: Any) -> Any:
    raise _loop._blocked("starting a process from the asyncio test suite")


class _NoChildWatcher:
    """Stands for SafeChildWatcher, which test_events attaches to every loop
    in setUp on 3.11 and 3.12 (3.13 has no watchers there).  A child watcher
    exists for subprocesses only and needs a SIGCHLD handler: inside the VM
    SIGCHLD belongs to the VM (erl_child_setup), and subprocesses are refused."""

    def attach_loop(self, loop: Any) -> None:
        pass

    def add_child_handler(self, *args: Any) -> None:
        raise _loop._blocked("a child watcher")

    def remove_child_handler(self, pid: int) -> bool:
        return False

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoChildWatcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


@contextlib.contextmanager
def _patched(counts: dict[str, int]) -> Any:
    """The patches described in the module docstring, undone afterwards."""
    import asyncio.base_events as base_events

    saved: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    original_init = base_events.BaseEventLoop.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        key = type(self).__name__
        counts[key] = counts.get(key, 0) + 1
        original_init(self, *args, **kwargs)

    patch(base_events.BaseEventLoop, "__init__", counting_init)
    patch(asyncio.DefaultEventLoopPolicy, "_loop_factory", erlang.ErlangEventLoop)
    patch(asyncio, "SelectorEventLoop", erlang.ErlangEventLoop)
    patch(selectors, "EpollSelector", _loop.ErlangSelector)
    patch(selectors, "DefaultSelector", _loop.ErlangSelector)
    if hasattr(asyncio, "AbstractChildWatcher"):
        watcher = type("NoChildWatcher", (_NoChildWatcher, asyncio.AbstractChildWatcher), {})
        patch(asyncio, "SafeChildWatcher", watcher)
    if erlang.is_embedded():
        patch(subprocess.Popen, "__init__", _no_process)
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen"):
            if hasattr(os, name):
                patch(os, name, _no_process)
    old_policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(erlang.ErlangEventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(old_policy)
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def run(module: str) -> dict[str, Any]:
    """Run ``test.test_asyncio.<module>`` on ErlangEventLoop; a summary."""
    if not getattr(sys, "argv", None):
        sys.argv = ["run_cpython_asyncio"]
    from test import support

    # Read by @support.requires_subprocess() when a test module is imported.
    support.has_subprocess_support = False
    counts: dict[str, int] = {}
    out = io.StringIO()
    start = time.monotonic()
    with warnings.catch_warnings(), _patched(counts), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        suite = unittest.defaultTestLoader.loadTestsFromName(f"test.test_asyncio.{module}")
        matched = _mark_skips(suite)
        result = unittest.TextTestRunner(stream=out, verbosity=2).run(suite)
    return {
        "module": module,
        "ran": result.testsRun,
        "failures": [(t.id(), tb) for t, tb in result.failures],
        "errors": [(t.id(), tb) for t, tb in result.errors],
        "unexpected_successes": [t.id() for t in result.unexpectedSuccesses],
        "skipped": [(t.id(), reason) for t, reason in result.skipped],
        "skip_patterns_matched": matched,
        "loops": counts,
        "seconds": round(time.monotonic() - start, 2),
        "output": out.getvalue(),
    }


if __name__ == "__main__":
    for name in sys.argv[1:]:
        summary = run(name)
        print(summary["output"][-3000:])
        print({k: v for k, v in summary.items() if k not in ("output",)})
