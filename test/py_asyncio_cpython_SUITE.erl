%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc CPython's own asyncio tests (`test.test_asyncio'), run inside the VM
%% with ErlangEventLoop as the loop.
%%
%% test/python/run_cpython_asyncio.py does the work: it makes every loop the
%% tests create an ErlangEventLoop, marks the cases of its skip list (each
%% with its reason; docs/asyncio.md lists them) and runs the module with
%% unittest on a context thread. A case passes when no test failed or
%% errored and ErlangEventLoop, not the stdlib loop, made the loops.
-module(py_asyncio_cpython_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([test_events/0, test_events/1, test_tasks/0, test_tasks/1,
         test_futures/0, test_futures/1, test_streams/0, test_streams/1,
         test_sock_lowlevel/0, test_sock_lowlevel/1, test_server/0, test_server/1,
         test_ssl/0, test_ssl/1, test_sslproto/0, test_sslproto/1,
         test_timeouts/0, test_timeouts/1, test_base_events/0, test_base_events/1,
         test_locks/0, test_locks/1, test_queues/0, test_queues/1,
         test_sendfile/0, test_sendfile/1, test_taskgroups/0, test_taskgroups/1,
         test_waitfor/0, test_waitfor/1, test_threads/0, test_threads/1,
         skip_list_documented/0, skip_list_documented/1]).

%% Longest a module may run (test_tasks, the longest, takes ~20 s).
-define(MODULE_TIMEOUT, 240000).

suite() ->
    [{timetrap, {seconds, 300}}].

all() ->
    [test_events, test_tasks, test_futures, test_streams, test_sock_lowlevel, test_server,
     test_ssl, test_sslproto, test_timeouts, test_base_events, test_locks, test_queues,
     test_sendfile, test_taskgroups, test_waitfor, test_threads, skip_list_documented].

init_per_suite(Config) ->
    {ok, Started} = application:ensure_all_started(erlang_python),
    [{started, Started} | Config].

end_per_suite(Config) ->
    _ = [application:stop(App) || App <- lists:reverse(?config(started, Config))],
    ok.

test_events() -> [{doc, "test_events: loop API, sockets, servers, TLS, pipes, ptys, executors."}].
test_events(_) -> run([test_events]).

test_tasks() -> [{doc, "test_tasks: tasks, gather, shield, wait, as_completed (C and Python)."}].
test_tasks(_) -> run([test_tasks]).

test_futures() -> [{doc, "test_futures and test_futures2: futures, with tasks on the loop."}].
test_futures(_) -> run([test_futures, test_futures2]).

test_streams() -> [{doc, "test_streams: StreamReader/StreamWriter over TCP and Unix sockets."}].
test_streams(_) -> run([test_streams]).

test_sock_lowlevel() -> [{doc, "test_sock_lowlevel: sock_connect/recv/sendall/accept."}].
test_sock_lowlevel(_) -> run([test_sock_lowlevel]).

test_server() -> [{doc, "test_server: start_server, serve_forever, closing servers."}].
test_server(_) -> run([test_server]).

test_ssl() -> [{doc, "test_ssl: TLS connections and servers, start_tls, shutdown."}].
test_ssl(_) -> run([test_ssl]).

test_sslproto() -> [{doc, "test_sslproto: the TLS protocol state machine, handshake timeouts."}].
test_sslproto(_) -> run([test_sslproto]).

test_timeouts() -> [{doc, "test_timeouts: asyncio.timeout and timeout_at."}].
test_timeouts(_) -> run([test_timeouts]).

test_base_events() -> [{doc, "test_base_events: BaseEventLoop (create_connection, servers, "
                              "datagrams, getaddrinfo, executors)."}].
test_base_events(_) -> run([test_base_events]).

test_locks() -> [{doc, "test_locks: Lock, Event, Condition, Semaphore, Barrier."}].
test_locks(_) -> run([test_locks]).

test_queues() -> [{doc, "test_queues: Queue, PriorityQueue, LifoQueue."}].
test_queues(_) -> run([test_queues]).

test_sendfile() -> [{doc, "test_sendfile: loop.sendfile over plain and TLS sockets."}].
test_sendfile(_) -> run([test_sendfile]).

test_taskgroups() -> [{doc, "test_taskgroups: TaskGroup."}].
test_taskgroups(_) -> run([test_taskgroups]).

test_waitfor() -> [{doc, "test_waitfor: wait_for."}].
test_waitfor(_) -> run([test_waitfor]).

test_threads() -> [{doc, "test_threads: asyncio.to_thread."}].
test_threads(_) -> run([test_threads]).

skip_list_documented() ->
    [{doc, "Every entry of the runner's skip list is in docs/asyncio.md."}].
skip_list_documented(_) ->
    ok = load_runner(),
    {ok, Patterns} = py:eval(<<"list(__import__('run_cpython_asyncio').SKIPS)">>),
    {ok, Doc} = file:read_file(filename:join([root(), "docs", "asyncio.md"])),
    Missing = [P || P <- Patterns, binary:match(Doc, P) =:= nomatch],
    [] =:= Missing orelse ct:fail("not in docs/asyncio.md: ~p", [Missing]).

%% Internal.

run(Modules) ->
    ok = load_runner(),
    Summaries = [summary(M) || M <- Modules],
    Loops = lists:foldl(fun(S, Acc) ->
                                maps:fold(fun(K, V, A) -> maps:update_with(K, fun(X) -> X + V end,
                                                                           V, A)
                                          end, Acc, maps:get(<<"loops">>, S))
                        end, #{}, Summaries),
    ct:log("loops made, by class: ~p", [Loops]),
    true = maps:get(<<"ErlangEventLoop">>, Loops, 0) > 0,
    %% The stdlib loop class itself never runs: every selector loop is ours.
    0 = maps:get(<<"_UnixSelectorEventLoop">>, Loops, 0),
    Bad = lists:append([maps:get(<<"failures">>, S) ++ maps:get(<<"errors">>, S)
                        || S <- Summaries]),
    case Bad of
        [] -> ok;
        _ -> ct:fail("~b failed: ~p", [length(Bad), [Id || {Id, _} <- Bad]])
    end.

summary(Module) ->
    {ok, S} = py:call(run_cpython_asyncio, run, [Module], #{}, ?MODULE_TIMEOUT),
    #{<<"ran">> := Ran, <<"skipped">> := Skipped, <<"seconds">> := Secs,
      <<"failures">> := Failures, <<"errors">> := Errors} = S,
    ct:log("~s: ran ~b in ~p s, ~b skipped, ~b failures, ~b errors",
           [Module, Ran, Secs, length(Skipped), length(Failures), length(Errors)]),
    _ = [ct:log("skipped ~ts: ~ts", [Id, Why]) || {Id, Why} <- Skipped],
    _ = [ct:log("~ts~n~ts", [Id, Tb]) || {Id, Tb} <- Failures ++ Errors],
    ct:log("unittest output:~n~ts", [maps:get(<<"output">>, S)]),
    true = Ran > 0,
    S.

%% Import test/python/run_cpython_asyncio.py as a module, leaving sys.path alone.
load_runner() ->
    File = filename:join([root(), "test", "python", "run_cpython_asyncio.py"]),
    Code = <<"import importlib.util, sys\n"
             "if 'run_cpython_asyncio' not in sys.modules:\n"
             "    spec = importlib.util.spec_from_file_location('run_cpython_asyncio', path)\n"
             "    mod = importlib.util.module_from_spec(spec)\n"
             "    sys.modules['run_cpython_asyncio'] = mod\n"
             "    spec.loader.exec_module(mod)\n">>,
    ok = py:exec(<<"def _load_runner(path):\n", (indent(Code))/binary>>),
    {ok, _} = py:call('__main__', '_load_runner', [list_to_binary(File)]),
    ok.

indent(Code) ->
    iolist_to_binary([["    ", L, "\n"] || L <- binary:split(Code, <<"\n">>, [global, trim])]).

root() ->
    {ok, Cwd} = file:get_cwd(),
    find_root(Cwd).

find_root("/") -> erlang:error(no_project_root);
find_root(Dir) ->
    case filelib:is_regular(filename:join(Dir, "rebar.config")) andalso
         filelib:is_regular(filename:join([Dir, "test", "python", "run_cpython_asyncio.py"])) of
        true -> Dir;
        false -> find_root(filename:dirname(Dir))
    end.
