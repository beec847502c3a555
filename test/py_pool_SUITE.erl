%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The 4.x contexts/pools API: py_context_router (pools, routing
%% registrations, binding), py_semaphore (rate limiting), the default
%% contexts' lifecycle (py:start_contexts/stop_contexts), context modes and
%% py_context:interrupt/1.
-module(py_pool_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([pool_lifecycle/1, pool_calls/1, pool_spread_and_sticky/1, default_pool/1,
         routing_priority/1, routing_names_normalised/1, bind_unbind/1, bind_unbind_pool/1,
         overload/1, killed_caller_gives_slot_back/1, nested_calls_take_no_slot/1,
         semaphore_api/1, unlimited/1,
         default_contexts_lifecycle/1, modes/1, execution_mode_and_subinterp/1,
         destroy/1, interrupt_idle/1, interrupt_running/1, bad_input/1]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [pool_lifecycle, pool_calls, pool_spread_and_sticky, default_pool,
     routing_priority, routing_names_normalised, bind_unbind, bind_unbind_pool,
     overload, killed_caller_gives_slot_back, nested_calls_take_no_slot,
     semaphore_api, unlimited,
     default_contexts_lifecycle, modes, execution_mode_and_subinterp,
     destroy, interrupt_idle, interrupt_running, bad_input].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(_Case, Config) ->
    [{max, py_semaphore:max_concurrent()} | Config].

end_per_testcase(_Case, Config) ->
    ok = py_semaphore:set_max_concurrent(?config(max, Config)),
    [ok = py:unregister_pool(K) || {K, _} <- py_context_router:list_pool_registrations()],
    [ok = py_context_router:stop_pool(P) || P <- [p1, p2, io]],
    case py:contexts_started() of
        true -> ok;
        false -> {ok, _} = py:start_contexts()
    end,
    ok.

%% Cases.

pool_lifecycle(_Config) ->
    doc("start_pool/2,3 starts supervised contexts, a second start is "
        "already_started, stop_pool/1 stops them; pool_started, num_contexts "
        "and contexts follow."),
    false = py_context_router:pool_started(io),
    [] = py_context_router:contexts(io),
    0 = py_context_router:num_contexts(io),
    {ok, Pids} = py_context_router:start_pool(io, 3),
    3 = length(Pids),
    {error, already_started} = py_context_router:start_pool(io, 2, worker),
    true = py_context_router:pool_started(io),
    Pids = py_context_router:contexts(io),
    3 = py_context_router:num_contexts(io),
    Supervised = [P || {_, P, _, _} <- supervisor:which_children(py_context_sup)],
    [] = Pids -- Supervised,
    Mons = [monitor(process, P) || P <- Pids],
    ok = py_context_router:stop_pool(io),
    [receive {'DOWN', M, process, _, _} -> ok end || M <- Mons],
    false = py_context_router:pool_started(io),
    [] = py_context_router:contexts(io),
    ok = py_context_router:stop_pool(io),
    {ok, [_]} = py_context_router:start_pool(io, 1, worker),
    ok = py_context_router:stop_pool(io).

pool_calls(_Config) ->
    doc("py:call(Pool, M, F, A[, Kw]) runs on the caller's context of that "
        "pool; a pool that does not run gives {error, {pool_not_started, Pool}}; "
        "a process whose pool context stopped chooses again."),
    {ok, _} = py_context_router:start_pool(io, 2),
    {ok, 4.0} = py:call(io, math, sqrt, [16]),
    {ok, <<"{\"a\": 1}">>} = py:call(io, json, dumps, [#{a => 1}], #{sort_keys => true}),
    Ctx = py_context_router:get_context(io),
    true = lists:member(Ctx, py_context_router:contexts(io)),
    Ident = py:call(Ctx, threading, get_ident, []),
    Ident = py:call(io, threading, get_ident, []),
    {error, {pool_not_started, nope}} = py:call(nope, math, sqrt, [4]),
    {error, {pool_not_started, nope}} = py:call(nope, math, sqrt, [4], #{}),
    ok = py_context:stop(Ctx),
    {ok, 2.0} = py:call(io, math, sqrt, [4]),
    true = py_context_router:get_context(io) =/= Ctx,
    ok = py_context_router:stop_pool(io),
    {error, {pool_not_started, io}} = py:call(io, math, sqrt, [4]),
    %% A module call with keyword arguments is not a pool call.
    {ok, <<"[1]">>} = py:call(json, dumps, [[1]], #{}),
    {ok, <<"[1]">>} = py:call(json, dumps, [[1]], #{}, 5000).

pool_spread_and_sticky(_Config) ->
    doc("New processes take a pool's contexts in turn; each keeps its own."),
    {ok, Pids} = py_context_router:start_pool(io, 2),
    Got = [in_process(fun() ->
                              C = py_context_router:get_context(io),
                              C = py_context_router:get_context(io),
                              C
                      end) || _ <- lists:seq(1, 4)],
    [] = Got -- (Pids ++ Pids),
    2 = length(lists:usort(Got)).

default_pool(_Config) ->
    doc("The default pool is the default contexts: get_context/0,1, contexts/0, "
        "num_contexts/0, pool_started(default), py:call(default, ...)."),
    Ctx = py:context(),
    Ctx = py_context_router:get_context(),
    Ctx = py_context_router:get_context(default),
    Defaults = py_context_router:contexts(),
    Defaults = py_context_router:contexts(default),
    true = lists:member(Ctx, Defaults),
    N = length(Defaults),
    N = py_context_router:num_contexts(),
    N = py_context_router:num_contexts(default),
    true = py_context_router:pool_started(default),
    {error, already_started} = py_context_router:start_pool(default, 2),
    First = py:context(1),
    First = py_context_router:get_context(1),
    {ok, 3.0} = py:call(default, math, sqrt, [9]).

routing_priority(_Config) ->
    doc("Registered calls go to their pool: {M, F} beats M beats default; "
        "lookup_pool/2 and list_pool_registrations/0 say so; unregister_pool/1 undoes it."),
    {ok, _} = py_context_router:start_pool(p1, 1),
    {ok, _} = py_context_router:start_pool(p2, 1),
    default = py_context_router:lookup_pool(threading, get_ident),
    ok = py:register_pool(p1, threading),
    ok = py:register_pool(p2, {threading, get_ident}),
    p2 = py_context_router:lookup_pool(threading, get_ident),
    p1 = py_context_router:lookup_pool(threading, get_native_id),
    default = py_context_router:lookup_pool(math, sqrt),
    [{threading, p1}, {{threading, get_ident}, p2}] =
        lists:sort(py_context_router:list_pool_registrations()),
    P1 = py_context_router:get_context(p1),
    P2 = py_context_router:get_context(p2),
    {ok, Id2} = py:call(P2, threading, get_ident, []),
    {ok, Id2} = py:call(threading, get_ident, []),
    {ok, Native1} = py:call(P1, threading, get_native_id, []),
    {ok, Native1} = py:call(threading, get_native_id, []),
    {ok, Native1} = py:call(threading, get_native_id, [], #{}, 5000),
    ok = py:unregister_pool({threading, get_ident}),
    p1 = py_context_router:lookup_pool(threading, get_ident),
    {ok, Id1} = py:call(P1, threading, get_ident, []),
    {ok, Id1} = py:call(threading, get_ident, []),
    ok = py:unregister_pool(threading),
    ok = py:unregister_pool(threading),
    default = py_context_router:lookup_pool(threading, get_ident),
    [] = py_context_router:list_pool_registrations(),
    ok = py_context_router:stop_pool(p1),
    ok = py:register_pool(p1, math),
    {error, {pool_not_started, p1}} = py:call(math, sqrt, [4]).

routing_names_normalised(_Config) ->
    doc("Atoms, binaries and strings name the same module or function."),
    {ok, _} = py_context_router:start_pool(p1, 1),
    ok = py:register_pool(p1, <<"json">>),
    p1 = py_context_router:lookup_pool(json, dumps),
    p1 = py_context_router:lookup_pool("json", <<"dumps">>),
    ok = py:register_pool(p1, {"math", "sqrt"}),
    p1 = py_context_router:lookup_pool(math, sqrt),
    default = py_context_router:lookup_pool(math, cos),
    P1 = py_context_router:get_context(p1),
    {ok, Id} = py:call(P1, threading, get_ident, []),
    ok = py:register_pool(p1, {threading, <<"get_ident">>}),
    {ok, Id} = py:call(<<"threading">>, "get_ident", []),
    {ok, Id} = py:call(threading, get_ident, []),
    ok = py:unregister_pool(json),
    ok = py:unregister_pool({math, <<"sqrt">>}),
    ok = py:unregister_pool({<<"threading">>, get_ident}),
    [] = py_context_router:list_pool_registrations().

bind_unbind(_Config) ->
    doc("bind_context/1 sends the caller's later calls to a context; "
        "unbind_context/0 gives it back its own."),
    in_process(fun() ->
                       Own = py:context(),
                       {ok, Other} = py_context:new(#{}),
                       ok = py_context_router:bind_context(Other),
                       Other = py:context(),
                       Other = py_context_router:get_context(),
                       ok = py:exec(<<"here = 1">>),
                       {ok, 1} = py:eval(Other, <<"here">>),
                       ok = py_context_router:bind_context(Own),
                       ok = py_context_router:unbind_context(),
                       Own = py:context(),
                       {error, {'NameError', _}} = py:eval(<<"here">>),
                       ok = py_context_router:unbind_context(),
                       ok = py_context:stop(Other)
               end),
    in_process(fun() ->
                       {ok, Other} = py_context:new(#{}),
                       ok = py_context_router:bind_context(Other),
                       ok = py_context_router:unbind_context(),
                       true = lists:member(py:context(), py_context_router:contexts()),
                       ok = py_context:stop(Other)
               end).

bind_unbind_pool(_Config) ->
    doc("bind_context/2 and unbind_context/1 do the same per pool."),
    {ok, [A, B]} = py_context_router:start_pool(io, 2),
    in_process(fun() ->
                       ok = py_context_router:bind_context(io, B),
                       B = py_context_router:get_context(io),
                       {ok, Id} = py:call(B, threading, get_ident, []),
                       {ok, Id} = py:call(io, threading, get_ident, []),
                       ok = py_context_router:bind_context(io, A),
                       A = py_context_router:get_context(io),
                       ok = py_context_router:unbind_context(io),
                       true = lists:member(py_context_router:get_context(io), [A, B]),
                       Own = py:context(),
                       {ok, Ctx} = py_context:new(#{}),
                       ok = py_context_router:bind_context(default, Ctx),
                       Ctx = py:context(),
                       ok = py_context_router:unbind_context(default),
                       Own = py:context(),
                       ok = py_context:stop(Ctx)
               end).

overload(_Config) ->
    doc("With every slot taken, py:call waits up to its timeout and returns "
        "{error, {overloaded, Current, Max}}; a slot given back lets it run."),
    ok = py_semaphore:set_max_concurrent(1),
    1 = py_semaphore:max_concurrent(),
    {Holder, Mon} = hold_slot(),
    1 = py_semaphore:current(),
    {error, {overloaded, 1, 1}} = py:call(math, sqrt, [4], #{}, 20),
    {error, {overloaded, 1, 1}} = py:call(math, sqrt, [4], #{}, 0),
    {ok, _} = py_context_router:start_pool(io, 1),
    {error, {overloaded, 1, 1}} = py_semaphore:acquire(10),
    %% A waiting call runs as soon as the slot comes back.
    Self = self(),
    Waiter = spawn_link(fun() -> Self ! {waited, py:call(math, sqrt, [4], #{}, 10000)} end),
    Holder ! release,
    receive {'DOWN', Mon, process, Holder, normal} -> ok end,
    receive {waited, R} -> {ok, 2.0} = R end,
    unlink(Waiter),
    {ok, 2.0} = py:call(io, math, sqrt, [4]),
    0 = py_semaphore:current().

killed_caller_gives_slot_back(_Config) ->
    doc("A caller killed in the middle of a call does not keep its slot."),
    ok = py_semaphore:set_max_concurrent(1),
    Self = self(),
    {Caller, Mon} = spawn_monitor(fun() ->
                                          ok = py:exec(<<"import erlang, time\n"
                                                         "def block(pid):\n"
                                                         "    erlang.send(pid, erlang.Atom('running'))\n"
                                                         "    time.sleep(30)\n">>),
                                          py:call('__main__', block, [Self])
                                  end),
    receive running -> ok end,
    1 = py_semaphore:current(),
    exit(Caller, kill),
    receive {'DOWN', Mon, process, Caller, killed} -> ok end,
    ok = until(fun() -> py_semaphore:current() =:= 0 end, 5000),
    {ok, 2.0} = py:call(math, sqrt, [4], #{}, 5000),
    %% Also a process that took a slot with acquire/1 and died.
    {Holder, HMon} = hold_slot(),
    exit(Holder, kill),
    receive {'DOWN', HMon, process, Holder, killed} -> ok end,
    ok = until(fun() -> py_semaphore:current() =:= 0 end, 5000).

nested_calls_take_no_slot(_Config) ->
    doc("py:call from an Erlang function Python called (a callback helper, or "
        "py_callback for casts) takes no second slot: with one slot, ten levels "
        "of Python -> Erlang -> Python run."),
    ok = py_semaphore:set_max_concurrent(1),
    ok = py:exec(<<"import erlang\ndef nest(n):\n    return erlang.call('pool_nest', n)\n">>),
    ok = py:register_function(pool_nest, fun([N]) when N >= 10 -> N;
                                            ([N]) -> {ok, R} = py:call('__main__', nest, [N + 1]), R
                                         end),
    {ok, 10} = py:call('__main__', nest, [0], #{}, 10000),
    0 = py_semaphore:current(),
    Self = self(),
    ok = py:register_function(pool_cast, fun([]) -> Self ! {cast, py:call(math, sqrt, [4])} end),
    ok = py:cast(erlang, call, [pool_cast]),
    receive {cast, R} -> {ok, 2.0} = R end,
    ok = py:unregister_function(pool_nest),
    ok = py:unregister_function(pool_cast).

semaphore_api(_Config) ->
    doc("acquire/release/current/max_concurrent/set_max_concurrent; a "
        "release without a slot is ok; the default maximum is infinity (no limit)."),
    Default = infinity,
    Default = py_semaphore:max_concurrent(),
    ok = py_semaphore:set_max_concurrent(2),
    in_process(fun() ->
                       ok = py_semaphore:acquire(1000),
                       1 = py_semaphore:current(),
                       ok = py_semaphore:acquire(infinity),
                       2 = py_semaphore:current(),
                       {error, {overloaded, 2, 2}} = py_semaphore:acquire(0),
                       ok = py_semaphore:release(),
                       ok = py_semaphore:release(),
                       ok = py_semaphore:release(),
                       0 = py_semaphore:current()
               end),
    ok = py_semaphore:set_max_concurrent(Default).

unlimited(_Config) ->
    doc("max_concurrent infinity: no slot is counted, calls run."),
    ok = py_semaphore:set_max_concurrent(infinity),
    infinity = py_semaphore:max_concurrent(),
    ok = py_semaphore:acquire(0),
    0 = py_semaphore:current(),
    ok = py_semaphore:release(),
    {ok, 2.0} = py:call(math, sqrt, [4]),
    {ok, 2.0} = py:call(math, sqrt, [4], #{}, 5000).

default_contexts_lifecycle(_Config) ->
    doc("py:stop_contexts/0, start_contexts/0,1 and contexts_started/0; "
        "a process whose context stopped moves to a new one."),
    N = py_context_router:num_contexts(),
    true = py:contexts_started(),
    {ok, 1.0} = py:call(math, cos, [0]),
    ok = py:stop_contexts(),
    false = py:contexts_started(),
    false = py_context_router:pool_started(default),
    {error, not_running} = py:call(math, cos, [0]),
    ok = py:stop_contexts(),
    {ok, Pids} = py:start_contexts(#{contexts => 2}),
    2 = length(Pids),
    Pids = py_context_router:contexts(),
    true = py:contexts_started(),
    {ok, 1.0} = py:call(math, cos, [0]),
    {ok, Again} = py:start_contexts(#{contexts => 2, mode => worker}),
    [] = Again -- py_context_router:contexts(),
    {ok, 1.0} = py:call(math, cos, [0]),
    {ok, Restored} = py:start_contexts(),
    N = length(Restored).

modes(_Config) ->
    doc("py_context:new/1, start_pool/3 and start_contexts/1 with mode worker work, and "
        "with owngil from Python 3.12 (a clear error before) and isolated; others give "
        "a clear error, never a crash."),
    {ok, Ctx} = py_context:new(#{mode => worker}),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    ok = py_context:stop(Ctx),
    {ok, {Major, Minor, Micro}} = py_context:python_version(),
    {ok, Iso} = py_context:new(#{mode => isolated}),
    {ok, 2} = py:eval(Iso, <<"1 + 1">>),
    ok = py_context:stop(Iso),
    {error, {invalid_mode, shared}} = py_context:new(#{mode => shared}),
    {error, {invalid_mode, foo}} = py_context_router:start_pool(p1, 2, foo),
    case {Major, Minor} >= {3, 12} of
        true ->
            {ok, Own} = py_context:new(#{mode => owngil}),
            {ok, 2} = py:eval(Own, <<"1 + 1">>),
            ok = py_context:stop(Own),
            {ok, [_, _]} = py_context_router:start_pool(p0, 2, owngil),
            {ok, 4.0} = py:call(p0, math, sqrt, [16]),
            ok = py_context_router:stop_pool(p0),
            Defaults = length(py_context_router:contexts()),
            {ok, Owns} = py:start_contexts(#{mode => owngil}),
            Defaults = length(Owns),
            {ok, 6} = py_test_lib:in_new_process(fun() -> py:eval(<<"2 * 3">>) end),
            {ok, _} = py:start_contexts(#{mode => worker});
        false ->
            Owngil = {python_version, lists:flatten(io_lib:format("~b.~b.~b",
                                                                  [Major, Minor, Micro]))},
            {error, {owngil_unsupported, Owngil}} = py_context:new(#{mode => owngil}),
            {error, {owngil_unsupported, Owngil}} = py_context_router:start_pool(p1, 2, owngil),
            false = py_context_router:pool_started(p1),
            {error, {owngil_unsupported, Owngil}} = py:start_contexts(#{mode => owngil})
    end,
    true = py:contexts_started(),
    {ok, [_]} = py_context_router:start_pool(p1, 1, worker).

execution_mode_and_subinterp(_Config) ->
    doc("execution_mode/0 is app env context_mode (default worker); "
        "subinterp_supported/0 is whether Python is 3.12 or later."),
    worker = py:execution_mode(),
    ok = application:set_env(erlang_python, context_mode, owngil),
    owngil = py:execution_mode(),
    ok = application:set_env(erlang_python, context_mode, bogus),
    {'EXIT', {{badarg, {context_mode, bogus}}, _}} = catch py:execution_mode(),
    ok = application:unset_env(erlang_python, context_mode),
    worker = py:execution_mode(),
    {ok, Expected} = py:eval(<<"__import__('sys').version_info >= (3, 12)">>),
    Expected = py:subinterp_supported(),
    Expected = py:subinterp_supported().

destroy(_Config) ->
    doc("py_context:destroy/1 is stop/1."),
    {ok, Ctx} = py_context:new(#{}),
    ok = py_context:destroy(Ctx),
    {error, not_found} = py_context:destroy(Ctx),
    {error, closed} = py:eval(Ctx, <<"1">>).

interrupt_idle(_Config) ->
    doc("py:interrupt/1 and py_context:interrupt/1 on a context where nothing "
        "runs: not_running; on a stopped one {error, not_found}."),
    {ok, Ctx} = py_context:new(#{}),
    not_running = py_context:interrupt(Ctx),
    not_running = py:interrupt(Ctx),
    ok = py_context:stop(Ctx),
    {error, not_found} = py_context:interrupt(Ctx).

interrupt_running(_Config) ->
    doc("py_context:interrupt/1 ends the running request: its caller gets "
        "{error, interrupted} and the context serves on."),
    case true of
        true ->
            {ok, Ctx} = py_context:new(#{}),
            Self = self(),
            _ = spawn_link(fun() -> Self ! {done, block(Ctx, Self, 30)} end),
            receive running -> ok end,
            ok = py_context:interrupt(Ctx),
            receive {done, R} -> {error, interrupted} = R end,
            {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
            not_running = py_context:interrupt(Ctx),
            ok = py_context:stop(Ctx)
    end.

bad_input(_Config) ->
    doc("Arguments of the wrong type raise error({badarg, _}); no server crashes."),
    Router = whereis(py_context_router),
    Bad = [fun() -> py_context_router:start_pool("io", 1) end,
           fun() -> py_context_router:start_pool(io, 0) end,
           fun() -> py_context_router:start_pool(io, x, worker) end,
           fun() -> py_context_router:stop_pool(<<"io">>) end,
           fun() -> py_context_router:pool_started(1) end,
           fun() -> py_context_router:contexts("io") end,
           fun() -> py_context_router:get_context(<<"io">>) end,
           fun() -> py_context_router:bind_context(not_a_pid) end,
           fun() -> py_context_router:bind_context(self()) end,
           fun() -> py_context_router:bind_context(io, self()) end,
           fun() -> py_context_router:bind_context("io", self()) end,
           fun() -> py_context_router:unbind_context(42) end,
           fun() -> py_context_router:lookup_pool(42, f) end,
           fun() -> py_context_router:lookup_pool(m, {f}) end,
           fun() -> py:register_pool("io", json) end,
           fun() -> py:register_pool(io, 42) end,
           fun() -> py:register_pool(io, {json, 42}) end,
           fun() -> py:unregister_pool(#{}) end,
           fun() -> py:start_contexts(#{contexts => 0}) end,
           fun() -> py:start_contexts(#{bogus => 1}) end,
           fun() -> py:start_contexts(not_a_map) end,
           fun() -> py_semaphore:acquire(-1) end,
           fun() -> py_semaphore:set_max_concurrent(0) end,
           fun() -> py_context:destroy(foo) end,
           fun() -> py_context:interrupt(foo) end,
           fun() -> py:interrupt(foo) end,
           fun() -> py:call(io, math, sqrt, [4], not_kwargs) end,
           fun() -> py:call(io, 42, sqrt, [4]) end],
    lists:foreach(fun(F) ->
                          {'EXIT', {{badarg, _}, _}} = catch F()
                  end, Bad),
    {'EXIT', {{pool_not_started, nope}, _}} = catch py_context_router:get_context(nope),
    Router = whereis(py_context_router),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% Internal.

doc(_) -> ok.

in_process(Fun) ->
    {Pid, Mon} = spawn_monitor(fun() -> exit({result, Fun()}) end),
    receive
        {'DOWN', Mon, process, Pid, {result, R}} -> R;
        {'DOWN', Mon, process, Pid, Other} -> ct:fail({process_failed, Other})
    end.

%% A process that holds a slot (py_semaphore:acquire/1) until told to release it.
hold_slot() ->
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() ->
                                       ok = py_semaphore:acquire(1000),
                                       Self ! {holding, self()},
                                       receive release -> ok = py_semaphore:release() end
                               end),
    receive {holding, Pid} -> {Pid, Mon} end.

%% Run time.sleep(Secs) on Ctx once Python has told Notify it is running.
block(Ctx, Notify, Secs) ->
    ok = py:exec(Ctx, <<"import erlang, time\n"
                        "def block(pid, secs):\n"
                        "    erlang.send(pid, erlang.Atom('running'))\n"
                        "    time.sleep(secs)\n">>),
    py:call(Ctx, '__main__', block, [Notify, Secs], #{timeout => 60000}).

%% Wait for Cond, letting py_context_router handle what it was sent (each
%% round is a call to it, so its queue moves), at most N rounds.
%% Until Cond() holds, each try after py_context_router has handled what
%% reached it (a dying process's 'DOWN' to it can come after the one to the
%% test: exit signals go out one by one), for at most Ms milliseconds.
until(Cond, Ms) ->
    until_deadline(Cond, erlang:monotonic_time(millisecond) + Ms).

until_deadline(Cond, Deadline) ->
    case Cond() of
        true -> ok;
        false ->
            _ = sys:get_state(py_context_router),
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> until_deadline(Cond, Deadline)
            end
    end.
