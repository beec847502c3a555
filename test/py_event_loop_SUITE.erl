%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc py_event_loop and py_event_loop_pool, the erlang_python 4.x task
%% API (src/py_event_loop.erl, src/py_event_loop_pool.erl,
%% priv/python/erlang/_evloop.py).
-module(py_event_loop_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([get_loop/1, run_and_await/1, kwargs/1, spawn_task/1, await_timeout/1,
         error_shapes/1, namespaces/1, namespace_isolation/1, namespace_dropped/1,
         main_from_py_exec/1, many_tasks/1, shared_with_async_call/1, pool/1,
         pool_affinity/1, bad_input/1, channel_in_task/1]).

-define(HELPERS, <<"
import asyncio, math
import erlang
from erlang import Atom

async def double(x):
    await asyncio.sleep(0)
    return 2 * x

async def slow(x, delay=0.05):
    await asyncio.sleep(delay)
    return x

async def fail(msg):
    await asyncio.sleep(0)
    raise ValueError(msg)

def plain_fail():
    raise KeyError('k')

def returns_coroutine(x):
    return double(x)

async def notify(pid, tag):
    erlang.send(pid, (Atom('notified'), tag))

async def forever():
    await asyncio.sleep(3600)

def unconvertible():
    return object()

async def raise_later():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_exception, KeyError('later'))
    await fut

async def many_waits(n):
    total = 0
    for i in range(n):
        await asyncio.sleep(0)
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, i)
        total += await fut
    return total
