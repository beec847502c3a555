"""What importing ``erlang`` and an isolated child's modules costs: the
modules they import.

An isolated context's child pays for every module it imports before it
answers, at each start: the package keeps typing, enum, re, the socket,
signal and ctypes modules and its own optional parts off that path
(``priv/python/erlang/__init__.py``).  A fresh interpreter (a subprocess of
this one, outside the VM) imports the child's modules and reports what
they added to what ``site`` had imported; the names imported on first use
must still resolve to the objects of their modules.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import erlang

_PRIV_PYTHON = os.path.dirname(os.path.dirname(os.path.abspath(erlang.__file__)))

_HEAVY = {"typing", "enum", "re", "socket", "signal", "ctypes", "selectors",
          "contextlib", "asyncio", "logging", "erlang._tracing", "erlang._schedule",
          "erlang._shared_dict"}

_REPORT = """
import sys
before = set(sys.modules)
import erlang._child
from erlang import _bridge, _chan, _isolated, _loghook, _pybuffer, _sandbox, _setup
print(" ".join(sorted(set(sys.modules) - before)))
"""


@pytest.mark.skipif(erlang.is_embedded(), reason="starts an interpreter (outside the VM only)")
def test_child_modules_import_nothing_heavy() -> None:
    env = dict(os.environ, PYTHONPATH=_PRIV_PYTHON)
    out = subprocess.run([sys.executable, "-c", _REPORT], env=env, check=True,
                         capture_output=True, text=True).stdout
    added = set(out.split())
    assert "erlang._isolated" in added
    assert added & _HEAVY == set()


def test_lazy_names_resolve() -> None:
    from erlang import (  # each through erlang.__getattr__ on first use
        InlineScheduleMarker,
        ScheduleMarker,
        SharedDict,
        _schedule,
        _shared_dict,
        consume_time_slice,
        schedule,
        schedule_inline,
        schedule_py,
    )

    assert SharedDict is _shared_dict.SharedDict
    assert schedule is _schedule.schedule
    assert schedule_inline is _schedule.schedule_inline
    assert consume_time_slice is _schedule.consume_time_slice
    assert isinstance(schedule_py("mod", "fn"), ScheduleMarker)
    assert issubclass(InlineScheduleMarker, ScheduleMarker)
    assert {"SharedDict", "schedule", "ScheduleMarker", "trace"} <= set(dir(erlang))
