%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Deadlines of sync calls, kept by the NIF (c_src/context/deadline.c).
%%
%% A caller waits in a plain receive; at its deadline the request is dropped
%% (queued) or interrupted (running) and its one reply is `{error, timeout}'.
%% These cases check what a caller relies on: every request gets exactly one
%% reply, whether it ran, timed out queued, timed out running, or raced its
%% deadline; many deadlines at once; short timeouts next to long ones; the
%% deadline thread after it has gone idle; bad timeouts are badarg.
-module(py_deadline_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-import(py_test_lib, [blocker/3]).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([queued_request_times_out/1, many_deadlines_at_once/1,
         one_reply_when_racing/1, short_next_to_long/1, after_idle/1,
         timeout_in_callback/1, bad_timeouts/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [queued_request_times_out, many_deadlines_at_once, one_reply_when_racing,
     short_next_to_long, after_idle, timeout_in_callback, bad_timeouts].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

%% Cases.

queued_request_times_out(_Config) ->
    doc("A request queued behind a long call times out without running: the "
        "long call is not disturbed and the queued caller's mailbox stays empty."),
    {ok, Ctx} = py_context:new(#{}),
    Long = blocker(Ctx, 0.5, long),
    %% Had it run, the queued call would have set sys._ct_ran.
    {T, {error, timeout}} =
        py_test_lib:timed(fun() -> py:call(Ctx, builtins, exec, [<<"import sys; sys._ct_ran = 1">>],
                               #{timeout => 50})
              end),
    receive {long, Result} -> {ok, none} = Result end,
    {ok, false} = py:eval(Ctx, <<"hasattr(__import__('sys'), '_ct_ran')">>),
    {messages, []} = process_info(self(), messages),
    unlink(Long),
    ok = py_context:stop(Ctx),
    ct:log("queued call timed out after ~b ms", [T]),
    ?assert(T >= 50 andalso T < 450, {timeout_took_ms, T}).

many_deadlines_at_once(_Config) ->
    doc("200 callers queued on one busy context, all with the same deadline "
        "(more than one pass of the deadline thread): each gets exactly one "
        "{error, timeout}, and the context serves the next call."),
    {ok, Ctx} = py_context:new(#{}),
    Blocker = blocker(Ctx, 1, blocker),
    Callers = [spawn_monitor(fun() ->
                                     R = py:call(Ctx, math, sqrt, [4.0], #{timeout => 100}),
                                     {messages, Left} = process_info(self(), messages),
                                     exit({R, Left})
                             end) || _ <- lists:seq(1, 200)],
    Results = [receive {'DOWN', M, process, P, Why} -> Why end || {P, M} <- Callers],
    [{{error, timeout}, []}] = lists:usort(Results),
    receive {blocker, B} -> {ok, none} = B end,
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    unlink(Blocker),
    ok = py_context:stop(Ctx).

one_reply_when_racing(_Config) ->
    doc("Calls whose run time is about their timeout: each ends either way, "
        "with exactly one reply (no stray py_reply left in the mailbox)."),
    {ok, Ctx} = py_context:new(#{}),
    %% Sleeps of 0 to 3.5 ms against a 2 ms timeout.
    Outcomes = [case py:call(Ctx, time, sleep, [(I rem 8) * 0.0005], #{timeout => 2}) of
                    {ok, none} -> ok;
                    {error, timeout} -> timeout
                end || I <- lists:seq(1, 400)],
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    {messages, []} = process_info(self(), messages),
    ok = py_context:stop(Ctx),
    ct:log("outcomes: ~b ok, ~b timeout",
           [length([ok || ok <- Outcomes]), length([t || timeout <- Outcomes])]).

short_next_to_long(_Config) ->
    doc("A 5 ms timeout while many 30 s calls are in flight still fires "
        "(short deadlines wake the deadline thread early)."),
    Callers = [spawn_monitor(fun() -> loop_calls(200) end) || _ <- lists:seq(1, 4)],
    {T, {error, timeout}} = py_test_lib:timed(fun() -> py:call(time, sleep, [5], #{}, 5) end),
    [receive {'DOWN', M, process, P, done} -> ok end || {P, M} <- Callers],
    {messages, []} = process_info(self(), messages),
    ct:log("5 ms timeout fired after ~b ms", [T]),
    ?assert(T < 2000, {timeout_took_ms, T}).

after_idle(_Config) ->
    doc("After more than a second with no deadline about, the deadline thread "
        "sleeps until kicked: a later call still times out."),
    %% Letting time pass is what is tested here, not a synchronisation.
    receive after 1500 -> ok end,
    {T, {error, timeout}} = py_test_lib:timed(fun() -> py:call(time, sleep, [5], #{}, 100) end),
    ct:log("timeout after idle fired after ~b ms", [T]),
    ?assert(T >= 100 andalso T < 2000, {timeout_took_ms, T}).

timeout_in_callback(_Config) ->
    doc("The deadline passes while the caller runs an Erlang callback: the "
        "caller gets {error, timeout} after it, and nothing is left behind."),
    ok = py:register_function(ct_slow_callback,
                              fun([Ms]) -> receive after Ms -> ok end end),
    {error, timeout} = py:eval(<<"__import__('erlang').call('ct_slow_callback', 300)">>,
                               #{}, 50),
    {ok, 3} = py:eval(<<"1 + 2">>),
    {messages, []} = process_info(self(), messages),
    ok = py:unregister_function(ct_slow_callback).

bad_timeouts(_Config) ->
    doc("A timeout that is not a non-negative integer or infinity is badarg, "
        "from the API and from the NIF; a huge one is no deadline."),
    [{'EXIT', {{badarg, {timeout, Bad}}, _}} = (catch py:eval(<<"1">>, #{}, Bad))
     || Bad <- [-1, 1.5, forever, "10"]],
    {ok, 1} = py:eval(<<"1">>, #{}, 1 bsl 80),
    {ok, Ctx} = py_context:resource(py:context()),
    [{'EXIT', {badarg, _}} = (catch py_nif:submit(Ctx, py_reply, make_ref(), nop, Bad))
     || Bad <- [-1, 1.5, forever, -(1 bsl 80)]],
    Ref = make_ref(),
    Id = py_nif:submit(Ctx, py_reply, Ref, nop, 1 bsl 80),
    true = is_integer(Id),
    receive {py_reply, Ref, ok} -> ok end,
    %% The reply spin: true once the context has marked the request answered
    %% (just after it sent the reply, so possibly after one spin or more);
    %% bad ids are badarg.
    true = lists:any(fun(_) -> py_nif:reply_wait(Ctx, Id, 0) end, lists:seq(1, 10000)),
    [{'EXIT', {badarg, _}} = (catch py_nif:reply_wait(Ctx, BadId, Seen))
     || {BadId, Seen} <- [{-1, 0}, {Id, -1}, {Id, x}, {x, 0}]].

%% Helpers.

loop_calls(0) ->
    exit(done);
loop_calls(N) ->
    {ok, _} = py:call(math, sqrt, [2.0]),
    loop_calls(N - 1).

%% Fun's result and how long it took, in milliseconds.
doc(_) -> ok.
