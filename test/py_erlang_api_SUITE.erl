%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The Python names of the 4.x data plane: erlang.async_call,
%% erlang.whereis, the scheduling markers (erlang.schedule, schedule_py,
%% schedule_inline, consume_time_slice), the erlang module bound in every
%% namespace, ErlangError as a RuntimeError, erlang.ProcessError, and
%% py:stream_start/4's owner.
-module(py_erlang_api_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([async_call/1, async_call_errors/1, async_call_concurrent/1, whereis/1,
         schedule_erlang/1, schedule_python/1, schedule_chain/1, schedule_bad_input/1,
         consume_time_slice/1, erlang_bound/1, erlang_error_is_runtime_error/1,
         send_to_dead_pid/1, stream_owner/1, stream_owner_death/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [async_call, async_call_errors, async_call_concurrent, whereis, schedule_erlang,
     schedule_python, schedule_chain, schedule_bad_input, consume_time_slice, erlang_bound,
     erlang_error_is_runtime_error, send_to_dead_pid, stream_owner, stream_owner_death].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:register_function(add, fun([A, B]) -> A + B end),
    ok = py:register_function(boom, fun([R]) -> erlang:error(R) end),
    ok = py:register_function(slow_echo, fun([X, Ms]) -> receive after Ms -> X end end),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

async_call(_Config) ->
    ok = py:exec(<<"
import asyncio
async def use(x):
    return await erlang.async_call('add', x, 1)
def on_erlang_loop(x):
    return erlang.run(use(x))
def on_stdlib_loop(x):
    return asyncio.run(use(x))
">>),
    {ok, 42} = py:call('__main__', on_erlang_loop, [41]),
    {ok, 42} = py:call('__main__', on_stdlib_loop, [41]),
    %% From the event loop API too.
    ok = py_event_loop:exec(<<"async def via(x):\n    return await erlang.async_call('add', x, 2)\n">>),
    {ok, 5} = py_event_loop:run('__main__', via, [3]).

async_call_errors(_Config) ->
    ok = py:exec(<<"
import asyncio
async def failing():
    try:
        await erlang.async_call('boom', erlang.Atom('bad'))
    except erlang.ErlangError as e:
        return ('caught', isinstance(e, RuntimeError), e.cls, e.reason)
async def missing():
    try:
        await erlang.async_call('not_registered_anywhere')
    except NameError:
        return 'nameerror'
">>),
    {ok, {<<"caught">>, true, error, bad}} = py:eval(<<"erlang.run(failing())">>),
    {ok, <<"nameerror">>} = py:eval(<<"erlang.run(missing())">>),
    ok.

async_call_concurrent(_Config) ->
    %% Waits overlap: ten 200 ms functions take about 200 ms, not 2 s.
    ok = py:exec(<<"
import asyncio, time
async def ten():
    t = time.monotonic()
    r = await asyncio.gather(*[erlang.async_call('slow_echo', i, 200) for i in range(10)])
    return (r, time.monotonic() - t)
">>),
    {ok, {L, Secs}} = py:eval(<<"erlang.run(ten())">>),
    L = lists:seq(0, 9),
    true = Secs < 1.5,
    ok.

whereis(_Config) ->
    true = register(py_api_probe, self()),
    Self = self(),
    {ok, Self} = py:eval(<<"erlang.whereis('py_api_probe')">>),
    {ok, Self} = py:eval(<<"erlang.whereis(b'py_api_probe')">>),
    {ok, Self} = py:eval(<<"erlang.whereis(erlang.Atom('py_api_probe'))">>),
    {ok, none} = py:eval(<<"erlang.whereis('no_such_registered_name_x1')">>),
    {ok, none} = py:eval(<<"erlang.whereis('ζζζ')"/utf8>>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.whereis(42)">>),
    %% A name that is no atom yet makes none.
    {ok, none} = py:eval(<<"erlang.whereis('fresh_name_not_an_atom_7391')">>),
    {'EXIT', {badarg, _}} = (catch binary_to_existing_atom(<<"fresh_name_not_an_atom_7391">>)),
    true = unregister(py_api_probe),
    ok.

schedule_erlang(_Config) ->
    ok = py:exec(<<"
def later(n):
    return erlang.schedule('add', n, 10)
def later_fail():
    return erlang.schedule('boom', 1)
def later_missing():
    return erlang.schedule('not_registered_anywhere')
">>),
    {ok, 11} = py:call('__main__', later, [1]),
    {ok, 12} = py:eval(<<"later(2)">>),
    {error, {'ErlangError', _}} = py:call('__main__', later_fail, []),
    {error, {'NameError', _}} = py:call('__main__', later_missing, []),
    ok.

schedule_python(_Config) ->
    ok = py:exec(<<"
def step(n):
    return erlang.schedule_py('__main__', 'finish', [n], {'extra': 5})
def finish(n, extra=0):
    return n + extra
def inline(n):
    return erlang.schedule_inline('math', 'sqrt', [n])
def is_marker():
    m = erlang.schedule_py('m', 'f')
    return (isinstance(m, erlang.ScheduleMarker), isinstance(erlang.schedule_inline('m', 'f'),
            erlang.InlineScheduleMarker))
">>),
    {ok, 6} = py:call('__main__', step, [1]),
    {ok, 3.0} = py:call('__main__', inline, [9]),
    {ok, {true, true}} = py:call('__main__', is_marker, []),
    ok.

schedule_chain(_Config) ->
    %% A long computation in steps: each step is a new request on the
    %% context, so another process's call runs in between.
    ok = py:exec(<<"
def count(i, n, acc):
    if i == n:
        return acc
    return erlang.schedule_py('__main__', 'count', [i + 1, n, acc + i])
">>),
    {ok, 4950} = py:call('__main__', count, [0, 100, 0]),
    ok.

schedule_bad_input(_Config) ->
    {error, {'TypeError', _}} = py:eval(<<"erlang.schedule(42)">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.schedule_py(1, 'f')">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.schedule_inline('m', None)">>),
    {error, {'ValueError', _}} = py:eval(<<"erlang.consume_time_slice(0)">>),
    {error, {'ValueError', _}} = py:eval(<<"erlang.consume_time_slice(101)">>),
    ok.

consume_time_slice(_Config) ->
    ok = py:exec(<<"
def slices():
    out = []
    for _ in range(6):
        out.append(erlang.consume_time_slice(40))
    return out
">>),
    {ok, [false, false, true, false, false, true]} = py:call('__main__', slices, []),
    ok.

erlang_bound(_Config) ->
    %% No import needed, in eval and exec, in fresh processes too.
    {ok, 3} = py_test_lib:in_new_process(fun() -> py:eval(<<"erlang.add(1, 2)">>) end),
    ok = py_test_lib:in_new_process(fun() -> py:exec(<<"x = erlang.Atom('y')">>) end),
    {ok, true} = py:eval(<<"erlang is __import__('erlang')">>),
    ok.

erlang_error_is_runtime_error(_Config) ->
    ok = py:exec(<<"
def catch_runtime():
    try:
        erlang.boom(1)
    except RuntimeError as e:
        return (type(e).__name__, e.cls, e.reason)
">>),
    {ok, {<<"ErlangError">>, error, 1}} = py:call('__main__', catch_runtime, []),
    ok.

send_to_dead_pid(_Config) ->
    {Dead, Mon} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Mon, process, Dead, _} -> ok end,
    {error, {'ProcessError', "Failed to send message: process may not exist"}} =
        py:eval(<<"erlang.send(p, 1)">>, #{p => Dead}),
    {ok, true} = py:eval(<<"issubclass(erlang.ProcessError, Exception)">>),
    %% A live one still works; a registered name that is gone is LookupError.
    {ok, none} = py:eval(<<"erlang.send(p, 1)">>, #{p => self()}),
    receive 1 -> ok end,
    {error, {'LookupError', _}} = py:eval(<<"erlang.send(erlang.Atom('nobody_registered_q'), 1)">>),
    ok.

stream_owner(_Config) ->
    ok = py:exec(<<"def count(n):\n    yield from range(n)\n">>),
    Self = self(),
    Owner = spawn_link(fun() -> collect_stream(Self, []) end),
    {ok, Ref} = py:stream_start('__main__', count, [200], #{owner => Owner}),
    Owner ! {ref, Ref},
    receive {collected, L} -> L = lists:seq(0, 199) after 10000 -> ct:fail(no_stream) end,
    {messages, []} = process_info(self(), messages),
    {'EXIT', {{badarg, {owner, x}}, _}} = (catch py:stream_start('__main__', count, [1], #{owner => x})),
    ok.

collect_stream(Parent, Acc) ->
    Ref = receive {ref, R} -> R end,
    collect_stream(Parent, Ref, Acc).

collect_stream(Parent, Ref, Acc) ->
    receive
        {py_stream, Ref, {data, X}} -> collect_stream(Parent, Ref, [X | Acc]);
        {py_stream, Ref, done} -> Parent ! {collected, lists:reverse(Acc)}
    end.

stream_owner_death(_Config) ->
    ok = py:exec(<<"
import itertools
closed = []
def forever():
    try:
        yield from itertools.count()
    finally:
        closed.append(True)
">>),
    {Owner, Mon} = spawn_monitor(fun() -> receive stop -> ok end end),
    {ok, _Ref} = py:stream_start('__main__', forever, [], #{owner => Owner}),
    Owner ! stop,
    receive {'DOWN', Mon, process, Owner, _} -> ok end,
    wait_closed(500).

wait_closed(0) -> ct:fail(stream_not_stopped);
wait_closed(N) ->
    case py:eval(<<"closed">>) of
        {ok, [true]} -> ok;
        {ok, []} -> wait_closed(N - 1)
    end.
