%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Python calls Erlang: registered functions (py_callback), reentrant
%% callbacks, callbacks from Python threads, erlang.send and erlang.self.
-module(py_callback_SUITE).

-include_lib("common_test/include/ct.hrl").

%% Every case and the target of register_function/3 (mf_target/1) are
%% called from outside the module.
-compile([export_all, nowarn_export_all]).

-define(CB_NAMES, [cb_add, <<"cb_echo">>, cb_where, cb_probe, cb_mf, cb_gone, cb_raise,
                   cb_meet, cb_hold, cb_gate, cb_nested, run_shell, process, double_via_python,
                   cb_self]).

suite() -> [{timetrap, {minutes, 2}}].

all() ->
    [three_forms, unregistered, introspection, register_mf, reregister, exception_caught,
     exception_uncaught, readme_reentrancy, reentrancy_depth_20, threads, thread_pool,
     caller_killed, caller_timeout, seed_run_shell, seed_supervisor, cast_send,
     send_destinations, send_remote, self_is_caller].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

end_per_testcase(_Case, _Config) ->
    lists:foreach(fun py:unregister_function/1, ?CB_NAMES).

%% The target of register_function/3.
mf_target(Args) -> {mf, Args}.

%% Cases.

three_forms() ->
    [{doc, "erlang.call('name', *args), erlang.name(*args) and `from erlang import name` "
      "run the same fun, in the caller's callback helper (a process linked to the caller), "
      "with the arguments as a list, and give the same value back; the name may be an atom "
      "or a binary."}].
