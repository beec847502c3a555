"""The pure-Python parts of the data plane: scheduling markers, the
wrappers of shared dicts and channels, and their refusals of bad input.
The C side is tested from Erlang (test/py_shared_dict_SUITE.erl,
py_channel_SUITE.erl, py_buffer_SUITE.erl, py_erlang_api_SUITE.erl); this
file runs in a plain interpreter and inside the VM (python_SUITE)."""

from __future__ import annotations

import pytest

import erlang
from erlang import _schedule


def test_schedule_markers_are_tuples_of_their_term() -> None:
    m = erlang.schedule("cb", 1, "two")
    assert isinstance(m, erlang.ScheduleMarker) and isinstance(m, tuple)
    assert m == ("$py_schedule", "erlang", "cb", [1, "two"], {})
    assert isinstance(m[0], erlang.Atom) and isinstance(m[1], erlang.Atom)
    p = erlang.schedule_py("mod", "f", [1], {"k": 2})
    assert p == ("$py_schedule", "py", ("mod", "f"), [1], {"k": 2})
    assert not isinstance(p, erlang.InlineScheduleMarker)
    i = erlang.schedule_inline("mod", "f")
    assert isinstance(i, erlang.InlineScheduleMarker)
    assert i == ("$py_schedule", "inline", ("mod", "f"), [], {})


def test_schedule_refuses_bad_names() -> None:
    with pytest.raises(TypeError):
        erlang.schedule(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        erlang.schedule_py("m", None)  # type: ignore[arg-type]


def test_consume_time_slice_counts_to_100() -> None:
    _schedule._slice.used = 0
    assert [erlang.consume_time_slice(30) for _ in range(4)] == [False, False, False, True]
    assert erlang.consume_time_slice(100) is True
    for bad in (0, 101, 1.5):
        with pytest.raises(ValueError):
            erlang.consume_time_slice(bad)  # type: ignore[arg-type]


def test_wrappers_refuse_what_is_no_handle() -> None:
    for bad in (42, "x", None, object()):
        with pytest.raises(TypeError):
            erlang.SharedDict(bad)
        with pytest.raises(TypeError):
            erlang.Channel(bad)
        with pytest.raises(TypeError):
            erlang.ByteChannel(bad)


def test_channel_exceptions_and_module_path() -> None:
    from erlang.channel import ByteChannel, Channel, ChannelClosed, reply

    assert Channel is erlang.Channel and ByteChannel is erlang.ByteChannel
    assert ChannelClosed is erlang.ChannelClosed
    assert issubclass(erlang.ByteChannelClosed, erlang.ChannelClosed)
    assert callable(reply)


def test_pybuffer_cannot_be_made_in_python() -> None:
    with pytest.raises(TypeError):
        erlang.PyBuffer()


def test_erlang_error_is_a_runtime_error() -> None:
    assert issubclass(erlang.ErlangError, RuntimeError)
    assert issubclass(erlang.ProcessError, Exception)
    assert not issubclass(erlang.ProcessError, RuntimeError)


@pytest.mark.skipif(erlang.is_embedded(), reason="checks behaviour outside the VM")
def test_outside_the_vm_calls_refuse() -> None:
    import asyncio

    with pytest.raises(RuntimeError):
        erlang.whereis("x")
    with pytest.raises(RuntimeError):
        asyncio.run(erlang.async_call("x"))
