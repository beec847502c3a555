%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Own-GIL contexts (`py_context:new(#{mode => owngil})', Python
%% 3.12+): everything a worker context does, in a sub-interpreter with its
%% own GIL; extension modules off the allow-list refused; churn without
%% growth. On 3.11 the mode is a clear error and the rest is skipped.
-module(py_owngil_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([mode_on_311/1, call_eval_exec/1, namespaces/1, conversion/1, callbacks/1,
         send_and_stream/1, timeouts/1, interrupt/1, sandbox/1, allowed_modules/1,
         allowed_modules_side_by_side/1, fds_side_by_side/1, refused_import/1,
         refs_stay_home/1, churn/1]).

all() ->
    [mode_on_311, call_eval_exec, namespaces, conversion, callbacks, send_and_stream,
     timeouts, interrupt, sandbox, allowed_modules, allowed_modules_side_by_side,
     fds_side_by_side, refused_import, refs_stay_home, churn].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, Version} = py:eval(<<"tuple(__import__('sys').version_info[:2])">>),
    [{py_version, Version}, {usage_dir, python_dir()} | Config].

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(mode_on_311, Config) ->
    Config;
init_per_testcase(_Case, Config) ->
    case ?config(py_version, Config) >= {3, 12} of
        true ->
            {ok, Ctx} = py_context:new(#{mode => owngil}),
            [{ctx, Ctx} | Config];
        false ->
            {skip, "own-GIL sub-interpreters need Python 3.12+"}
    end.

end_per_testcase(_Case, Config) ->
    case ?config(ctx, Config) of
        undefined -> ok;
        Ctx -> _ = py_context:stop(Ctx), ok
    end.

%% Cases.

mode_on_311(Config) ->
    doc("Before Python 3.12 an own-GIL context is a clear error, never a crash; from "
        "3.12 on it starts and answers."),
    case ?config(py_version, Config) of
        V when V < {3, 12} ->
            {error, {owngil_unsupported, _}} = py_context:new(#{mode => owngil});
        _ ->
            {ok, Ctx} = py_context:new(#{mode => owngil}),
            {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
            ok = py_context:stop(Ctx)
    end.

call_eval_exec(Config) ->
    doc("call/eval/exec with kwargs, locals and errors run in the sub-interpreter, which "
        "is not the main one."),
    Ctx = ?config(ctx, Config),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    {ok, <<"{\"a\": 1}">>} = py:call(Ctx, json, dumps, [#{a => 1}], #{kwargs => #{sort_keys => true}}),
    {ok, 25} = py:eval(Ctx, <<"x * y">>, #{x => 5, y => 5}),
    ok = py:exec(Ctx, <<"import sys\nmain = sys.modules['__main__']\n">>),
    {ok, false} = py:eval(Ctx, <<"__import__('erlang')._owngil.ExtensionGuard is None">>),
    {ok, true} = py:eval(Ctx, <<"any(type(f).__name__ == 'ExtensionGuard' "
                                "for f in __import__('sys').meta_path)">>),
    {ok, false} = py:eval(<<"any(type(f).__name__ == 'ExtensionGuard' "
                            "for f in __import__('sys').meta_path)">>),
    {error, {'ZeroDivisionError', _}} = py:eval(Ctx, <<"1/0">>),
    {error, {'NameError', _}} = py:eval(Ctx, <<"undefined_name">>).

namespaces(Config) ->
    doc("Each Erlang process has its own globals on an own-GIL context too."),
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"mine = 1">>),
    {ok, 1} = py:eval(Ctx, <<"mine">>),
    Other = py_test_lib:in_new_process(fun() -> py:eval(Ctx, <<"mine">>) end),
    {error, {'NameError', _}} = Other.

conversion(Config) ->
    doc("The same lossless conversion: atoms, pids, refs, big ints, bytes, nested terms, "
        "a 10,000-key dict, and values no type maps come back as the same term."),
    Ctx = ?config(ctx, Config),
    Ref = make_ref(),
    Big = 1 bsl 200,
    Term = {hello, self(), Ref, Big, <<255, 0>>, [1.5, <<"text">>, #{k => [none]}], fun() -> ok end},
    {ok, Term} = py:call(Ctx, builtins, tuple, [tuple_to_list(Term)]),
    {ok, <<"Atom">>} = py:eval(Ctx, <<"type(a).__name__">>, #{a => hello}),
    Map = maps:from_list([{<<"key_", (integer_to_binary(I))/binary>>, I} || I <- lists:seq(1, 10000)]),
    ok = py:exec(Ctx, <<"def ident(x):\n    return x\n">>),
    {ok, Map} = py:call(Ctx, '__main__', ident, [Map]),
    Bytes = binary:copy(<<7>>, 1 bsl 20),
    {ok, Bytes} = py:call(Ctx, '__main__', ident, [{bytes, Bytes}]).

callbacks(Config) ->
    doc("erlang.call runs the registered function and returns its value, reentrantly: "
        "the function calls Python again on the same own-GIL context, in the caller's "
        "namespace."),
    Ctx = ?config(ctx, Config),
    ok = py:register_function(og_add, fun([A, B]) -> A + B end),
    ok = py:register_function(og_again, fun([N]) -> py:call(Ctx, '__main__', down, [N]) end),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def down(n):\n"
                        "    return n if n >= 5 else erlang.og_again(n + 1)\n">>),
    {ok, 5} = py:eval(Ctx, <<"__import__('erlang').call('og_add', 2, 3)">>),
    {ok, {ok, {ok, {ok, {ok, 5}}}}} = py:call(Ctx, '__main__', down, [1]),
    ok = py:unregister_function(og_add),
    ok = py:unregister_function(og_again).

send_and_stream(Config) ->
    doc("erlang.send reaches a pid; a process bound to the context streams a generator."),
    Ctx = ?config(ctx, Config),
    Self = self(),
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').send(p, ('hi', 1))">>, #{p => Self}),
    receive {<<"hi">>, 1} -> ok after 5000 -> ct:fail(no_message) end,
    Items = py_test_lib:in_new_process(fun() ->
                                               ok = py_context_router:bind_context(Ctx),
                                               py:stream_eval(<<"(x * x for x in range(5))">>)
                                       end),
    {ok, [0, 1, 4, 9, 16]} = Items.

timeouts(Config) ->
    doc("A timeout interrupts a busy loop and a sleep in the sub-interpreter; the context "
        "answers at once after."),
    Ctx = ?config(ctx, Config),
    {error, timeout} = py:exec(Ctx, <<"while True: pass">>, #{timeout => 200}),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    {error, timeout} = py:call(Ctx, time, sleep, [5], #{timeout => 200}),
    T0 = erlang:monotonic_time(millisecond),
    {ok, 3} = py:eval(Ctx, <<"1 + 2">>),
    true = erlang:monotonic_time(millisecond) - T0 < 1000.

interrupt(Config) ->
    doc("py_context:interrupt/1 stops the running request of an own-GIL context: its "
        "caller gets {error, interrupted}."),
    Ctx = ?config(ctx, Config),
    Self = self(),
    Spin = <<"import erlang\n"
             "def spin(p):\n"
             "    erlang.send(p, erlang.Atom('spinning'))\n"
             "    while True:\n"
             "        pass\n">>,
    Caller = spawn_link(fun() ->
                                ok = py:exec(Ctx, Spin),
                                Self ! {result, py:call(Ctx, '__main__', spin, [Self])}
                        end),
    receive spinning -> ok after 10000 -> ct:fail(not_spinning) end,
    ok = py_context:interrupt(Ctx),
    receive {result, R} -> {error, interrupted} = R after 5000 -> ct:fail(not_interrupted) end,
    unlink(Caller),
    not_running = py_context:interrupt(Ctx),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>).

sandbox(Config) ->
    doc("The sandbox holds in the sub-interpreter: no fork, no process, no os._exit."),
    Ctx = ?config(ctx, Config),
    {error, {'RuntimeError', _}} = py:eval(Ctx, <<"__import__('os').fork()">>),
    {error, {'RuntimeError', _}} = py:eval(Ctx, <<"__import__('os').system('true')">>),
    {error, {'RuntimeError', _}} = py:eval(Ctx, <<"__import__('os')._exit(0)">>),
    {ok, true} = py:call(Ctx, 'erlang._sandbox', is_sandboxed, []).

allowed_modules(Config) ->
    doc("Every extension module on this Python's allow-list imports and works in an "
        "own-GIL context (the usage lines of test/python/owngil_usage.py)."),
    Ctx = ?config(ctx, Config),
    Usage = usage(Ctx, Config),
    {ok, Allowed} = py:eval(Ctx, <<"sorted(__import__('erlang._owngil', fromlist=['x'])"
                                   ".safe_extensions())">>),
    true = length(Allowed) > 10,
    [ok = check_usage(Ctx, Name, maps:get(Name, Usage)) || Name <- Allowed],
    ok.

allowed_modules_side_by_side(Config) ->
    doc("Two own-GIL contexts use every allowed module at the same time, 20 rounds."),
    Ctx1 = ?config(ctx, Config),
    {ok, Ctx2} = py_context:new(#{mode => owngil}),
    Usage = usage(Ctx1, Config),
    {ok, Allowed} = py:eval(Ctx1, <<"sorted(__import__('erlang._owngil', fromlist=['x'])"
                                    ".safe_extensions())">>),
    Self = self(),
    Run = fun(Ctx) ->
                  spawn_link(fun() ->
                                     [ok = check_usage(Ctx, N, maps:get(N, Usage))
                                      || _ <- lists:seq(1, 20), N <- Allowed],
                                     Self ! {done, Ctx}
                             end)
          end,
    _ = [Run(C) || C <- [Ctx1, Ctx2]],
    [receive {done, C} -> ok after 120000 -> ct:fail({not_done, C}) end || C <- [Ctx1, Ctx2]],
    ok = py_context:stop(Ctx2).

fds_side_by_side(Config) ->
    doc("Two own-GIL contexts open and close descriptors at the same time (so each "
        "reuses the numbers the other freed): the sandbox never takes one of them for "
        "the VM's and refuses its close."),
    Ctx1 = ?config(ctx, Config),
    {ok, Ctx2} = py_context:new(#{mode => owngil}),
    Code = <<"import os\n"
             "def churn(n):\n"
             "    for _ in range(n):\n"
             "        r, w = os.pipe()\n"
             "        os.close(r)\n"
             "        os.close(w)\n"
             "    return n\n">>,
    Self = self(),
    _ = [spawn_link(fun() ->
                            ok = py:exec(Ctx, Code),
                            Self ! {done, Ctx, py:call(Ctx, '__main__', churn, [20000])}
                    end) || Ctx <- [Ctx1, Ctx2]],
    [receive {done, C, R} -> {ok, 20000} = R end || C <- [Ctx1, Ctx2]],
    ok = py_context:stop(Ctx2).

refused_import(Config) ->
    doc("An extension module off the allow-list raises ImportError naming it and the way "
        "out; pure-Python fallbacks still import (decimal without _decimal); the same "
        "module imports in a worker context."),
    Ctx = ?config(ctx, Config),
    {error, {'ImportError', Msg}} = py:exec(Ctx, <<"import _decimal">>),
    {match, _} = re:run(Msg, "'_decimal' is not known to be safe.*worker or an isolated"),
    {ok, <<"3.5">>} = py:eval(Ctx, <<"str(__import__('decimal').Decimal('1.5') + 2)">>),
    ok = py:exec(<<"import _decimal">>).

refs_stay_home(Config) ->
    doc("An object reference from an own-GIL context works there, is refused by another "
        "interpreter, and is refused once its context has stopped."),
    Ctx = ?config(ctx, Config),
    {ok, Ref} = py:call(Ctx, collections, deque, [[1, 2]], #{return => ref}),
    true = py:is_ref(Ref),
    {ok, 2} = py:call(Ctx, builtins, len, [Ref]),
    {error, {'ValueError', _}} = py:call(builtins, len, [Ref]),
    ok = py_context:stop(Ctx),
    {error, _} = py:call(builtins, len, [Ref]).

churn(Config) ->
    doc("100 own-GIL contexts made, used (allowed modules) and stopped: no crash, and the "
        "OS process's resident memory ends within 64 MB of where it began."),
    ok = py_context:stop(?config(ctx, Config)),
    Round = fun() ->
                    {ok, C} = py_context:new(#{mode => owngil}),
                    {ok, <<"[1]">>} = py:call(C, json, dumps, [[1]]),
                    {ok, _} = py:eval(C, <<"__import__('zlib').crc32(b'x') + "
                                           "__import__('math').floor(2.5)">>),
                    ok = py_context:stop(C)
            end,
    [Round() || _ <- lists:seq(1, 10)],
    Before = rss(),
    [Round() || _ <- lists:seq(1, 100)],
    After = rss(),
    ct:pal("RSS ~p -> ~p MB", [Before div 1048576, After div 1048576]),
    true = After - Before < 64 * 1048576.

%% Internal.

doc(Text) ->
    ct:comment("~ts", [Text]).

%% test/python, beside this suite's source (or its copy under _build).
python_dir() ->
    Source = proplists:get_value(source, ?MODULE:module_info(compile)),
    Candidates = [filename:join(filename:dirname(D), "python")
                  || D <- [Source, code:which(?MODULE)], is_list(D)],
    case [D || D <- Candidates, filelib:is_regular(filename:join(D, "owngil_usage.py"))] of
        [Dir | _] -> Dir;
        [] -> erlang:error({no_python_test_dir, Candidates})
    end.

%% The usage lines of owngil_usage.py, read in the main interpreter.
usage(_Ctx, Config) ->
    Dir = ?config(usage_dir, Config),
    {ok, Usage} = py:eval(<<"__import__('runpy').run_path(p)['USAGE']">>,
                          #{p => list_to_binary(filename:join(Dir, "owngil_usage.py"))}),
    Usage.

check_usage(Ctx, Name, Code) ->
    case py:exec(Ctx, Code) of
        ok -> ok;
        Error -> ct:fail({Name, Error})
    end.

rss() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.
