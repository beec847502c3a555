%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% How the callers of an isolated context share its fast socket
%% (py_isolated_caller): every reply reaches its own caller, with many
%% callers at once, replies of every size, callers that give up and
%% callers that are killed while they read for the others.
-module(py_isolated_wire_SUITE).

-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([many_callers_own_replies/1, small_and_large_replies/1, casts_then_call_in_order/1,
         follower_times_out/1, reader_times_out/1, killed_callers_do_not_wedge/1,
         callback_while_others_wait/1, context_killed_under_callers/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [many_callers_own_replies, small_and_large_replies, casts_then_call_in_order,
     follower_times_out, reader_times_out, killed_callers_do_not_wedge,
     callback_while_others_wait, context_killed_under_callers].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

new() ->
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    Ctx.

%% Run Fun(I) in N processes at once; their results, in order of I.
parallel(N, Fun) ->
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {self(), Fun(I)} end) || I <- lists:seq(1, N)],
    [receive {P, R} -> R end || P <- Pids].

many_callers_own_replies(_Config) ->
    Ctx = new(),
    Results = parallel(64, fun(I) ->
                                   [py:eval(Ctx, <<"x * 1000 + y">>, #{x => I, y => J})
                                    || J <- lists:seq(1, 200)]
                           end),
    lists:foreach(fun({I, Rs}) ->
                          ?assertEqual([{ok, I * 1000 + J} || J <- lists:seq(1, 200)], Rs)
                  end, lists:zip(lists:seq(1, 64), Results)),
    {ok, #{generation := 1}} = py_context:child_info(Ctx),
    ok = py_context:stop(Ctx).

small_and_large_replies(_Config) ->
    %% Replies over 64 KiB come on the control socket, the others on the
    %% fast one: interleaved, each still reaches its caller.
    Ctx = new(),
    Results = parallel(16, fun(I) ->
                                   [py:eval(Ctx, <<"bytes([x % 256]) * n">>,
                                            #{x => I, n => case J rem 3 of
                                                               0 -> 200000;
                                                               _ -> 10 + J
                                                           end})
                                    || J <- lists:seq(1, 30)]
                           end),
    lists:foreach(fun({I, Rs}) ->
                          Want = [{ok, binary:copy(<<(I rem 256)>>, case J rem 3 of
                                                                        0 -> 200000;
                                                                        _ -> 10 + J
                                                                    end)}
                                  || J <- lists:seq(1, 30)],
                          ?assertEqual(Want, Rs)
                  end, lists:zip(lists:seq(1, 16), Results)),
    ok = py_context:stop(Ctx).

casts_then_call_in_order(_Config) ->
    %% A process's requests run in the order it made them, whatever way
    %% each goes to the child.
    Ctx = new(),
    ok = py:exec(Ctx, <<"q = []">>),
    [ok = py:cast(Ctx, '__main__', 'q.append', [I]) || I <- lists:seq(1, 200)],
    ?assertEqual({ok, lists:seq(1, 200)}, py:eval(Ctx, <<"q">>)),
    ok = py_context:stop(Ctx).

follower_times_out(_Config) ->
    %% One caller reads the socket while it waits for a slow call; another
    %% gives up at its deadline, and the first still gets its answer.
    Ctx = new(),
    Self = self(),
    ok = py:register_function(wire_started, fun([]) -> Self ! started, ok end),
    _ = spawn_link(fun() ->
                           Self ! {slow, py:eval(Ctx, <<"[__import__('erlang').wire_started(), "
                                                        "__import__('time').sleep(0.4), 7][2]">>)}
                   end),
    receive started -> ok end,
    {T, {error, timeout}} = py_test_lib:timed(
                              fun() -> py:call(Ctx, time, sleep, [5], #{timeout => 100}) end),
    ?assert(T < 1000),
    receive {slow, R} -> ?assertEqual({ok, 7}, R) end,
    {ok, 2} = py:eval(Ctx, <<"2">>),
    ok = py:unregister_function(wire_started),
    ok = py_context:stop(Ctx).

reader_times_out(_Config) ->
    %% The caller reading the socket gives up; a caller behind it gets its
    %% answer (it reads in its turn).
    Ctx = new(),
    Self = self(),
    {T, {error, timeout}} =
        py_test_lib:timed(fun() ->
                                  _ = spawn_link(fun() ->
                                                         Self ! {next, py:eval(Ctx, <<"3">>)}
                                                 end),
                                  py:call(Ctx, time, sleep, [5], #{timeout => 100})
                          end),
    ?assert(T < 1000),
    receive {next, R} -> ?assertEqual({ok, 3}, R) end,
    {ok, #{generation := 1}} = py_context:child_info(Ctx),
    ok = py_context:stop(Ctx).

killed_callers_do_not_wedge(_Config) ->
    %% Callers killed at any moment (some while they read the socket for
    %% the others) leave the others answered, the child alive.
    Ctx = new(),
    Self = self(),
    Victims = [spawn(fun() -> loop_calls(Ctx) end) || _ <- lists:seq(1, 8)],
    Survivors = [spawn_link(fun() ->
                                    Self ! {done, self(),
                                            [py:eval(Ctx, <<"x + 1">>, #{x => J})
                                             || J <- lists:seq(1, 300)]}
                            end) || _ <- lists:seq(1, 8)],
    ok = kill_all(Victims),
    [receive {done, P, Rs} -> ?assertEqual([{ok, J + 1} || J <- lists:seq(1, 300)], Rs) end
     || P <- Survivors],
    {ok, #{generation := 1}} = py_context:child_info(Ctx),
    {ok, 5} = py:eval(Ctx, <<"5">>),
    ok = py_context:stop(Ctx).

loop_calls(Ctx) ->
    {ok, _} = py:eval(Ctx, <<"sum(range(50))">>),
    loop_calls(Ctx).

kill_all([]) ->
    ok;
kill_all([P | Rest]) ->
    %% Let it make some calls first: a round trip of our own.
    {ok, _} = py:call(math, sqrt, [4.0]),
    Mon = erlang:monitor(process, P),
    exit(P, kill),
    receive {'DOWN', Mon, process, P, _} -> ok end,
    kill_all(Rest).

callback_while_others_wait(_Config) ->
    %% A request waiting on an Erlang callback does not hold up the
    %% replies to other callers.
    Ctx = new(),
    Self = self(),
    ok = py:register_function(wire_gate, fun([]) -> Self ! {gate, self()},
                                                    receive open -> ok end end),
    _ = spawn_link(fun() -> Self ! {gated, py:eval(Ctx, <<"__import__('erlang').wire_gate()">>)} end),
    Gate = receive {gate, G} -> G end,
    ?assertEqual([{ok, I * 2} || I <- lists:seq(1, 20)],
                 parallel(20, fun(I) -> py:eval(Ctx, <<"x * 2">>, #{x => I}) end)),
    Gate ! open,
    receive {gated, R} -> ?assertEqual({ok, ok}, R) end,
    ok = py:unregister_function(wire_gate),
    ok = py_context:stop(Ctx).

context_killed_under_callers(_Config) ->
    %% Callers do not monitor the context process: the one running, the
    %% reader and the queued ones all still get `{error, closed}' when it
    %% is killed (no terminate/2 to answer them), not the end of their call.
    Ctx = new(),
    unlink(Ctx),
    Self = self(),
    Hold = <<"import time, erlang\n"
             "def hold(pid):\n"
             "    erlang.send(pid, erlang.Atom('running'))\n"
             "    time.sleep(60)\n">>,
    Callers = [spawn_link(fun() ->
                                  ok = py:exec(Ctx, Hold),  % (each process's own namespace)
                                  Self ! {self(), py:call(Ctx, '__main__', hold, [Self])}
                          end)
               || _ <- lists:seq(1, 4)],
    receive running -> ok end,
    Mon = erlang:monitor(process, Ctx),
    exit(Ctx, kill),
    receive {'DOWN', Mon, process, Ctx, killed} -> ok end,
    [receive {P, R} -> ?assertEqual({error, closed}, R) after 10000 -> ct:fail({stuck, P}) end
     || P <- Callers],
    ok.
