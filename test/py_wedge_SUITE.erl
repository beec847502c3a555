%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Nothing wedges a context or a caller: callers killed in a storm, an
%% Erlang callback slower than the caller's timeout, two first callers at
%% the same instant, an exec that never ends, py:parallel with a failing call.
%%
%% Each case checks what a caller relies on afterwards: the next call is
%% answered at once, no late reply is left in (or ever reaches) its mailbox,
%% and processes and memory go back to where they were.
-module(py_wedge_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-import(py_test_lib, [worker/0, run/2, stop_worker/1]).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([killed_callers_storm/1, slow_callback_times_out/1,
         slow_callback_finishes_late/1, ordinary_callbacks_complete/1,
         reentrant_callback/1, simultaneous_first_callers/1,
         exec_timeout/1, exec_timeout_explicit/1, exec_options/1,
         parallel_error_is_prompt/1, parallel_first_fails_others_slow/1,
         parallel_last_fails/1, parallel_all_succeed/1]).

-define(APP, erlang_python).
-define(MB, (1024 * 1024)).
-define(CB_NAMES, [wedge_slow, wedge_gate, wedge_add, wedge_pause, wedge_reenter]).
%% f calls the slow function and tells the watcher how it ended; g holds on
%% a gated function; both live in the calling process's namespace.
-define(SLOW_PY, <<"import erlang\n"
                   "def wedge_f(watcher):\n"
                   "    try:\n"
                   "        return erlang.call('wedge_slow')\n"
                   "    except BaseException as e:\n"
                   "        erlang.send(watcher, (erlang.Atom('interrupted'), type(e).__name__,\n"
                   "                              isinstance(e, erlang.CallInterrupted)))\n"
                   "        raise\n"
                   "def wedge_g(x):\n"
                   "    return erlang.call('wedge_gate', x) + 1\n">>).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [killed_callers_storm, slow_callback_times_out, slow_callback_finishes_late,
     ordinary_callbacks_complete, reentrant_callback, simultaneous_first_callers,
     exec_timeout, exec_timeout_explicit, exec_options,
     parallel_error_is_prompt, parallel_first_fails_others_slow,
     parallel_last_fails, parallel_all_succeed].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(?APP),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(?APP).

%% The simultaneous callers need a pool of exactly two default contexts.
init_per_testcase(simultaneous_first_callers, Config) ->
    case erlang:system_info(schedulers) of
        2 -> Config;
        _ -> ok = restart_with(2), [{restarted, true} | Config]
    end;
init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    lists:foreach(fun py:unregister_function/1, ?CB_NAMES),
    case proplists:get_value(restarted, Config, false) of
        true -> ok = restart_with(default);
        false -> ok
    end.

%% Cases.

killed_callers_storm(_Config) ->
    doc("500 callers, one after another, each killed 20 ms into a 200 ms "
        "call: two seconds after the last kill, 16 fresh callers are each "
        "answered at once, and process count and memory are back."),
    [{ok, 2} = py_test_lib:in_new_process(fun() -> py:eval(<<"1 + 1">>) end) || _ <- lists:seq(1, 4)],
    Procs0 = erlang:system_info(process_count),
    Mem0 = erlang:memory(total),
    Victims = [kill_after(20) || _ <- lists:seq(1, 500)],
    Reasons = [receive {'DOWN', M, process, P, Why} -> Why end || {P, M} <- Victims],
    %% The stimulus as the issue states it: two seconds after the last kill
    %% (a wait for time to pass, not a synchronisation).
    receive after 2000 -> ok end,
    Self = self(),
    Fresh = [spawn_monitor(fun() ->
                                   receive go -> ok end,
                                   exit({result, py_test_lib:timed(fun() -> py:eval(<<"1 + 1">>) end)})
                           end) || _ <- lists:seq(1, 16)],
    _ = [P ! go || {P, _} <- Fresh],
    Answers = [receive {'DOWN', M, process, P, {result, R}} -> R end || {P, M} <- Fresh],
    Times = [T || {T, _} <- Answers],
    Procs1 = erlang:system_info(process_count),
    Mem1 = erlang:memory(total),
    ct:pal("~b of 500 killed mid-call; fresh callers answered in ~p ms (target < 100); "
           "processes ~b -> ~b; memory ~.1f -> ~.1f MB",
           [length([k || killed <- Reasons]), Times, Procs0, Procs1, Mem0 / ?MB, Mem1 / ?MB]),
    [] = [R || {_, R} <- Answers, R =/= {ok, 2}],
    ?assert(lists:max(Times) < 250, {fresh_call_ms, lists:max(Times)}),
    ?assert(Procs1 =< Procs0 + 20, {process_count, Procs0, Procs1}),
    ?assert(Mem1 - Mem0 < 20 * ?MB, {memory_growth, Mem1 - Mem0}),
    {messages, []} = process_info(Self, messages).

slow_callback_times_out(_Config) ->
    doc("A callback that blocks 3 s under a 500 ms timeout: {error, timeout} in "
        "under a second, Python sees CallInterrupted, the caller's next call is "
        "answered at once while the callback still runs, and its late result "
        "never reaches the caller's mailbox."),
    ok = register_slow(),
    W = worker(),
    ok = run(W, fun() -> py:exec(?SLOW_PY) end),
    Test = self(),
    {T1, R1, Left1} = run(W, fun() ->
                                     {T, R} = py_test_lib:timed(fun() -> py:call('__main__', wedge_f, [Test],
                                                                     #{}, 500) end),
                                     {messages, M} = process_info(self(), messages),
                                     {T, R, M}
                             end),
    {T2, R2} = run(W, fun() -> py_test_lib:timed(fun() -> py:eval(<<"1 + 1">>) end) end),
    StillRunning = receive {slow_done, _} -> false after 0 -> true end,
    ct:pal("timeout after ~b ms (target ~~500); next call ~b ms (target < 100); "
           "callback still running then: ~p", [T1, T2, StillRunning]),
    {error, timeout} = R1,
    ?assert(T1 < 1000, {timeout_took_ms, T1}),
    [] = Left1,
    {ok, 2} = R2,
    ?assert(T2 < 250, {next_call_ms, T2}),
    true = StillRunning,
    {interrupted, <<"CallInterrupted">>, true} =
        receive {interrupted, _, _} = I -> I after 5000 -> ct:fail(python_not_interrupted) end,
    %% After the slow function has returned, its result was dropped.
    Slow = receive {slow_started, S} -> S after 0 -> ct:fail(slow_never_started) end,
    receive {slow_done, Slow} -> ok after 10000 -> ct:fail(slow_never_done) end,
    ok = await_gone(Slow, W),
    {messages, []} = run(W, fun() -> process_info(self(), messages) end),
    {ok, 3} = run(W, fun() -> py:eval(<<"1 + 2">>) end),
    {messages, []} = run(W, fun() -> process_info(self(), messages) end),
    stop_worker(W).

slow_callback_finishes_late(_Config) ->
    doc("The slow callback finishes while the same caller waits on another "
        "callback: its late result answers nothing, the second call gets its "
        "own result, and the caller's mailbox stays empty."),
    ok = register_slow(),
    Test = self(),
    ok = py:register_function(wedge_gate, fun([V]) ->
                                                  Test ! {gate, self()},
                                                  receive open -> V after 20000 -> gate_timeout end
                                          end),
    W = worker(),
    ok = run(W, fun() -> py:exec(?SLOW_PY) end),
    {error, timeout} = run(W, fun() -> py:call('__main__', wedge_f, [Test], #{}, 500) end),
    Slow = receive {slow_started, S} -> S after 5000 -> ct:fail(slow_never_started) end,
    Ref = make_ref(),
    W ! {run, self(), Ref, fun() ->
                                   R = py:call('__main__', wedge_g, [41], #{}, 20000),
                                   {R, process_info(self(), messages)}
                           end},
    Gate = receive {gate, G} -> G after 10000 -> ct:fail(gate_not_reached) end,
    receive {slow_done, Slow} -> ok after 10000 -> ct:fail(slow_never_done) end,
    ok = await_gone(Slow, W),
    Gate ! open,
    {{ok, 42}, {messages, []}} = receive {Ref, Second} -> Second
                                 after 10000 -> ct:fail(second_call_no_reply)
                                 end,
    {ok, 2} = run(W, fun() -> py:eval(<<"1 + 1">>) end),
    {messages, []} = run(W, fun() -> process_info(self(), messages) end),
    stop_worker(W).

ordinary_callbacks_complete(_Config) ->
    doc("Callbacks within the timeout run to completion: 1000 calls from one "
        "Python call give the right sum, and a 200 ms callback returns its value."),
    ok = py:register_function(wedge_add, fun([A, B]) -> A + B end),
    ok = py:register_function(wedge_pause, fun([Ms]) -> receive after Ms -> done end end),
    ok = py:exec(<<"import erlang\n"
                   "def many(n):\n"
                   "    return sum(erlang.call('wedge_add', i, 1) for i in range(n))\n">>),
    {ok, 500500} = py:call('__main__', many, [1000]),
    {ok, 500500} = py:call('__main__', many, [1000], #{}, 20000),
    {ok, done} = py:eval(<<"erlang.call('wedge_pause', 200)">>),
    {ok, done} = py:eval(<<"erlang.call('wedge_pause', 200)">>, #{}, 10000),
    {messages, []} = process_info(self(), messages).

reentrant_callback(_Config) ->
    doc("A callback that calls back into Python with py:call('__main__', ...) "
        "reaches the caller's own namespace and returns, with and without a "
        "timeout on the outer call."),
    ok = py:register_function(wedge_reenter, fun([X]) ->
                                                     {ok, R} = py:call('__main__', wedge_double, [X]),
                                                     R
                                             end),
    ok = py:exec(<<"import erlang\n"
                   "def wedge_double(x):\n"
                   "    return 2 * x\n"
                   "def wedge_outer(x):\n"
                   "    return erlang.call('wedge_reenter', x) + 1\n">>),
    {ok, 21} = py:call('__main__', wedge_outer, [10]),
    {ok, 41} = py:call('__main__', wedge_outer, [20], #{}, 10000),
    {ok, 2} = py:eval(<<"1 + 1">>),
    {messages, []} = process_info(self(), messages).

simultaneous_first_callers(_Config) ->
    doc("On a pool of two contexts, two fresh processes whose first calls (a "
        "0.5 s sleep) start at the same instant are served by different "
        "contexts and both finish in about 0.5 s; 10 rounds."),
    2 = length(defaults()),
    Rounds = [first_callers_round() || _ <- lists:seq(1, 10)],
    ct:pal("round wall times (ms): ~p", [[T || {T, _} <- Rounds]]),
    [?assert(T < 900, {round_ms, T}) || {T, _} <- Rounds],
    [?assertMatch([_, _], lists:usort(Ctxs)) || {_, Ctxs} <- Rounds].

exec_timeout(_Config) ->
    doc("py:exec(Code, #{timeout => 200}) on a busy loop returns {error, timeout} "
        "in about 200 ms and the caller's context answers the next call at once."),
    {T1, R1} = py_test_lib:timed(fun() -> py:exec(<<"while True: pass">>, #{timeout => 200}) end),
    {T2, R2} = py_test_lib:timed(fun() -> py:eval(<<"1 + 1">>) end),
    ct:pal("exec timeout after ~p ms (target ~~200); next call ~p ms", [T1, T2]),
    {error, timeout} = R1,
    ?assert(T1 < 1000, {timeout_took_ms, T1}),
    {ok, 2} = R2,
    ?assert(T2 < 500, {next_call_ms, T2}),
    {messages, []} = process_info(self(), messages).

exec_timeout_explicit(_Config) ->
    doc("py:exec(Ctx, Code, #{timeout => 200}) on an explicit context: the same."),
    {ok, Ctx} = py_context:new(#{}),
    {T1, R1} = py_test_lib:timed(fun() -> py:exec(Ctx, <<"while True: pass">>, #{timeout => 200}) end),
    {T2, R2} = py_test_lib:timed(fun() -> py:eval(Ctx, <<"1 + 1">>) end),
    ct:pal("exec timeout after ~p ms (target ~~200); next call ~p ms", [T1, T2]),
    ok = py_context:stop(Ctx),
    {error, timeout} = R1,
    ?assert(T1 < 1000, {timeout_took_ms, T1}),
    {ok, 2} = R2,
    ?assert(T2 < 500, {next_call_ms, T2}),
    {messages, []} = process_info(self(), messages).

exec_options(_Config) ->
    doc("exec options: a timeout of infinity or an ample one runs normal code; "
        "bad options are error({badarg, _}); exec/1 and exec(Ctx, Code) still work."),
    {ok, Ctx} = py_context:new(#{}),
    ok = py:exec(<<"wedge_a = 1">>),
    ok = py:exec(<<"wedge_b = 2">>, #{timeout => infinity}),
    ok = py:exec(<<"wedge_c = 3">>, #{timeout => 5000}),
    ok = py:exec(<<"wedge_d = 4">>, #{}),
    {ok, 10} = py:eval(<<"wedge_a + wedge_b + wedge_c + wedge_d">>),
    ok = py:exec(Ctx, <<"wedge_a = 1">>),
    ok = py:exec(Ctx, <<"wedge_b = 2">>, #{timeout => infinity}),
    ok = py:exec(Ctx, <<"wedge_c = 3">>, #{timeout => 5000}),
    ok = py:exec(Ctx, <<"wedge_d = 4">>, #{}),
    {ok, 10} = py:eval(Ctx, <<"wedge_a + wedge_b + wedge_c + wedge_d">>),
    Bad = [#{timeout => -1}, #{timeout => foo}, #{timeout => 1.5}, #{bogus => 1},
           [{timeout, 200}], timeout],
    [?assertError({badarg, _}, py:exec(<<"wedge_e = 5">>, B)) || B <- Bad],
    [?assertError({badarg, _}, py:exec(Ctx, <<"wedge_e = 5">>, B)) || B <- Bad],
    {error, {'NameError', _}} = py:eval(<<"wedge_e">>),
    {error, {'NameError', _}} = py:eval(Ctx, <<"wedge_e">>),
    ok = py_context:stop(Ctx).

parallel_error_is_prompt(_Config) ->
    doc("py:parallel where the last call fails at once and the first sleeps "
        "1 s: the error comes well before the sleep ends, and no late reply "
        "reaches the caller's mailbox, then or after the sleep."),
    parallel_fails([{time, sleep, [1]}, {math, sqrt, [-1]}], 500).

parallel_first_fails_others_slow(_Config) ->
    doc("py:parallel where the first call fails at once and the later ones "
        "sleep 1 s: the same."),
    parallel_fails([{math, sqrt, [-1]}, {time, sleep, [1]}, {time, sleep, [1]}], 500).

parallel_last_fails(_Config) ->
    doc("py:parallel where the others succeed first and the last call fails: "
        "its error, and nothing left in the caller's mailbox."),
    parallel_fails([{math, sqrt, [4]}, {time, sleep, [0.3]}, {operator, add, [1, 2]},
                    {math, sqrt, [-1]}], infinity).

parallel_all_succeed(_Config) ->
    doc("py:parallel where every call succeeds: {ok, Values} in call order, "
        "and nothing left in the caller's mailbox."),
    {ok, []} = py:parallel([]),
    {ok, [2.0, none, 3, 1.0, none]} =
        py:parallel([{math, sqrt, [4]}, {time, sleep, [0.2]}, {operator, add, [1, 2]},
                     {math, sqrt, [1]}, {time, sleep, [0.05]}]),
    {messages, []} = process_info(self(), messages),
    ok = quiet(300),
    ok = sync(defaults()),
    {messages, []} = process_info(self(), messages).

%% Helpers.

doc(_) -> ok.


%% A caller that starts a 200 ms call and is killed Ms after it says so.
kill_after(Ms) ->
    Self = self(),
    {P, M} = spawn_monitor(fun() ->
                                   Self ! {calling, self()},
                                   py:call(time, sleep, [0.2])
                           end),
    receive {calling, P} -> ok end,
    %% The stimulus: the kill lands this long into the call.
    receive after Ms -> ok end,
    exit(P, kill),
    {P, M}.

%% wedge_slow blocks 3 s and tells the test when it starts and ends.
register_slow() ->
    Test = self(),
    py:register_function(wedge_slow, fun(_) ->
                                             Test ! {slow_started, self()},
                                             receive after 3000 -> ok end,
                                             Test ! {slow_done, self()},
                                             ok
                                     end).

%% Wait until the process that ran a callback has handed its result over:
%% if it is not the caller itself, until it exits (bounded: a process kept
%% for further callbacks does not exit).
await_gone(Caller, Caller) ->
    ok;
await_gone(Pid, _Caller) ->
    Mon = monitor(process, Pid),
    receive {'DOWN', Mon, process, Pid, _} -> ok
    after 1000 -> demonitor(Mon, [flush]), ok
    end.

first_callers_round() ->
    Self = self(),
    Pair = [spawn_monitor(fun() ->
                                  receive go -> ok end,
                                  {ok, none} = py:call(time, sleep, [0.5]),
                                  exit({result, py:context()})
                          end) || _ <- [1, 2]],
    T0 = erlang:monotonic_time(millisecond),
    _ = [P ! go || {P, _} <- Pair],
    Ctxs = [receive {'DOWN', M, process, P, Why} -> Why end || {P, M} <- Pair],
    T = erlang:monotonic_time(millisecond) - T0,
    {messages, []} = process_info(Self, messages),
    {T, [case C of {result, Ctx} -> Ctx; Other -> ct:fail({caller_failed, Other}) end
         || C <- Ctxs]}.

%% py:parallel(Calls) fails with a ValueError (within PromptMs), and no
%% reply of the other calls reaches the mailbox, then or once they are over.
parallel_fails(Calls, PromptMs) ->
    {T, R} = py_test_lib:timed(fun() -> py:parallel(Calls) end),
    {messages, Left} = process_info(self(), messages),
    ct:pal("py:parallel returned ~p after ~b ms; mailbox ~p", [R, T, Left]),
    {error, {'ValueError', _}} = R,
    ?assert(PromptMs =:= infinity orelse T < PromptMs, {parallel_took_ms, T}),
    [] = Left,
    %% The late replies would come within this bounded wait (the slowest
    %% call sleeps 1 s), then any call still running ends before the syncs.
    ok = quiet(1500),
    ok = sync(defaults()),
    {messages, []} = process_info(self(), messages).

%% No message arrives within Ms.
quiet(Ms) ->
    receive Msg -> ct:fail({stray_message, Msg}) after Ms -> ok end.

%% A call on each context, after everything queued on it before.
sync(Ctxs) ->
    [{ok, 0} = py:eval(C, <<"0">>) || C <- Ctxs],
    ok.

defaults() ->
    defaults(1).

defaults(N) ->
    try py:context(N) of
        C -> [C | defaults(N + 1)]
    catch
        error:{badarg, _} -> []
    end.

restart_with(NumContexts) ->
    ok = application:stop(?APP),
    ok = application:set_env(?APP, num_contexts, NumContexts),
    {ok, _} = application:ensure_all_started(?APP),
    ok.
