%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The pytest suite of the Python package (test/python), run inside the
%% embedded interpreter.
%%
%% One group per `test/python/test_*.py' file, found at run time, each with
%% the single case `pytest', so a new file needs no change here. The file
%% groups run twice: in group `fresh' on the interpreter the application
%% started, and in group `restarted' after `application:stop/start', i.e.
%% in a second interpreter of the same OS process (CPython state that does not
%% survive Py_FinalizeEx shows up there). pytest's report goes to the case's
%% log (`ct:log'), and to the console as well when the file fails.
%%
%% pytest runs with `--capture=sys' (fd capture would `dup2' over the VM's own
%% stdout and stderr), without the faulthandler plugin (it installs signal
%% handlers in the VM process), without the cache provider (it writes
%% `.pytest_cache') and with `--import-mode=importlib' (which leaves
%% `sys.path' of the shared interpreter alone).
-module(python_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).
-export([has_test_files/1, pytest/1, memory_stats_after_restart/1]).

-define(PYTEST_TIMEOUT, 120000).

%% Defined in the case's own namespace; returns (exit code, report).
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
     {restarted, [], [memory_stats_after_restart | Files]}
     | [{G, [], [pytest]} || G <- group_names()]].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_group(fresh, Config) ->
    Config;
init_per_group(restarted, Config) ->
    %% Load tracemalloc in the first interpreter, whatever ran before: that
    %% is what CPython 3.11 cannot do a second time in one process.
    ok = py:exec(<<"import tracemalloc">>),
    ok = application:stop(erlang_python),
    {ok, _} = application:ensure_all_started(erlang_python),
    Config;
init_per_group(Group, Config) ->
    [{pytest_file, file_of(Group)} | Config].

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
     "interpreter and passes only when pytest exits with 0 (every test "
     "passed or was skipped); pytest's report is in this case's log."];
pytest(Config) ->
    File = ?config(pytest_file, Config),
    ok = py:exec(?RUNNER),
    Args = [unicode:characters_to_binary(File) | ?ARGS],
    {ok, {Code, Report}} = py:call('__main__', run_pytest, [Args], #{}, ?PYTEST_TIMEOUT),
    ct:log("pytest ~ts (exit ~p):~n~ts", [File, Code, Report]),
    case Code of
        0 -> ok;
        _ ->
            ct:pal("pytest ~ts failed (exit ~p):~n~ts", [File, Code, Report]),
            ct:fail({pytest_exit, Code, File})
    end.

memory_stats_after_restart(doc) ->
    ["py:memory_stats/0 answers in an interpreter started after the first "
     "was finalized (CPython 3.11 cannot import tracemalloc there), and "
     "leaves out the tracemalloc keys when it does not trace."];
memory_stats_after_restart(_Config) ->
    {ok, Stats} = py:memory_stats(),
    [<<"gc_count">>, <<"gc_stats">>, <<"gc_threshold">>] = lists:sort(maps:keys(Stats)),
    ok.

%% Internal.

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