three_forms(_Config) ->
    Self = self(),
    ok = py:register_function(cb_add, fun([A, B]) -> A + B end),
    ok = py:register_function(<<"cb_echo">>, fun(Args) -> {echo, Args} end),
    ok = py:register_function(cb_where, fun([]) -> self() end),
    ok = py:exec(<<"import erlang\n"
                   "from erlang import cb_add, cb_echo, cb_where\n"
                   "def forms(name, *args):\n"
                   "    imported = globals()[name]\n"
                   "    return [erlang.call(name, *args), getattr(erlang, name)(*args),\n"
                   "            imported(*args)]\n">>),
    {ok, [5, 5, 5]} = py:call('__main__', forms, [<<"cb_add">>, 2, 3]),
    Echo = {echo, [1, <<"two">>, {three, 3.0}, #{4 => [four]}]},
    {ok, [Echo, Echo, Echo]} =
        py:call('__main__', forms, [<<"cb_echo">>, 1, <<"two">>, {three, 3.0}, #{4 => [four]}]),
    {ok, [Helper, Helper, Helper]} = py:call('__main__', forms, [<<"cb_where">>]),
    true = Helper =/= Self,
    {links, Links} = process_info(Self, links),
    true = lists:member(Helper, Links),
    {ok, 2000000000000000000000} = py:eval(<<"erlang.cb_add(10**21, 10**21)">>).

unregistered() ->
    [{doc, "An unregistered name: erlang.call raises NameError, erlang.name raises "
      "AttributeError, and `from erlang import name` raises ImportError (Python turns the "
      "module's AttributeError into ImportError for that form)."}].
unregistered(_Config) ->
    ok = py:exec(<<"import erlang\n"
                   "def attempt(form):\n"
                   "    try:\n"
                   "        if form == 'call':\n"
                   "            erlang.call('cb_nope', 1)\n"
                   "        elif form == 'attr':\n"
                   "            erlang.cb_nope(1)\n"
                   "        else:\n"
                   "            exec('from erlang import cb_nope', {})\n"
                   "    except Exception as e:\n"
                   "        return (type(e).__name__, str(e))\n"
                   "    return 'no exception'\n">>),
    {ok, {<<"NameError">>, Msg}} = py:call('__main__', attempt, [call]),
    {match, _} = re:run(Msg, <<"cb_nope">>),
    {ok, {<<"AttributeError">>, <<"module 'erlang' has no attribute 'cb_nope'">>}} =
        py:call('__main__', attempt, [attr]),
    {ok, {<<"ImportError">>, Imp}} = py:call('__main__', attempt, [import]),
    {match, _} = re:run(Imp, <<"cannot import name 'cb_nope'">>),
    %% Uncaught, the Erlang caller gets the Python error.
    {error, {'NameError', _}} = py:eval(<<"__import__('erlang').call('cb_nope')">>),
    {error, {'AttributeError', _}} = py:eval(<<"__import__('erlang').cb_nope">>).

introspection() ->
    [{doc, "hasattr, dir, inspect.getmembers and the probes libraries make on import "
      "(__wrapped__, __file__, __path__, other dunders) answer from the published names "
      "and never call Erlang: py_callback:run/2 is traced and runs only for the one real "
      "call. Unknown names and dunders raise AttributeError; __path__ is the package's "
      "real path list (erlang is a package), not a registered-function lookup."}].
introspection(_Config) ->
    ok = py:register_function(cb_probe, fun([]) -> probed end),
    ok = py:exec(<<"import erlang, inspect\n"
                   "def introspect():\n"
                   "    members = dict(inspect.getmembers(erlang))\n"
                   "    f = erlang.cb_probe\n"
                   "    return {'has_unknown': hasattr(erlang, 'cb_unknown'),\n"
                   "            'has_probe': hasattr(erlang, 'cb_probe'),\n"
                   "            'in_dir': 'cb_probe' in dir(erlang),\n"
                   "            'unknown_in_dir': 'cb_unknown' in dir(erlang),\n"
                   "            'in_members': callable(members.get('cb_probe')),\n"
                   "            'path': isinstance(erlang.__path__, list),\n"
                   "            'wrapped': hasattr(erlang, '__wrapped__'),\n"
                   "            'file': isinstance(erlang.__file__, str),\n"
                   "            'name': f.__name__,\n"
                   "            'unwrap': inspect.unwrap(erlang) is erlang}\n"
                   "def raises(attr):\n"
                   "    try:\n"
                   "        getattr(erlang, attr)\n"
                   "    except AttributeError:\n"
                   "        return True\n"
                   "    return False\n">>),
    Collector = trace_run(),
    {ok, Seen} = py:call('__main__', introspect, []),
    {ok, true} = py:call('__main__', raises, [<<"cb_unknown">>]),
    {ok, true} = py:call('__main__', raises, [<<"__pydantic_core_schema__">>]),
    {ok, true} = py:call('__main__', raises, [<<"__wrapped__">>]),
    {ok, probed} = py:eval(<<"erlang.cb_probe()">>),
    [<<"cb_probe">>] = trace_stop(Collector),
    #{<<"has_unknown">> := false, <<"has_probe">> := true, <<"in_dir">> := true,
      <<"unknown_in_dir">> := false, <<"in_members">> := true, <<"path">> := true,
      <<"wrapped">> := false, <<"file">> := true, <<"name">> := <<"cb_probe">>,
      <<"unwrap">> := true} = Seen.

register_mf() ->
    [{doc, "register_function/3 calls Module:Function(Args) with the argument list."}].
register_mf(_Config) ->
    ok = py:register_function(cb_mf, ?MODULE, mf_target),
    {ok, {mf, [1, a, <<"b">>]}} = py:eval(<<"__import__('erlang').cb_mf(1, x, 'b')">>,
                                          #{x => a}),
    {'EXIT', {{badarg, _}, _}} = (catch py:register_function(cb_mf, ?MODULE, "f")),
    {'EXIT', {{badarg, _}, _}} = (catch py:register_function(cb_mf, fun(_, _) -> ok end)),
    {'EXIT', {{badarg, _}, _}} = (catch py:register_function("cb_mf", fun(_) -> ok end)),
    ok.

reregister() ->
    [{doc, "Registering again replaces the function; after unregister_function the name "
      "is gone from every form and from dir(erlang); unregistering twice is fine."}].
reregister(_Config) ->
    ok = py:register_function(cb_gone, fun([]) -> first end),
    ok = py:register_function(cb_gone, fun([]) -> second end),
    ok = py:exec(<<"import erlang\n">>),
    {ok, second} = py:eval(<<"erlang.cb_gone()">>),
    ok = py:unregister_function(cb_gone),
    ok = py:unregister_function(<<"cb_gone">>),
    {ok, {false, false}} = py:eval(<<"(hasattr(erlang, 'cb_gone'), 'cb_gone' in dir(erlang))">>),
    {error, {'NameError', _}} = py:eval(<<"erlang.call('cb_gone')">>),
    {error, {'AttributeError', _}} = py:eval(<<"erlang.cb_gone()">>).

exception_caught() ->
    [{doc, "An error, exit or throw in the fun is erlang.ErlangError in Python, with cls, "
      "reason (the term) and stack (a list) as attributes, and Python can catch it and go on."}].
exception_caught(_Config) ->
    ok = py:register_function(cb_raise, fun([error, R]) -> erlang:error(R);
                                           ([exit, R]) -> exit(R);
                                           ([throw, R]) -> throw(R) end),
    ok = py:exec(<<"import erlang\n"
                   "def catch_it(cls, reason):\n"
                   "    try:\n"
                   "        erlang.cb_raise(cls, reason)\n"
                   "    except erlang.ErlangError as e:\n"
                   "        return (e.cls, e.reason, isinstance(e.stack, list) and len(e.stack) > 0,\n"
                   "                isinstance(e, Exception), str(e))\n"
                   "def stack_of(f):\n"
                   "    try:\n"
                   "        f()\n"
                   "    except erlang.ErlangError as e:\n"
                   "        return e.stack\n">>),
    lists:foreach(
      fun(Class) ->
              {ok, {Class, {bad, 7}, true, true, Text}} =
                  py:call('__main__', catch_it, [Class, {bad, 7}]),
              {match, _} = re:run(Text, <<"\\{bad,7\\}">>)
      end, [error, exit, throw]),
    %% The stack is the Erlang stack trace: its top frame is this suite's fun.
    {ok, [{?MODULE, _, _, _} | _]} = py:eval(<<"stack_of(lambda: erlang.cb_raise('error', 1))">>).

exception_uncaught() ->
    [{doc, "Uncaught in Python, the Erlang exception comes back to the Erlang caller as "
      "{error, {'ErlangError', Text}}, and the context goes on serving."}].
exception_uncaught(_Config) ->
    ok = py:register_function(cb_raise, fun([R]) -> erlang:error(R) end),
    {error, {'ErlangError', Text}} = py:eval(<<"__import__('erlang').cb_raise((__import__('erlang').Atom('boom'), 42))">>),
    {match, _} = re:run(Text, "\\{boom,42\\}"),
    {ok, 3} = py:eval(<<"1 + 2">>).

readme_reentrancy() ->
    [{doc, "The README's example: Python process(x) calls the Erlang function "
      "double_via_python, which calls Python's double on the same context: 10 -> 21."}].
readme_reentrancy(_Config) ->
    ok = py:register_function(double_via_python, fun([X]) ->
        {ok, Result} = py:call('__main__', double, [X]),
        Result
    end),
    ok = py:exec(<<"def double(x):\n"
                   "    return x * 2\n"
                   "\n"
                   "def process(x):\n"
                   "    from erlang import double_via_python\n"
                   "    return double_via_python(x) + 1\n">>),
    {ok, 21} = py:call('__main__', process, [10]).

reentrancy_depth_20() ->
    [{doc, "Python -> Erlang -> Python ... nested 20 deep on one context: Python "
      "double_via_python(n) calls the Erlang function process(n + 1), which calls "
      "double_via_python again, until n = 20 answers 21. No deadlock, every level on the "
      "same OS thread, and no Python or Erlang code runs twice (counted in shared state)."}].
reentrancy_depth_20(_Config) ->
    Ctx = py:context(),
    ok = py:state_remove(<<"py_runs">>),
    ok = py:state_remove(erl_runs),
    ok = py:register_function(process, fun([N]) ->
        _ = py:state_incr(erl_runs),
        Ctx = py:context(),
        {ok, R} = py:call('__main__', double_via_python, [N]),
        R
    end),
    ok = py:exec(<<"import erlang, threading\n"
                   "threads = set()\n"
                   "def double_via_python(n):\n"
                   "    erlang.state_incr('py_runs')\n"
                   "    threads.add(threading.get_ident())\n"
                   "    if n >= 20:\n"
                   "        return n + 1\n"
                   "    return erlang.process(n + 1)\n">>),
    {ok, 21} = py:call('__main__', double_via_python, [0]),
    {ok, 21} = py:state_fetch(<<"py_runs">>),
    {ok, 20} = py:state_fetch(erl_runs),
    {ok, 1} = py:eval(<<"len(threads)">>),
    %% And again, from a fresh start: exactly twice the work, no replays.
    {ok, 21} = py:call('__main__', double_via_python, [0]),
    {ok, 42} = py:state_fetch(<<"py_runs">>),
    {ok, 40} = py:state_fetch(erl_runs).

threads() ->
    [{doc, "Eight threading.Thread call an Erlang function at once; the calls run "
      "concurrently (the fun waits until all eight have arrived, so serialised calls would "
      "time out) in eight distinct processes, and each thread gets its own answer."}].
threads(_Config) ->
    barrier_case(<<"import erlang, threading\n"
                   "def fan_out(n):\n"
                   "    results = [None] * n\n"
                   "    def work(i):\n"
                   "        try:\n"
                   "            results[i] = erlang.cb_meet(i)\n"
                   "        except BaseException as e:\n"
                   "            results[i] = ('raised', repr(e))\n"
                   "    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]\n"
                   "    for t in ts:\n"
                   "        t.start()\n"
                   "    for t in ts:\n"
                   "        t.join()\n"
                   "    return results\n">>).

thread_pool() ->
    [{doc, "The same with concurrent.futures.ThreadPoolExecutor(max_workers=8)."}].
thread_pool(_Config) ->
    barrier_case(<<"import erlang\n"
                   "from concurrent.futures import ThreadPoolExecutor\n"
                   "def fan_out(n):\n"
                   "    with ThreadPoolExecutor(max_workers=n) as ex:\n"
                   "        return list(ex.map(erlang.cb_meet, range(n)))\n">>).

caller_killed() ->
    [{doc, "The caller is killed while its request waits for a callback: the parked Python "
      "code unwinds with CallInterrupted, its except block runs to the end, and the context "
      "answers the next call. 20 times: the kill races with the thread going to sleep."}].
caller_killed(_Config) ->
    {ok, Ctx} = py_context:new(#{}),
    Test = self(),
    ok = py:register_function(cb_hold, fun([]) ->
        Test ! {holding, self()},
        receive release -> ok after 60000 -> ok end
    end),
    lists:foreach(fun(I) -> kill_in_callback(Ctx, I) end, lists:seq(1, 20)),
    ok = py_context:stop(Ctx).

caller_timeout() ->
    [{doc, "A caller times out (1) while a callback made by a Python thread of its request "
      "is still running in Erlang, and (2) in a nested request made from inside a "
      "callback; both times the context answers the next call, and the thread's callback "
      "still gets its answer when released."}].
caller_timeout(_Config) ->
    {ok, Ctx} = py_context:new(#{}),
    Test = self(),
    ok = py:register_function(cb_gate, fun([]) ->
        Test ! {gate, self()},
        receive {open, V} -> V after 30000 -> gate_timeout end
    end),
    ok = py:exec(Ctx, <<"import erlang, threading\n"
                        "def via_thread(watcher):\n"
                        "    def work():\n"
                        "        erlang.send(watcher, ('thread_result', erlang.cb_gate()))\n"
                        "    t = threading.Thread(target=work)\n"
                        "    t.start()\n"
                        "    while t.is_alive():\n"
                        "        t.join(0.01)\n"
                        "def outer():\n"
                        "    return erlang.cb_nested()\n"
                        "def spin():\n"
                        "    while True:\n"
                        "        pass\n">>),
    {error, timeout} = py:call(Ctx, '__main__', via_thread, [Test], #{timeout => 300}),
    Gate = receive {gate, G} -> G after 10000 -> ct:fail(thread_callback_not_reached) end,
    %% The thread's callback is still in flight: the context serves anyway.
    {ok, 2} = py:call(Ctx, builtins, abs, [-2], #{timeout => 10000}),
    Gate ! {open, <<"late">>},
    receive {<<"thread_result">>, <<"late">>} -> ok after 10000 -> ct:fail(no_thread_result) end,
    %% (2) The nested request times out; the outer one goes on and answers.
    ok = py:register_function(cb_nested, fun([]) ->
        py:call(Ctx, '__main__', spin, [], #{timeout => 200})
    end),
    {ok, {error, timeout}} = py:call(Ctx, '__main__', outer, [], #{timeout => 20000}),
    {ok, 2} = py:call(Ctx, builtins, abs, [-2], #{timeout => 10000}),
    ok = py_context:stop(Ctx).

seed_run_shell() ->
    [{doc, "The seed's example, verbatim: run_shell runs a command through a port and "
      "Python calls it with `from erlang import run_shell`."}].
seed_run_shell(_Config) ->
    py:register_function(run_shell, fun([Cmd]) ->
        Port = open_port({spawn, binary_to_list(Cmd)}, [exit_status, binary, stderr_to_stdout]),
        collect_output(Port, [])
    end),
    ok = py:exec(<<"from erlang import run_shell\n"
                   "result = run_shell(\"ls -la\")\n">>),
    {ok, Listing} = py:eval(<<"result">>),
    {match, _} = re:run(Listing, <<"^total \\d+\\n">>),
    {match, _} = re:run(Listing, <<" \\.\\.\\n">>),
    {ok, <<"hello from a port\n">>} = py:eval(<<"run_shell('echo hello from a port')">>).

seed_supervisor() ->
    [{doc, "The seed's example: erlang.send(supervisor_pid, ('spawn_worker', worker_args)) "
      "reaches an Erlang process that starts the worker through a port (echo)."}].
seed_supervisor(_Config) ->
    Test = self(),
    Supervisor = spawn_link(fun() ->
        receive
            {<<"spawn_worker">>, Args} ->
                Echo = os:find_executable("echo"),
                Port = open_port({spawn_executable, Echo},
                                 [{args, Args}, exit_status, binary, stderr_to_stdout]),
                Test ! {worker_ran, Args, collect_output(Port, [])}
        after 10000 -> Test ! {worker_ran, none, none}
        end
    end),
    ok = py:exec(<<"import erlang\n"
                   "def start_worker(supervisor_pid, worker_args):\n"
                   "    erlang.send(supervisor_pid, ('spawn_worker', worker_args))\n">>),
    {ok, none} = py:call('__main__', start_worker, [Supervisor, [<<"job">>, <<"42">>]]),
    receive {worker_ran, Args, Output} ->
        {[<<"job">>, <<"42">>], <<"job 42\n">>} = {Args, Output}
    after 15000 -> ct:fail(no_worker)
    end.

cast_send() ->
    [{doc, "py:cast(erlang, send, [self(), {done, <<\"task1\">>}]) delivers the message."}].
cast_send(_Config) ->
    ok = py:cast(erlang, send, [self(), {done, <<"task1">>}]),
    receive {done, <<"task1">>} -> ok after 10000 -> ct:fail(not_delivered) end.

send_destinations() ->
    [{doc, "erlang.send to a registered name (erlang.Atom), to (Name, node()), from a "
      "Python thread; to a dead local pid it raises erlang.ProcessError (as 4.x); to "
      "an unregistered name it raises LookupError."}].
send_destinations(_Config) ->
    true = register(cb_sink, self()),
    ok = py:exec(<<"import erlang, threading\n"
                   "def from_thread(dest, msg):\n"
                   "    t = threading.Thread(target=erlang.send, args=(dest, msg))\n"
                   "    t.start()\n"
                   "    t.join()\n">>),
    {ok, none} = py:eval(<<"erlang.send(erlang.Atom('cb_sink'), ('by', 'name'))">>),
    receive {<<"by">>, <<"name">>} -> ok after 10000 -> ct:fail(by_name) end,
    {ok, none} = py:eval(<<"erlang.send((erlang.Atom('cb_sink'), n), ('by', 'node'))">>,
                         #{n => node()}),
    receive {<<"by">>, <<"node">>} -> ok after 10000 -> ct:fail(by_name_node) end,
    {ok, none} = py:call('__main__', from_thread, [self(), {by, thread}]),
    receive {by, thread} -> ok after 10000 -> ct:fail(from_thread) end,
    {Dead, Mon} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Mon, process, Dead, normal} -> ok end,
    {error, {'ProcessError', _}} = py:eval(<<"erlang.send(p, 'lost')">>, #{p => Dead}),
    {error, {'LookupError', _}} = py:eval(<<"erlang.send(erlang.Atom('cb_no_such'), 1)">>),
    true = unregister(cb_sink),
    receive Stray -> ct:fail({unexpected, Stray}) after 0 -> ok end.

send_remote() ->
    [{doc, "erlang.send to a pid on another node and to (Name, Node) there: the message "
      "arrives (checked by a process on a peer node that echoes it back)."}].
send_remote(_Config) ->
    case py_test_lib:ensure_distributed(cb_suite) of
        {skip, _} = Skip -> Skip;
        Started ->
            {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(),
                                                 args => ["-pa", code:lib_dir(erlang_python, ebin),
                                                          "-pa", filename:dirname(code:which(?MODULE))]}),
            Test = self(),
            Echo = erlang:spawn(Node, fun() ->
                register(cb_remote_echo, self()),
                Test ! {echo_ready, self()},
                echo_loop(Test)
            end),
            receive {echo_ready, Echo} -> ok after 10000 -> ct:fail(no_peer_echo) end,
            {ok, none} = py:eval(<<"__import__('erlang').send(p, ('remote', 'pid'))">>,
                                 #{p => Echo}),
            receive {echoed, {<<"remote">>, <<"pid">>}} -> ok after 10000 -> ct:fail(remote_pid) end,
            {ok, none} = py:eval(<<"__import__('erlang').send((name, node), ('remote', 'name'))">>,
                                 #{name => cb_remote_echo, node => Node}),
            receive {echoed, {<<"remote">>, <<"name">>}} -> ok
            after 10000 -> ct:fail(remote_name)
            end,
            ok = peer:stop(Peer),
            Started =:= started andalso net_kernel:stop(),
            ok
    end.

self_is_caller() ->
    [{doc, "erlang.self() is the pid of the Erlang process whose request runs, also in a "
      "nested request made from a callback; from a thread outside any request it raises "
      "RuntimeError."}].
self_is_caller(_Config) ->
    Self = self(),
    {ok, Self} = py:eval(<<"__import__('erlang').self()">>),
    {Other, Mon} = spawn_monitor(fun() -> exit(py:eval(<<"__import__('erlang').self()">>)) end),
    receive {'DOWN', Mon, process, Other, {ok, Other}} -> ok
    after 10000 -> ct:fail(other_self)
    end,
    ok = py:register_function(cb_self, fun([]) -> py:eval(<<"__import__('erlang').self()">>) end),
    {ok, {ok, Self}} = py:eval(<<"__import__('erlang').cb_self()">>),
    ok = py:exec(<<"import erlang, threading\n"
                   "def self_in_thread():\n"
                   "    out = []\n"
                   "    def work():\n"
                   "        try:\n"
                   "            out.append(erlang.self())\n"
                   "        except RuntimeError as e:\n"
                   "            out.append(('RuntimeError', str(e)))\n"
                   "    t = threading.Thread(target=work)\n"
                   "    t.start()\n"
                   "    t.join()\n"
                   "    return out[0]\n">>),
    {ok, {<<"RuntimeError">>, _}} = py:call('__main__', self_in_thread, []).

%% Internal.

collect_output(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect_output(Port, [Data | Acc]);
        {Port, {exit_status, _Status}} -> iolist_to_binary(lists:reverse(Acc))
    after 10000 ->
        erlang:error({port_timeout, iolist_to_binary(lists:reverse(Acc))})
    end.

%% Kill a caller of Ctx while its request waits for cb_hold; the request's
%% except block reports (I, exception name) before the next call is answered.
kill_in_callback(Ctx, I) ->
    Test = self(),
    Caller = spawn(fun() ->
        ok = py:exec(Ctx, <<"import erlang\n"
                            "def hold(watcher, i):\n"
                            "    try:\n"
                            "        return erlang.cb_hold()\n"
                            "    except BaseException as e:\n"
                            "        erlang.send(watcher, ('unwound', i, type(e).__name__))\n"
                            "        raise\n">>),
        Test ! {result, py:call(Ctx, '__main__', hold, [Test, I])}
    end),
    Mon = monitor(process, Caller),
    receive {holding, _Helper} -> ok after 10000 -> ct:fail({callback_not_reached, I}) end,
    exit(Caller, kill),
    receive {'DOWN', Mon, process, Caller, killed} -> ok end,
    receive {<<"unwound">>, I, Exc} -> <<"CallInterrupted">> = Exc
    after 10000 -> ct:fail({python_not_unwound, I})
    end,
    {ok, 2} = py:call(Ctx, builtins, abs, [-2], #{timeout => 10000}).

%% Run the Python fan_out(8) against cb_meet, a fun that waits at a barrier.
barrier_case(Code) ->
    Test = self(),
    N = 8,
    Coord = spawn_link(fun() -> coordinator(N, [], Test) end),
    ok = py:register_function(cb_meet, fun([I]) ->
        Coord ! {arrived, self()},
        receive {go, Coord} -> {I, I * I, self()}
        after 15000 -> erlang:error(barrier_timeout)
        end
    end),
    ok = py:exec(Code),
    {ok, Results} = py:call('__main__', fan_out, [N]),
    receive {barrier, Coord, Outcome} -> all_arrived = Outcome
    after 15000 -> ct:fail(no_barrier_outcome)
    end,
    Expected = [{I, I * I} || I <- lists:seq(0, N - 1)],
    Expected = [{I, Sq} || {I, Sq, _} <- Results],
    Pids = [P || {_, _, P} <- Results],
    N = length(lists:usort(Pids)),
    false = lists:member(Test, Pids).

coordinator(N, Waiting, Test) when length(Waiting) =:= N ->
    [P ! {go, self()} || P <- Waiting],
    Test ! {barrier, self(), all_arrived};
coordinator(N, Waiting, Test) ->
    receive {arrived, P} -> coordinator(N, [P | Waiting], Test)
    after 10000 ->
        [P ! {go, self()} || P <- Waiting],
        Test ! {barrier, self(), {only_arrived, length(Waiting)}}
    end.

%% Trace every call of py_callback:run/2 (in any process) to a collector.
trace_run() ->
    Collector = spawn_link(fun() -> collect_traces([]) end),
    _ = erlang:trace_pattern({py_callback, run, 2}, true, [local]),
    _ = erlang:trace(all, true, [call, {tracer, Collector}]),
    Collector.

trace_stop(Collector) ->
    _ = erlang:trace(all, false, [call]),
    _ = erlang:trace_pattern({py_callback, run, 2}, false, [local]),
    Ref = erlang:trace_delivered(all),
    receive {trace_delivered, all, Ref} -> ok end,
    Collector ! {done, self()},
    receive {names, Collector, Names} -> Names after 10000 -> ct:fail(no_traces) end.

collect_traces(Acc) ->
    receive
        {trace, _Pid, call, {py_callback, run, [Name, _Args]}} ->
            collect_traces([Name | Acc]);
        {done, From} ->
            From ! {names, self(), lists:reverse(Acc)}
    end.

echo_loop(Test) ->
    receive Msg -> Test ! {echoed, Msg}, echo_loop(Test) end.
