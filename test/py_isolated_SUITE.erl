%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Isolated contexts (py_isolated): the API of a worker context with
%% the interpreter in a child OS process, its deadlines, crashes, restarts,
%% limits, callbacks, references and namespaces.
-module(py_isolated_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-import(py_test_lib, [in_new_process/1, worker/0, run/2, stop_worker/1, blocker/3, timed/1]).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([call_eval_exec/1, conversion_matches_worker/1, namespaces_per_process/1,
         timeout_running_interrupts/1, timeout_queued_dropped/1, timeout_kills_c_loop/1,
         crash_gives_child_exited/1, crash_other_context_unaffected/1, restart_budget/1,
         interrupt_and_kill/1, child_info/1, callbacks/1, callbacks_reentrant/1,
         callbacks_from_threads/1, callbacks_trapping_caller/1, callback_result_resources/1,
         send_and_whereis/1, schedule_markers/1, state_api/1, streams/1,
         references/1, references_die_with_child/1, rlimit_as/1, rlimit_cpu/1,
         cgroup/1, numpy/1, sandbox/1, output_to_logger/1, options/1,
         pools_and_default_mode/1, coroutine_result/1, async_call_cancel/1, vm_kill_leaves_no_child/1,
         zygote_children/1, zygote_down/1, killed_caller_is_interrupted/1,
         registry/1]).
-export([log/2]).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [call_eval_exec, conversion_matches_worker, namespaces_per_process,
     timeout_running_interrupts, timeout_queued_dropped, timeout_kills_c_loop,
     crash_gives_child_exited, crash_other_context_unaffected, restart_budget,
     interrupt_and_kill, child_info, callbacks, callbacks_reentrant, callbacks_from_threads,
     callbacks_trapping_caller, callback_result_resources,
     send_and_whereis, schedule_markers, state_api, streams, references, references_die_with_child,
     rlimit_as, rlimit_cpu, cgroup, numpy, sandbox, output_to_logger, options,
     pools_and_default_mode, coroutine_result, async_call_cancel, vm_kill_leaves_no_child,
     zygote_children, zygote_down, killed_caller_is_interrupted, registry].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

%% Helpers.

new() ->
    new(#{}).

new(Opts) ->
    {ok, Ctx} = py_context:new(Opts#{mode => isolated}),
    Ctx.

os_pid(Ctx) ->
    {ok, #{os_pid := P}} = py_context:child_info(Ctx),
    P.

generation(Ctx) ->
    {ok, #{generation := G}} = py_context:child_info(Ctx),
    G.

%% Wait until an OS process is gone: `tail --pid' exits when it does (a
%% message from a port, no polling here).
await_os_exit(OsPid) ->
    Tail = os:find_executable("tail"),
    Port = open_port({spawn_executable, Tail},
                     [{args, ["--pid=" ++ integer_to_list(OsPid), "-f", "/dev/null"]},
                      exit_status]),
    receive {Port, {exit_status, _}} -> ok end.

%% Cases.

call_eval_exec(_Config) ->
    doc("call/eval/exec with keyword arguments, locals, errors and tracebacks, as on "
        "a worker context."),
    Ctx = new(),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    {ok, 4.0} = py:call(Ctx, <<"math">>, "sqrt", [16]),
    ok = py:exec(Ctx, <<"def f(a, b=2, *, c=3):\n    return (a, b, c)">>),
    {ok, {1, 5, 7}} = py:call(Ctx, '__main__', f, [1], #{kwargs => #{b => 5, <<"c">> => 7}}),
    {ok, 25} = py:eval(Ctx, <<"x * y">>, #{x => 5, y => 5}),
    {ok, [0, 2, 4]} = py:eval(Ctx, <<"[i * k for i in range(3)]">>, #{k => 2}),
    {error, {'ZeroDivisionError', "division by zero"}} = py:eval(Ctx, <<"1/0">>),
    {error, {'NameError', _}} = py:call(Ctx, '__main__', nope, []),
    {error, {'ModuleNotFoundError', _}} = py:call(Ctx, no_such_module, f, []),
    {error, {'SystemExit', "3"}} = py:exec(Ctx, <<"raise SystemExit(3)">>),
    {error, {'SyntaxError', _}} = py:exec(Ctx, <<"def">>),
    {error, {'ValueError', _}} = py:eval(Ctx, <<"int('x')">>),
    Tb = py:last_traceback(),
    {match, _} = re:run(Tb, "ValueError"),
    {ok, 7} = py:eval(Ctx, <<"__import__('os.path').path.join and 7">>),
    ok = py_context:stop(Ctx).

conversion_matches_worker(_Config) ->
    doc("Every kind of term converts to Python and back as on a worker context "
        "(lossless: big integers, atoms, pids, refs, funs, bytes, nested maps)."),
    Ctx = new(),
    {ok, W} = py_context:new(#{}),
    Terms = [1, -1, 255, 256, 1 bsl 31, -(1 bsl 31) - 1, 1 bsl 64, -(1 bsl 100), 1.5, -0.0,
             true, false, none, undefined, nil, ok, 'Héllo', <<"text">>, <<"é"/utf8>>,
             <<255, 0>>, {bytes, <<"b">>}, [], [1, [2, [3]]], "abc", {}, {1, {2}},
             #{}, #{a => 1, <<"b">> => [2], 3 => #{4 => 5}}, #{[1] => list_key},
             self(), make_ref(), fun erlang:abs/1, fun() -> ok end, [1 | 2],
             <<1:3>>, lists:seq(1, 300), maps:from_list([{I, I} || I <- lists:seq(1, 100)]),
             list_to_tuple(lists:seq(1, 300)), nan, infinity, neg_infinity],
    [begin
         Expected = py:eval(W, <<"t">>, #{t => T}),
         Expected = py:eval(Ctx, <<"t">>, #{t => T}),
         %% (repr of a large map: the key order is Erlang's, any)
         Show = <<"repr(sorted(t.items(), key=repr) if isinstance(t, dict) else t)">>,
         {ok, Repr} = py:eval(W, Show, #{t => T}),
         {ok, Repr} = py:eval(Ctx, Show, #{t => T})
     end || T <- Terms],
    {ok, true} = py:eval(Ctx, <<"isinstance(a, __import__('erlang').Atom)">>, #{a => hello}),
    {ok, true} = py:eval(Ctx, <<"type(p).__name__ == 'Pid'">>, #{p => self()}),
    {error, {'ValueError', _}} = py:eval(Ctx, <<"{'a': 1, b'a': 2}">>),
    {error, {'ValueError', _}} = py:eval(Ctx, <<"t">>, #{t => #{1 => a, 1.0 => b}}),
    {ok, <<"ok">>} = py:eval(Ctx, <<"'ok'">>),
    Big = binary:copy(<<"x">>, 5000000),
    {ok, Big} = py:eval(Ctx, <<"b">>, #{b => Big}),
    ok = py_context:stop(W),
    ok = py_context:stop(Ctx).

namespaces_per_process(_Config) ->
    doc("Each calling process has its own globals in the child, dropped when it dies; "
        "a callback's nested requests run in its caller's namespace."),
    Ctx = new(),
    A = worker(),
    B = worker(),
    ok = run(A, fun() -> py:exec(Ctx, <<"secret = 'a'">>) end),
    {ok, <<"a">>} = run(A, fun() -> py:eval(Ctx, <<"secret">>) end),
    {error, {'NameError', _}} = run(B, fun() -> py:eval(Ctx, <<"secret">>) end),
    Count = <<"len(__import__('erlang._isolated', fromlist=['_']).current.namespaces)">>,
    {ok, N0} = py:eval(Ctx, Count),
    ok = stop_worker(A),
    {ok, N1} = wait_for(fun() -> py:eval(Ctx, Count) end, fun({ok, N}) -> N < N0 end),
    ?assert(N1 < N0),
    ok = stop_worker(B),
    ok = py_context:stop(Ctx).

%% Ask again until Pred holds, for state inside the child that nothing
%% announces to the test (the frame telling it a process died follows the
%% monitor's DOWN asynchronously): up to 2 s, 10 ms apart.
wait_for(Fun, Pred) ->
    wait_for(Fun, Pred, 200).

wait_for(Fun, Pred, 0) ->
    R = Fun(),
    true = Pred(R),
    R;
wait_for(Fun, Pred, N) ->
    R = Fun(),
    case Pred(R) of
        true -> R;
        false -> receive after 10 -> wait_for(Fun, Pred, N - 1) end
    end.

timeout_running_interrupts(_Config) ->
    doc("A timeout interrupts the running request with a signal (inside time.sleep): "
        "{error, timeout} at the deadline, the same child serves the next call."),
    Ctx = new(),
    G = generation(Ctx),
    {T, {error, timeout}} = timed(fun() -> py:call(Ctx, time, sleep, [10], #{timeout => 100}) end),
    ?assert(T < 1000),
    ok = py:exec(Ctx, <<"import time\n"
                        "def careful():\n"
                        "    try:\n"
                        "        time.sleep(10)\n"
                        "    except BaseException as e:\n"
                        "        return type(e).__name__\n">>),
    {error, timeout} = py:call(Ctx, '__main__', careful, [], #{timeout => 50}),
    {ok, 2.0} = py:call(Ctx, math, sqrt, [4]),
    G = generation(Ctx),
    ok = py_context:stop(Ctx).

timeout_queued_dropped(_Config) ->
    doc("A request that times out while still queued is dropped without touching "
        "the running one, which completes with its own result."),
    Ctx = new(),
    Self = self(),
    _ = spawn_link(fun() ->
                       ok = py:exec(Ctx, <<"import erlang, time\n"
                                           "def slow(p, x):\n"
                                           "    erlang.send(p, erlang.Atom('started'))\n"
                                           "    time.sleep(0.5)\n"
                                           "    return x\n">>),
                       Self ! {slow, py:call(Ctx, '__main__', slow, [Self, 42])}
                   end),
    receive started -> ok end,
    {T, {error, timeout}} = timed(fun() -> py:call(Ctx, math, sqrt, [4], #{timeout => 50}) end),
    ?assert(T < 400),
    receive {slow, R} -> {ok, 42} = R end,
    {ok, 1} = py:eval(Ctx, <<"1">>),
    G = generation(Ctx),
    1 = G,
    ok = py_context:stop(Ctx).

timeout_kills_c_loop(_Config) ->
    doc("sum(range(10**10)) keeps the GIL in C: {error, timeout} at the deadline, "
        "SIGKILL kill_after later, a new child, and the call queued behind it answered."),
    Ctx = new(#{kill_after => 200}),
    G = generation(Ctx),
    {ok, Big} = py:eval(Ctx, <<"range(10**10)">>),
    Self = self(),
    _ = spawn_link(fun() ->
                       receive go -> ok end,
                       Self ! {next, timed(fun() -> py:call(Ctx, math, sqrt, [9]) end)}
                   end) ! go,
    {T, {error, timeout}} = timed(fun() -> py:call(Ctx, builtins, sum, [Big], #{timeout => 100}) end),
    ?assert(T < 100 + 200),
    receive {next, {T2, R2}} -> {ok, 3.0} = R2, ?assert(T2 < 5000) end,
    ?assertEqual(G + 1, generation(Ctx)),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    ok = py_context:stop(Ctx).

crash_gives_child_exited(_Config) ->
    doc("A segfault, an abort and os._exit give the running caller "
        "{error, {child_exited, Reason}} at once; the next child serves the next call, "
        "its Python state gone."),
    Ctx = new(#{sandbox => false}),
    ok = py:exec(Ctx, <<"kept = 1">>),
    {error, {child_exited, {signal, 11}}} = py:eval(Ctx, <<"__import__('ctypes').string_at(0)">>),
    {ok, 2.0} = py:call(Ctx, math, sqrt, [4]),
    {error, {'NameError', _}} = py:eval(Ctx, <<"kept">>),
    {error, {child_exited, {signal, 6}}} = py:eval(Ctx, <<"__import__('os').abort()">>),
    {error, {child_exited, {exit, 3}}} = py:eval(Ctx, <<"__import__('os')._exit(3)">>),
    {ok, 1} = py:eval(Ctx, <<"1">>),
    ok = py_context:stop(Ctx).

crash_other_context_unaffected(_Config) ->
    doc("A crash of one isolated context's child is not noticed by another isolated "
        "context nor by the VM's own contexts."),
    A = new(),
    B = new(),
    PidB = os_pid(B),
    ok = py:exec(B, <<"kept = 2">>),
    Self = self(),
    _ = spawn_link(fun() -> Self ! {b, py:call(B, time, sleep, [0.3])} end),
    {error, {child_exited, {signal, 11}}} = py:eval(A, <<"__import__('ctypes').string_at(0)">>),
    receive {b, R} -> {ok, none} = R end,
    {ok, 2} = py:eval(B, <<"kept">>),
    PidB = os_pid(B),
    {ok, 3.0} = py:call(math, sqrt, [9]),
    ok = py_context:stop(A),
    ok = py_context:stop(B).

restart_budget(_Config) ->
    doc("Past max_restarts restarts within restart_period the context stops with the "
        "child's reason; restart => false stops it at the first crash."),
    Ctx = new(#{max_restarts => 2, restart_period => 60000}),
    Mon = monitor(process, Ctx),
    [{error, {child_exited, {exit, 7}}} = py:eval(Ctx, <<"__import__('os')._exit(7)">>)
     || _ <- [1, 2]],
    {ok, 1} = py:eval(Ctx, <<"1">>),
    {error, {child_exited, {exit, 7}}} = py:eval(Ctx, <<"__import__('os')._exit(7)">>),
    receive {'DOWN', Mon, process, Ctx, Reason} -> {child_exited, {exit, 7}} = Reason end,
    {error, closed} = py:eval(Ctx, <<"1">>),
    Once = new(#{restart => false}),
    Mon2 = monitor(process, Once),
    {error, {child_exited, {exit, 1}}} = py:eval(Once, <<"__import__('os')._exit(1)">>),
    receive {'DOWN', Mon2, process, Once, {child_exited, {exit, 1}}} -> ok end.

interrupt_and_kill(_Config) ->
    doc("py_context:interrupt/1 ends the running request ({error, interrupted}) in the "
        "same child; py_context:kill/1 kills it ({error, killed}) and a new one starts."),
    Ctx = new(),
    not_running = py_context:interrupt(Ctx),
    _ = blocker(Ctx, 30, nap),
    ok = py_context:interrupt(Ctx),
    receive {nap, {error, interrupted}} -> ok end,
    G = generation(Ctx),
    _ = blocker(Ctx, 30, nap2),
    ok = py_context:kill(Ctx),
    receive {nap2, {error, killed}} -> ok end,
    ?assertEqual(G + 1, generation(Ctx)),
    {ok, 1} = py:eval(Ctx, <<"1">>),
    {error, not_isolated} = py_context:kill(py:context()),
    ok = py_context:stop(Ctx).

child_info(_Config) ->
    doc("py_context:child_info/1 names the child: its OS pid, Python, executable."),
    Ctx = new(),
    {ok, #{os_pid := P, python_version := {3, _, _}, executable := Exe,
           platform := <<"linux">>, generation := 1, restarts := 0}} = py_context:child_info(Ctx),
    {ok, P} = py:eval(Ctx, <<"__import__('os').getpid()">>),
    {ok, Exe} = py:eval(Ctx, <<"__import__('sys').executable">>),
    {ok, {M, N, _}} = py_context:python_version(),
    {ok, #{python_version := {M, N, _}}} = py_context:child_info(Ctx),
    {error, not_isolated} = py_context:child_info(py:context()),
    ok = py_context:stop(Ctx),
    await_os_exit(P).

callbacks(_Config) ->
    doc("erlang.call, erlang.name and `from erlang import name` run the function "
        "registered in the VM; errors come back as erlang.ErlangError."),
    ok = py:register_function(iso_add, fun([A, B]) -> A + B end),
    Ctx = new(),
    {ok, 5} = py:eval(Ctx, <<"__import__('erlang').call('iso_add', 2, 3)">>),
    {ok, 5} = py:eval(Ctx, <<"__import__('erlang').iso_add(2, 3)">>),
    ok = py:exec(Ctx, <<"from erlang import iso_add">>),
    {ok, 9} = py:eval(Ctx, <<"iso_add(4, 5)">>),
    {ok, false} = py:eval(Ctx, <<"hasattr(__import__('erlang'), 'iso_missing')">>),
    ok = py:register_function(iso_fail, fun([R]) -> erlang:error(R) end),
    {ok, true} = wait_for(fun() -> py:eval(Ctx, <<"hasattr(__import__('erlang'), 'iso_fail')">>) end,
                          fun(R) -> R =:= {ok, true} end),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def f():\n"
                        "    try:\n"
                        "        erlang.iso_fail(erlang.Atom('boom'))\n"
                        "    except erlang.ErlangError as e:\n"
                        "        return ('caught', e.cls, e.reason)\n">>),
    {ok, {<<"caught">>, error, boom}} = py:call(Ctx, '__main__', f, []),
    {error, {'NameError', _}} = py:eval(Ctx, <<"__import__('erlang').call('iso_missing')">>),
    Self = self(),
    ok = py:register_function(iso_whoami, fun([]) -> self() end),
    {ok, Helper} = py:eval(Ctx, <<"__import__('erlang').iso_whoami()">>),
    true = is_pid(Helper) andalso Helper =/= Self,
    {ok, Self} = py:eval(Ctx, <<"__import__('erlang').self()">>),
    ok = py:unregister_function(iso_add),
    ok = py_context:stop(Ctx).

callbacks_reentrant(_Config) ->
    doc("A registered function may call Python on the same isolated context, to any "
        "depth, in the caller's namespace; a timeout during a callback is honoured."),
    Ctx = new(),
    ok = py:register_function(iso_down, fun([N]) ->
                                                {ok, R} = py:call(Ctx, '__main__', down, [N - 1]),
                                                R
                                        end),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def down(n):\n"
                        "    return 0 if n == 0 else 1 + erlang.call('iso_down', n)\n">>),
    {ok, 10} = py:call(Ctx, '__main__', down, [10]),
    ok = py:register_function(iso_slow, fun([]) -> receive after 2000 -> late end end),
    {T, {error, timeout}} =
        timed(fun() -> py:call(Ctx, erlang, call, [<<"iso_slow">>], #{timeout => 100}) end),
    ?assert(T < 1000),
    {ok, 1} = py:eval(Ctx, <<"1">>),
    ok = py_context:stop(Ctx).

callbacks_trapping_caller(_Config) ->
    doc("A caller that traps exits (a gen_server) gets no message from the helpers that "
        "ran its callbacks: its mailbox stays empty."),
    ok = py:register_function(iso_inc, fun([N]) -> N + 1 end),
    Ctx = new(),
    in_new_process(
      fun() ->
              process_flag(trap_exit, true),
              ok = py:exec(Ctx, <<"import erlang\n"
                                  "def twice(n):\n"
                                  "    return erlang.iso_inc(erlang.iso_inc(n))\n">>),
              [{ok, M} = py:call(Ctx, '__main__', twice, [N]) || N <- lists:seq(1, 200), M <- [N + 2]],
              %% The helpers of the last call exit once it has ended: one
              %% more round trip to the context, then the queue is looked at.
              {ok, 1} = py:eval(Ctx, <<"1">>),
              {messages, []} = process_info(self(), messages)
      end),
    ok = py:unregister_function(iso_inc),
    ok = py_context:stop(Ctx).

callback_result_resources(_Config) ->
    doc("A NIF resource a registered function makes and returns (a buffer nothing else "
        "holds) lives until the request that called it ends: the child can read it after "
        "every process of the VM has been garbage collected."),
    ok = py:register_function(iso_mkbuf, fun([]) ->
                                                 {ok, B} = py_buffer:new(),
                                                 ok = py_buffer:write(B, <<"made in a callback">>),
                                                 ok = py_buffer:close(B),
                                                 B
                                         end),
    ok = py:register_function(iso_gc, fun([]) ->
                                              _ = [garbage_collect(P) || P <- processes()],
                                              ok
                                      end),
    Ctx = new(),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def made():\n"
                        "    b = erlang.iso_mkbuf()\n"
                        "    erlang.iso_gc()\n"
                        "    return b.read()\n">>),
    [{ok, <<"made in a callback">>} = py:call(Ctx, '__main__', made, []) || _ <- lists:seq(1, 20)],
    %% An async request keeps its callbacks' answers as well.
    Ref = py:spawn_call(Ctx, '__main__', made, []),
    {ok, <<"made in a callback">>} = py:await(Ref, 10000),
    ok = py:unregister_function(iso_mkbuf),
    ok = py:unregister_function(iso_gc),
    ok = py_context:stop(Ctx).

callbacks_from_threads(_Config) ->
    doc("erlang.call from Python threads and erlang.async_call from a coroutine run "
        "in the VM too."),
    ok = py:register_function(iso_sq, fun([N]) -> N * N end),
    Ctx = new(),
    ok = py:exec(Ctx, <<"import erlang, asyncio\n"
                        "from concurrent.futures import ThreadPoolExecutor\n"
                        "def squares(n):\n"
                        "    with ThreadPoolExecutor(max_workers=4) as pool:\n"
                        "        return list(pool.map(erlang.iso_sq, range(n)))\n"
                        "async def asq(n):\n"
                        "    return await erlang.async_call('iso_sq', n)\n">>),
    {ok, [0, 1, 4, 9, 16, 25, 36, 49]} = py:call(Ctx, '__main__', squares, [8]),
    {ok, 49} = py:eval(Ctx, <<"__import__('asyncio').run(asq(7))">>),
    ok = py_context:stop(Ctx).

send_and_whereis(_Config) ->
    doc("erlang.send reaches pids and registered names; erlang.whereis finds them."),
    Ctx = new(),
    true = register(iso_suite_probe, self()),
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').send(p, ('hi', 1))">>, #{p => self()}),
    receive {<<"hi">>, 1} -> ok end,
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').send(__import__('erlang').Atom('iso_suite_probe'), 2)">>),
    receive 2 -> ok end,
    Self = self(),
    {ok, Self} = py:eval(Ctx, <<"__import__('erlang').whereis('iso_suite_probe')">>),
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').whereis('iso_no_such_name')">>),
    {error, {'TypeError', _}} = py:eval(Ctx, <<"__import__('erlang').send(1, 2)">>),
    true = unregister(iso_suite_probe),
    ok = py_context:stop(Ctx).

schedule_markers(_Config) ->
    doc("erlang.schedule, schedule_py and schedule_inline returned from the child: the "
        "call continues with the Erlang function, or with a new request on the same "
        "isolated context in the caller's namespace."),
    Ctx = new(),
    ok = py:register_function(iso_sched_add, fun([A, B]) -> A + B end),
    ok = py:exec(Ctx, <<"import erlang, os\n"
                        "def later(n):\n"
                        "    return erlang.schedule('iso_sched_add', n, 10)\n"
                        "def missing():\n"
                        "    return erlang.schedule('iso_not_registered')\n"
                        "def step(n):\n"
                        "    return erlang.schedule_py('__main__', 'finish', [n], {'extra': 5})\n"
                        "def finish(n, extra=0):\n"
                        "    return (n + extra, os.getpid())\n"
                        "def count(i, n, acc):\n"
                        "    if i == n:\n"
                        "        return acc\n"
                        "    return erlang.schedule_py('__main__', 'count', [i + 1, n, acc + i])\n">>),
    {ok, 11} = py:call(Ctx, '__main__', later, [1]),
    {ok, 12} = py:eval(Ctx, <<"later(2)">>),
    {error, {'NameError', _}} = py:call(Ctx, '__main__', missing, []),
    {ok, #{os_pid := OsPid}} = py_context:child_info(Ctx),
    {ok, {6, OsPid}} = py:call(Ctx, '__main__', step, [1]),  % in the child, caller's namespace
    {ok, 3.0} = py:eval(Ctx, <<"erlang.schedule_inline('math', 'sqrt', [9])">>),
    {ok, 4950} = py:call(Ctx, '__main__', count, [0, 100, 0]),
    ok = py:unregister_function(iso_sched_add),
    ok = py_context:stop(Ctx).

state_api(_Config) ->
    doc("The state API shared with Erlang works from the child."),
    Ctx = new(),
    ok = py:state_store(<<"iso_k">>, 41),
    {ok, 42} = py:eval(Ctx, <<"__import__('erlang').state_incr('iso_k')">>),
    {ok, 42} = py:eval(Ctx, <<"__import__('erlang').state_get('iso_k')">>),
    {ok, none} = py:eval(Ctx, <<"__import__('erlang').state_set('iso_j', [1])">>),
    {ok, [1]} = py:state_fetch(<<"iso_j">>),
    ok = py:state_remove(<<"iso_k">>),
    ok = py:state_remove(<<"iso_j">>),
    ok = py_context:stop(Ctx).

streams(_Config) ->
    doc("py:stream collects a generator; stream_start streams it with credit and "
        "stream_cancel stops it, on an isolated context."),
    Ctx = new(),
    ok = py_context_router:bind_context(Ctx),
    try
        {ok, [0, 1, 4, 9, 16]} = py:stream_eval(<<"(x * x for x in range(5))">>),
        ok = py:exec(<<"def gen(n):\n    for i in range(n):\n        yield i\n">>),
        {ok, [0, 1, 2]} = py:stream('__main__', gen, [3]),
        {ok, Ref} = py:stream_start('__main__', gen, [5], #{window => 2}),
        Items = [receive {py_stream, Ref, {data, I}} -> ok = py:stream_ack(Ref), I end
                 || _ <- lists:seq(1, 5)],
        [0, 1, 2, 3, 4] = Items,
        receive {py_stream, Ref, done} -> ok end,
        {ok, Ref2} = py:stream_start('__main__', gen, [1000000], #{window => 1}),
        receive {py_stream, Ref2, {data, 0}} -> ok end,
        ok = py:stream_cancel(Ref2),
        {ok, 1} = py:eval(<<"1">>)
    after
        ok = py_context_router:unbind_context()
    end,
    ok = py_context:stop(Ctx).

references(_Config) ->
    doc("An object with no term form stays in the child as a reference usable with "
        "call_method, getattr and to_term, and as an argument on its context."),
    Ctx = new(),
    {ok, Ref} = py:eval(Ctx, <<"__import__('collections').deque('abca')">>),
    true = py:is_ref(Ref),
    {ok, 2} = py:call_method(Ref, count, [<<"a">>]),
    {ok, Ref2} = py:to_term(Ref),  %% a deque has no term form: a reference again
    true = py:is_ref(Ref2),
    {ok, <<"deque">>} = py:eval(Ctx, <<"type(r).__name__">>, #{r => Ref}),
    {ok, [<<"a">>, <<"b">>, <<"c">>, <<"a">>]} = py:eval(Ctx, <<"list(r)">>, #{r => Ref}),
    {ok, L} = py:call(Ctx, builtins, list, [[1, 2]], #{return => ref}),
    true = py:is_ref(L),
    {ok, none} = py:call_method(L, append, [3]),
    {ok, [1, 2, 3]} = py:to_term(L),
    {ok, Fn} = py:getattr(L, <<"append">>),
    true = py:is_ref(Fn),
    Other = new(),
    {error, {'ValueError', Msg}} = py:eval(Other, <<"r">>, #{r => Ref}),
    {match, _} = re:run(Msg, "another context"),
    ok = py_context:stop(Other),
    ok = py_context:stop(Ctx).

references_die_with_child(_Config) ->
    doc("A reference dies with its child (a clear error after a restart) and with "
        "its Erlang owner."),
    Ctx = new(),
    {ok, Ref} = py:eval(Ctx, <<"object()">>),
    {error, {child_exited, _}} = py:eval(Ctx, <<"__import__('os')._exit(0)">>),
    {error, {'ValueError', Msg}} = py:eval(Ctx, <<"r">>, #{r => Ref}),
    {match, _} = re:run(Msg, "restarted"),
    Owned = in_new_process(fun() -> {ok, R} = py:eval(Ctx, <<"object()">>), R end),
    {error, {'ValueError', Msg2}} =
        wait_for(fun() -> py:eval(Ctx, <<"r">>, #{r => Owned}) end,
                 fun(R) -> element(1, R) =:= error end),
    {match, _} = re:run(Msg2, "owner has exited"),
    ok = py_context:stop(Ctx).

rlimit_as(_Config) ->
    doc("rlimits => #{as => Bytes}: an allocation past it is a MemoryError, and the "
        "child goes on."),
    Ctx = new(#{rlimits => #{as => 1024 * 1024 * 1024}}),
    {error, {'MemoryError', _}} = py:eval(Ctx, <<"bytearray(2 * 1024 ** 3)">>),
    {ok, 1024} = py:eval(Ctx, <<"len(bytearray(1024))">>),
    1 = generation(Ctx),
    ok = py_context:stop(Ctx).

rlimit_cpu(_Config) ->
    doc("rlimits => #{cpu => Seconds}: a child past it is killed by SIGXCPU, "
        "{error, {child_exited, {signal, 24}}}, and restarted."),
    Ctx = new(#{rlimits => #{cpu => 1}}),
    {error, {child_exited, {signal, 24}}} = py:eval(Ctx, <<"sum(range(10**10))">>),
    {ok, 1} = py:eval(Ctx, <<"1">>),
    ok = py_context:stop(Ctx).

cgroup(_Config) ->
    doc("cgroup => Dir needs cgroups v2 (a clear error without them); a directory the "
        "child cannot join is a startup error."),
    case filelib:is_regular("/sys/fs/cgroup/cgroup.controllers") of
        false ->
            {error, {cgroup_unsupported, no_cgroup2}} =
                py_context:new(#{mode => isolated, cgroup => "/sys/fs/cgroup/nope"});
        true ->
            {error, {startup_error, [{cgroup, _}], _}} =
                py_context:new(#{mode => isolated, cgroup => "/nonexistent/cgroup"})
    end.

numpy(_Config) ->
    doc("numpy imports and computes in an isolated context (it cannot load in a "
        "sub-interpreter)."),
    Ctx = new(),
    {ok, 285.0} = py:eval(Ctx, <<"float(__import__('numpy').arange(10.0).dot(__import__('numpy').arange(10.0)))">>),
    {ok, [[1.0, 0.0], [0.0, 1.0]]} = py:eval(Ctx, <<"__import__('numpy').eye(2).tolist()">>),
    ok = py_context:stop(Ctx).

sandbox(_Config) ->
    doc("The sandbox applies in the child by default (process creation is blocked "
        "with the VM's message); sandbox => false lifts it."),
    Ctx = new(),
    {error, {'RuntimeError', Msg}} = py:eval(Ctx, <<"__import__('subprocess').run(['true'])">>),
    "subprocess.Popen is blocked in Erlang VM context." ++ _ = Msg,
    {ok, true} = py:eval(Ctx, <<"__import__('erlang._sandbox', fromlist=['_']).is_sandboxed()">>),
    Free = new(#{sandbox => false}),
    {ok, 0} = py:eval(Free, <<"__import__('subprocess').run(['true']).returncode">>),
    ok = py_context:stop(Ctx),
    ok = py_context:stop(Free).

output_to_logger(_Config) ->
    doc("What the child prints (stdout and stderr, C code's too) goes to logger, "
        "tagged with the context and the child's OS pid."),
    Self = self(),
    ok = logger:add_handler(iso_probe, ?MODULE, #{config => #{pid => Self}}),
    try
        Ctx = new(),
        P = os_pid(Ctx),
        {ok, none} = py:eval(Ctx, <<"print('hello from the child')">>),
        {ok, _} = py:eval(Ctx, <<"__import__('os').write(2, b'raw stderr\\n')">>),
        receive {logged, #{os_pid := P, context := Ctx}, <<"hello from the child">>} -> ok end,
        receive {logged, #{os_pid := P}, <<"raw stderr">>} -> ok end,
        ok = py_context:stop(Ctx)
    after
        ok = logger:remove_handler(iso_probe)
    end.

options(_Config) ->
    doc("env, clear_env, hash_seed, paths and preload shape the child; bad options "
        "raise badarg."),
    Dir = filename:join(proplists:get_value(priv_dir, [{priv_dir, "/tmp"}]),
                        "iso_paths_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = file:write_file(filename:join(Dir, "iso_mod.py"), <<"VALUE = 17\n">>),
    Ctx = new(#{env => #{"ISO_VAR" => "v"}, hash_seed => 7, paths => [Dir],
                preload => <<"import math\nseeded = math.pi">>}),
    {ok, <<"v">>} = py:eval(Ctx, <<"__import__('os').environ['ISO_VAR']">>),
    {ok, <<"7">>} = py:eval(Ctx, <<"__import__('os').environ.get('PYTHONHASHSEED')">>),
    {ok, 17} = py:eval(Ctx, <<"__import__('iso_mod').VALUE">>),
    {ok, true} = py:eval(Ctx, <<"seeded == math.pi">>),
    Clear = new(#{clear_env => true}),
    {ok, none} = py:eval(Clear, <<"__import__('os').environ.get('HOME')">>),
    ?assertError({badarg, {kill_after, -1}}, py_context:new(#{mode => isolated, kill_after => -1})),
    ?assertError({badarg, {rlimits, {as, 0}}},
                 py_context:new(#{mode => isolated, rlimits => #{as => 0}})),
    ?assertError({badarg, {nope, 1}}, py_context:new(#{mode => isolated, nope => 1})),
    {error, {child_exited_at_start, {exit, 1}, _}} =
        py_context:new(#{mode => isolated, python => "/bin/false"}),
    {error, {startup_error, [{preload, Why}], _}} =
        py_context:new(#{mode => isolated, preload => <<"1/0">>}),
    {match, _} = re:run(Why, "ZeroDivisionError"),
    ok = py_context:stop(Ctx),
    ok = py_context:stop(Clear).

pools_and_default_mode(_Config) ->
    doc("start_pool(Pool, N, isolated) makes a pool of isolated contexts; "
        "start_contexts(#{mode => isolated}) makes the default pool isolated."),
    {ok, [C1, C2]} = py_context_router:start_pool(iso_pool, 2, isolated),
    true = os_pid(C1) =/= os_pid(C2),
    ok = py:register_pool(iso_pool, {math, factorial}),
    {ok, 120} = py:call(math, factorial, [5]),
    ok = py:unregister_pool({math, factorial}),
    ok = py_context_router:stop_pool(iso_pool),
    {ok, Defaults} = py:start_contexts(#{mode => isolated, contexts => 2}),
    try
        {ok, #{os_pid := _}} = py_context:child_info(hd(Defaults)),
        {ok, 4.0} = in_new_process(fun() -> py:call(math, sqrt, [16]) end),
        ok = in_new_process(fun() -> py:exec(<<"x = 1">>) end)
    after
        {ok, _} = py:start_contexts()
    end.

coroutine_result(_Config) ->
    doc("A call whose result is a coroutine is awaited in the child."),
    Ctx = new(),
    ok = py:exec(Ctx, <<"import asyncio\n"
                        "async def later(x):\n    await asyncio.sleep(0.01)\n    return x * 2\n">>),
    {ok, 42} = py:call(Ctx, '__main__', later, [21]),
    ok = py_context:stop(Ctx).

async_call_cancel(_Config) ->
    doc("py:async_call on an isolated default context runs on the child's loop; an "
        "async_await timeout cancels the task there (its finally runs, no message is "
        "left, even when the child's main thread is busy), a task that finished first "
        "is answered, and a caller's death cancels its tasks."),
    Ctx = new(),
    Code = <<"import asyncio, erlang\n"
             "async def hold(pid, tag):\n"
             "    erlang.send(pid, (erlang.Atom('started'), tag))\n"
             "    try:\n"
             "        await asyncio.sleep(3600)\n"
             "    finally:\n"
             "        erlang.send(pid, (erlang.Atom('finally'), tag))\n"
             "async def double(x):\n"
             "    return 2 * x\n"
             "async def later(seconds, value):\n"
             "    await asyncio.sleep(seconds)\n"
             "    return value\n">>,
    in_new_process(
      fun() ->
              ok = py_context_router:bind_context(Ctx),
              ok = py:exec(Code),
              Ref = py:async_call('__main__', hold, [self(), 1]),
              receive {started, 1} -> ok end,
              {error, timeout} = py:async_await(Ref, 50),
              receive {finally, 1} -> ok end,
              {ok, 0} = py:call('erlang._async', pending, []),
              %% Results that race their timeout: either outcome, never a stray message.
              [case py:async_await(py:async_call('__main__', double, [I]), 0) of
                   {ok, V} when V =:= 2 * I -> ok;
                   {error, timeout} -> ok
               end || I <- lists:seq(1, 50)],
              {ok, 84} = py:async_await(py:async_call('__main__', double, [42])),
              {ok, 0} = py:call('erlang._async', pending, []),
              {messages, []} = process_info(self(), messages),
              %% A gather's timeout cancels every call still running (a task
              %% that had started runs its finally). The loop runs what the
              %% cancellation scheduled before the next call's task, and
              %% sends from its thread in order: after that call's result
              %% every started and finally message is here.
              {error, timeout} = py:async_gather([{'__main__', hold, [self(), 2]},
                                                  {'__main__', hold, [self(), 3]}], 200),
              {ok, 2} = py:async_await(py:async_call('__main__', double, [1])),
              [receive
                   {started, T} -> receive {finally, T} -> ok after 0 -> ct:fail({no_finally, T}) end
               after 0 -> ok  % cancelled before it started
               end || T <- [2, 3]],
              {ok, 0} = py:call('erlang._async', pending, []),
              {messages, []} = process_info(self(), messages),
              %% The child's main thread busy with another caller's request:
              %% the timeout is not held up, and the result the task sends
              %% meanwhile (to the alias the timeout dropped) never comes.
              Self = self(),
              Busy = spawn_link(fun() -> Self ! {busy, py:call(Ctx, time, sleep, [0.6])} end),
              Late = py:async_call('__main__', later, [0.2, late]),
              {T, {error, timeout}} = timed(fun() -> py:async_await(Late, 50) end),
              ?assert(T < 400),
              receive {busy, {ok, none}} -> unlink(Busy) end,
              {ok, 2} = py:async_await(py:async_call('__main__', double, [1])),
              {ok, 0} = py:call('erlang._async', pending, []),
              {messages, []} = process_info(self(), messages)
      end),
    %% A caller that dies: its task is cancelled in the child.
    Self = self(),
    {Pid, Mon} = spawn_monitor(
                   fun() ->
                           ok = py_context_router:bind_context(Ctx),
                           ok = py:exec(Code),
                           _ = py:async_call('__main__', hold, [Self, 4]),
                           receive go_away -> exit(done) end
                   end),
    receive {started, 4} -> Pid ! go_away end,
    receive {'DOWN', Mon, process, Pid, done} -> ok end,
    receive {finally, 4} -> ok end,
    ok = py_context:stop(Ctx).

vm_kill_leaves_no_child(_Config) ->
    doc("A VM killed with kill -9 leaves no child behind (PR_SET_PDEATHSIG, and end "
        "of file on the channel)."),
    Ebin = [filename:dirname(code:which(M)) || M <- [py, py_isolated_SUITE]],
    {ok, Peer, _Node} = peer:start_link(#{connection => standard_io,
                                           args => lists:append([["-pa", D] || D <- Ebin])}),
    {ok, _} = peer:call(Peer, application, ensure_all_started, [erlang_python]),
    {ok, Ctx} = peer:call(Peer, py_context, new, [#{mode => isolated}]),
    {ok, #{os_pid := Child}} = peer:call(Peer, py_context, child_info, [Ctx]),
    VmPid = list_to_integer(peer:call(Peer, os, getpid, [])),
    unlink(Peer),
    ok = py_nif:os_signal(VmPid, 9),
    await_os_exit(VmPid),
    await_os_exit(Child),
    false = filelib:is_dir("/proc/" ++ integer_to_list(Child)).

killed_caller_is_interrupted(_Config) ->
    doc("A caller killed while its request runs has it interrupted in the child (no "
        "restart): the next caller is answered at once; its namespace goes too."),
    Ctx = new(),
    Self = self(),
    {Victim, Mon} = spawn_monitor(
                      fun() ->
                              ok = py:exec(Ctx, <<"import erlang, time\n"
                                                  "def nap(p):\n"
                                                  "    erlang.send(p, erlang.Atom('napping'))\n"
                                                  "    time.sleep(30)\n">>),
                              py:call(Ctx, '__main__', nap, [Self])
                      end),
    receive napping -> ok end,
    exit(Victim, kill),
    receive {'DOWN', Mon, process, Victim, killed} -> ok end,
    {T, {ok, 2}} = timed(fun() -> py:eval(Ctx, <<"1 + 1">>) end),
    ?assert(T < 1000),
    1 = generation(Ctx),
    ok = py_context:stop(Ctx).

zygote_children(_Config) ->
    doc("Children forked from a zygote have its preload (modules and globals) and "
        "start in milliseconds; each is a child of its own (pid, namespaces, crash); "
        "a crashed one is forked again; py_zygote:run/2 is one job on one child."),
    {ok, Z} = py_zygote:start(#{preload => <<"import json\nseed = 41">>}),
    {ok, A} = py_context:new(#{mode => isolated, zygote => Z}),
    {ok, B} = py_context:new(#{mode => isolated, zygote => Z}),
    true = os_pid(A) =/= os_pid(B),
    {ok, 42} = py:eval(A, <<"seed + 1">>),
    {ok, <<"[1]">>} = py:eval(B, <<"json.dumps([1])">>),
    {ok, true} = py:eval(A, <<"'json' in __import__('sys').modules">>),
    ok = py:exec(A, <<"mine = 1">>),
    {error, {'NameError', _}} = py:eval(B, <<"mine">>),
    {error, {child_exited, {signal, 9}}} =
        py:eval(A, <<"__import__('os').kill(__import__('os').getpid(), 9)">>),
    {ok, 42} = py:eval(A, <<"seed + 1">>),
    2 = generation(A),
    Ts = [element(1, timed(fun() -> py_zygote:run(Z, fun(C) -> py:eval(C, <<"seed">>) end) end))
          || _ <- lists:seq(1, 5)],
    ct:comment("fresh child from the zygote, new to first answer: ~w ms", [Ts]),
    {ok, 41} = py_zygote:run(Z, fun(C) -> py:eval(C, <<"seed">>) end),
    ok = py_context:stop(A),
    ok = py_context:stop(B),
    ok = py_zygote:stop(Z).

zygote_down(_Config) ->
    doc("A zygote's children die with it; their contexts stop, their callers get "
        "child_exited."),
    {ok, Z} = py_zygote:start(#{}),
    {ok, A} = py_context:new(#{mode => isolated, zygote => Z}),
    P = os_pid(A),
    Mon = monitor(process, A),
    ok = py_zygote:stop(Z),
    receive {'DOWN', Mon, process, A, {zygote_down, _}} -> ok end,
    await_os_exit(P).

registry(_Config) ->
    ct:comment("The application's registry (py_setup) reaches isolated contexts: a "
               "path added while one runs, and at the start of one made later; the "
               "application's preload seeds their namespaces; a restart applies it again."),
    Dir = list_to_binary(filename:join(?config(priv_dir, _Config), "iso_registry")),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    try
        ok = py_import:add_path(Dir),
        {ok, true} = py:eval(Ctx, <<"d in __import__('sys').path">>, #{d => Dir}),
        ok = py_preload:set_code(<<"PRELOADED = 41 + 1\n">>),
        {ok, 42} = py_test_lib:in_new_process(fun() -> py:eval(Ctx, <<"PRELOADED">>) end),
        {ok, Later} = py_context:new(#{mode => isolated}),
        {ok, true} = py:eval(Later, <<"d in __import__('sys').path">>, #{d => Dir}),
        {ok, 42} = py:eval(Later, <<"PRELOADED">>),
        ok = py_context:kill(Later),
        {ok, true} = py:eval(Later, <<"d in __import__('sys').path">>, #{d => Dir}),
        ok = py_context:stop(Later)
    after
        ok = py_preload:clear_code(),
        ok = py_import:clear_paths(),
        py_context:stop(Ctx)
    end.

%% Internal.

%% @private A logger handler that forwards the child's output to the test.
log(#{meta := Meta = #{python_output := Line}}, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Meta, Line};
log(_Event, _Config) ->
    ok.

doc(_) -> ok.
