%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Helpers shared by the test suites: processes that keep their Python
%% namespace between steps, and running a fun in a fresh process.
-module(py_test_lib).

-export([in_new_process/1, worker/0, run/2, stop_worker/1, blocker/3, timed/1,
         ensure_distributed/1, peer_with_app/0]).

%% @doc Run Fun in a fresh process (a fresh namespace) and return its value;
%% the case fails if the process crashes.
-spec in_new_process(fun(() -> T)) -> T.
in_new_process(Fun) ->
    {Pid, Mon} = spawn_monitor(fun() -> exit({result, Fun()}) end),
    receive
        {'DOWN', Mon, process, Pid, {result, R}} -> R;
        {'DOWN', Mon, process, Pid, Other} -> ct:fail({process_failed, Other})
    end.

%% @doc A process that runs funs for the test, so that it keeps its namespace
%% (and its context) between steps.
-spec worker() -> pid().
worker() ->
    spawn(fun Loop() ->
                  receive
                      {run, From, Ref, Fun} -> From ! {Ref, Fun()}, Loop();
                      stop -> ok
                  end
          end).

%% @doc Run Fun in a worker and return its value.
-spec run(pid(), fun(() -> T)) -> T.
run(Worker, Fun) ->
    Ref = make_ref(),
    Worker ! {run, self(), Ref, Fun},
    receive {Ref, R} -> R end.

%% @doc Stop a worker and wait until it is gone.
-spec stop_worker(pid()) -> ok.
stop_worker(Worker) ->
    Mon = monitor(process, Worker),
    Worker ! stop,
    receive {'DOWN', Mon, process, Worker, normal} -> ok end.

%% @doc A linked process whose call sleeps Secs on context Ctx and then sends
%% {Tag, Result} to the caller; returns the process once that call runs
%% (Python itself says so).
-spec blocker(pid(), number(), term()) -> pid().
blocker(Ctx, Secs, Tag) ->
    Self = self(),
    Pid = spawn_link(fun() ->
                             ok = py:exec(Ctx, <<"import erlang, time\n"
                                                 "def block(pid, secs):\n"
                                                 "    erlang.send(pid, erlang.Atom('running'))\n"
                                                 "    time.sleep(secs)\n">>),
                             Self ! {Tag, py:call(Ctx, '__main__', block, [Self, Secs])}
                     end),
    receive running -> Pid end.

%% @doc Run Fun; {Milliseconds it took, its value}.
-spec timed(fun(() -> T)) -> {integer(), T}.
timed(Fun) ->
    T0 = erlang:monotonic_time(millisecond),
    R = Fun(),
    {erlang:monotonic_time(millisecond) - T0, R}.

%% @doc Make this node distributed (short names, epmd started if needed):
%% `started' (stop it with net_kernel:stop/0 when done), `already', or
%% `{skip, Reason}'.
-spec ensure_distributed(atom()) -> started | already | {skip, term()}.
ensure_distributed(Name) ->
    case node() of
        nonode@nohost ->
            case net_kernel:start([Name, shortnames]) of
                {ok, _} -> started;
                {error, _} ->
                    _ = os:cmd("epmd -daemon"),
                    ok = epmd_up(50),
                    case net_kernel:start([Name, shortnames]) of
                        {ok, _} -> started;
                        {error, R} -> {skip, {no_distribution, R}}
                    end
            end;
        _ ->
            already
    end.

%% @doc A peer node (linked to the caller) with this node's code paths and
%% erlang_python started: `{ok, Peer, Node}'.
-spec peer_with_app() -> {ok, pid(), node()}.
peer_with_app() ->
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [py, ?MODULE]]),
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(),
                                         args => lists:append([["-pa", P] || P <- Paths])}),
    {ok, _} = erpc:call(Node, application, ensure_all_started, [erlang_python]),
    {ok, Peer, Node}.

%% `epmd -daemon' returns before epmd listens: ask it until it answers (an
%% outside daemon sends no message to wait for).
epmd_up(0) ->
    ok;
epmd_up(Tries) ->
    case erl_epmd:names() of
        {ok, _} -> ok;
        {error, _} -> receive after 100 -> epmd_up(Tries - 1) end
    end.
