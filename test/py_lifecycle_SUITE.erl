%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The application's lifecycle (py_app, py_sup, py_runtime): repeated
%% stop/start, object references that outlive a stop, a stop while a call
%% runs, bad and custom application environments.
%%
%% By default a stop keeps the interpreter (only the contexts and so every
%% process's namespace go) and the next start reuses it; with the app env
%% `finalize_on_stop' a stop finalizes it, and the application cannot start
%% again in that OS process (CPython does not re-initialize reliably). That
%% case runs on a peer node, since it ends Python for its node.
-module(py_lifecycle_SUITE).

-include_lib("common_test/include/ct.hrl").
-import(py_test_lib, [in_new_process/1, worker/0, run/2, stop_worker/1]).
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([restart_20_times/1, finalize_is_final/1, refs_across_restart/1,
         stop_while_call_runs/1, call_while_stopped/1,
         bad_python_env/1, num_contexts_env/1, alloc_cache_env/1]).
%% Run on the peer node.
-export([hold_refs/0, use_refs/1]).

-define(APP, erlang_python).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [restart_20_times, finalize_is_final, refs_across_restart,
     stop_while_call_runs, call_while_stopped,
     bad_python_env, num_contexts_env, alloc_cache_env].

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
    ok = application:set_env(?APP, finalize_on_stop, false),
    ok = application:set_env(?APP, num_contexts, default),
    ok = application:unset_env(?APP, alloc_cache),
    _ = application:stop(?APP),
    {ok, _} = application:ensure_all_started(?APP),
    ok.

%% Cases.

restart_20_times(_Config) ->
    doc("Stop and start the application 20 times; each time calls work, from a "
        "process that outlived the restart and from a new one, and every "
        "process's namespace starts empty."),
    lists:foreach(fun(I) ->
                          ok = application:stop(?APP),
                          {ok, _} = application:ensure_all_started(?APP),
                          ok = calls_work(I),
                          ok = in_new_process(fun() -> calls_work(I) end)
                  end, lists:seq(1, 20)).

finalize_is_final(_Config) ->
    doc("With finalize_on_stop a stop finalizes the interpreter; a later start "
        "in the same OS process is refused with an error (never a crash), and "
        "Python object references that outlived it are rejected cleanly and "
        "collected without a crash. On a peer node."),
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [py, ?MODULE]]),
    {ok, Peer, _} = peer:start(#{connection => 0,
                                 args => lists:append([["-pa", P] || P <- Paths])}),
    try
        ok = peer:call(Peer, application, load, [?APP]),
        ok = peer:call(Peer, application, set_env, [?APP, finalize_on_stop, true]),
        {ok, _} = peer:call(Peer, application, ensure_all_started, [?APP]),
        Holder = peer:call(Peer, ?MODULE, hold_refs, []),
        ok = peer:call(Peer, application, stop, [?APP]),
        Start = peer:call(Peer, application, ensure_all_started, [?APP]),
        ct:pal("start after finalize: ~p", [Start]),
        ?assertMatch({error, _}, Start),
        Uses = peer:call(Peer, ?MODULE, use_refs, [Holder]),
        ct:pal("references after finalize: ~p", [Uses]),
        true = lists:all(fun rejected/1, Uses),
        %% The node is alive and its schedulers answer.
        2 = peer:call(Peer, erlang, '+', [1, 1])
    after
        peer:stop(Peer)
    end.

%% On the peer: a process holding Python object references; returns its pid.
hold_refs() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, L} = py:call(py:context(), builtins, list, [[1, 2, 3]],
                                          #{return => ref}),
                        {ok, O} = py:eval(<<"object()">>),
                        Parent ! {held, self()},
                        receive {use, From} ->
                                From ! {used, [catch py:to_term(L),
                                               catch py:call_method(L, append, [4]),
                                               catch py:getattr(O, '__class__')]}
                        end
                end),
    receive {held, Pid} -> Pid end.

%% On the peer: the holder uses its references, then dies (its refs are
%% garbage collected); a full collection afterwards must not crash.
use_refs(Holder) ->
    Mon = erlang:monitor(process, Holder),
    Holder ! {use, self()},
    Used = receive {used, U} -> U end,
    receive {'DOWN', Mon, process, Holder, _} -> ok end,
    _ = [erlang:garbage_collect(P) || P <- processes()],
    Used.

refs_across_restart(_Config) ->
    doc("Python object references held across a restart that keeps the "
        "interpreter either still work or are rejected cleanly (an error or "
        "badarg, never a crash); collecting them afterwards does not crash."),
    stale_refs(fun(Expected, R) -> R =:= {ok, Expected} orelse rejected(R) end).

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
             after 5000 -> exit(Caller, kill), ct:fail(no_reply_to_running_caller)
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

alloc_cache_env(_Config) ->
    doc("The alloc_cache application variable caps the bytes of freed large "
        "blocks kept for reuse; it applies at each start (the interpreter is "
        "reused); 0 keeps none; a bad value fails the start with badarg."),
    Free10MiB = <<"b = bytes(10 * 2**20)\ndel b">>,
    Cache = fun() ->
                    {ok, #{alloc_cache_bytes := Bytes, alloc_cache_max := Max}} =
                        py:memory_stats(),
                    {Bytes, Max}
            end,
    {ok, _} = py:gc(),
    ok = py:exec(Free10MiB),
    {Kept, 67108864} = Cache(),
    ?assert(Kept >= 10 * 1024 * 1024),
    ok = application:stop(?APP),
    ok = application:set_env(?APP, alloc_cache, 0),
    {ok, _} = application:ensure_all_started(?APP),
    ?assertEqual({0, 0}, Cache()),
    ok = py:exec(Free10MiB),
    ?assertEqual({0, 0}, Cache()),
    ok = application:stop(?APP),
    ok = application:set_env(?APP, alloc_cache, -1),
    Bad = application:ensure_all_started(?APP),
    ct:pal("start with alloc_cache -1: ~p", [Bad]),
    ?assertMatch({error, _}, Bad),
    ?assert(contains({badarg, {alloc_cache, -1}}, Bad)),
    ok = application:unset_env(?APP, alloc_cache),
    {ok, _} = application:ensure_all_started(?APP),
    ok = calls_work(0).

%% Helpers.

doc(_) -> ok.

%% Whether Sub occurs anywhere inside Term.
contains(Sub, Sub) -> true;
contains(Sub, T) when is_tuple(T) -> contains(Sub, tuple_to_list(T));
contains(Sub, [H | T]) -> contains(Sub, H) orelse contains(Sub, T);
contains(_, _) -> false.

%% Make references, restart, use them (Accept(ExpectedIfAlive, Result) must
%% hold for each use), drop them, collect, restart again.
stale_refs(Accept) ->
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
    Uses = [{none, fun() -> py:call_method(L, append, [5]) end},
            {[1, 2, 3, 4, 5], fun() -> py:to_term(L) end},
            {1, fun() -> py:getattr(Ns, a) end},
            {5, fun() -> py:call(builtins, len, [L]) end},
            {5, fun() -> py:call(py:context(1), builtins, len, [L]) end},
            {5, fun() -> py:eval(<<"len(x)">>, #{x => L}) end}],
    Results = [{Expected, run(User, fun() -> catch U() end)} || {Expected, U} <- Uses],
    ct:pal("stale refs after restart: ~p", [Results]),
    [] = [R || {Expected, R} <- Results, not Accept(Expected, R)],
    %% Drop every reference to them: the destructors run after the restart.
    [stop_worker(W) || W <- [User, Idle]],
    true = erlang:garbage_collect(),
    ok = calls_work(0),
    %% And once more across a second restart, with the refs' context gone too.
    ok = application:stop(?APP),
    {ok, _} = application:ensure_all_started(?APP),
    ok = calls_work(1).

calls_work(I) ->
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, <<"{\"a\": [1, 2]}">>} = py:call(json, dumps, [#{a => [1, 2]}]),
    %% What this process exec'd before the restart has gone with its namespace.
    {error, {'NameError', _}} = py:eval(<<"ct_round">>),
    ok = py:exec(iolist_to_binary(io_lib:format("ct_round = ~b", [I]))),
    {ok, I} = py:eval(<<"ct_round">>),
    ok.

rejected({error, _}) -> true;
rejected({'EXIT', {badarg, _}}) -> true;
rejected({'EXIT', {{badarg, _}, _}}) -> true;
rejected(_) -> false.
