%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The public API of `py': calls, evaluation, namespaces, async calls,
%% errors, argument checks and introspection.
%%
%% Every case runs in its own process, so it starts with a fresh Python
%% namespace. The uncontrollable timeout case (a C loop that cannot be
%% interrupted) runs last and waits for its context to be free again.
-module(py_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("stdlib/include/assert.hrl").

all() ->
    [documented_examples, module_and_function_names, call_kwargs_and_timeout,
     python_timeout_interrupts, explicit_context, explicit_context_isolated,
     exec_defines_names, namespace_per_process, cast, spawn_call_and_await,
     await_timeout, parallel_ok, parallel_error, version, memory_stats, gc,
     context, last_traceback, system_exit_and_keyboard_interrupt, bad_arguments,
     missing_module_and_function, module_replaced_or_removed, uncontrollable_timeout].

init_per_suite(Config) ->
    {ok, Started} = application:ensure_all_started(erlang_python),
    [{started, Started} | Config].

end_per_suite(Config) ->
    _ = [application:stop(App) || App <- lists:reverse(proplists:get_value(started, Config))],
    ok.

doc(Text) ->
    ct:comment("~ts", [Text]).

%% Cases.

documented_examples(_) ->
    doc("The examples of the documentation hold verbatim."),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, 45} = py:eval(<<"sum(range(10))">>),
    {ok, 25} = py:eval(<<"x * y">>, #{x => 5, y => 5}),
    {ok, Json} = py:call(json, dumps, [#{foo => bar}], #{indent => 2}),
    {ok, #{<<"foo">> := <<"bar">>}} = py:call(json, loads, [Json]),
    ?assertEqual(<<"{\n  \"foo\": \"bar\"\n}">>, Json),
    {error, {'NameError', "name 'x' is not defined"}} = py:eval(<<"x">>),
    {error, {'ZeroDivisionError', "division by zero"}} = py:eval(<<"1/0">>),
    ok = py:exec(<<"def double(x): return 2 * x">>),
    {ok, 42} = py:call('__main__', double, [21]).

module_and_function_names(_) ->
    doc("Module and function names may be atoms, binaries or strings "
        "(Elixir passes strings); dotted names reach submodules and attributes."),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, 4.0} = py:call(<<"math">>, <<"sqrt">>, [16]),
    {ok, 4.0} = py:call("math", "sqrt", [16]),
    {ok, 4.0} = py:call(math, "sqrt", [16]),
    {ok, <<"a/b">>} = py:call('os.path', join, [<<"a">>, <<"b">>]),
    {ok, <<"a/b">>} = py:call(os, 'path.join', [<<"a">>, <<"b">>]),
    %% '__main__' falls back to the builtins.
    {ok, 3} = py:call('__main__', len, [[a, b, c]]),
    ok = py:exec(<<"def λ(x): return x + 1"/utf8>>),
    {ok, 2} = py:call("__main__", "λ", [1]),
    {ok, 2} = py:call(<<"__main__">>, <<"λ"/utf8>>, [1]).

call_kwargs_and_timeout(_) ->
    doc("call/4 passes keyword arguments (atom or binary keys); call/5 adds a timeout."),
    {ok, <<"[\n 1\n]">>} = py:call(json, dumps, [[1]], #{indent => 1}),
    {ok, <<"[\n 1\n]">>} = py:call(json, dumps, [[1]], #{<<"indent">> => 1}),
    {ok, <<"[1]">>} = py:call(json, dumps, [[1]], #{}),
    {ok, 4.0} = py:call(math, sqrt, [16], #{}, 5000),
    {ok, 4.0} = py:call(math, sqrt, [16], #{}, infinity),
    {ok, <<"[\n 1\n]">>} = py:call(json, dumps, [[1]], #{indent => 1}, 5000),
    {error, {'TypeError', _}} = py:call(json, dumps, [[1]], #{no_such_kw => 1}).

python_timeout_interrupts(_) ->
    doc("A call that times out gets {error, timeout}; Python code that is running "
        "is interrupted at its next bytecode and the context stays usable."),
    ok = py:exec(<<"def spin():\n    while True:\n        pass\n">>),
    {error, timeout} = py:call('__main__', spin, [], #{}, 100),
    {error, timeout} = py:eval(<<"spin()">>, #{}, 100),
    %% The context is free again: the next call answers (in the default 30 s).
    {ok, 2} = py:eval(<<"1 + 1">>),
    %% No late reply is left behind in the mailbox.
    ok = no_message().

explicit_context(_) ->
    doc("call/eval/exec on an explicit context, with call/5 options "
        "kwargs, timeout and return => ref."),
    Ctx = py:context(),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    {ok, <<"[\n 1\n]">>} = py:call(Ctx, json, dumps, [[1]], #{kwargs => #{indent => 1},
                                                          timeout => 5000}),
    {ok, Ref} = py:call(Ctx, builtins, list, [[1, 2]], #{return => ref}),
    true = py:is_ref(Ref),
    {ok, [1, 2]} = py:to_term(Ref),
    {ok, [1, 2]} = py:call(Ctx, builtins, list, [[1, 2]], #{return => term}),
    ok = py:exec(Ctx, <<"def triple(x): return 3 * x">>),
    {ok, 9} = py:call(Ctx, '__main__', triple, [3]),
    {ok, 12} = py:eval(Ctx, <<"triple(4)">>),
    {ok, 15} = py:eval(Ctx, <<"triple(n)">>, #{n => 5}),
    %% Ctx is this process's own context: the same namespace.
    {ok, 18} = py:call('__main__', triple, [6]),
    ok = py:exec(Ctx, "s = 'string code'"),
    {ok, <<"string code">>} = py:eval(Ctx, "s"),
    {error, {'ZeroDivisionError', _}} = py:eval(Ctx, <<"1/0">>),
    {error, {'ZeroDivisionError', _}} = py:exec(Ctx, <<"1/0">>).

explicit_context_isolated(_) ->
    doc("A process has one namespace per context: what it defines on another "
        "default context is not visible on its own."),
    Own = py:context(),
    case [C || N <- lists:seq(1, length(default_contexts())),
               C <- [py:context(N)], C =/= Own] of
        [] ->
            {skip, "only one default context"};
        [Other | _] ->
            ok = py:exec(Other, <<"elsewhere = 1">>),
            {ok, 1} = py:eval(Other, <<"elsewhere">>),
            {error, {'NameError', _}} = py:eval(<<"elsewhere">>),
            {error, {'NameError', _}} = py:eval(Own, <<"elsewhere">>),
            ok
    end.

exec_defines_names(_) ->
    doc("exec returns ok and its definitions are visible to later eval and "
        "call('__main__', ...) of the same process."),
    ok = py:exec(<<"import math\ncounter = 0\n"
                   "def bump(n=1):\n    global counter\n    counter += n\n    return counter\n">>),
    {ok, 1} = py:call('__main__', bump, []),
    {ok, 11} = py:call('__main__', bump, [], #{n => 10}),
    {ok, 11} = py:eval(<<"counter">>),
    {ok, 2.0} = py:eval(<<"math.sqrt(4)">>),
    ok = py:exec([<<"counter = ">>, "100"]),
    {ok, 100} = py:eval(<<"counter">>),
    {error, {'SyntaxError', _}} = py:exec(<<"def (:">>),
    {error, {'NameError', _}} = py:exec(<<"undefined_name">>),
    {ok, 100} = py:eval(<<"counter">>).

namespace_per_process(_) ->
    doc("What one process defines is invisible to another process."),
    ok = py:exec(<<"mine = 42">>),
    {ok, 42} = py:eval(<<"mine">>),
    {error, {'NameError', _}} = in_process(fun() -> py:eval(<<"mine">>) end),
    {error, {'NameError', "name 'mine' is not defined in the caller's namespace"}} =
        in_process(fun() -> py:call('__main__', mine, []) end),
    {ok, 42} = py:eval(<<"mine">>).

cast(_) ->
    doc("cast/3,4 run the call and send no reply; a later synchronous call of "
        "the same process runs after them (one queue per context)."),
    ok = py:exec(<<"log = []\ndef note(x, tag=None): log.append((x, tag))\n">>),
    ok = py:cast('__main__', note, [1]),
    ok = py:cast('__main__', note, [2], #{tag => second}),
    ok = py:cast('__main__', 'log.append', [{3, third}]),
    ok = py:cast(math, sqrt, [-1]), %% an error, silently dropped
    {ok, [{1, none}, {2, second}, {3, third}]} = py:eval(<<"log">>),
    ok = no_message().

spawn_call_and_await(_) ->
    doc("spawn_call/3,4 return a reference; the result is a "
        "{py_response, Ref, Result} message that await/1,2 receives."),
    Ref1 = py:spawn_call(math, sqrt, [16]),
    true = is_reference(Ref1),
    {ok, 4.0} = py:await(Ref1),
    Ref2 = py:spawn_call(json, dumps, [[1]], #{indent => 1}),
    Result2 = receive {py_response, Ref2, R2} -> R2 after 30000 -> ct:fail(no_response) end,
    {ok, <<"[\n 1\n]">>} = Result2,
    Ref3 = py:spawn_call(operator, truediv, [1, 0]),
    {error, {'ZeroDivisionError', _}} = py:await(Ref3, 30000),
    %% Several in flight come back to their own references.
    Refs = [{N, py:spawn_call(math, factorial, [N])} || N <- lists:seq(1, 20)],
    [{ok, F} = py:await(R) || {N, R} <- lists:reverse(Refs), F <- [factorial(N)]],
    ok = no_message().

await_timeout(_) ->
    doc("await/2 gives {error, timeout} when the result is late; the result "
        "still arrives later."),
    Ref = py:spawn_call(time, sleep, [0.3]),
    {error, timeout} = py:await(Ref, 0),
    {error, timeout} = py:await(Ref, 10),
    {ok, none} = py:await(Ref, 30000),
    {error, timeout} = py:await(make_ref(), 0),
    ok = no_message().

parallel_ok(_) ->
    doc("parallel/1 runs calls across the default contexts and returns their "
        "values in order."),
    {ok, []} = py:parallel([]),
    {ok, [4.0, 3.0, 2.0]} = py:parallel([{math, sqrt, [16]}, {math, sqrt, [9]},
                                         {math, sqrt, [4]}]),
    Calls = [{math, factorial, [N]} || N <- lists:seq(1, 25)],
    Expected = [factorial(N) || N <- lists:seq(1, 25)],
    {ok, Expected} = py:parallel(Calls),
    ok = no_message().

parallel_error(_) ->
    doc("parallel/1 returns the first error to come (the others are interrupted), "
        "leaves no stray messages, and rejects malformed input with badarg."),
    {error, {'ValueError', "math domain error"}} =
        py:parallel([{math, sqrt, [4]}, {math, sqrt, [-1]}, {math, sqrt, [9]}]),
    {error, {Either, _}} = py:parallel([{no_such_module_xyz, f, []}, {math, sqrt, [-1]}]),
    true = lists:member(Either, ['ModuleNotFoundError', 'ValueError']),
    ok = no_message(),
    ?assertError({badarg, _}, py:parallel(not_a_list)),
    ?assertError({badarg, _}, py:parallel([{math, sqrt}])),
    ?assertError({badarg, _}, py:parallel([{math, sqrt, 16}])).

version(_) ->
    doc("version/0 is the embedded interpreter's sys.version, the same as that "
        "of the Python executable the NIF was built against."),
    {ok, Version} = py:version(),
    true = is_binary(Version),
    {ok, Version} = py:eval(<<"__import__('sys').version">>),
    {ok, {3, Minor}} = py:eval(<<"tuple(__import__('sys').version_info[:2])">>),
    true = Minor >= 11,
    Exe = python_executable(),
    External = string:trim(os:cmd(Exe ++ " -c \"import sys; print(sys.version.split()[0])\"")),
    [Number | _] = string:split(Version, " "),
    ?assertEqual(unicode:characters_to_binary(External), Number).

memory_stats(_) ->
    doc("memory_stats/0 has the documented 4.x shape: atom keys gc_count, "
        "gc_threshold, gc_stats (per-generation maps with binary keys), and "
        "the allocator's alloc_* counters."),
    {ok, Stats} = py:memory_stats(),
    {C0, C1, C2} = maps:get(gc_count, Stats),
    true = lists:all(fun is_integer/1, [C0, C1, C2]),
    {T0, _, _} = maps:get(gc_threshold, Stats),
    true = is_integer(T0),
    [#{<<"collected">> := _, <<"collections">> := _, <<"uncollectable">> := _} | _] =
        maps:get(gc_stats, Stats),
    %% The large-block allocator's counters (c_src/runtime/pyalloc.c).
    #{alloc_installed := true, alloc_large_bytes := Live, alloc_cache_bytes := Cached,
      alloc_cache_max := Max, alloc_mapped := Mapped, alloc_reused := Reused} = Stats,
    true = lists:all(fun(N) -> is_integer(N) andalso N >= 0 end,
                     [Live, Cached, Max, Mapped, Reused]),
    true = Cached =< Max.

gc(_) ->
    doc("gc/0,1 collect and return the number of objects collected; gc/1 takes "
        "a generation 0..2."),
    ok = py:exec(<<"import gc\n"
                   "class Node: pass\n"
                   "def cycles(n):\n"
                   "    for _ in range(n):\n"
                   "        a, b = Node(), Node()\n"
                   "        a.peer, b.peer = b, a\n">>),
    %% Automatic collection is off while the garbage is made, so that gc/0
    %% itself finds it.
    ok = py:exec(<<"gc.disable()">>),
    try
        {ok, _} = py:call('__main__', cycles, [100]),
        {ok, N} = py:gc(),
        true = N >= 200
    after
        ok = py:exec(<<"gc.enable()">>)
    end,
    [true = is_integer(M) andalso M >= 0 || G <- [0, 1, 2], {ok, M} <- [py:gc(G)]],
    ?assertError({badarg, _}, py:gc(3)),
    ?assertError({badarg, _}, py:gc(-1)),
    ?assertError({badarg, _}, py:gc(full)).

context(_) ->
    doc("context/0 is the caller's context, stable for the process's life; "
        "context/1 is the N-th default context."),
    Ctx = py:context(),
    true = is_pid(Ctx),
    [Ctx = py:context() || _ <- lists:seq(1, 10)],
    _ = [{ok, _} = py:eval(<<"1">>) || _ <- lists:seq(1, 10)],
    Ctx = py:context(),
    Defaults = default_contexts(),
    true = lists:member(Ctx, Defaults),
    Defaults = [py:context(N) || N <- lists:seq(1, length(Defaults))],
    {Other, Other} = in_process(fun() -> {py:context(), py:context()} end),
    true = lists:member(Other, Defaults),
    ?assertError({badarg, _}, py:context(0)),
    ?assertError({badarg, _}, py:context(length(Defaults) + 1)),
    ?assertError({badarg, _}, py:context(first)).

last_traceback(_) ->
    doc("last_traceback/0 is none before any error and the formatted traceback "
        "of the caller's last Python error after one."),
    none = in_process(fun() -> py:last_traceback() end),
    none = in_process(fun() -> {ok, 2} = py:eval(<<"1+1">>), py:last_traceback() end),
    {error, {'ZeroDivisionError', _}} = py:eval(<<"1/0">>),
    Tb = py:last_traceback(),
    true = is_binary(Tb),
    true = has(Tb, <<"Traceback">>) andalso has(Tb, <<"ZeroDivisionError">>),
    ok = py:exec(<<"def inner():\n    return {}['missing']\ndef outer():\n    return inner()\n">>),
    {error, {'KeyError', _}} = py:call('__main__', outer, []),
    Tb2 = py:last_traceback(),
    true = has(Tb2, <<"KeyError">>) andalso has(Tb2, <<"inner">>) andalso has(Tb2, <<"outer">>),
    false = has(Tb2, <<"ZeroDivisionError">>),
    %% A later success does not erase the last error's traceback.
    {ok, 2} = py:eval(<<"1+1">>),
    Tb2 = py:last_traceback().

system_exit_and_keyboard_interrupt(_) ->
    doc("SystemExit and KeyboardInterrupt raised by Python are ordinary errors; "
        "the VM and the context keep answering."),
    {error, {'SystemExit', _}} = py:exec(<<"raise SystemExit(3)">>),
    {ok, 2} = py:eval(<<"1+1">>),
    {error, {'SystemExit', "bye"}} = py:call(sys, exit, [<<"bye">>]),
    {error, {'SystemExit', _}} = py:call(sys, exit, [0]),
    {error, {'SystemExit', _}} = py:exec(<<"import sys\nsys.exit()">>),
    {ok, 2} = py:eval(<<"1+1">>),
    {error, {'KeyboardInterrupt', _}} = py:exec(<<"raise KeyboardInterrupt">>),
    {error, {'KeyboardInterrupt', _}} = py:eval(<<"(_ for _ in ()).throw(KeyboardInterrupt)">>),
    {ok, 2} = py:eval(<<"1+1">>),
    {error, {'GeneratorExit', _}} = py:exec(<<"raise GeneratorExit">>),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    %% And from other processes too.
    {ok, 2} = in_process(fun() -> py:eval(<<"1+1">>) end).

bad_arguments(_) ->
    doc("Arguments of the wrong type raise error({badarg, _}), never crash the "
        "VM, and leave the caller's context usable."),
    Ctx = py:context(),
    Bad = [fun() -> py:call(math, sqrt, 16) end,
           fun() -> py:call(math, sqrt, {16}) end,
           fun() -> py:call(math, sqrt, [16], [{indent, 2}]) end,
           fun() -> py:call(math, sqrt, [16], not_a_map) end,
           fun() -> py:call(42, sqrt, [16]) end,
           fun() -> py:call({math}, sqrt, [16]) end,
           fun() -> py:call(math, 42, [16]) end,
           fun() -> py:call([-1], sqrt, [16]) end,
           fun() -> py:call(math, sqrt, [16], #{}, -1) end,
           fun() -> py:call(math, sqrt, [16], #{}, 1.5) end,
           fun() -> py:call(math, sqrt, [16], #{}, forever) end,
           fun() -> py:call(Ctx, math, sqrt, 16) end,
           fun() -> py:call(Ctx, math, sqrt, [16], #{timeout => -1}) end,
           fun() -> py:call(Ctx, math, sqrt, [16], #{return => pickle}) end,
           fun() -> py:call(Ctx, math, sqrt, [16], #{kwargs => []}) end,
           fun() -> py:call(Ctx, math, sqrt, [16], #{unknown_option => 1}) end,
           fun() -> py:eval(42) end,
           fun() -> py:eval(code) end,
           fun() -> py:eval([-1]) end,
           fun() -> py:eval({<<"1">>}) end,
           fun() -> py:eval(<<"1">>, [{x, 1}]) end,
           fun() -> py:eval(<<"1">>, not_a_map) end,
           fun() -> py:eval(<<"1">>, #{}, -5) end,
           fun() -> py:eval(Ctx, 42) end,
           fun() -> py:eval(Ctx, <<"1">>, []) end,
           fun() -> py:exec(42) end,
           fun() -> py:exec(Ctx, #{}) end,
           fun() -> py:cast(math, sqrt, 16) end,
           fun() -> py:cast(math, sqrt, [16], []) end,
           fun() -> py:spawn_call(1.0, sqrt, [16]) end,
           fun() -> py:spawn_call(math, sqrt, [16], 2) end,
           fun() -> py:await(not_a_ref) end,
           fun() -> py:await(make_ref(), -1) end,
           fun() -> py:call_method(not_a_ref, m, []) end,
           fun() -> py:call_method(make_ref(), m, []) end,
           fun() -> py:getattr(<<"x">>, a) end,
           fun() -> py:to_term(self()) end],
    _ = [?assertError({badarg, _}, F()) || F <- Bad],
    {ok, 2} = py:eval(<<"1+1">>),
    Ctx = py:context(),
    ok = no_message().

missing_module_and_function(_) ->
    doc("A missing module is ModuleNotFoundError, a missing function "
        "AttributeError, a missing name in the caller's namespace an error."),
    {error, {'ModuleNotFoundError', "No module named 'no_such_module_xyz'"}} =
        py:call(no_such_module_xyz, f, []),
    {error, {'ModuleNotFoundError', _}} = py:call('no_such_pkg_xyz.sub', f, []),
    {error, {'AttributeError', _}} = py:call(math, no_such_function, []),
    {error, {'AttributeError', _}} = py:call(math, 'sqrt.nope', [1]),
    {error, {Name, _}} = py:call('__main__', no_such_function, []),
    true = is_atom(Name),
    {error, {'TypeError', _}} = py:call(math, pi, []),
    {ok, 4.0} = py:call(math, sqrt, [16]).

uncontrollable_timeout(_) ->
    doc("A timeout during C code that cannot be interrupted (sum over a range) "
        "still returns {error, timeout} promptly; the caller's later calls wait "
        "until the C code ends, then the context answers again."),
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() ->
        T0 = erlang:monotonic_time(millisecond),
        Result = py:eval(<<"sum(range(10**9))">>, #{}, 100),
        Self ! {timed_out, self(), Result, erlang:monotonic_time(millisecond) - T0},
        Self ! {after_timeout, self(), py:eval(<<"1+1">>, #{}, infinity)}
    end),
    receive
        {timed_out, Pid, {error, timeout}, Ms} ->
            ct:log("timeout after ~b ms", [Ms]),
            ?assert(Ms < 2000);
        {timed_out, Pid, Other, _} ->
            ct:fail({unexpected, Other})
    after 10000 ->
        ct:fail(no_prompt_timeout)
    end,
    %% The sum takes ~10 s on an idle machine; allow a loaded one.
    receive {after_timeout, Pid, {ok, 2}} -> ok
    after 600000 -> ct:fail(context_not_usable)
    end,
    receive {'DOWN', Mon, process, Pid, normal} -> ok end.

module_replaced_or_removed(_) ->
    doc("A call finds the module sys.modules holds now: after a module is "
        "replaced there, the new one; after it is removed, ModuleNotFoundError; "
        "by atom, binary and string name alike."),
    Put = fun(V) -> ok = py:exec(<<"import sys, types\n"
                                   "m = types.ModuleType('ct_swapped')\n"
                                   "m.f = lambda: ", (integer_to_binary(V))/binary, "\n"
                                   "sys.modules['ct_swapped'] = m\n">>)
          end,
    Put(1),
    {ok, 1} = py:call(ct_swapped, f, []),
    {ok, 1} = py:call(<<"ct_swapped">>, f, []),
    Put(2),
    {ok, 2} = py:call(ct_swapped, f, []),
    {ok, 2} = py:call("ct_swapped", f, []),
    ok = py:exec(<<"import sys\ndel sys.modules['ct_swapped']">>),
    {error, {'ModuleNotFoundError', _}} = py:call(ct_swapped, f, []),
    Put(3),
    {ok, 3} = py:call(ct_swapped, f, []),
    ok = py:exec(<<"import sys\ndel sys.modules['ct_swapped']">>).

%% Helpers.

%% Run Fun in a fresh process (fresh namespace) and return its value.
in_process(Fun) ->
    {Pid, Mon} = spawn_monitor(fun() -> exit({value, Fun()}) end),
    receive {'DOWN', Mon, process, Pid, Reason} ->
        case Reason of
            {value, V} -> V;
            _ -> ct:fail({in_process, Reason})
        end
    end.

no_message() ->
    receive Msg -> ct:fail({unexpected_message, Msg})
    after 0 -> ok
    end.

default_contexts() ->
    default_contexts(1).

default_contexts(N) ->
    try py:context(N) of
        Pid -> [Pid | default_contexts(N + 1)]
    catch
        error:{badarg, _} -> []
    end.

%% The interpreter the NIF was built for (written by c_src/Makefile).
python_executable() ->
    {ok, Exe} = file:read_file(filename:join(code:priv_dir(erlang_python),
                                             "python_executable")),
    binary_to_list(string:trim(Exe)).

has(Bin, Part) ->
    binary:match(Bin, Part) =/= nomatch.

factorial(0) -> 1;
factorial(N) -> N * factorial(N - 1).
