%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The pytest suite of the Python package (test/python), run inside the
%% embedded interpreter.
%%
%% One group per `test/python/test_*.py' file, found at run time, each with
%% the single case `pytest', so a new file needs no change here. The file
%% groups run twice:
%%
%% - in group `fresh', on this node, in the interpreter the application
%%   started;
%% - in group `restarted', on a peer node, after `application:stop/start'
%%   there, i.e. in a second interpreter of the same OS process. CPython
%%   state that does not survive Py_FinalizeEx shows up here; the peer keeps
%%   a crash of that VM from taking the test run down with it.
%%
%% pytest's report goes to the case's log (`ct:log'), and to the console as
%% well when the file fails. pytest runs with `--capture=sys' (fd capture
%% would `dup2' over the VM's own stdout and stderr), without the faulthandler
%% plugin (it installs signal handlers in the VM process), without the cache
%% provider (it writes `.pytest_cache') and with `--import-mode=importlib'
%% (which leaves `sys.path' of the shared interpreter alone).
-module(python_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).
-export([has_test_files/1, pytest/1, restart_application/1,
         memory_stats_after_restart/1]).
%% Run on the peer node.
-export([run_pytest/1, first_life/1, restart/0]).

-define(PYTEST_TIMEOUT, 120000).

%% Defined in the calling process's own namespace; returns (exit code, report).
-define(RUNNER, <<"
def run_pytest(args):
    import contextlib, io, sys
    import pytest
    if not getattr(sys, 'argv', None):
        sys.argv = ['pytest']  # argparse reads sys.argv[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(list(args))
    return int(code), out.getvalue()
">>).

-define(ARGS, [<<"-q">>, <<"-p">>, <<"no:cacheprovider">>, <<"-p">>, <<"no:faulthandler">>,
               <<"--capture=sys">>, <<"--import-mode=importlib">>]).

suite() ->
    [{timetrap, {seconds, 300}}].

all() ->
    [has_test_files, {group, fresh}, {group, restarted}].

groups() ->
    Files = [{group, G} || G <- group_names()],
    [{fresh, [], Files},
     {restarted, [], [restart_application, memory_stats_after_restart | Files]}
     | [{G, [], [pytest]} || G <- group_names()]].

init_per_suite(Config) ->
    {ok, Started} = application:ensure_all_started(erlang_python),
    [{started, Started} | Config].

%% Stop only what this suite started (restarting the interpreter in one OS
%% process is what group restarted tests, on a peer node).
end_per_suite(Config) ->
    _ = [application:stop(App) || App <- lists:reverse(?config(started, Config))],
    ok.

init_per_group(fresh, Config) ->
    Config;
init_per_group(restarted, Config) ->
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [py, ?MODULE]]),
    {ok, Peer, _} = peer:start(#{connection => 0,
                                 args => lists:append([["-pa", P] || P <- Paths])}),
    {ok, _} = peer:call(Peer, application, ensure_all_started, [erlang_python]),
    [{peer, Peer} | Config];
init_per_group(Group, Config) ->
    [{pytest_file, file_of(Group)} | Config].

end_per_group(restarted, Config) ->
    catch peer:stop(?config(peer, Config)),
    ok;
end_per_group(_Group, _Config) ->
    ok.

%% Cases.

has_test_files(doc) ->
    ["test/python holds test_*.py files, so an empty directory (or a wrong "
     "path) cannot make this suite pass vacuously."];
has_test_files(_Config) ->
    [_ | _] = test_files(),
    ok.

pytest(doc) ->
    ["Runs the group's test/python file with pytest inside the embedded "
     "interpreter (of the peer node in group restarted) and passes only when "
     "pytest exits with 0 (every test passed or was skipped); pytest's "
     "report is in this case's log."];
pytest(Config) ->
    File = ?config(pytest_file, Config),
    {Code, Report} = on_node(Config, run_pytest, [File], ?PYTEST_TIMEOUT),
    ct:log("pytest ~ts (exit ~p):~n~ts", [File, Code, Report]),
    case Code of
        0 -> ok;
        _ ->
            ct:pal("pytest ~ts failed (exit ~p):~n~ts", [File, Code, Report]),
            ct:fail({pytest_exit, Code, File})
    end.

restart_application(doc) ->
    ["On the peer: after pytest ran over test/python and imported tracemalloc "
     "and decimal (modules whose C state CPython 3.11 and 3.12 do not fully "
     "reset), application:stop/start (Py_FinalizeEx, then a new interpreter "
     "in the same OS process) succeeds and the new interpreter imports both "
     "again and evaluates code."];
restart_application(Config) ->
    {0, _} = on_node(Config, first_life, [python_dir()], ?PYTEST_TIMEOUT),
    Expected = [{eval, {ok, 2}}, {import_decimal, ok}, {import_tracemalloc, ok}],
    case on_node(Config, restart, [], 60000) of
        Expected -> ok;
        Got -> ct:fail({second_interpreter, [R || R <- Got, not lists:member(R, Expected)]})
    end.

memory_stats_after_restart(doc) ->
    ["On the peer, after the restart: py:memory_stats/0 answers with its "
     "atom keys (gc and the allocator's alloc_*), and leaves out the "
     "tracemalloc keys since tracemalloc does not trace."];
memory_stats_after_restart(Config) ->
    {ok, Stats} = on_node(Config, py, memory_stats, [], 60000),
    [gc_count, gc_stats, gc_threshold] =
        lists:sort([K || K <- maps:keys(Stats),
                         not lists:prefix("alloc_", atom_to_list(K))]),
    ok.

%% Run on the peer node (or on this one).

%% @doc pytest on one file or directory in this process's namespace.
run_pytest(File) ->
    ok = py:exec(?RUNNER),
    Args = [unicode:characters_to_binary(File) | ?ARGS],
    {ok, {Code, Report}} = py:call('__main__', run_pytest, [Args], #{}, ?PYTEST_TIMEOUT),
    {Code, Report}.

%% @doc What the first interpreter does before the restart.
first_life(Dir) ->
    ok = py:exec(<<"import tracemalloc, decimal">>),
    run_pytest(Dir).

%% @doc Stop and start the application, then use the second interpreter.
%% (CPython 3.12.1 aborts the VM at the second `import decimal'.)
restart() ->
    ok = application:stop(erlang_python),
    {ok, _} = application:ensure_all_started(erlang_python),
    [{eval, py:eval(<<"1 + 1">>)},
     {import_decimal, py:exec(<<"import decimal">>)},
     {import_tracemalloc, py:exec(<<"import tracemalloc">>)}].

%% Internal.

%% Apply on the group's peer if it has one, else here; a peer that died (the
%% VM aborted) fails the case with the reason.
on_node(Config, F, A, Timeout) ->
    on_node(Config, ?MODULE, F, A, Timeout).

on_node(Config, M, F, A, Timeout) ->
    case proplists:get_value(peer, Config) of
        undefined ->
            apply(M, F, A);
        Peer ->
            try peer:call(Peer, M, F, A, Timeout)
            catch
                exit:{noproc, _} -> ct:fail({peer_vm_died_earlier, {M, F, A}});
                exit:Reason -> ct:fail({peer_vm_died, Reason, {M, F, A}})
            end
    end.

%% test/python next to this suite's source (rebar3 compiles it in place; it
%% also copies test/ to _build, which may keep files deleted since).
python_dir() ->
    Source = proplists:get_value(source, ?MODULE:module_info(compile)),
    Candidates = [filename:join(filename:dirname(D), "python")
                  || D <- [Source, code:which(?MODULE)], is_list(D)],
    case [D || D <- Candidates, filelib:is_dir(D)] of
        [Dir | _] -> Dir;
        [] -> erlang:error({no_python_test_dir, Candidates})
    end.

test_files() ->
    lists:sort(filelib:wildcard(filename:join(python_dir(), "test_*.py"))).

group_names() ->
    [list_to_atom(filename:basename(F, ".py")) || F <- test_files()].

file_of(Group) ->
    filename:join(python_dir(), atom_to_list(Group) ++ ".py").