">>).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [get_loop, run_and_await, kwargs, spawn_task, await_timeout, error_shapes, namespaces,
     namespace_isolation, namespace_dropped, main_from_py_exec, many_tasks,
     shared_with_async_call, pool, pool_affinity, bad_input, channel_in_task].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, _} = py:eval(<<"exec(src, __import__('sys').modules.setdefault('loop_helpers', "
                        "__import__('types').ModuleType('loop_helpers')).__dict__)">>,
                      #{src => ?HELPERS}),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

get_loop(_Config) ->
    {ok, Loop} = py_event_loop:get_loop(),
    {ok, Loop} = py_event_loop:get_loop(),
    true = is_reference(Loop).

run_and_await(_Config) ->
    {ok, 5.0} = py_event_loop:run(math, sqrt, [25.0]),
    Ref = py_event_loop:create_task(math, pow, [2.0, 10.0]),
    {ok, 1024.0} = py_event_loop:await(Ref, 1000),
    {ok, 42} = py_event_loop:run(loop_helpers, double, [21]),
    {ok, 14} = py_event_loop:run(<<"loop_helpers">>, <<"returns_coroutine">>, [7]),
    Ref2 = py_event_loop:create_task(loop_helpers, slow, [x]),
    receive {async_result, Ref2, {ok, x}} -> ok after 5000 -> ct:fail(no_result) end,
    {ok, 3} = py_event_loop:run(math, floor, [3.7], #{timeout => 1000}),
    {ok, [1, 2]} = py_event_loop:await(py_event_loop:create_task(builtins, list, [[1, 2]])).

kwargs(_Config) ->
    {ok, y} = py_event_loop:run(loop_helpers, slow, [y], #{kwargs => #{delay => 0.01}}),
    Ref = py_event_loop:create_task(loop_helpers, slow, [z], #{<<"delay">> => 0}),
    {ok, z} = py_event_loop:await(Ref).

spawn_task(_Config) ->
    ok = py_event_loop:spawn_task(loop_helpers, notify, [self(), one]),
    receive {notified, one} -> ok after 5000 -> ct:fail(no_message) end,
    ok = py_event_loop:spawn_task(loop_helpers, notify, [self(), two], #{}),
    receive {notified, two} -> ok after 5000 -> ct:fail(no_message) end,
    ok = py_event_loop:spawn_task(nosuchmodule, f, []),
    {messages, []} = process_info(self(), messages).

await_timeout(_Config) ->
    Ref = py_event_loop:create_task(loop_helpers, slow, [late, 0.3]),
    {error, timeout} = py_event_loop:await(Ref, 10),
    %% The task went on: its result comes later.
    receive {async_result, Ref, {ok, late}} -> ok after 5000 -> ct:fail(no_late_result) end.

error_shapes(_Config) ->
    %% As erlang_python 4.x: a coroutine's error is a binary with traceback...
    {error, <<"ValueError: bad one\n", Trace/binary>>} =
        py_event_loop:run(loop_helpers, fail, [<<"bad one">>]),
    {match, _} = re:run(Trace, "Traceback"),
    %% ...a plain function's a {Name, Message} pair.
    {error, {'ValueError', "math domain error"}} = py_event_loop:run(math, sqrt, [-1.0]),
    {error, {'KeyError', "'k'"}} = py_event_loop:run(loop_helpers, plain_fail, []),
    {error, function_not_found} = py_event_loop:run(math, nosuch, []),
    {error, {'ModuleNotFoundError', "No module named 'nosuchmodule'"}} =
        py_event_loop:run(nosuchmodule, f, []),
    {error, {'TypeError', _}} = py_event_loop:run(loop_helpers, unconvertible, []),
    {error, {'TypeError', _}} = py_event_loop:run(math, sqrt, [a, b]),
    %% An exception thrown into a coroutine after its first wait (a task
    %% takes over an eagerly started coroutine there).
    {error, <<"KeyError: 'later'\n", _/binary>>} = py_event_loop:run(loop_helpers, raise_later, []),
    {ok, 4950} = py_event_loop:run(loop_helpers, many_waits, [100]),
    ok.

namespaces(_Config) ->
    ok = py_event_loop:exec(<<"x = 42\nasync def triple(v):\n    return 3 * v\n">>),
    {ok, 42} = py_event_loop:eval(<<"x">>),
    {ok, 84} = py_event_loop:eval(<<"x * 2">>),
    {ok, 63} = py_event_loop:run('__main__', triple, [21]),
    %% The erlang module is bound, as in every namespace.
    {ok, true} = py_event_loop:eval(<<"erlang.Atom('a') == 'a'">>),
    {error, {'NameError', _}} = py_event_loop:eval(<<"undefined_name">>),
    {error, {'SyntaxError', _}} = py_event_loop:exec(<<"def (">>),
    {ok, Loop} = py_event_loop:get_loop(),
    {ok, 42} = py_event_loop:eval(Loop, <<"x">>),
    ok = py_event_loop:exec(Loop, [<<"y = ">>, "1"]),
    {ok, 1} = py_event_loop:eval(<<"y">>).

namespace_isolation(_Config) ->
    ok = py_event_loop:exec(<<"mine = 'a'">>),
    {error, {'NameError', _}} =
        py_test_lib:in_new_process(fun() -> py_event_loop:eval(<<"mine">>) end),
    {ok, <<"a">>} = py_event_loop:eval(<<"mine">>).

namespace_dropped(_Config) ->
    ok = py_event_loop:exec(<<"import weakref\nclass T: pass\nprobe = T()\n">>),
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() ->
                                       ok = py_event_loop:exec(<<"class T: pass\nobj = T()\n">>),
                                       {ok, _} = py_event_loop:eval(<<"0">>),
                                       Self ! ready,
                                       receive stop -> ok end
                               end),
    receive ready -> ok end,
    {ok, N0} = py_event_loop:eval(<<"sum(1 for o in __import__('gc').get_objects() "
                                    "if type(o).__name__ == 'T')">>),
    Pid ! stop,
    receive {'DOWN', Mon, process, Pid, _} -> ok end,
    wait_count(N0 - 1, 200).

wait_count(_Want, 0) -> ct:fail(namespace_not_dropped);
wait_count(Want, N) ->
    {ok, Count} = py_event_loop:eval(<<"sum(1 for o in __import__('gc').get_objects() "
                                       "if type(o).__name__ == 'T')">>),
    case Count of
        Want -> ok;
        _ ->
            %% The drop goes through py_event_loop (it monitors the process).
            _ = sys:get_state(py_event_loop),
            wait_count(Want, N - 1)
    end.

main_from_py_exec(_Config) ->
    %% '__main__' finds what py:exec defined on the caller's context...
    ok = py:exec(<<"import asyncio\nasync def from_context(x):\n    await asyncio.sleep(0)\n"
                   "    return ('ctx', x)\n">>),
    {ok, {<<"ctx">>, 1}} = py_event_loop:run('__main__', from_context, [1]),
    %% ...then what py_event_loop:exec defined on the loop, then builtins.
    ok = py_event_loop:exec(<<"def on_loop(x):\n    return ('loop', x)\n">>),
    {ok, {<<"loop">>, 2}} = py_event_loop:run('__main__', on_loop, [2]),
    {ok, 3} = py_event_loop:run('__main__', len, [[a, b, c]]),
    {error, function_not_found} = py_event_loop:run('__main__', nowhere, []).

many_tasks(_Config) ->
    Refs = [py_event_loop:create_task(loop_helpers, slow, [I, 0.05]) || I <- lists:seq(1, 2000)],
    [{ok, I} = py_event_loop:await(R, 10000) || {I, R} <- lists:zip(lists:seq(1, 2000), Refs)],
    ok.

shared_with_async_call(_Config) ->
    %% The default loop is the shared loop of py:async_call.
    ok = py_event_loop:exec(<<"import asyncio\nloop_id = id(asyncio.get_event_loop_policy()) and 0\n">>),
    {ok, Id1} = py_event_loop:run(builtins, eval, [<<"id(__import__('asyncio').get_running_loop())">>]),
    {ok, Id2} = py:async_await(py:async_call(builtins, eval,
                                             [<<"id(__import__('erlang._loop', fromlist=['_']).shared_loop())">>])),
    Id1 = Id2.

pool(_Config) ->
    #{num_loops := N, owngil_enabled := false, supported := true} = py_event_loop_pool:get_stats(),
    true = N >= 1,
    {ok, Loop} = py_event_loop_pool:get_loop(),
    N = length(py_event_loop_pool:get_all_loops()),
    true = lists:member(Loop, py_event_loop_pool:get_all_loops()),
    false = py_event_loop_pool:is_owngil_enabled(),
    {ok, 2.0} = py_event_loop_pool:run(math, sqrt, [4.0]),
    {ok, 8} = py_event_loop_pool:await(py_event_loop_pool:create_task(loop_helpers, double, [4])),
    {ok, 8} = py_event_loop_pool:run(loop_helpers, double, [4], #{timeout => 1000}),
    ok = py_event_loop_pool:spawn_task(loop_helpers, notify, [self(), pool]),
    receive {notified, pool} -> ok after 5000 -> ct:fail(no_message) end,
    ok = py_event_loop_pool:exec(<<"p = 7">>),
    {ok, 7} = py_event_loop_pool:eval(<<"p">>),
    {ok, 7} = py_event_loop_pool:eval(Loop, <<"p">>),
    %% A pool loop is not the shared loop: another thread.
    {ok, T1} = py_event_loop_pool:run(threading, get_ident, []),
    {ok, T2} = py_event_loop:run(threading, get_ident, []),
    true = T1 =/= T2,
    #{started := true} = py_event_loop_pool:get_stats(),
    ok.

pool_affinity(_Config) ->
    {ok, L} = py_event_loop_pool:get_loop(),
    {ok, L} = py_event_loop_pool:get_loop(),
    Loops = lists:usort([py_test_lib:in_new_process(fun() ->
                                                            {ok, X} = py_event_loop_pool:get_loop(),
                                                            X
                                                    end) || _ <- lists:seq(1, 50)]),
    true = length(Loops) =:= length(py_event_loop_pool:get_all_loops()),
    %% Tasks of one process keep their order on its loop.
    Refs = [py_event_loop_pool:create_task(loop_helpers, notify, [self(), I]) || I <- lists:seq(1, 20)],
    [{ok, none} = py_event_loop_pool:await(R) || R <- Refs],
    [receive {notified, I} -> ok after 5000 -> ct:fail({missing, I}) end || I <- lists:seq(1, 20)],
    ok.

bad_input(_Config) ->
    {'EXIT', {{badarg, {args, x}}, _}} = (catch py_event_loop:create_task(math, sqrt, x)),
    {'EXIT', {{badarg, {kwargs, []}}, _}} = (catch py_event_loop:create_task(math, sqrt, [], [])),
    {'EXIT', {{badarg, {module, 1}}, _}} = (catch py_event_loop:create_task(1, sqrt, [])),
    {'EXIT', {{badarg, {function, {}}}, _}} = (catch py_event_loop:create_task(math, {}, [])),
    {'EXIT', {{badarg, {ref, x}}, _}} = (catch py_event_loop:await(x)),
    {'EXIT', {{badarg, {timeout, -1}}, _}} = (catch py_event_loop:await(make_ref(), -1)),
    {'EXIT', {{badarg, {opts, []}}, _}} = (catch py_event_loop:run(math, sqrt, [1], [])),
    {'EXIT', {{badarg, {code, 42}}, _}} = (catch py_event_loop:exec(42)),
    {'EXIT', {badarg, _}} = (catch py_event_loop:exec(make_ref(), <<"x = 1">>)),
    {'EXIT', {{badarg, {opts, x}}, _}} = (catch py_event_loop_pool:run(math, sqrt, [1], x)),
    ok.

channel_in_task(_Config) ->
    %% A task that waits on a channel: woken by the sender, on the loop.
    ok = py_event_loop:exec(<<"
async def collect(ch, n):
    c = erlang.Channel(ch)
    return [await c.async_receive() for _ in range(n)]
">>),
    {ok, Ch} = py_channel:new(),
    Ref = py_event_loop:create_task('__main__', collect, [Ch, 3]),
    [ok = py_channel:send(Ch, I) || I <- [a, b, c]],
    {ok, [a, b, c]} = py_event_loop:await(Ref, 5000).
