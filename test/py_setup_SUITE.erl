%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The registry every context applies (py_setup): paths and imports
%% (py_import), preload code (py_preload, `py_context:new(#{preload => _})'),
%% reload, each applied to the contexts that run and to the ones started
%% afterwards (own-GIL ones too, Python 3.12+); the app env `paths' and
%% `imports'; and the memory operations (tracemalloc, gc, memory_limit).
-module(py_setup_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([paths/1, imports/1, import_errors/1, preload/1, context_preload/1,
         preload_errors/1, reload/1, app_env/1, version/1, tracemalloc/1, gc/1,
         memory_limit/1]).

all() ->
    [paths, imports, import_errors, preload, context_preload, preload_errors, reload,
     app_env, version, tracemalloc, gc, memory_limit].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Mode = case py:subinterp_supported() of
               true -> owngil;
               false -> worker
           end,
    [{later_mode, Mode} | Config].

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_path(Dir),
    [{dir, Dir} | Config].

end_per_testcase(_Case, _Config) ->
    ok = py_import:clear_paths(),
    ok = py_import:clear_imports(),
    ok = py_preload:clear_code().

%% Cases.

paths(Config) ->
    doc("add_path/1 puts a directory first on sys.path in the running contexts and in "
        "those started later, in order; clear_paths/0 takes them out again."),
    Dir = ?config(dir, Config),
    A = filename:join(Dir, "a"), B = filename:join(Dir, "b"),
    ok = write(filename:join(A, "ops_paths_mod.py"), <<"WHERE = 'a'\n">>),
    ok = write(filename:join(B, "ops_paths_mod.py"), <<"WHERE = 'b'\n">>),
    Probe = <<"__import__('importlib.util').util.find_spec('ops_paths_mod') is not None">>,
    {ok, false} = py:eval(Probe),
    ok = py_import:add_path(A),
    ok = py_import:add_paths([list_to_binary(B), A]),
    [ABin, BBin] = py_import:all_paths(),
    ABin = list_to_binary(A), BBin = list_to_binary(B),
    true = py_import:is_path_added(A),
    false = py_import:is_path_added(filename:join(Dir, "c")),
    {ok, <<"a">>} = py:eval(<<"__import__('ops_paths_mod').WHERE">>),
    {ok, [ABin, BBin]} = py:eval(<<"__import__('sys').path[:2]">>),
    in_later_context(Config, fun(Ctx) ->
                                     {ok, [ABin, BBin]} = py:eval(Ctx, <<"__import__('sys').path[:2]">>),
                                     {ok, <<"a">>} = py:eval(Ctx, <<"__import__('ops_paths_mod').WHERE">>)
                             end),
    ok = py_import:clear_paths(),
    [] = py_import:all_paths(),
    {ok, false} = py:eval(<<"any(p in __import__('sys').path for p in (a, b))">>,
                          #{a => ABin, b => BBin}).

imports(Config) ->
    doc("ensure_imported/1,2 import a module in every running context and in those "
        "started later; the registry answers as 4.x's does."),
    Dir = ?config(dir, Config),
    ok = write(filename:join(Dir, "ops_imp_mod.py"), <<"def hello():\n    return 'hi'\n">>),
    ok = py_import:add_path(Dir),
    InModules = <<"'ops_imp_mod' in __import__('sys').modules">>,
    {ok, false} = py:eval(InModules),
    ok = py_import:ensure_imported(ops_imp_mod),
    ok = py_import:ensure_imported(<<"json">>, dumps),
    ok = py_import:ensure_imported("json", "loads"),
    ok = py_import:ensure_imported(json, dumps), %% once in the registry
    {ok, true} = py:eval(InModules),
    in_later_context(Config, fun(Ctx) -> {ok, true} = py:eval(Ctx, InModules) end),
    true = py_import:is_imported(ops_imp_mod),
    true = py_import:is_imported(ops_imp_mod, anything),
    true = py_import:is_imported(json, <<"dumps">>),
    false = py_import:is_imported(json, indent),
    false = py_import:is_imported(math),
    [{<<"ops_imp_mod">>, all}, {<<"json">>, <<"dumps">>}, {<<"json">>, <<"loads">>}] =
        py_import:all_imports(),
    {ok, #{<<"ops_imp_mod">> := [], <<"json">> := [<<"dumps">>, <<"loads">>]}} =
        py_import:import_list(),
    ok = py_import:clear_imports(),
    [] = py_import:all_imports(),
    {ok, #{}} = py_import:import_list(),
    {ok, true} = py:eval(InModules). %% imported modules stay

import_errors(_Config) ->
    doc("A module or function that cannot be imported is an error with the Python "
        "exception, and stays out of the registry; __main__ is refused."),
    {error, {'ModuleNotFoundError', "No module named 'ops_no_such_mod'"}} =
        py_import:ensure_imported(ops_no_such_mod),
    {error, {'AttributeError', _}} = py_import:ensure_imported(json, no_such_function),
    [] = py_import:all_imports(),
    {error, main_not_cacheable} = py_import:ensure_imported('__main__'),
    {error, main_not_cacheable} = py_import:ensure_imported("__main__", f),
    {'EXIT', {{badarg, {module, 42}}, _}} = (catch py_import:ensure_imported(42)),
    {'EXIT', {{badarg, {path, 42}}, _}} = (catch py_import:add_path(42)),
    ok.

preload(Config) ->
    doc("Preload code runs in every running context and in those started later; its "
        "globals seed the namespace of every process made after it; clear_code/0 stops "
        "that."),
    undefined = py_preload:get_code(),
    false = py_preload:has_preload(),
    Code = <<"import json\n"
             "CONFIG = {'debug': True}\n"
             "def shared_helper(x):\n"
             "    return x * 2\n">>,
    ok = py_preload:set_code(Code),
    Code = py_preload:get_code(),
    true = py_preload:has_preload(),
    %% a process whose namespace is new, on a running context
    {ok, [10, true, <<"[1]">>]} = py_test_lib:in_new_process(fun() ->
        py:eval(<<"[shared_helper(5), CONFIG['debug'], json.dumps([1])]">>)
    end),
    in_later_context(Config, fun(Ctx) -> {ok, 10} = py:eval(Ctx, <<"shared_helper(5)">>) end),
    %% each namespace gets its own copy of the globals
    W1 = py_test_lib:worker(), W2 = py_test_lib:worker(),
    ok = py_test_lib:run(W1, fun() -> py:exec(<<"CONFIG = 'mine'">>) end),
    {ok, #{<<"debug">> := true}} = py_test_lib:run(W2, fun() -> py:eval(<<"CONFIG">>) end),
    ok = py_preload:clear_code(),
    false = py_preload:has_preload(),
    {error, {'NameError', _}} = py_test_lib:in_new_process(fun() -> py:eval(<<"shared_helper(1)">>) end),
    %% a namespace made before keeps what it had
    {ok, #{<<"debug">> := true}} = py_test_lib:run(W2, fun() -> py:eval(<<"CONFIG">>) end),
    ok = py_test_lib:stop_worker(W1),
    ok = py_test_lib:stop_worker(W2).

context_preload(Config) ->
    doc("py_context:new(#{preload => Code}) runs the context's own code after the "
        "application's; other contexts do not see it."),
    ok = py_preload:set_code(<<"BASE = 40">>),
    {ok, Ctx} = py_context:new(#{mode => ?config(later_mode, Config),
                                 preload => <<"ANSWER = BASE + 2">>}),
    try
        {ok, 42} = py:eval(Ctx, <<"ANSWER">>),
        ok = py_preload:set_code(<<"BASE = 0">>),
        {ok, 2} = py_test_lib:in_new_process(fun() -> py:eval(Ctx, <<"ANSWER">>) end),
        {error, {'NameError', _}} = py_test_lib:in_new_process(fun() -> py:eval(<<"ANSWER">>) end)
    after
        py_context:stop(Ctx)
    end.

preload_errors(_Config) ->
    doc("Preload code that fails is an error with the Python exception: set_code/1 "
        "keeps the code before it, a context with a failing preload does not start."),
    ok = py_preload:set_code(<<"GOOD = 1">>),
    {error, {'ZeroDivisionError', "division by zero"}} = py_preload:set_code(<<"BAD = 1 / 0">>),
    <<"GOOD = 1">> = py_preload:get_code(),
    {ok, 1} = py_test_lib:in_new_process(fun() -> py:eval(<<"GOOD">>) end),
    {error, {preload_failed, {'SyntaxError', _}}} = py_context:new(#{preload => <<"def (">>}),
    {'EXIT', {{badarg, {preload, 42}}, _}} = (catch py_context:new(#{preload => 42})),
    ok.

reload(Config) ->
    doc("py:reload/1 reloads a module in every interpreter that imported it (the main "
        "one once, own-GIL ones too); a module nobody imported is left alone."),
    Dir = ?config(dir, Config),
    File = filename:join(Dir, "ops_reload_mod.py"),
    ok = write(File, <<"VERSION = 1\n">>),
    ok = py_import:add_path(Dir),
    ok = py_import:ensure_imported(ops_reload_mod),
    in_later_context(Config, fun(Ctx) ->
        {ok, 1} = py:eval(Ctx, <<"__import__('ops_reload_mod').VERSION">>),
        {ok, 1} = py:eval(<<"__import__('ops_reload_mod').VERSION">>),
        ok = write(File, <<"VERSION = 2\nRELOADS = __import__('builtins').__dict__.setdefault("
                           "'_ops_reloads', [])\nRELOADS.append(1)\n">>),
        ok = py:reload(ops_reload_mod),
        {ok, 2} = py:eval(Ctx, <<"__import__('ops_reload_mod').VERSION">>),
        {ok, 2} = py:eval(<<"__import__('ops_reload_mod').VERSION">>),
        %% once in the main interpreter, whatever the number of worker contexts
        {ok, 1} = py:eval(<<"len(__import__('ops_reload_mod').RELOADS)">>)
    end),
    ok = py:reload(ops_never_imported_mod).

app_env(Config) ->
    doc("The app env `paths' and `imports' (`{Module, Func}' or a module) fill the "
        "registry when the application starts, and its contexts apply them."),
    Dir = ?config(dir, Config),
    ok = write(filename:join(Dir, "ops_env_mod.py"), <<"X = 5\n">>),
    ok = application:stop(erlang_python),
    ok = application:set_env(erlang_python, paths, [Dir]),
    ok = application:set_env(erlang_python, imports, [{json, dumps}, ops_env_mod]),
    try
        {ok, _} = application:ensure_all_started(erlang_python),
        [{<<"json">>, <<"dumps">>}, {<<"ops_env_mod">>, all}] = py_import:all_imports(),
        [DirBin] = py_import:all_paths(),
        DirBin = list_to_binary(Dir),
        {ok, true} = py:eval(<<"'ops_env_mod' in __import__('sys').modules">>)
    after
        ok = application:stop(erlang_python),
        ok = application:unset_env(erlang_python, paths),
        ok = application:unset_env(erlang_python, imports),
        {ok, _} = application:ensure_all_started(erlang_python)
    end,
    [] = py_import:all_paths(),
    {ok, false} = py:eval(<<"d in __import__('sys').path">>, #{d => list_to_binary(Dir)}).

version(_Config) ->
    doc("py:version/0 is the embedded Python's sys.version."),
    {ok, V} = py:version(),
    {ok, {Major, Minor, _}} = py_context:python_version(),
    Prefix = iolist_to_binary(io_lib:format("~b.~b.", [Major, Minor])),
    true = binary:longest_common_prefix([V, Prefix]) =:= byte_size(Prefix).

tracemalloc(_Config) ->
    doc("tracemalloc_start/0,1 makes memory_stats/0 report traced memory, which grows "
        "with what Python allocates; tracemalloc_stop/0 ends it."),
    {ok, Before} = py:memory_stats(),
    false = maps:is_key(traced_memory_current, Before),
    ok = py:tracemalloc_start(5),
    try
        {ok, #{traced_memory_current := C0, traced_memory_peak := P0}} = py:memory_stats(),
        true = P0 >= C0,
        ok = py:exec(<<"blob = [bytes(1000) for _ in range(2000)]">>),
        {ok, #{traced_memory_current := C1, traced_memory_peak := P1}} = py:memory_stats(),
        true = C1 - C0 >= 2000 * 1000,
        true = P1 >= C1,
        ok = py:exec(<<"del blob">>),
        {ok, #{traced_memory_current := C2}} = py:memory_stats(),
        true = C2 < C1 - 1000000
    after
        ok = py:tracemalloc_stop()
    end,
    {ok, After} = py:memory_stats(),
    false = maps:is_key(traced_memory_current, After),
    {'EXIT', {{badarg, {nframes, 0}}, _}} = (catch py:tracemalloc_start(0)),
    case py:subinterp_supported() of
        true ->
            {ok, Own} = py_context:new(#{mode => owngil}),
            {error, {'RuntimeError', Why}} =
                py:call(Own, 'erlang._runtime', tracemalloc_start, [1]),
            {match, _} = re:run(Why, "main interpreter"),
            ok = py_context:stop(Own);
        false ->
            ok
    end.

gc(_Config) ->
    doc("py:gc/0,1 collect (cycles included) and return the count; memory_stats/0 has "
        "the 4.x keys."),
    ok = py:exec(<<"import gc\n"
                   "class Node:\n"
                   "    pass\n"
                   "def cycles(n):\n"
                   "    gc.disable()  # py:gc/0 is the collection that finds them\n"
                   "    for _ in range(n):\n"
                   "        a, b = Node(), Node()\n"
                   "        a.other, b.other = b, a\n">>),
    {ok, none} = py:call('__main__', cycles, [100]),
    {ok, N} = py:gc(),
    ok = py:exec(<<"gc.enable()">>),
    true = N >= 200,
    {ok, N0} = py:gc(0),
    true = is_integer(N0),
    {'EXIT', {{badarg, {generation, 3}}, _}} = (catch py:gc(3)),
    {ok, #{gc_stats := [#{<<"collected">> := _, <<"collections">> := _,
                          <<"uncollectable">> := _} | _],
           gc_count := {_, _, _}, gc_threshold := {_, _, _}}} = py:memory_stats().

memory_limit(_Config) ->
    doc("memory_limit gives erlang_python 4.x's error shapes where the kind of context "
        "has no limit: worker and own-GIL contexts here."),
    {error, memory_limit_requires_owngil} = py_context:new(#{memory_limit => 1 bsl 20}),
    {error, {invalid_memory_limit, lots}} = py_context:new(#{memory_limit => lots}),
    case py:subinterp_supported() of
        true ->
            {error, memory_limits_disabled} =
                py_context:new(#{mode => owngil, memory_limit => 1 bsl 20});
        false ->
            ok
    end.

%% Helpers.

%% Run Fun on a context started now (an own-GIL one where there are).
in_later_context(Config, Fun) ->
    {ok, Ctx} = py_context:new(#{mode => ?config(later_mode, Config)}),
    try Fun(Ctx)
    after py_context:stop(Ctx)
    end.

write(File, Bin) ->
    ok = filelib:ensure_dir(File),
    file:write_file(File, Bin).

doc(Text) ->
    ct:comment("~ts", [Text]).
