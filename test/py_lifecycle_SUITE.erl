%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The application's lifecycle (py_app, py_sup, py_runtime): repeated
%% stop/start of the embedded interpreter, object references that outlive
%% it, a stop while a call runs, bad and custom application environments.
-module(py_lifecycle_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([restart_20_times/1, refs_across_restart/1, stop_while_call_runs/1,
         call_while_stopped/1, bad_python_env/1, num_contexts_env/1]).

-define(APP, erlang_python).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [restart_20_times, refs_across_restart, stop_while_call_runs,
     call_while_stopped, bad_python_env, num_contexts_env].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(?APP),
    Config.

end_per_suite(_Config) ->
    _ = application:stop(?APP),
    ok.

init_per_testcase(_Case, Config) ->
    {ok, _} = application:ensure_all_started(?APP),
    Config.

%% Every case leaves the application running with its default environment.
end_per_testcase(_Case, _Config) ->
    ok = application:unset_env(?APP, python),
    ok = application:set_env(?APP, num_contexts, default),
    _ = application:stop(?APP),
    {ok, _} = application:ensure_all_started(?APP),
    ok.

%% Cases.

restart_20_times(_Config) ->
    doc("Stop and start the application 20 times; each time the interpreter is "
        "fresh and calls work, from a process that outlived the restart and "
        "from a new one."),
    lists:foreach(fun(I) ->
                          ok = application:stop(?APP),
                          {ok, _} = application:ensure_all_started(?APP),
                          %% A fresh interpreter: nothing left from the last run.
                          {ok, false} = py:eval(<<"hasattr(__import__('sys'), '_ct_mark')">>),
                          ok = py:exec(<<"import sys\nsys._ct_mark = True">>),
                          ok = calls_work(I),
                          ok = in_new_process(fun() -> calls_work(I) end)
                  end, lists:seq(1, 20)).

refs_across_restart(_Config) ->
    doc("Python object references held across a restart are rejected cleanly "
        "(an error or badarg, never a crash), and collecting them afterwards "
        "does not crash."),
    Mk = fun() ->
                 Ctx = py:context(),
                 {ok, L} = py:call(Ctx, builtins, list, [[1, 2, 3]], #{return => ref}),
                 {ok, Ns} = py:call(Ctx, types, 'SimpleNamespace', [],
                                    #{kwargs => #{a => 1}, return => ref}),
                 true = py:is_ref(L) andalso py:is_ref(Ns),
                 {ok, none} = py:call_method(L, append, [4]),
                 {ok, [1, 2, 3, 4]} = py:to_term(L),
                 {ok, 1} = py:getattr(Ns, a),
                 {L, Ns}
         end,
    %% User holds the refs and uses them after the restart; Idle only holds them.
    User = worker(),
    Idle = worker(),
    {L, Ns} = run(User, Mk),
    _ = run(Idle, Mk),
    ok = application:stop(?APP),
    {ok, _} = application:ensure_all_started(?APP),
    Uses = [fun() -> py:call_method(L, append, [5]) end,
            fun() -> py:to_term(L) end,
            fun() -> py:getattr(Ns, a) end,
            fun() -> py:call(builtins, len, [L]) end,
            fun() -> py:call(py:context(1), builtins, len, [L]) end,
            fun() -> py:eval(<<"len(x)">>, #{x => L}) end],
    Results = [run(User, fun() -> catch U() end) || U <- Uses],
    ct:pal("stale refs after restart: ~p", [Results]),
    [] = [R || R <- Results, not rejected(R)],
    %% Drop every reference to them: the destructors run after the restart.
    [stop_worker(W) || W <- [User, Idle]],
    true = erlang:garbage_collect(),
    ok = calls_work(0),
    %% And once more across a second restart, with the refs' context gone too.
    ok = application:stop(?APP),
    {ok, _} = application:ensure_all_started(?APP),
    ok = calls_work(1).

stop_while_call_runs(_Config) ->
    doc("Stopping the application while a call runs gives that caller an error "
        "reply (no hang), and the application starts again afterwards."),
    [C1, C2 | _] = [py:context(I) || I <- lists:seq(1, erlang:system_info(schedulers))],
    ok = py:exec(C2, <<"import sys, threading\nsys._ct_running = threading.Event()">>),
    {Caller, Mon} = spawn_monitor(fun() ->
        exit({result, py:exec(C1, <<"import sys\nsys._ct_running.set()\n"
                                    "while True:\n    pass\n">>)})
    end),
    {ok, true} = py:eval(C2, <<"__import__('sys')._ct_running.wait(10)">>),
    T0 = erlang:monotonic_time(millisecond),
    ok = application:stop(?APP),
    Stop = erlang:monotonic_time(millisecond) - T0,
    %% The stop has joined the context threads: the reply was sent already.
    Result = receive {'DOWN', Mon, process, Caller, {result, R}} -> R
             after 5000 -> ct:fail(no_reply_to_running_caller)
             end,
    ct:pal("stop took ~p ms; the running caller got ~p", [Stop, Result]),
    {error, _} = Result,
    {ok, _} = application:ensure_all_started(?APP),
    ok = calls_work(0).

call_while_stopped(_Config) ->
    doc("A call made while the application is stopped returns "
        "{error, not_running} (no crash), for a process that had a context "
        "and for a new one."),
    ok = calls_work(0),
    ok = application:stop(?APP),
    Calls = [fun() -> py:call(math, sqrt, [4]) end,
             fun() -> py:eval(<<"1">>) end,
             fun() -> py:exec(<<"x = 1">>) end],
    Old = [catch C() || C <- Calls],
    New = [in_new_process(fun() -> catch C() end) || C <- Calls],
    {ok, _} = application:ensure_all_started(?APP),
    ct:pal("while stopped: ~p / ~p", [Old, New]),
    [{error, not_running} = R || R <- Old ++ New],
    ok = calls_work(0).

bad_python_env(_Config) ->
    doc("Starting with a `python' that does not exist fails with an error (the "
        "VM lives on); a later start with the right environment works."),
    ok = application:stop(?APP),
    ok = application:set_env(?APP, python, "/nonexistent/bin/python3"),
    Bad = application:ensure_all_started(?APP),
    Running = [A || {A, _, _} <- application:which_applications(), A =:= ?APP],
    ok = application:unset_env(?APP, python),
    _ = application:stop(?APP),
    ct:pal("start with a missing python: ~p", [Bad]),
    ?assertMatch({error, _}, Bad),
    [] = Running,
    {ok, _} = application:ensure_all_started(?APP),
    ok = calls_work(0).

num_contexts_env(_Config) ->
    doc("The num_contexts application variable sets how many default contexts "
        "start."),
    ok = application:stop(?APP),
    ok = application:set_env(?APP, num_contexts, 3),
    {ok, _} = application:ensure_all_started(?APP),
    Ctxs = [py:context(I) || I <- [1, 2, 3]],
    3 = length(lists:usort(Ctxs)),
    ?assertError({badarg, _}, py:context(4)),
    [{ok, 3} = py:eval(C, <<"1 + 2">>) || C <- Ctxs],
    Seen = [in_new_process(fun py:context/0) || _ <- lists:seq(1, 48)],
    ?assertEqual(lists:sort(Ctxs), lists:usort(Seen)).

%% Helpers.

doc(_) -> ok.

calls_work(I) ->
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, <<"{\"a\": [1, 2]}">>} = py:call(json, dumps, [#{a => [1, 2]}]),
    {error, {'NameError', _}} = py:eval(<<"ct_round">>),
    ok = py:exec(iolist_to_binary(io_lib:format("ct_round = ~b", [I]))),
    {ok, I} = py:eval(<<"ct_round">>),
    ok = py:exec(<<"del ct_round">>).

rejected({error, _}) -> true;
rejected({'EXIT', {badarg, _}}) -> true;
rejected({'EXIT', {{badarg, _}, _}}) -> true;
rejected(_) -> false.

in_new_process(Fun) ->
    {Pid, Mon} = spawn_monitor(fun() -> exit({result, Fun()}) end),
    receive
        {'DOWN', Mon, process, Pid, {result, R}} -> R;
        {'DOWN', Mon, process, Pid, Other} -> ct:fail({process_failed, Other})
    end.

worker() ->
    spawn(fun Loop() ->
                  receive
                      {run, From, Ref, Fun} -> From ! {Ref, Fun()}, Loop();
                      stop -> ok
                  end
          end).

run(Worker, Fun) ->
    Ref = make_ref(),
    Worker ! {run, self(), Ref, Fun},
    receive {Ref, R} -> R end.

stop_worker(Worker) ->
    Mon = monitor(process, Worker),
    Worker ! stop,
    receive {'DOWN', Mon, process, Worker, normal} -> ok end.
