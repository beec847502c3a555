%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc How an isolated context's child starts: what it imports before its
%% first answer, what it imports later on first use (and that those names
%% still work), the launcher that sets PR_SET_PDEATHSIG (priv/py_child_exec)
%% and the errors of a `python' option it cannot run.
-module(py_isolated_start_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([start_imports/1, lazy_names_work/1, tracing_in_child/1, pdeathsig/1,
         python_not_runnable/1, zygote_child_is_current/1, no_socket_files_left/1]).

%% Modules a child does not import before it answers, unless the
%% interpreter's own start-up (site, .pth files) did.
-define(HEAVY, [<<"typing">>, <<"enum">>, <<"re">>, <<"socket">>, <<"signal">>,
                <<"ctypes">>, <<"selectors">>, <<"contextlib">>, <<"asyncio">>,
                <<"logging">>, <<"erlang._tracing">>, <<"erlang._schedule">>,
                <<"erlang._shared_dict">>]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [start_imports, lazy_names_work, tracing_in_child, pdeathsig, python_not_runnable,
     zygote_child_is_current, no_socket_files_left].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok.

%% Cases.

start_imports(_Config) ->
    doc("After its first answer a child has imported none of typing, enum, re, the "
        "socket, signal and ctypes modules, asyncio, logging, erlang's tracing, "
        "schedule or shared dict modules, beyond what the same interpreter imports "
        "for `python -c pass'."),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    {ok, Loaded} = py:eval(Ctx, <<"sorted(__import__('sys').modules)">>),
    {ok, #{executable := Exe}} = py_context:child_info(Ctx),
    ok = py_context:stop(Ctx),
    Baseline = interpreter_modules(Exe),
    true = lists:member(<<"erlang._isolated">>, Loaded),
    Extra = [M || M <- ?HEAVY, lists:member(M, Loaded), not lists:member(M, Baseline)],
    ct:comment("not imported by site here: ~ts",
               [lists:join(" ", [M || M <- ?HEAVY, not lists:member(M, Baseline)])]),
    [] = Extra.

lazy_names_work(_Config) ->
    doc("The names erlang imports on first use resolve in a child (attribute, "
        "`from erlang import', dir) to the objects of their modules."),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "from erlang import SharedDict, schedule_py, ScheduleMarker\n"
                        "from erlang import InlineScheduleMarker, consume_time_slice\n"
                        "from erlang import _schedule, _shared_dict\n"
                        "ok = (SharedDict is _shared_dict.SharedDict\n"
                        "      and erlang.schedule is _schedule.schedule\n"
                        "      and isinstance(schedule_py('m', 'f'), ScheduleMarker)\n"
                        "      and issubclass(InlineScheduleMarker, ScheduleMarker)\n"
                        "      and isinstance(consume_time_slice(1), bool)\n"
                        "      and {'SharedDict', 'schedule', 'trace'} <= set(dir(erlang)))\n">>),
    {ok, true} = py:eval(Ctx, <<"ok">>),
    %% a shared dict made in the VM, read in the child through the lazy name
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"k">>, 1),
    {ok, 1} = py:eval(Ctx, <<"erlang.SharedDict(h)['k']">>, #{h => SD}),
    ok = py_context:stop(Ctx).

tracing_in_child(_Config) ->
    doc("A child started with tracing on records spans (erlang._tracing imported to "
        "turn it on); with tracing off it starts without the module, and "
        "`erlang.trace' still imports it on first use."),
    ok = py:disable_tracing(),
    {ok, Off} = py_context:new(#{mode => isolated}),
    {ok, false} = py:eval(Off, <<"'erlang._tracing' in __import__('sys').modules">>),
    ok = py:exec(Off, <<"import erlang\n"
                        "from erlang import _tracing\n"
                        "ok = erlang.trace is _tracing.trace and not _tracing.is_enabled()\n">>),
    {ok, true} = py:eval(Off, <<"ok">>),
    ok = py:enable_tracing(),
    try
        {ok, On} = py_context:new(#{mode => isolated}),
        {ok, true} = py:eval(On, <<"__import__('sys').modules['erlang._tracing'].is_enabled()">>),
        ok = py_context:stop(On)
    after
        ok = py:disable_tracing()
    end,
    ok = py_context:stop(Off).

pdeathsig(_Config) ->
    doc("A child started by the port, and one forked from a zygote, have "
        "PR_SET_PDEATHSIG set to SIGKILL (priv/py_child_exec; _child.die_with_parent)."),
    Get = <<"import ctypes\n"
            "sig = ctypes.c_int(-1)\n"
            "ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(sig), 0, 0, 0)\n"
            "pdeathsig = sig.value\n">>,  %% PR_GET_PDEATHSIG
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    ok = py:exec(Ctx, Get),
    {ok, 9} = py:eval(Ctx, <<"pdeathsig">>),
    ok = py_context:stop(Ctx),
    {ok, Z} = py_zygote:start(#{}),
    {ok, 9} = py_zygote:run(Z, fun(C) -> ok = py:exec(C, Get), py:eval(C, <<"pdeathsig">>) end),
    ok = py_zygote:stop(Z).

python_not_runnable(Config) ->
    doc("A `python' that is not there, or not executable, gives the error open_port "
        "would (the launcher runs it): {child_start_failed, enoent | eacces}."),
    Dir = ?config(priv_dir, Config),
    NotExe = filename:join(Dir, "not_executable"),
    ok = file:write_file(NotExe, <<"#!/bin/sh\n">>),
    ok = file:change_mode(NotExe, 8#644),
    {error, {child_start_failed, enoent}} =
        py_context:new(#{mode => isolated, python => filename:join(Dir, "no_such_python")}),
    {error, {child_start_failed, eacces}} =
        py_context:new(#{mode => isolated, python => NotExe}),
    {error, {child_start_failed, eacces}} = py_context:new(#{mode => isolated, python => Dir}),
    {error, {child_exited_at_start, {exit, 1}, _}} =
        py_context:new(#{mode => isolated, python => "/bin/false"}).

zygote_child_is_current(_Config) ->
    doc("In a child forked from a zygote, erlang._isolated.current is the child's own "
        "Child (the spare's warm-up Child is dropped), serving this context."),
    {ok, Z} = py_zygote:start(#{}),
    {ok, Ctx} = py_context:new(#{mode => isolated, zygote => Z}),
    {ok, Server} = py:eval(Ctx, <<"__import__('sys').modules['erlang._isolated'].current.server">>),
    ?assertEqual(Ctx, Server),
    ok = py_context:stop(Ctx),
    ok = py_zygote:stop(Z).

no_socket_files_left(_Config) ->
    doc("The sockets' paths are deleted once the child is connected, or the start "
        "failed: a started context, a zygote's child, a child that exits at start and "
        "a python that cannot run leave nothing in the private directory."),
    Dir = filename:join(case os:getenv("TMPDIR") of
                            T when T =:= false; T =:= "" -> "/tmp";
                            T -> T
                        end, "erlang_python." ++ os:getpid()),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    {ok, []} = file:list_dir(Dir),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    ok = py_context:stop(Ctx),
    {ok, Z} = py_zygote:start(#{}),
    {ok, 2} = py_zygote:run(Z, fun(C) -> py:eval(C, <<"1 + 1">>) end),
    {ok, []} = file:list_dir(Dir),
    ok = py_zygote:stop(Z),
    {error, {child_exited_at_start, _, _}} =
        py_context:new(#{mode => isolated, python => "/bin/false"}),
    {error, {child_start_failed, enoent}} =
        py_context:new(#{mode => isolated, python => "/no/such/python"}),
    {ok, []} = file:list_dir(Dir).

%% Helpers.

doc(Text) ->
    ct:comment("~ts", [Text]).

%% The modules `Exe -c pass' has imported (with priv/python on its path, as a child).
interpreter_modules(Exe) ->
    PyDir = filename:join(code:priv_dir(erlang_python), "python"),
    Port = open_port({spawn_executable, Exe},
                     [{args, ["-c", "import sys; print(' '.join(sorted(sys.modules)))"]},
                      {env, [{"PYTHONPATH", PyDir}]}, binary, exit_status, use_stdio,
                      stderr_to_stdout, hide]),
    Out = collect(Port, <<>>),
    binary:split(string:trim(Out), <<" ">>, [global]).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, 0}} -> Acc
    after 30000 -> error({timeout, Acc})
    end.
