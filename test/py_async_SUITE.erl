%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc py:async_call/3,4, py:async_await/1,2, py:async_gather/1,2 and the
%% shared asyncio loop behind them (src/py_async.erl,
%% priv/python/erlang/_async.py, priv/python/erlang/_loop.py).
-module(py_async_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([coroutine_result/0, coroutine_result/1, plain_functions/0, plain_functions/1,
         kwargs/0, kwargs/1, main_namespace/0, main_namespace/1,
         errors/0, errors/1, badargs/0, badargs/1,
         timeout_cancels/0, timeout_cancels/1, timeout_race/0, timeout_race/1,
         caller_death_cancels/0, caller_death_cancels/1,
         thousands_share_one_loop/0, thousands_share_one_loop/1,
         blocking_function_spares_loop/0, blocking_function_spares_loop/1,
         erlang_call_from_task/0, erlang_call_from_task/1,
         gather_results/0, gather_results/1, gather_error/0, gather_error/1,
         gather_timeout/0, gather_timeout/1, idle_loop_uses_no_cpu/0,
         idle_loop_uses_no_cpu/1, restart_with_running_tasks/0,
         restart_with_running_tasks/1]).
%% Run on a peer node.
-export([peer_life/0]).

%% Functions the cases call, in a module of their own.
-define(HELPERS, <<"
import asyncio, threading, time
import erlang
from erlang import Atom

async def double(x):
    await asyncio.sleep(0)
    return 2 * x

def returns_coroutine(x):
    return double(x)

async def fail(msg):
    raise ValueError(msg)

_started = {}

def _event(tag):
    return _started.setdefault(tag, asyncio.Event())

async def hold(pid, tag):
    erlang.send(pid, (Atom('started'), tag))
    _event(tag).set()
    try:
        await asyncio.sleep(3600)
    finally:
        erlang.send(pid, (Atom('finally'), tag))

async def fail_when_started(tag, msg):
    await _event(tag).wait()
    raise ValueError(msg)

async def wait_forever_when_started(tags):
    for tag in tags:
        await _event(tag).wait()
    await asyncio.sleep(3600)

async def sleep_return(seconds, value):
    await asyncio.sleep(seconds)
    return value

async def where():
    return [threading.get_ident(), type(asyncio.get_running_loop()).__name__]

async def unconvertible():
    return object()

def blocking(seconds):
    time.sleep(seconds)
    return 'woke'

def calls_erlang(x):
    return erlang.call('py_async_suite_double', x)

async def kw(a, b=0, *, c=0):
    return [a, b, c]

def loop_cpu_seconds():
    from erlang import _loop
    _loop.shared_loop()
    return time.clock_gettime(time.pthread_getcpuclockid(_loop._shared_thread.ident))
">>).

suite() ->
    [{timetrap, {seconds, 60}}].

all() ->
    [coroutine_result, plain_functions, kwargs, main_namespace, errors, badargs,
     timeout_cancels, timeout_race, caller_death_cancels, thousands_share_one_loop,
     blocking_function_spares_loop, erlang_call_from_task, gather_results, gather_error,
     gather_timeout, idle_loop_uses_no_cpu, restart_with_running_tasks].

init_per_suite(Config) ->
    {ok, Started} = application:ensure_all_started(erlang_python),
    ok = install_helpers(),
    [{started, Started} | Config].

end_per_suite(Config) ->
    _ = [application:stop(App) || App <- lists:reverse(?config(started, Config))],
    ok.

install_helpers() ->
    {ok, _} = py:eval(<<"exec(src, __import__('sys').modules.setdefault('py_async_helpers', "
                        "__import__('types').ModuleType('py_async_helpers')).__dict__)">>,
                      #{src => ?HELPERS}),
    ok.

%% Cases.

coroutine_result() -> [{doc, "A coroutine function's return value comes back as {ok, V}."}].
coroutine_result(_) ->
    Ref = py:async_call(py_async_helpers, double, [21]),
    true = is_reference(Ref),
    {ok, 42} = py:async_await(Ref),
    {ok, [Ident, <<"ErlangEventLoop">>]} = py:async_await(py:async_call(py_async_helpers, where, [])),
    true = is_integer(Ident),
    {ok, done} = py:async_await(py:async_call(asyncio, sleep, [0.01, done])),
    no_messages().

plain_functions() ->
    [{doc, "A plain function works, and an awaitable it returns is awaited."}].
plain_functions(_) ->
    {ok, 4.0} = py:async_await(py:async_call(math, sqrt, [16])),
    {ok, 10} = py:async_await(py:async_call(py_async_helpers, returns_coroutine, [5])),
    {ok, <<"a-b">>} = py:async_await(py:async_call(operator, add, [<<"a-">>, <<"b">>])),
    no_messages().

kwargs() -> [{doc, "async_call/4 passes keyword arguments, atoms or binaries as names."}].
kwargs(_) ->
    {ok, [1, 2, 3]} = py:async_await(py:async_call(py_async_helpers, kw, [1], #{b => 2, c => 3})),
    {ok, [1, 0, 5]} = py:async_await(py:async_call(py_async_helpers, kw, [1], #{<<"c">> => 5})),
    {error, {'TypeError', _}} =
        py:async_await(py:async_call(py_async_helpers, kw, [1], #{nope => 1})).

main_namespace() ->
    [{doc, "'__main__' means the caller's namespace (exec/1), as in py:call."}].
main_namespace(_) ->
    ok = py:exec(<<"import asyncio\nasync def triple(x):\n    await asyncio.sleep(0)\n"
                   "    return 3 * x\nclass K:\n    async def m(self): return 'm'\nk = K()\n">>),
    {ok, 9} = py:async_await(py:async_call('__main__', triple, [3])),
    {ok, <<"m">>} = py:async_await(py:async_call('__main__', 'k.m', [])),
    {ok, 3} = py:async_await(py:async_call('__main__', len, [[a, b, c]])),
    %% Another process does not see this one's names.
    Self = self(),
    spawn(fun() -> Self ! {other, py:async_await(py:async_call('__main__', triple, [1]))} end),
    receive {other, {error, {'NameError', _}}} -> ok end,
    {error, {'NameError', _}} = py:async_await(py:async_call('__main__', nope, [])),
    {error, {'NameError', _}} = py:call('__main__', nope, []).

errors() ->
    [{doc, "Errors have the shape of sync calls: {error, {Name, Message}}."}].
errors(_) ->
    Msg = <<"bad ", 16#e9/utf8, 16#1F600/utf8>>,
    {error, {'ValueError', Chars}} = py:async_await(py:async_call(py_async_helpers, fail, [Msg])),
    Chars = unicode:characters_to_list(Msg),
    {ok, _} = py:eval(<<"__import__('py_async_helpers')">>),
    Sync = py:call(py_async_helpers, double, [1], #{nope => 1}),
    {error, {'TypeError', _}} = Sync,
    {error, {'TypeError', _}} = py:async_await(py:async_call(py_async_helpers, double, [1], #{nope => 1})),
    {error, {'ModuleNotFoundError', "No module named 'no_such_module'"}} =
        py:async_await(py:async_call(no_such_module, f, [])),
    {error, {'AttributeError', _}} = py:async_await(py:async_call(py_async_helpers, nope, [])),
    %% A result with no term form (the loop thread has no context to hold a reference).
    {error, {'TypeError', _}} = py:async_await(py:async_call(py_async_helpers, unconvertible, [])),
    no_messages().

badargs() -> [{doc, "Wrong argument types raise badarg, as in the rest of py."}].
badargs(_) ->
    {'EXIT', {{badarg, {module, 1}}, _}} = (catch py:async_call(1, f, [])),
    {'EXIT', {{badarg, {args, x}}, _}} = (catch py:async_call(m, f, x)),
    {'EXIT', {{badarg, {kwargs, x}}, _}} = (catch py:async_call(m, f, [], x)),
    {'EXIT', {{badarg, {ref, x}}, _}} = (catch py:async_await(x)),
    {'EXIT', {{badarg, {timeout, -1}}, _}} = (catch py:async_await(make_ref(), -1)),
    {'EXIT', {{badarg, {calls, x}}, _}} = (catch py:async_gather(x)),
    {'EXIT', {{badarg, {call, {m}}}, _}} = (catch py:async_gather([{m}])),
    no_messages().

timeout_cancels() ->
    [{doc, "A timeout cancels the task: its finally runs and no message is left."}].
timeout_cancels(_) ->
    Ref = py:async_call(py_async_helpers, hold, [self(), 1]),
    receive {started, 1} -> ok end,
    {error, timeout} = py:async_await(Ref, 50),
    receive {finally, 1} -> ok end,
    %% The loop has run everything the cancellation scheduled.
    {ok, 2} = py:async_await(py:async_call(py_async_helpers, double, [1])),
    {ok, 0} = py:call('erlang._async', pending, []),
    no_messages().

timeout_race() ->
    [{doc, "Results that race their timeout: either outcome, never a stray message."}].
timeout_race(_) ->
    Outcomes = [case py:async_await(py:async_call(py_async_helpers, double, [I]), 0) of
                    {ok, V} when V =:= 2 * I -> ok;
                    {error, timeout} -> timeout
                end || I <- lists:seq(1, 300)],
    ct:log("outcomes: ~p ok, ~p timeout",
           [length([o || ok <- Outcomes]), length([t || timeout <- Outcomes])]),
    %% Let anything in flight land, then look.
    {ok, 2} = py:async_await(py:async_call(py_async_helpers, double, [1])),
    {ok, 0} = py:call('erlang._async', pending, []),
    no_messages().

caller_death_cancels() ->
    [{doc, "When the caller dies, its tasks are cancelled (their finally runs)."}].
caller_death_cancels(_) ->
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() ->
                                       _ = [py:async_call(py_async_helpers, hold, [Self, I])
                                            || I <- [a, b, c]],
                                       receive never -> ok end
                               end),
    [receive {started, T} -> ok end || T <- [a, b, c]],
    exit(Pid, kill),
    receive {'DOWN', Mon, process, Pid, killed} -> ok end,
    [receive {finally, T} -> ok end || T <- [a, b, c]],
    {ok, 0} = py:call('erlang._async', pending, []).

thousands_share_one_loop() ->
    [{doc, "5,000 concurrent coroutines run side by side on the one shared loop."}].
thousands_share_one_loop(_) ->
    N = 5000,
    T0 = erlang:monotonic_time(millisecond),
    Refs = [py:async_call(py_async_helpers, sleep_return, [0.2, I]) || I <- lists:seq(1, N)],
    Results = [py:async_await(R, 30000) || R <- Refs],
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:log("~b coroutines sleeping 0.2 s each: ~b ms", [N, Elapsed]),
    Results = [{ok, I} || I <- lists:seq(1, N)],
    %% One after the other they would take N * 0.2 s = 1000 s.
    true = Elapsed < 20000,
    Idents = lists:usort([begin {ok, [I, _]} = py:async_await(R), I end
                          || R <- [py:async_call(py_async_helpers, where, []) || _ <- lists:seq(1, 50)]]),
    1 = length(Idents).

blocking_function_spares_loop() ->
    [{doc, "A blocking plain function runs in the executor, not on the loop."}].
blocking_function_spares_loop(_) ->
    Blocking = py:async_call(py_async_helpers, blocking, [1.0]),
    {ok, 8} = py:async_await(py:async_call(py_async_helpers, double, [4]), 5000),
    %% The coroutine finished while the blocking call still sleeps.
    false = has_message(Blocking),
    {ok, <<"woke">>} = py:async_await(Blocking).

erlang_call_from_task() ->
    [{doc, "Plain functions and coroutines on the loop can call Erlang functions."}].
erlang_call_from_task(_) ->
    ok = py:register_function(py_async_suite_double, fun([X]) -> 2 * X end),
    try
        {ok, 42} = py:async_await(py:async_call(py_async_helpers, calls_erlang, [21]))
    after
        py:unregister_function(py_async_suite_double)
    end.

gather_results() -> [{doc, "async_gather returns the results in call order."}].
gather_results(_) ->
    {ok, [<<"slow">>, <<"fast">>, 4.0, [1, 0, 7]]} =
        py:async_gather([{py_async_helpers, sleep_return, [0.05, <<"slow">>]},
                         {py_async_helpers, sleep_return, [0, <<"fast">>]},
                         {math, sqrt, [16]},
                         {py_async_helpers, kw, [1], #{c => 7}}]),
    {ok, []} = py:async_gather([]),
    no_messages().

gather_error() ->
    [{doc, "async_gather names the failed call and cancels the others."}].
gather_error(_) ->
    Failing = {py_async_helpers, fail_when_started, [g1, <<"no">>]},
    {error, {2, Failing, {'ValueError', "no"}}} =
        py:async_gather([{py_async_helpers, hold, [self(), g1]}, Failing,
                         {py_async_helpers, double, [1]}]),
    receive {started, g1} -> ok end,
    receive {finally, g1} -> ok end,
    {ok, 0} = py:call('erlang._async', pending, []),
    no_messages().

gather_timeout() -> [{doc, "async_gather's timeout cancels every call still running."}].
gather_timeout(_) ->
    {error, timeout} = py:async_gather([{py_async_helpers, hold, [self(), t1]},
                                        {py_async_helpers, hold, [self(), t2]},
                                        {py_async_helpers, wait_forever_when_started, [[t1, t2]]}],
                                       200),
    %% The loop has run everything the cancellation scheduled.
    {ok, 2} = py:async_await(py:async_call(py_async_helpers, double, [1])),
    %% A call cancelled before it started never runs; one that started has
    %% run its finally.
    Started = [T || T <- [t1, t2], receive {started, T} -> true after 0 -> false end],
    ct:log("started before the timeout: ~p", [Started]),
    [receive {finally, T} -> ok after 0 -> ct:fail({no_finally, T}) end || T <- Started],
    no_messages().

idle_loop_uses_no_cpu() ->
    [{doc, "A shared loop with nothing to do takes no CPU (it sleeps in epoll_wait)."}].
idle_loop_uses_no_cpu(_) ->
    {ok, _} = py:async_await(py:async_call(py_async_helpers, double, [1])),
    {ok, C0} = py:call(py_async_helpers, loop_cpu_seconds, []),
    %% Measuring an idle period on purpose.
    receive after 500 -> ok end,
    {ok, C1} = py:call(py_async_helpers, loop_cpu_seconds, []),
    ct:log("loop thread CPU over 500 ms idle: ~.3f ms", [(C1 - C0) * 1000]),
    true = C1 - C0 < 0.005.

restart_with_running_tasks() ->
    [{doc, "The application stops with tasks running on the loop, and starts again."}].
restart_with_running_tasks(_) ->
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [py, ?MODULE]]),
    {ok, Peer, _} = peer:start(#{connection => 0,
                                 args => lists:append([["-pa", P] || P <- Paths])}),
    try
        ok = peer:call(Peer, ?MODULE, peer_life, [], 30000),
        ok = peer:call(Peer, ?MODULE, peer_life, [], 30000)
    after
        peer:stop(Peer)
    end.

%% Internal.

%% One life of the application on the peer: a task holds when it stops.
peer_life() ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = install_helpers(),
    _ = py:async_call(py_async_helpers, hold, [self(), p]),
    receive {started, p} -> ok end,
    {ok, 2} = py:async_await(py:async_call(py_async_helpers, double, [1])),
    ok = application:stop(erlang_python),
    %% Finalizing cancelled the task and waited for it: its finally has run.
    receive {finally, p} -> ok after 0 -> error(finally_did_not_run) end.

no_messages() ->
    {messages, []} = process_info(self(), messages),
    ok.

has_message(Ref) ->
    receive {py_async, Ref, _} = M -> self() ! M, true after 0 -> false end.
