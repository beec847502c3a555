%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Contexts on other nodes (`py_context:new(#{node => Node})'): the
%% same calls, namespaces, callbacks (run in the caller, on the caller's
%% node), sends, timeouts and interrupts as a local context; the owner's and
%% a caller's death; a node that goes down. Peer nodes on this machine.
-module(py_remote_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([call_eval_exec/1, namespaces/1, conversion/1, callbacks/1, reentrant/1,
         sends/1, timeouts/1, interrupt/1, owner_death/1, caller_death/1, nodedown/1,
         bad_input/1, async_forms/1, proxy_lost_between_calls/1, modes/1, pool_across_nodes/1, pool_node_down_and_back/1, pool_bad_input/1]).

all() ->
    [call_eval_exec, namespaces, conversion, callbacks, reentrant, sends, timeouts,
     interrupt, owner_death, caller_death, nodedown, bad_input, async_forms,
     proxy_lost_between_calls, modes, pool_across_nodes,
     pool_node_down_and_back, pool_bad_input].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    case py_test_lib:ensure_distributed(py_remote_suite) of
        {skip, _} = Skip ->
            Skip;
        Started ->
            {ok, Peer, Node} = py_test_lib:peer_with_app(),
            unlink(Peer),
            [{started, Started}, {peer, Peer}, {node, Node} | Config]
    end.

end_per_suite(Config) ->
    _ = peer:stop(?config(peer, Config)),
    _ = ?config(started, Config) =:= started andalso net_kernel:stop(),
    ok.

%% Each case runs in its own process, which owns the context.
init_per_testcase(_Case, Config) ->
    {ok, Ctx} = py_context:new(#{node => ?config(node, Config)}),
    [{ctx, Ctx} | Config].

end_per_testcase(_Case, Config) ->
    _ = py_context:stop(?config(ctx, Config)),
    ok.

doc(Text) ->
    ct:comment("~ts", [Text]).

%% Cases.

call_eval_exec(Config) ->
    doc("call/eval/exec with kwargs and locals run on the other node."),
    Ctx = ?config(ctx, Config),
    Node = ?config(node, Config),
    Node = node(Ctx),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    {ok, <<"{\"a\": 1}">>} = py:call(Ctx, json, dumps, [#{a => 1}], #{kwargs => #{}}),
    {ok, <<"[1, 2]">>} = py:call(Ctx, json, dumps, [[1, 2]], #{kwargs => #{indent => none}}),
    {ok, 25} = py:eval(Ctx, <<"x * y">>, #{x => 5, y => 5}),
    ok = py:exec(Ctx, <<"import os\npid = os.getpid()\n">>),
    {ok, RemoteOsPid} = py:eval(Ctx, <<"pid">>),
    true = RemoteOsPid =/= list_to_integer(os:getpid()),
    {error, {'ZeroDivisionError', _}} = py:eval(Ctx, <<"1/0">>),
    {error, {'SyntaxError', _}} = py:exec(Ctx, <<"def (">>).

namespaces(Config) ->
    doc("Each calling process has its own namespace on the remote context."),
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"mine = 1\n">>),
    {ok, 1} = py:eval(Ctx, <<"mine">>),
    {error, {'NameError', _}} =
        py_test_lib:in_new_process(fun() -> py:eval(Ctx, <<"mine">>) end),
    ok = py:exec(Ctx, <<"def double(x):\n    return 2 * x\n">>),
    {ok, 42} = py:call(Ctx, '__main__', double, [21]).

conversion(Config) ->
    doc("Terms cross as Erlang terms and convert on the node that runs Python: pids "
        "and references of this node come back as they went."),
    Ctx = ?config(ctx, Config),
    Ref = make_ref(),
    Term = #{<<"k">> => [1, 2.5, <<"s">>, {t, self()}], ref => Ref, big => 1 bsl 100},
    {ok, Term} = py:eval(Ctx, <<"x">>, #{x => Term}),
    {ok, true} = py:eval(Ctx, <<"type(x).__name__ == 'Pid'">>, #{x => self()}).

callbacks(Config) ->
    doc("erlang.call on the remote node runs the function registered on the caller's "
        "node, in the caller."),
    Ctx = ?config(ctx, Config),
    Node = ?config(node, Config),
    Self = self(),
    ok = py:register_function(remote_ct_fun, fun([X]) -> {node(), self(), X} end),
    ok = erpc:call(Node, py, register_function, [remote_ct_fun, fun([_]) -> wrong_node end]),
    Here = node(),
    {ok, {Here, Self, 5}} = py:eval(Ctx, <<"__import__('erlang').call('remote_ct_fun', 5)">>),
    ok = py:exec(Ctx, <<"from erlang import remote_ct_fun\n">>),
    {ok, {Here, Self, 6}} = py:call(Ctx, '__main__', remote_ct_fun, [6]),
    ok = py:unregister_function(remote_ct_fun).

reentrant(Config) ->
    doc("A callback that calls the same remote context again sees the caller's "
        "namespace there, at any depth."),
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"import erlang\nsecret = 7\n"
                        "def down(n):\n"
                        "    return secret if n == 0 else erlang.call('remote_ct_down', n - 1)\n">>),
    ok = py:register_function(remote_ct_down,
                              fun([N]) -> {ok, V} = py:call(Ctx, '__main__', down, [N]), V end),
    {ok, 7} = py:call(Ctx, '__main__', down, [3]),
    ok = py:unregister_function(remote_ct_down).

sends(Config) ->
    doc("erlang.send from the remote node reaches a pid on this node, and what Python "
        "sends to erlang.self() reaches the caller."),
    Ctx = ?config(ctx, Config),
    Self = self(),
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').send(p, ('hi', p))">>, #{p => Self}),
    receive {<<"hi">>, Self} -> ok after 10000 -> ct:fail(no_message) end,
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').send(__import__('erlang').self(), 'me')">>),
    receive <<"me">> -> ok after 10000 -> ct:fail(no_relayed_message) end.

timeouts(Config) ->
    doc("A timeout holds on a remote context: {error, timeout} on time, the context "
        "answers the next call."),
    Ctx = ?config(ctx, Config),
    {Ms, {error, timeout}} = py_test_lib:timed(fun() ->
        py:call(Ctx, time, sleep, [5], #{timeout => 200})
    end),
    ct:log("timed out after ~b ms", [Ms]),
    true = Ms < 1500,
    {error, timeout} = py:exec(Ctx, <<"while True: pass">>, #{timeout => 200}),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    {messages, []} = process_info(self(), messages).

interrupt(Config) ->
    doc("py:interrupt/1 of a remote context interrupts the running call."),
    Ctx = ?config(ctx, Config),
    Self = self(),
    _ = spawn(fun() ->
                      Self ! {done, py:eval(Ctx, <<"__import__('erlang').send(p, 'running') "
                                                   "or [0 for _ in iter(int, 1)]">>,
                                            #{p => Self})}
              end),
    receive <<"running">> -> ok after 10000 -> ct:fail(not_running) end,
    ok = py:interrupt(Ctx),
    receive {done, {error, interrupted}} -> ok after 10000 -> ct:fail(not_interrupted) end,
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>).

owner_death(Config) ->
    doc("A remote context stops when the process that made it dies."),
    Node = ?config(node, Config),
    Ctx = py_test_lib:in_new_process(fun() ->
                                             {ok, C} = py_context:new(#{node => Node}),
                                             {ok, 2} = py:eval(C, <<"1 + 1">>),
                                             C
                                     end),
    Mon = monitor(process, Ctx),
    receive {'DOWN', Mon, process, Ctx, _} -> ok after 10000 -> ct:fail(context_kept) end.

caller_death(Config) ->
    doc("A caller killed during a remote call has its request interrupted: the "
        "context answers the next caller at once."),
    Ctx = ?config(ctx, Config),
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() -> sleep_on(Ctx, Self, 30) end),
    receive <<"sleeping">> -> ok end,
    exit(Pid, kill),
    receive {'DOWN', Mon, process, Pid, killed} -> ok end,
    {Ms, {ok, 2}} = py_test_lib:timed(fun() -> py:eval(Ctx, <<"1 + 1">>) end),
    ct:log("next call answered in ~b ms", [Ms]),
    true = Ms < 5000.

nodedown(_Config) ->
    doc("A node that goes down ends the calls on it at once with "
        "{error, {nodedown, Node}}."),
    {ok, Peer, Node} = py_test_lib:peer_with_app(),
    unlink(Peer),
    {ok, Ctx} = py_context:new(#{node => Node}),
    Self = self(),
    _ = spawn(fun() -> Self ! {result, sleep_on(Ctx, Self, 60)} end),
    receive <<"sleeping">> -> ok end,
    {Ms, _} = py_test_lib:timed(fun() ->
        ok = peer:stop(Peer),
        receive {result, {error, {nodedown, Node}}} -> ok after 10000 -> ct:fail(no_nodedown) end
    end),
    ct:log("nodedown seen after ~b ms", [Ms]),
    {error, {nodedown, Node}} = py:eval(Ctx, <<"1">>),
    {error, {nodedown, Node}} = py_context:new(#{node => Node}).

bad_input(_Config) ->
    doc("Bad node options are badarg; a node without erlang_python running is a "
        "clear error."),
    {'EXIT', {{badarg, {node, "x"}}, _}} = (catch py_context:new(#{node => "x"})),
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name()}),
    try
        {error, _} = py_context:new(#{node => Node})
    after
        peer:stop(Peer)
    end.

async_forms(Config) ->
    doc("py:spawn_call/4,5 and py:cast/4,5 on a remote context (as on a local one): "
        "the result arrives as {py_response, Ref, Result}; a cast runs."),
    Ctx = ?config(ctx, Config),
    {ok, Local} = py_context:new(#{}),
    _ = [begin
             Ref = py:spawn_call(C, math, sqrt, [16]),
             {ok, 4.0} = py:await(Ref, 10000),
             Ref2 = py:spawn_call(C, json, dumps, [[1]], #{separators => {<<",">>, <<":">>}}),
             {ok, <<"[1]">>} = py:await(Ref2, 10000),
             ok = py:cast(C, erlang, send, [self(), {cast_ran, node(C)}]),
             receive {<<"cast_ran">>, _} -> ok; {cast_ran, _} -> ok
             after 10000 -> ct:fail({cast_did_not_run, C})
             end,
             ok = py:cast(C, erlang, send, [self(), kw], #{})
         end || C <- [Ctx, Local]],
    receive kw -> ok after 10000 -> ct:fail(no_kw_cast) end,
    ok = py_context:stop(Local),
    {error, closed} = py:await(py:spawn_call(Local, math, sqrt, [1]), 1000),
    {error, closed} = py:await(py:spawn_call(self(), m, f, [], #{}), 1000),
    {'EXIT', {{badarg, {context, not_a_pid}}, _}} =
        (catch py:cast(not_a_pid, m, f, [], #{})),
    ok.

proxy_lost_between_calls(Config) ->
    doc("A caller's proxy that goes away between calls leaves no message in the "
        "caller's mailbox; the next call starts a new one (a fresh namespace)."),
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"kept = 1\n">>),
    #{} = Proxies = get('$py_remote_proxies'),
    [{Proxy, Relay}] = maps:values(Proxies),
    RelayMon = monitor(process, Relay),
    exit(Proxy, kill),
    receive {'DOWN', RelayMon, process, Relay, {proxy_down, killed}} -> ok end,
    {messages, []} = process_info(self(), messages),
    {error, {'NameError', _}} = py:eval(Ctx, <<"kept">>),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    {messages, []} = process_info(self(), messages).

modes(Config) ->
    doc("A remote context of another mode: own-GIL where the remote Python has it "
        "(3.12+), else that node's clear error; isolated (a child process there)."),
    Node = ?config(node, Config),
    case erpc:call(Node, py, subinterp_supported, []) of
        true ->
            {ok, Ctx} = py_context:new(#{node => Node, mode => owngil}),
            {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
            ok = py_context:stop(Ctx);
        false ->
            {error, {owngil_unsupported, _}} = py_context:new(#{node => Node, mode => owngil})
    end,
    {ok, Iso} = py_context:new(#{node => Node, mode => isolated}),
    {ok, 4.0} = py:call(Iso, math, sqrt, [16]),
    {ok, #{os_pid := _}} = py_context:child_info(Iso),
    ok = py_context:kill(Iso),
    {ok, 2.0} = py:call(Iso, math, sqrt, [4]),
    ok = py_context:stop(Iso),
    {error, {invalid_mode, bogus}} = py_context:new(#{node => Node, mode => bogus}).

pool_across_nodes(Config) ->
    doc("A pool placed across two nodes: contexts in turn on each, calls spread over "
        "both, registrations route to it, stop_pool stops the remote ones too."),
    Node = ?config(node, Config),
    {ok, Pids} = py_context_router:start_pool(ct_span, 4, #{mode => worker,
                                                          nodes => [node(), Node]}),
    Here = node(),
    [Here, Node, Here, Node] = [node(P) || P <- Pids],
    Pids = py_context_router:contexts(ct_span),
    OsPids = lists:usort([py_test_lib:in_new_process(fun() ->
                                                         {ok, P} = py:call(ct_span, os, getpid, []),
                                                         P
                                                     end)
                          || _ <- lists:seq(1, 8)]),
    2 = length(OsPids),
    ok = py:register_pool(ct_span, {json, dumps}),
    {ok, <<"[1]">>} = py:call(json, dumps, [[1]]),
    ok = py:unregister_pool({json, dumps}),
    Mons = [monitor(process, P) || P <- Pids],
    ok = py_context_router:stop_pool(ct_span),
    _ = [receive {'DOWN', M, process, _, _} -> ok end || M <- Mons],
    false = py_context_router:pool_started(ct_span).

pool_node_down_and_back(_Config) ->
    doc("A node of a pool goes down: calls on it end with {error, {nodedown, Node}}, "
        "the pool routes to the other node; when the node is back, its contexts are "
        "started again."),
    {ok, Peer, Node} = py_test_lib:peer_with_app(),
    unlink(Peer),
    {ok, _} = py_context_router:start_pool(ct_down, 2, #{nodes => [node(), Node]}),
    Self = self(),
    %% Callers until one is routed to the peer's context.
    Remote = remote_caller(Self, Node),
    receive {remote_sleeping, Remote} -> ok end,
    ok = peer:stop(Peer),
    receive {remote_result, Remote, {error, {nodedown, Node}}} -> ok
    after 10000 -> ct:fail(no_nodedown)
    end,
    %% py_router sees the context's monitor fire on its own.
    ok = until(fun() -> py_context_router:num_contexts(ct_down) =:= 1 end, 200),
    Mine = list_to_integer(os:getpid()),
    _ = [{ok, Mine} = py_test_lib:in_new_process(fun() -> py:call(ct_down, os, getpid, []) end)
         || _ <- lists:seq(1, 4)],
    %% The node comes back (same name), with erlang_python started.
    Name = hd(string:split(atom_to_list(Node), "@")),
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [py, ?MODULE]]),
    {ok, Peer2, Node} = peer:start(#{name => Name,
                                     args => lists:append([["-pa", P] || P <- Paths])}),
    {ok, _} = erpc:call(Node, application, ensure_all_started, [erlang_python]),
    ok = until(fun() -> py_context_router:num_contexts(ct_down) =:= 2 end, 200),
    [_, Back] = py_context_router:contexts(ct_down),
    Node = node(Back),
    {ok, _} = py:call(Back, math, sqrt, [4]),
    ok = py_context_router:stop_pool(ct_down),
    ok = peer:stop(Peer2).

pool_bad_input(_Config) ->
    doc("Bad pool options are badarg or {error, _}."),
    {'EXIT', {{badarg, {nodes, []}}, _}} =
        (catch py_context_router:start_pool(ct_bad, 2, #{nodes => []})),
    {'EXIT', {{badarg, {nodes, [1]}}, _}} =
        (catch py_context_router:start_pool(ct_bad, 2, #{nodes => [1]})),
    {'EXIT', {{badarg, {option, size}}, _}} =
        (catch py_context_router:start_pool(ct_bad, 2, #{size => 2})),
    {error, {nodedown, 'nowhere@nohost'}} =
        py_context_router:start_pool(ct_bad, 2, #{nodes => [node(), 'nowhere@nohost']}),
    false = py_context_router:pool_started(ct_bad).

%% Internal.

%% Sleep Secs on Ctx, having told Test it sleeps.
sleep_on(Ctx, Test, Secs) ->
    py:eval(Ctx, <<"__import__('erlang').send(p, 'sleeping') or __import__('time').sleep(s)">>,
            #{p => Test, s => Secs}).

%% A process of pool ct_down that is served by the context on Node, sleeping
%% there (it tells Test), then sending Test its result.
remote_caller(Test, Node) ->
    Pid = spawn(fun() ->
                        {Ctx, _} = py_context_router:route(ct_down),
                        case node(Ctx) of
                            Node ->
                                Test ! {remote_sleeping, self()},
                                Test ! {remote_result, self(),
                                        py:call(ct_down, time, sleep, [60])};
                            _ ->
                                Test ! {not_remote, self()}
                        end
                end),
    receive
        {not_remote, Pid} -> remote_caller(Test, Node);
        {remote_sleeping, Pid} = Msg -> self() ! Msg, Pid
    end.

%% Until Fun() holds, asking every 50 ms at most Tries times: a node that
%% comes back gets its contexts from the router at its own pace, with no
%% message to this process.
until(_Fun, 0) ->
    {error, gave_up};
until(Fun, Tries) ->
    case Fun() of
        true -> ok;
        false -> receive after 50 -> until(Fun, Tries - 1) end
    end.
