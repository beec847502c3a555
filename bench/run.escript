#!/usr/bin/env escript
%% -*- erlang -*-
%% Copyright 2026 the erlang_python developers. Apache-2.0.
%%
%% The project's benchmark; bench/README.md describes the method.
%%
%%   make bench                          (builds, then runs this)
%%   escript bench/run.escript [--quick] [--json-only] [--only latency,roundtrip]
%%
%% The same options as environment variables: BENCH_QUICK=1,
%% BENCH_JSON_ONLY=1, BENCH_ONLY=latency,roundtrip.
%%
%% Prints one table per section, then one JSON line per measurement. Exits
%% 0 when every section ran (missed targets included), 1 when a section
%% crashed or a call returned a wrong result.
%%
%% Adding a section: write `my_section(Cfg) -> [Row]' with the helpers below
%% (interleave/2 for side-by-side latency rounds, tp_group/3 and tp_round/2
%% for looping callers, latency_row/3,4, ratio_row/5, row/8 for rows; targets by
%% row name in spec/1) and add `{my_section, Title, fun my_section/1}' to
%% sections/0. Each section runs in a fresh process, so its Python namespace
%% and heap are its own.
-mode(compile).

-define(ASYNCIO_HELPERS, <<"
import asyncio, time
import erlang
from erlang import Atom, _loop

async def echo(x):
    return x

def notify_direct(pid):
    erlang.send(pid, Atom('woke'))

def notify_via_loop(pid):
    _loop.shared_loop().call_soon_threadsafe(erlang.send, pid, Atom('woke'))

def new_loop(kind):
    return erlang.new_event_loop() if kind == 'erlang' else asyncio.SelectorEventLoop()

def sleep_samples(kind, delay, n):
    async def run():
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await asyncio.sleep(delay)
            out.append(time.perf_counter() - t0)
        return out
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

def tcp_echo(kind, clients, seconds, size):
    loop = new_loop(kind)
    async def main():
        server = await loop.create_server(Echo, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        payload = b'x' * size
        async def client():
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            n = 0
            while loop.time() < stop:
                writer.write(payload)
                await reader.readexactly(size)
                n += 1
            writer.close()
            await writer.wait_closed()
            return n
        stop = loop.time() + seconds
        t0 = time.perf_counter()
        counts = await asyncio.gather(*[client() for _ in range(clients)])
        elapsed = time.perf_counter() - t0
        server.close()
        await server.wait_closed()
        return sum(counts) / elapsed
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()

_server = None

def start_echo_server():
    global _server
    async def start():
        return await asyncio.get_running_loop().create_server(Echo, '127.0.0.1', 0)
    _server = erlang.spawn_task(start()).result(10)
    return _server.sockets[0].getsockname()[1]

def stop_echo_server():
    async def close():
        _server.close()
        await _server.wait_closed()
    erlang.spawn_task(close()).result(10)
    return True

def thread_wake_us(kind, n):
    import statistics, threading
    loop = new_loop(kind)
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    woke, samples = threading.Event(), []
    try:
        for _ in range(n):
            woke.clear()
            t0 = time.perf_counter_ns()
            loop.call_soon_threadsafe(woke.set)
            woke.wait()
            samples.append(time.perf_counter_ns() - t0)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    return statistics.median(samples) / 1000

def cpu_seconds():
    loop_clock = time.pthread_getcpuclockid(_loop._shared_thread.ident)
    return [time.clock_gettime(loop_clock), time.process_time()]
">>).

%% Over the 500-line target for a file: `make bench' is one escript, and every
%% section shares the measurement helpers (interleaved rounds, medians, rows).

%% The CPU-bound call of the parallel rows: ~0.4 s of pure Python, long
%% enough that a core taken by something else for a few ms (a shared VM)
%% moves the ratio little.
-define(PAR_CODE, <<"sum(i * i for i in range(4000000))">>).

%% Section list: {Name, Title, Fun}. Order matters only for readability.
sections() ->
    [{latency, "sync latency, one caller, back to back", fun latency/1},
     {breakdown, "where the time of a sync call goes (one caller)", fun breakdown/1},
     {throughput, "throughput, N concurrent callers of math.sqrt(2.0)", fun throughput/1},
     {roundtrip, "round trips of large terms through an identity function", fun roundtrip/1},
     {callbacks, "Python calls Erlang: callbacks, messages, streams", fun callbacks/1},
     {asyncio, "asyncio: tasks from Erlang, wake-ups, timers, TCP echo, idle loop",
      fun asyncio/1},
     {contexts, "own-GIL (Python 3.12+) and isolated contexts against worker contexts",
      fun contexts/1},
     {distributed, "a context on a peer node (Distributed Erlang)", fun distributed/1},
     {programs, "programs through Erlang ports against subprocess in a plain Python",
      fun programs/1},
     {logging, "Python logging into OTP logger, per record", fun logging/1},
     {ml, "sentence embeddings (all-MiniLM-L6-v2, batches of 64; needs make demo-ml's venv)",
      fun ml/1},
     {data, "data plane: channels, shared dicts, py_event_loop tasks", fun data/1}].

%% Targets (from the issue) and the best peer measured on this machine.
%% {Better, Target | none, Peer | none}
spec(sync_call_math_sqrt) -> {lower, 5, 19};
spec(sync_call_vs_floor) -> {lower, 1.5, none};
spec(throughput_math_sqrt_64) -> {higher, 250000, 115000};
spec(roundtrip_list_100k_ints) -> {lower, 3, 7};
spec(roundtrip_binary_10mib_bytes) -> {lower, 2, 4.8};
spec(roundtrip_binary_10mib_str) -> {lower, 2, 4.8};
spec(roundtrip_map_10k_keys) -> {lower, 2, 4.6};
spec(roundtrip_map_10k_binary_keys) -> {lower, 2, 6.6};
spec(callback_roundtrip) -> {lower, 5, 11};
spec(stream_eval_rate) -> {higher, 15000000, none};
spec(asyncio_tcp_echo_vs_stdlib) -> {higher, 1.0, none};
spec(parallel_cpu_2_owngil) -> {higher, 1.8, none};
spec(sync_call_owngil_vs_worker) -> {lower, 1.5, none};
spec(throughput_math_sqrt_64_owngil_pool) -> {higher, 250000, none};
spec(remote_sync_call_vs_erpc) -> {lower, 1.3, none};
spec(sync_call_isolated_context) -> {lower, 25, none};
spec(parallel_cpu_2_isolated) -> {higher, 1.8, none};
spec(throughput_math_sqrt_64_isolated_2) -> {higher, 100000, none};
spec(isolated_cold_start) -> {lower, 40, none};
spec(isolated_zygote_start) -> {lower, 5, none};
spec(isolated_timeout_c_loop) -> {lower, 1100, none};
spec(embeddings_pool_2_vs_worker) -> {higher, 1.7, none};
spec(embeddings_pool_2_vs_plain_pct) -> {lower, 10, none};
spec(channel_erlang_to_python_64b) -> {higher, 1000000, none};
spec(shared_dict_set_get_erlang) -> {higher, 1000000, 300000};
spec(loop_tasks_50_callers) -> {higher, 50000, none};
spec(_) -> none.

%% Knobs of a full and a quick run.
config(false) ->
    #{quick => false, rounds => 21, round_ms => 40, warm_ms => 150,
      tp_rounds => 11, tp_round_ms => 100, rt_per_round => 3};
config(true) ->
    #{quick => true, rounds => 5, round_ms => 20, warm_ms => 40,
      tp_rounds => 3, tp_round_ms => 50, rt_per_round => 2}.

%% Entry point.

main(Args) ->
    Opts = options(Args),
    ok = add_code_paths(),
    case application:ensure_all_started(erlang_python) of
        {ok, _} -> ok;
        {error, Why} ->
            io:format(standard_error, "bench: cannot start erlang_python: ~p~n", [Why]),
            halt(1)
    end,
    #{json_only := JsonOnly, only := Only, quick := Quick} = Opts,
    Cfg = config(Quick),
    JsonOnly orelse header(Cfg),
    Selected = [S || {Name, _, _} = S <- sections(), Only =:= all orelse lists:member(Name, Only)],
    T0 = erlang:monotonic_time(),
    Results = [run_section(S, Cfg, JsonOnly) || S <- Selected],
    JsonOnly orelse io:format("~nJSON (one line per measurement):~n"),
    _ = [json_line(M) || {_, Ms} <- Results, M <- Ms],
    JsonOnly orelse io:format("~nbench: ~.1f s~n", [ms_since(T0) / 1000]),
    Crashed = [Name || {Name, Ms} <- Results, M <- Ms, maps:is_key(error, M)],
    halt(case Crashed of [] -> 0; _ -> 1 end).

options(Args) ->
    Env = fun(Var) -> case os:getenv(Var) of
                          false -> false;
                          "" -> false;
                          "0" -> false;
                          _ -> true
                      end
          end,
    Only0 = case os:getenv("BENCH_ONLY") of
                false -> all;
                "" -> all;
                S -> names(S)
            end,
    options(Args, #{quick => Env("BENCH_QUICK"), json_only => Env("BENCH_JSON_ONLY"),
                    only => Only0}).

options([], Opts) -> Opts;
options(["--quick" | Rest], Opts) -> options(Rest, Opts#{quick => true});
options(["--json-only" | Rest], Opts) -> options(Rest, Opts#{json_only => true});
options(["--only", S | Rest], Opts) -> options(Rest, Opts#{only => names(S)});
options([Other | _], _) ->
    io:format(standard_error,
              "usage: run.escript [--quick] [--json-only] [--only SECTION,...]~n"
              "unknown argument: ~s~nsections: ~p~n",
              [Other, [N || {N, _, _} <- sections()]]),
    halt(2).

names(S) ->
    Known = [N || {N, _, _} <- sections()],
    [case [K || K <- Known, atom_to_list(K) =:= Name] of
         [K] -> K;
         [] -> io:format(standard_error, "bench: unknown section ~s (~p)~n", [Name, Known]),
               halt(2)
     end || Name <- string:lexemes(S, ", ")].

%% The build's ebin directories, found from this script's own location.
add_code_paths() ->
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    case filelib:wildcard(filename:join([Root, "_build", "default", "lib", "*", "ebin"])) of
        [] ->
            io:format(standard_error, "bench: no _build/default/lib/*/ebin under ~s; "
                      "run `make build` first~n", [Root]),
            halt(1);
        Dirs ->
            ok = code:add_pathsa(Dirs)
    end.

header(#{quick := Quick, rounds := Rounds}) ->
    {ok, PyVersion} = py:version(),
    [PyShort | _] = string:split(PyVersion, " "),
    {ok, Spin} = application:get_env(erlang_python, spin_us),
    io:format("erlang_python benchmark~s: OTP ~s, Python ~s, ~b schedulers, "
              "~p logical CPUs, ~b contexts, spin_us ~p, load average ~s~n"
              "each value is the median of its rounds (~b for latencies) after a warm-up; "
              "pass/fail against the issue's targets~n",
              [case Quick of true -> " (--quick)"; false -> "" end,
               erlang:system_info(otp_release), PyShort,
               erlang:system_info(schedulers_online),
               erlang:system_info(logical_processors_available),
               length(py_router:defaults()), Spin, loadavg(), Rounds]),
    case string:to_float(loadavg()) of
        {Load, _} when is_float(Load), Load > 0.8 ->
            io:format("WARNING: the machine is busy (load ~s): absolute numbers are "
                      "unreliable; compare ratios from this one run~n", [loadavg()]);
        _ ->
            ok
    end.

%% The 1-minute load average: above ~0.5 on this 2-core machine someone
%% else is running, and absolute numbers are unreliable (ratios less so).
loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> hd(string:lexemes(binary_to_list(B), " "));
        _ -> "?"
    end.

%% Run one section in a process of its own; a crash becomes an error row.
run_section({Name, Title, Fun}, Cfg, JsonOnly) ->
    {Pid, Mon} = spawn_monitor(fun() -> exit({done, Fun(Cfg)}) end),
    Ms = receive
             {'DOWN', Mon, process, Pid, {done, Result}} -> Result;
             {'DOWN', Mon, process, Pid, Reason} ->
                 [#{name => atom_to_binary(Name), error => Reason}]
         end,
    JsonOnly orelse table(Title, Ms),
    {Name, Ms}.

%% Sections.

%% The floor (a request that runs no Python), a sync call and an eval,
%% measured side by side; the ratio is the median of the per-round ratios.
latency(Cfg) ->
    Ctx = resource(),
    Floor = fun() -> ok = py_context:request(Ctx, nop, infinity) end,
    Sqrt = fun() -> {ok, 1.4142135623730951} = py:call(math, sqrt, [2.0]) end,
    Eval = fun() -> {ok, 2} = py:eval(<<"1 + 1">>) end,
    %% The same call on a context whose callers never spin for their reply.
    {ok, NoSpin} = py_context:new(#{reply_spin_us => 0}),
    NoSpinSqrt = fun() ->
                         {ok, 1.4142135623730951} =
                             py:call(NoSpin, math, sqrt, [2.0], #{timeout => 30000})
                 end,
    R = interleave(Cfg, [{floor_nop_request, Floor}, {sync_call_math_sqrt, Sqrt},
                         {eval_1_plus_1, Eval}, {sync_call_no_reply_spin, NoSpinSqrt}]),
    ok = py_context:stop(NoSpin),
    [latency_row(floor_nop_request, R,
                 "py_context:request(Ctx, nop): submit -> context thread -> enif_send, no Python"),
     latency_row(sync_call_math_sqrt, R, "py:call(math, sqrt, [2.0])"),
     ratio_row(sync_call_vs_floor, sync_call_math_sqrt, floor_nop_request, R,
               "sync call / floor, per round"),
     latency_row(eval_1_plus_1, R, "py:eval(<<\"1 + 1\">>)"),
     latency_row(sync_call_no_reply_spin, R,
                 "the sync call on a context with reply_spin_us 0: the caller waits in receive at once")].

%% (a) an Erlang message round trip to another process, (a30) the same with
%% `after 30000', (b) the nop floor, (c) the call payload straight to
%% py_context:request (no py.erl, no router), (c30) the same with a 30 s
%% timeout (py:call's default: a deadline the NIF keeps, c_src/context/deadline.c),
%% (d) py:call. The differences say which layer costs what.
breakdown(Cfg) ->
    Ctx = resource(),
    Echo = spawn_link(fun Loop() -> receive {From, Ref} -> From ! Ref, Loop() end end),
    ErlRt = fun() -> Ref = make_ref(), Echo ! {self(), Ref}, receive Ref -> ok end end,
    ErlRt30 = fun() ->
                      Ref = make_ref(),
                      Echo ! {self(), Ref},
                      receive Ref -> ok after 30000 -> error(timeout) end
              end,
    Floor = fun() -> ok = py_context:request(Ctx, nop, infinity) end,
    Payload = {call, math, sqrt, [2.0]}, %% what py:call(math, sqrt, ...) sends
    Raw = fun() -> {ok, 1.4142135623730951} = py_context:request(Ctx, Payload, infinity) end,
    Raw30 = fun() -> {ok, 1.4142135623730951} = py_context:request(Ctx, Payload, 30000) end,
    Call = fun() -> {ok, 1.4142135623730951} = py:call(math, sqrt, [2.0]) end,
    %% The same floor on a context of its own that never spins: on a busy
    %% core the spin of the default contexts can cost more than it saves.
    {ok, NoSpin} = py_context:new(#{spin_us => 0}),
    {ok, NoSpinCtx} = py_context:resource(NoSpin),
    Floor0 = fun() -> ok = py_context:request(NoSpinCtx, nop, infinity) end,
    R = interleave(Cfg, [{a, ErlRt}, {a30, ErlRt30}, {b, Floor}, {b0, Floor0}, {c, Raw}, {c30, Raw30},
                         {d, Call}]),
    ok = py_context:stop(NoSpin),
    unlink(Echo),
    exit(Echo, kill),
    Stage = fun(Name, Hi, Lo, Desc) ->
                    Ds = lists:zipwith(fun(H, L) -> H - L end, maps:get(Hi, R), maps:get(Lo, R)),
                    row(Name, us_per_call, median(Ds), 0, length(Ds), Desc,
                        lists:min(Ds), lists:max(Ds))
            end,
    [latency_row(a, R, breakdown_erlang_roundtrip,
                 "(a) Erlang send + receive reply, another process"),
     latency_row(b, R, breakdown_nop_floor, "(b) py_context:request(Ctx, nop): the floor"),
     latency_row(b0, R, breakdown_nop_floor_spin0,
                 "(b0) the floor on a new context with spin_us 0 (never spins)"),
     latency_row(c, R, breakdown_request_math_sqrt,
                 "(c) py_context:request(Ctx, {call, math, sqrt}): no py.erl/router"),
     latency_row(c30, R, breakdown_request_math_sqrt_30s,
                 "(c30) the same with a 30 s timeout: a deadline"),
     latency_row(d, R, breakdown_py_call_math_sqrt, "(d) py:call(math, sqrt, [2.0])"),
     Stage(breakdown_erlang_receive_timer, a30, a,
           "(a30)-(a) what `after 30000' adds to (a): the timer py:call no longer has"),
     Stage(breakdown_stage_nif_thread, b, a,
           "(b)-(a) submit, thread wake/handoff, GIL, enif_send beyond a message"),
     Stage(breakdown_stage_python, c, b,
           "(c)-(b) decode payload, import lookup, call, convert result"),
     Stage(breakdown_stage_timer, c30, c,
           "(c30)-(c) the deadline of a finite timeout (py:call's default 30 s)"),
     Stage(breakdown_stage_api, d, c30, "(d)-(c30) py.erl argument checks + router lookup")].

%% Calls/s of N processes each calling math.sqrt in a loop for a fixed time.
%% All groups of callers are started first, then measured side by side, a
%% round of each group in turn. The last group is a diagnostic: 4 callers
%% pinned to one context (no GIL hand-over between context threads), to
%% compare with the routed 4.
throughput(#{tp_rounds := Rounds, tp_round_ms := RoundMs}) ->
    Routed = {fun() -> py:call(math, sqrt, [2.0]) end, fun py:context/0},
    Pinned = py:context(1),
    OneCtx = {fun() -> py:call(Pinned, math, sqrt, [2.0]) end, fun() -> Pinned end},
    Groups = [tp_group(N, Routed, "") || N <- [1, 4, 16, 64]] ++
        [tp_group(4, OneCtx, "_one_context")],
    _ = [tp_round(Pids, RoundMs) || {_, _, Pids, _, _} <- Groups],
    Samples = [[{Name, tp_round(Pids, RoundMs)} || {Name, _, Pids, _, _} <- rotate(Groups, I)]
               || I <- lists:seq(1, Rounds)],
    _ = [tp_stop(Workers) || {_, _, _, Workers, _} <- Groups],
    ByName = maps:groups_from_list(fun({K, _}) -> K end, fun({_, V}) -> V end,
                                   lists:append(Samples)),
    [begin
         S = maps:get(Name, ByName),
         Rates = [Calls / (Us / 1.0e6) || {Calls, Us} <- S],
         row(Name, calls_per_s, median(Rates), lists:sum([C || {C, _} <- S]), Rounds,
             io_lib:format("~b callers, callers per context ~w", [N, Spread]),
             lists:min(Rates), lists:max(Rates))
     end || {Name, N, _, _, Spread} <- Groups].

%% N callers, each routed by one call: {Name, N, Pids, Workers, Spread}.
tp_group(N, {Call, CtxOf}, Suffix) ->
    Self = self(),
    Workers = [spawn_monitor(fun() -> tp_worker(Self, Call, CtxOf) end)
               || _ <- lists:seq(1, N)],
    Pids = [P || {P, _} <- Workers],
    Ctxs = [receive
                {ready, P, Ctx} -> Ctx;
                {'DOWN', _, process, _, Why} -> error({caller_died, Why})
            end || P <- Pids],
    Spread = lists:sort([length([C || C <- Ctxs, C =:= U]) || U <- lists:usort(Ctxs)]),
    Name = list_to_atom("throughput_math_sqrt_" ++ integer_to_list(N) ++ Suffix),
    {Name, N, Pids, Workers, Spread}.

tp_stop(Workers) ->
    _ = [P ! stop || {P, _} <- Workers],
    _ = [receive {'DOWN', M, process, P, normal} -> ok end || {P, M} <- Workers],
    ok.

%% A caller: one call to be routed (and report its context), then rounds.
tp_worker(Parent, Call, CtxOf) ->
    {ok, _} = Call(),
    Parent ! {ready, self(), CtxOf()},
    tp_wait(Parent, Call).

tp_wait(Parent, Call) ->
    receive
        {go, Ref, Deadline} ->
            Calls = tp_loop(Call, Deadline, 0),
            Parent ! {done, Ref, Calls, erlang:monotonic_time()},
            tp_wait(Parent, Call);
        stop ->
            ok
    end.

tp_loop(Call, Deadline, Calls) ->
    case erlang:monotonic_time() < Deadline of
        true ->
            {ok, _} = Call(),
            tp_loop(Call, Deadline, Calls + 1);
        false ->
            Calls
    end.

%% One round: {total calls, µs from the go to the last worker's finish}.
tp_round(Pids, RoundMs) ->
    erlang:garbage_collect(),
    Ref = make_ref(),
    T0 = erlang:monotonic_time(),
    Deadline = T0 + erlang:convert_time_unit(RoundMs, millisecond, native),
    _ = [P ! {go, Ref, Deadline} || P <- Pids],
    Done = [receive
                {done, Ref, C, T} -> {C, T};
                {'DOWN', _, process, _, Why} -> error({caller_died, Why})
            end || _ <- Pids],
    End = lists:max([T || {_, T} <- Done]),
    {lists:sum([C || {C, _} <- Done]), to_us(End - T0)}.

%% Big terms through `ident(x): return x'. Each variant's calls are made by
%% a process of its own that holds only its term, so its heap is in the
%% steady state of a process that makes such calls: a collection of the
%% section's process before each round would otherwise make the calls pay for
%% copying the section's own live terms again (1.6 vs 0.6 ms for the plain
%% Erlang echo below). The reference row is that echo: the same list sent to
%% another Erlang process and back, the VM's own price for moving it twice.
roundtrip(Cfg = #{rounds := Rounds, rt_per_round := K}) ->
    ok = py:exec(<<"def ident(x):\n    return x\n">>),
    Ascii = binary:copy(ascii_block(), 10 * 1024),
    List = lists:seq(1, 100000),
    Cases = [{roundtrip_list_100k_ints, List, <<"list">>,
              "[1..100000] -> list -> back"},
             {roundtrip_binary_10mib_bytes, rand:bytes(10 * 1024 * 1024), <<"bytes">>,
              "10 MiB random binary -> bytes -> back"},
             {roundtrip_binary_10mib_str, Ascii, <<"str">>,
              "10 MiB ASCII binary -> str -> back"},
             {roundtrip_map_10k_keys, maps:from_list([{I, I} || I <- lists:seq(1, 10000)]),
              <<"dict">>, "#{I => I} for 1..10000 -> dict -> back"},
             {roundtrip_map_10k_binary_keys,
              maps:from_list([{<<"key_", (integer_to_binary(I))/binary>>, I}
                              || I <- lists:seq(1, 10000)]),
              <<"dict">>, "#{<<\"key_I\">> => I} for 1..10000 -> dict -> back"}],
    %% Check once that Python sees the type we claim and the term comes back whole.
    _ = [begin
             {ok, Type} = py:eval(<<"type(x).__name__">>, #{x => Term}),
             Type =:= PyType orelse error({python_type, Name, Type, PyType}),
             {ok, Term} =:= py:call('__main__', ident, [Term])
                 orelse error({wrong_roundtrip_result, Name})
         end || {Name, Term, PyType, _} <- Cases],
    Echo = spawn_link(fun Loop() -> receive {From, T} -> From ! {self(), T}, Loop() end end),
    Calls = [{Name, fun() -> ok = py:exec(<<"def ident(x):\n    return x\n">>) end,
              fun() -> {ok, _} = py:call('__main__', ident, [Term]) end}
             || {Name, Term, _, _} <- Cases] ++
            [{roundtrip_list_100k_erlang_echo, fun() -> ok end,
              fun() -> Echo ! {self(), List}, receive {Echo, _} -> ok end end}],
    Workers = [{Name, caller(Setup, Call)} || {Name, Setup, Call} <- Calls],
    R = interleave(Cfg#{fixed_n => K, no_gc => true},
                   [{Name, fun() -> W ! {call, self()}, receive {W, done} -> ok end end}
                    || {Name, W} <- Workers]),
    _ = [exit(P, kill) || P <- [Echo | [W || {_, W} <- Workers]]],
    [begin
         Ms = [S / 1000 || S <- maps:get(Name, R)],
         row(Name, ms_per_roundtrip, median(Ms), K * Rounds, Rounds, Desc,
             lists:min(Ms), lists:max(Ms))
     end || {Name, _, _, Desc} <-
                Cases ++ [{roundtrip_list_100k_erlang_echo, x, x,
                           "reference: the list to another Erlang process and back"}]].

%% A linked process that runs Setup, then Call each time it is asked.
caller(Setup, Call) ->
    spawn_link(fun() ->
                       Setup(),
                       (fun Loop() ->
                                receive {call, From} -> Call(), From ! {self(), done} end,
                                Loop()
                        end)()
               end).

ascii_block() ->
    << <<($a + (X rem 26))>> || <<X>> <= rand:bytes(1024) >>.

%% Python's logging into OTP logger, per record (a loop of 1000 in Python,
%% per round): a logging.info below the configured level (filtered in
%% Python, nothing sent); one that is sent, Python's side only (timed in
%% Python: format, the record's fields, erlang.send); and end to end, until
%% py_logger has called logger:log/3 for all of them (OTP logger with its
%% handlers removed for the section, the primary level at info: the cost of
%% reaching logger, not of printing).
logging(#{rounds := Rounds}) ->
    N = 1000,
    ok = py:exec(<<"import logging, time\n"
                   "bench_log = logging.getLogger('bench')\n"
                   "def log_n(n):\n"
                   "    t0 = time.perf_counter_ns()\n"
                   "    for i in range(n):\n"
                   "        bench_log.info('record %d', i)\n"
                   "    return (time.perf_counter_ns() - t0) / n / 1000\n"
                   "class Formatting(logging.Handler):\n"
                   "    def emit(self, record):\n"
                   "        self.format(record)\n"
                   "def log_n_ref(n):\n"
                   "    root = logging.getLogger()\n"
                   "    saved = root.handlers[:]\n"
                   "    root.handlers[:] = [Formatting()]\n"
                   "    try:\n"
                   "        return log_n(n)\n"
                   "    finally:\n"
                   "        root.handlers[:] = saved\n">>),
    #{level := Primary} = logger:get_primary_config(),
    Handlers = [{Id, C} || #{id := Id} = C <- logger:get_handler_config()],
    _ = [logger:remove_handler(Id) || {Id, _} <- Handlers],
    ok = logger:set_primary_config(level, info),
    try
        Run = fun(Level) ->
                      ok = py:configure_logging(#{level => Level}),
                      {ok, _} = py:call('__main__', log_n, [N]), %% warm-up
                      _ = py_logger:dropped(),
                      [begin
                           T0 = erlang:monotonic_time(),
                           {ok, InPython} = py:call('__main__', log_n, [N]),
                           _ = py_logger:dropped(), %% queued behind the records
                           {InPython, to_us(erlang:monotonic_time() - T0) / N}
                       end || _ <- lists:seq(1, Rounds)]
              end,
        Sent = Run(info),
        Filtered = Run(warning),
        ok = py:configure_logging(#{level => info}),
        Ref = [begin {ok, Us} = py:call('__main__', log_n_ref, [N]), Us end
               || _ <- lists:seq(1, Rounds)],
        Stat = fun(Name, L, Desc) ->
                       row(Name, us_per_call, median(L), N * length(L), length(L), Desc,
                           lists:min(L), lists:max(L))
               end,
        [Stat(logging_info_filtered, [P || {P, _} <- Filtered],
              "logging.info below the level (filtered in Python, nothing sent)"),
         Stat(logging_info_format_only, Ref,
              "reference: the same record to a handler that only formats it (Python's own cost)"),
         Stat(logging_info_python_side, [P || {P, _} <- Sent],
              "logging.info that is sent: Python's side (format, fields, erlang.send)"),
         Stat(logging_info_to_otp_logger, [E || {_, E} <- Sent],
              "logging.info end to end: until py_logger has called logger:log/3")]
    after
        ok = py:configure_logging(#{level => warning}),
        ok = logger:set_primary_config(level, Primary),
        _ = [logger:add_handler(Id, maps:get(module, C), C) || {Id, C} <- Handlers]
    end.

%% Measurement helpers.

%% Warm each {Key, Fun} up, then run Rounds rounds of all of them side by
%% side, rotating their order each round. A round lasts round_ms (calls in
%% batches of 16, the clock read between batches) or, with fixed_n, exactly
%% that many calls. Returns #{Key => [µs per call, one per round]}; the
%% calls measured per key are kept in the process dictionary for the rows.
interleave(Cfg = #{rounds := Rounds}, Variants) ->
    _ = [warm_up(Cfg, Fun) || {_, Fun} <- Variants],
    Samples = [[{Key, one_round(Cfg, Fun)} || {Key, Fun} <- rotate(Variants, I)]
               || I <- lists:seq(1, Rounds)],
    ByKey = maps:groups_from_list(fun({K, _}) -> K end, fun({_, V}) -> V end,
                                  lists:append(Samples)),
    put(bench_n, maps:map(fun(_, S) -> lists:sum([N || {_, N} <- S]) end, ByKey)),
    maps:map(fun(_, S) -> [Us || {Us, _} <- S] end, ByKey).

warm_up(Cfg = #{fixed_n := _}, Fun) ->
    one_round(Cfg, Fun);
warm_up(#{warm_ms := Ms}, Fun) ->
    one_round(#{round_ms => Ms}, Fun).

%% {µs per call, calls} of one round.
one_round(#{fixed_n := N} = Cfg, Fun) ->
    _ = maps:get(no_gc, Cfg, false) orelse erlang:garbage_collect(),
    T0 = erlang:monotonic_time(),
    ok = repeat(Fun, N),
    {to_us(erlang:monotonic_time() - T0) / N, N};
one_round(#{round_ms := Ms}, Fun) ->
    erlang:garbage_collect(),
    T0 = erlang:monotonic_time(),
    Calls = batches(Fun, T0 + erlang:convert_time_unit(Ms, millisecond, native), 0),
    {to_us(erlang:monotonic_time() - T0) / Calls, Calls}.

batches(Fun, Until, Calls) ->
    ok = repeat(Fun, 16),
    case erlang:monotonic_time() < Until of
        true -> batches(Fun, Until, Calls + 16);
        false -> Calls + 16
    end.

repeat(_, 0) -> ok;
repeat(Fun, N) -> Fun(), repeat(Fun, N - 1).

rotate(L, I) ->
    {A, B} = lists:split(I rem length(L), L),
    B ++ A.

latency_row(Key, R, Desc) ->
    latency_row(Key, R, Key, Desc).

latency_row(Key, R, Name, Desc) ->
    Us = maps:get(Key, R),
    N = maps:get(Key, get(bench_n)),
    row(Name, us_per_call, median(Us), N, length(Us), Desc,
        lists:min(Us), lists:max(Us)).

ratio_row(Name, Num, Den, R, Desc) ->
    Ratios = lists:zipwith(fun(A, B) -> A / B end, maps:get(Num, R), maps:get(Den, R)),
    N = maps:get(Num, get(bench_n)),
    row(Name, ratio, median(Ratios), N, length(Ratios), Desc,
        lists:min(Ratios), lists:max(Ratios)).

%% Own-GIL contexts against worker contexts: two CPU-bound calls (a pure
%% Python loop of ~100 ms) made at once on two contexts of a kind, against
%% the same two calls in a row, per round (the ratio is the speedup: 2.0 is
%% two cores' worth); a sync call on each kind side by side; and 64 callers
%% over a pool of own-GIL contexts (as many as schedulers). Skipped before
%% Python 3.12.
contexts(Cfg) ->
    Own = case py:subinterp_supported() of
              false ->
                  io:format("contexts: own-GIL contexts need Python 3.12+; rows skipped~n"),
                  [];
              true ->
                  contexts_rows(Cfg)
          end,
    Own ++ isolated_rows(Cfg).

%% Isolated contexts (docs/isolated.md) against worker contexts: a sync
%% call side by side; two CPU-bound calls at once on two of them against in
%% a row; 64 callers over two of them; a cold start (py_context:new/1 to the
%% first answer); and sum(range(10**10)) with a 100 ms timeout: the time to
%% {error, timeout}, then until the next call (queued behind it) is
%% answered by the child started after the kill.
isolated_rows(Cfg = #{tp_rounds := TpRounds, tp_round_ms := RoundMs, rounds := Rounds}) ->
    New = fun(Mode) -> {ok, C} = py_context:new(#{mode => Mode}), C end,
    [W1, I1, I2] = [New(M) || M <- [worker, isolated, isolated]],
    R = interleave(Cfg, [{sync_call_worker_context_2,
                          fun() -> {ok, _} = py:call(W1, math, sqrt, [2.0]) end},
                         {sync_call_isolated_context,
                          fun() -> {ok, _} = py:call(I1, math, sqrt, [2.0]) end}]),
    Sync = [latency_row(sync_call_worker_context_2, R, sync_call_worker_context,
                        "py:call(Ctx, math, sqrt, [2.0]), worker (beside isolated)"),
            latency_row(sync_call_isolated_context, R, "py:call(Ctx, math, sqrt, [2.0]), isolated")],
    Cpu = fun(C) -> {ok, _} = py:eval(C, ?PAR_CODE) end,
    _ = par_round(Cpu, I1, I2),
    Par = [par_round(Cpu, I1, I2) || _ <- lists:seq(1, max(5, TpRounds))],
    ParRow = row(parallel_cpu_2_isolated, ratio, median(Par), 2 * length(Par), length(Par),
                 "two isolated contexts: two CPU-bound calls in a row / at once",
                 lists:min(Par), lists:max(Par)),
    _ = [py_context:stop(C) || C <- [W1, I1, I2]],
    {ok, _} = py_context_router:start_pool(bench_isolated, 2, isolated),
    Group = tp_group(64, {fun() -> py:call(bench_isolated, math, sqrt, [2.0]) end,
                          fun() -> py_context_router:get_context(bench_isolated) end},
                     "_isolated_2"),
    {Name, _, Pids, Workers, Spread} = Group,
    _ = tp_round(Pids, RoundMs),
    Kids = [integer_to_list(P) || C <- py_context_router:contexts(bench_isolated),
                                  {ok, #{os_pid := P}} <- [py_context:child_info(C)]],
    Vm0 = cpu_ns(os:getpid()),
    Kids0 = lists:sum([cpu_ns(K) || K <- Kids]),
    TpR = [tp_round(Pids, RoundMs) || _ <- lists:seq(1, TpRounds)],
    VmNs = cpu_ns(os:getpid()) - Vm0,
    KidsNs = lists:sum([cpu_ns(K) || K <- Kids]) - Kids0,
    ok = tp_stop(Workers),
    ok = py_context_router:stop_pool(bench_isolated),
    Rates = [Calls / (Us / 1.0e6) || {Calls, Us} <- TpR],
    Calls = lists:sum([C || {C, _} <- TpR]),
    TpRow = row(Name, calls_per_s, median(Rates), Calls, TpRounds,
                io_lib:format("64 callers over 2 isolated contexts, callers per context ~w",
                              [Spread]),
                lists:min(Rates), lists:max(Rates)),
    VmUs = VmNs / 1000 / max(1, Calls),
    KidUs = KidsNs / 1000 / max(1, Calls),
    Cores = case erlang:system_info(logical_processors_available) of
                unknown -> erlang:system_info(schedulers_online);
                N -> N
            end,
    CpuRows = [row(throughput_isolated_cpu_vm, us_per_call, VmUs, Calls, TpRounds,
                   "... the VM's CPU time per call (all its threads)", VmUs, VmUs),
               row(throughput_isolated_cpu_child, us_per_call, KidUs, Calls, TpRounds,
                   "... the children's CPU time per call", KidUs, KidUs),
               row(throughput_isolated_ceiling, calls_per_s, Cores * 1.0e6 / max(1.0e-3, VmUs + KidUs),
                   Calls, TpRounds,
                   io_lib:format("... the most ~w cores could do at that CPU time per call", [Cores]),
                   0, 0)],
    Starts = [begin
                  T0 = erlang:monotonic_time(),
                  C = New(isolated),
                  {ok, _} = py:eval(C, <<"1">>),
                  Ms = ms_since(T0),
                  ok = py_context:stop(C),
                  Ms
              end || _ <- lists:seq(1, max(5, Rounds div 3))],
    StartRow = row(isolated_cold_start, ms, median(Starts), length(Starts), length(Starts),
                   "py_context:new(#{mode => isolated}) to the first answer",
                   lists:min(Starts), lists:max(Starts)),
    Pythons = [python_start_ms() || _ <- lists:seq(1, max(5, Rounds div 3))],
    PythonRow = row(python_start, ms, median(Pythons), length(Pythons), length(Pythons),
                    "... of which the same Python's own start: python -c pass "
                    "(site and its .pth files)", lists:min(Pythons), lists:max(Pythons)),
    {ok, Z} = py_zygote:start(#{preload => <<"import json">>}),
    _ = py_zygote:run(Z, fun(C) -> py:eval(C, <<"1">>) end),
    Forks = [begin
                 T0 = erlang:monotonic_time(),
                 {ok, _} = py_zygote:run(Z, fun(C) -> py:eval(C, <<"1">>) end),
                 ms_since(T0)
             end || _ <- lists:seq(1, max(5, Rounds))],
    ok = py_zygote:stop(Z),
    ZygoteRow = row(isolated_zygote_start, ms, median(Forks), length(Forks), length(Forks),
                    "a fresh child forked from a zygote: py_zygote:run/2 to the first answer",
                    lists:min(Forks), lists:max(Forks)),
    Sync ++ [ParRow, TpRow | CpuRows] ++ [StartRow, PythonRow, ZygoteRow | isolated_timeout_rows()].

%% The CPU time an OS process has had (ns): its threads' schedstat.
cpu_ns(OsPid) ->
    Dir = "/proc/" ++ OsPid ++ "/task",
    case file:list_dir(Dir) of
        {ok, Tasks} ->
            lists:sum([case file:read_file(filename:join([Dir, T, "schedstat"])) of
                           {ok, B} -> binary_to_integer(hd(binary:split(B, <<" ">>)));
                           {error, _} -> 0  % a thread gone meanwhile
                       end || T <- Tasks]);
        {error, _} ->
            0
    end.

%% How long the Python an isolated child runs takes to start and exit
%% with nothing to do: the floor of a cold start on this machine.
python_start_ms() ->
    {ok, Exe} = file:read_file(filename:join(code:priv_dir(erlang_python), "python_executable")),
    T0 = erlang:monotonic_time(),
    Port = open_port({spawn_executable, string:trim(Exe)}, [{args, ["-c", "pass"]}, exit_status]),
    receive {Port, {exit_status, 0}} -> ok end,
    ms_since(T0).

isolated_timeout_rows() ->
    {ok, C} = py_context:new(#{mode => isolated}),
    Self = self(),
    T0 = erlang:monotonic_time(),
    _ = spawn_link(fun() ->
                           ok = py:exec(C, <<"import erlang\n"
                                             "def spin(p):\n"
                                             "    erlang.send(p, erlang.Atom('running'))\n"
                                             "    return sum(range(10**10))\n">>),
                           {error, timeout} = py:call(C, '__main__', spin, [Self],
                                                      #{timeout => 100}),
                           Self ! {timed_out, ms_since(T0)}
                   end),
    receive running -> ok end,
    Next = spawn_link(fun() ->
                              {ok, 3.0} = py:call(C, math, sqrt, [9]),
                              Self ! {answered, self(), ms_since(T0)}
                      end),
    TimedOut = receive {timed_out, Ms1} -> Ms1 end,
    Answered = receive {answered, Next, Ms2} -> Ms2 end,
    ok = py_context:stop(C),
    [row(isolated_timeout_c_loop, ms, TimedOut, 1, 1,
         "sum(range(10**10)) with a 100 ms timeout: ms to {error, timeout}",
         TimedOut, TimedOut),
     row(isolated_timeout_next_answered, ms, Answered, 1, 1,
         "... and to the answer of the call queued behind it (kill_after 1000 ms, new child)",
         Answered, Answered)].

contexts_rows(Cfg = #{tp_rounds := TpRounds, tp_round_ms := RoundMs}) ->
    New = fun(Mode) -> {ok, C} = py_context:new(#{mode => Mode}), C end,
    [W1, W2, O1, O2, I1, I2] = [New(M) || M <- [worker, worker, owngil, owngil,
                                                isolated, isolated]],
    Cpu = fun(C) -> {ok, _} = py:eval(C, ?PAR_CODE) end,
    %% Two isolated contexts are two OS processes: what this machine's two
    %% cores give two processes, in the same rounds (the ceiling).
    Pairs = [{parallel_cpu_2_worker, W1, W2}, {parallel_cpu_2_owngil, O1, O2},
             {parallel_cpu_2_os_processes, I1, I2}],
    _ = [par_round(Cpu, A, B) || {_, A, B} <- Pairs],
    Par = [[{K, par_round(Cpu, A, B)} || {K, A, B} <- rotate(Pairs, I)]
           || I <- lists:seq(1, max(5, TpRounds))],
    ByKey = maps:groups_from_list(fun({K, _}) -> K end, fun({_, V}) -> V end,
                                  lists:append(Par)),
    ParRows = [row(K, ratio, median(maps:get(K, ByKey)), 2 * length(maps:get(K, ByKey)),
                   length(maps:get(K, ByKey)),
                   io_lib:format("two ~s contexts: two CPU-bound calls in a row / at once",
                                 [Kind]),
                   lists:min(maps:get(K, ByKey)), lists:max(maps:get(K, ByKey)))
               || {K, Kind} <- [{parallel_cpu_2_worker, "worker"},
                                {parallel_cpu_2_owngil, "own-GIL"},
                                {parallel_cpu_2_os_processes,
                                 "isolated (OS process, the machine's ceiling)"}]],
    R = interleave(Cfg, [{sync_call_worker_context,
                          fun() -> {ok, _} = py:call(W1, math, sqrt, [2.0]) end},
                         {sync_call_owngil_context,
                          fun() -> {ok, _} = py:call(O1, math, sqrt, [2.0]) end}]),
    Sync = [latency_row(sync_call_worker_context, R, "py:call(Ctx, math, sqrt, [2.0]), worker"),
            latency_row(sync_call_owngil_context, R, "py:call(Ctx, math, sqrt, [2.0]), own-GIL"),
            ratio_row(sync_call_owngil_vs_worker, sync_call_owngil_context,
                      sync_call_worker_context, R, "own-GIL / worker, per round")],
    _ = [py_context:stop(C) || C <- [W1, W2, O1, O2, I1, I2]],
    N = erlang:system_info(schedulers),
    {ok, _} = py_context_router:start_pool(bench_owngil, N, owngil),
    Group = tp_group(64, {fun() -> py:call(bench_owngil, math, sqrt, [2.0]) end,
                          fun() -> py_context_router:get_context(bench_owngil) end},
                     "_owngil_pool"),
    {Name, _, Pids, Workers, Spread} = Group,
    _ = tp_round(Pids, RoundMs),
    Rounds = [tp_round(Pids, RoundMs) || _ <- lists:seq(1, TpRounds)],
    ok = tp_stop(Workers),
    ok = py_context_router:stop_pool(bench_owngil),
    Rates = [Calls / (Us / 1.0e6) || {Calls, Us} <- Rounds],
    ParRows ++ Sync ++
        [row(Name, calls_per_s, median(Rates), lists:sum([C || {C, _} <- Rounds]), TpRounds,
             io_lib:format("64 callers over ~b own-GIL contexts, callers per context ~w",
                           [N, Spread]),
             lists:min(Rates), lists:max(Rates))].

%% A context on a peer node on this machine: a sync call on it, side by
%% side with a bare erpc:call of an Erlang function to the same node (the
%% round trip the issue compares against). Makes this node distributed for
%% the section when it is not.
distributed(Cfg) ->
    _ = os:cmd("epmd -daemon"),
    Started = case node() of
                  nonode@nohost -> {ok, _} = net_kernel:start([py_bench, shortnames]), true;
                  _ -> false
              end,
    Paths = lists:usort([filename:dirname(code:which(M)) || M <- [py]]),
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(),
                                         args => lists:append([["-pa", P] || P <- Paths])}),
    {ok, _} = erpc:call(Node, application, ensure_all_started, [erlang_python]),
    {ok, Ctx} = py_context:new(#{node => Node}),
    R = interleave(Cfg, [{remote_sync_call,
                          fun() -> {ok, _} = py:call(Ctx, math, sqrt, [2.0]) end},
                         {erpc_call_reference,
                          fun() -> _ = erpc:call(Node, math, sqrt, [2.0]) end}]),
    ok = py_context:stop(Ctx),
    Size = 2 * erlang:system_info(schedulers),
    Pools = [{"_1_node_pool", [node()]}, {"_2_node_pool", [node(), Node]}],
    PoolRows = [pool_rate(Cfg, Suffix, Size, Nodes) || {Suffix, Nodes} <- Pools],
    ok = peer:stop(Peer),
    Started andalso net_kernel:stop(),
    [latency_row(remote_sync_call, R, "py:call(RemoteCtx, math, sqrt, [2.0]), peer node"),
     latency_row(erpc_call_reference, R, "reference: erpc:call(Node, math, sqrt, [2.0])"),
     ratio_row(remote_sync_call_vs_erpc, remote_sync_call, erpc_call_reference, R,
               "remote sync call / bare erpc:call, per round") | PoolRows].

%% 64 callers of math.sqrt over a pool of Size contexts placed on Nodes.
pool_rate(#{tp_rounds := TpRounds, tp_round_ms := RoundMs}, Suffix, Size, Nodes) ->
    {ok, _} = py_context_router:start_pool(bench_span, Size, #{nodes => Nodes}),
    {Name, _, Pids, Workers, Spread} =
        tp_group(64, {fun() -> py:call(bench_span, math, sqrt, [2.0]) end,
                      fun() -> py_context_router:get_context(bench_span) end}, Suffix),
    _ = tp_round(Pids, RoundMs),
    Rounds = [tp_round(Pids, RoundMs) || _ <- lists:seq(1, TpRounds)],
    ok = tp_stop(Workers),
    ok = py_context_router:stop_pool(bench_span),
    Rates = [Calls / (Us / 1.0e6) || {Calls, Us} <- Rounds],
    row(Name, calls_per_s, median(Rates), lists:sum([C || {C, _} <- Rounds]), TpRounds,
        io_lib:format("64 callers over ~b contexts on ~b node(s), callers per context ~w",
                      [Size, length(Nodes), Spread]),
        lists:min(Rates), lists:max(Rates)).

%% Sentence embeddings (examples/semantic_search/): sentences/s of one
%% worker context fed by one Erlang process, of a pool of two contexts fed
%% by four (?ML_POOL_MODE: isolated, a child process each), and of
%% plain Python in one process (baseline.py in the venv's Python, through a
%% port; it times its own loop, so its start and model load are left out),
%% on the same sentences in batches of 64, in interleaved rounds. The
%% overheads: one context against plain Python, and the pool per sentence
%% per context (2 x plain / pool). Skipped when `make demo-ml' has not
%% made the example's venv.
-define(ML_POOL_MODE, isolated).

ml(#{quick := Quick}) ->
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    Example = filename:join([Root, "examples", "semantic_search"]),
    Source = filename:join(Example, "semantic_search.erl"),
    {ok, semantic_search, Bin} = compile:file(Source, [binary, return_errors]),
    {module, semantic_search} = code:load_binary(semantic_search, Source, Bin),
    Venv = semantic_search:venv_dir(filename:join(Root, "_build")),
    case filelib:is_regular(filename:join(Venv, ".requirements")) of
        false ->
            io:format("ml: no venv at ~s (make demo-ml makes it); section skipped~n", [Venv]),
            [];
        true ->
            %% Made already: this activates it, with the example on the path.
            ok = semantic_search:ensure_venv(Venv, filename:join(Example, "requirements.txt"),
                                             #{}),
            {N, Rounds} = case Quick of true -> {128, 3}; false -> {256, 5} end,
            ml_rows(Venv, Example, N, Rounds)
    end.

ml_rows(Venv, Example, N, Rounds) ->
    {ok, _} = semantic_search:start_pool(bench_ml_one, 1, worker, Venv),
    {ok, _} = semantic_search:start_pool(bench_ml_pool, 2, ?ML_POOL_MODE, Venv),
    Texts = semantic_search:documents(bench_ml_one, N),
    Embed = fun(Pool, Workers) ->
                    {ok, _, Us} = semantic_search:embed_parallel(Pool, Texts, 64, Workers),
                    N * 1.0e6 / Us
            end,
    Plain = fun() -> N * 1.0e6 / ml_plain_us(Venv, Example, N) end,
    Variants = [{one, fun() -> Embed(bench_ml_one, 1) end},
                {pool, fun() -> Embed(bench_ml_pool, 4) end},
                {plain, Plain}],
    Per = [maps:from_list([{K, F()} || {K, F} <- rotate(Variants, I)])
           || I <- lists:seq(1, Rounds)],
    ok = semantic_search:stop_pool(bench_ml_pool),
    ok = semantic_search:stop_pool(bench_ml_one),
    Col = fun(F) -> [F(R) || R <- Per] end,
    Row = fun(Name, Unit, Vs, Desc) ->
                  row(Name, Unit, median(Vs), N * Rounds, Rounds, Desc,
                      lists:min(Vs), lists:max(Vs))
          end,
    [Row(embeddings_per_s_worker, sentences_per_s, Col(fun(#{one := V}) -> V end),
         "one worker context, one Erlang process"),
     Row(embeddings_per_s_pool_2, sentences_per_s, Col(fun(#{pool := V}) -> V end),
         io_lib:format("a pool of two ~s contexts, four Erlang processes", [?ML_POOL_MODE])),
     Row(embeddings_per_s_plain_python, sentences_per_s, Col(fun(#{plain := V}) -> V end),
         "plain Python, one process, one thread"),
     Row(embeddings_pool_2_vs_worker, ratio,
         Col(fun(#{pool := P, one := O}) -> P / O end), "pool of two / one context, per round"),
     Row(embeddings_worker_vs_plain_pct, percent,
         Col(fun(#{one := O, plain := P}) -> 100 * (P / O - 1) end),
         "one context's time per sentence over plain Python's, per round"),
     Row(embeddings_pool_2_vs_plain_pct, percent,
         Col(fun(#{pool := Q, plain := P}) -> 100 * (2 * P / Q - 1) end),
         "the pool's time per sentence per context over plain Python's, per round")].

%% baseline.py's own timing of N sentences, in microseconds.
ml_plain_us(Venv, Example, N) ->
    Port = open_port({spawn_executable, filename:join([Venv, "bin", "python"])},
                     [{args, [filename:join(Example, "baseline.py"), integer_to_list(N), "64"]},
                      {cd, Example}, exit_status, binary, stderr_to_stdout,
                      {env, [{"HF_HUB_OFFLINE", "1"}, {"TOKENIZERS_PARALLELISM", "false"}]}]),
    Out = ml_collect(Port, []),
    {match, [S]} = re:run(Out, <<"\"seconds\": ([0-9.eE+-]+)">>, [{capture, all_but_first, binary}]),
    binary_to_float(S) * 1.0e6.

ml_collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> ml_collect(Port, [D | Acc]);
        {Port, {exit_status, 0}} -> iolist_to_binary(lists:reverse(Acc));
        {Port, {exit_status, Code}} -> error({baseline_exited, Code, lists:reverse(Acc)})
    after 600000 -> error(baseline_timeout)
    end.

%% In a row / at once, for two calls on contexts A and B.
par_round(Cpu, A, B) ->
    T0 = erlang:monotonic_time(),
    Cpu(A),
    Cpu(B),
    Seq = erlang:monotonic_time() - T0,
    Self = self(),
    T1 = erlang:monotonic_time(),
    _ = [spawn_link(fun() -> Cpu(C), Self ! {par_done, C} end) || C <- [A, B]],
    _ = [receive {par_done, C} -> ok end || C <- [A, B]],
    Seq / (erlang:monotonic_time() - T1).

%% Python -> Erlang. A request that makes N erlang.call()s of a no-op fun
%% (per-call round trip: park, message to the caller, run, reply, resume);
%% N erlang.send()s to a counting process (until the last one arrives);
%% stream_eval of a 100k-item generator.
callbacks(Cfg = #{rounds := Rounds}) ->
    N = 2000,
    ok = py:register_function(bench_noop, fun(_) -> ok end),
    ok = py:exec(<<"import erlang\n"
                   "def cb_loop(n):\n"
                   "    call = erlang.call\n"
                   "    for _ in range(n):\n"
                   "        call('bench_noop')\n"
                   "    return n\n"
                   "def send_loop(pid, n):\n"
                   "    send = erlang.send\n"
                   "    for i in range(n):\n"
                   "        send(pid, i)\n"
                   "    return n\n">>),
    Self = self(),
    Cb = fun() -> {ok, N} = py:call('__main__', cb_loop, [N]) end,
    Send = fun() ->
                   Counter = spawn_link(fun() -> count_to(N), Self ! {counted, self()} end),
                   {ok, N} = py:call('__main__', send_loop, [Counter, N]),
                   receive {counted, Counter} -> ok end
           end,
    Items = 100000,
    Stream = fun() -> {ok, L} = py:stream_eval(<<"(x for x in range(100000))">>),
                      Items = length(L) end,
    R = interleave(Cfg#{fixed_n => 1}, [{cb, Cb}, {send, Send}, {stream, Stream}]),
    Per = fun(Key, F) -> [F(Us) || Us <- maps:get(Key, R)] end,
    CbUs = Per(cb, fun(Us) -> Us / N end),
    SendRate = Per(send, fun(Us) -> N / (Us / 1.0e6) end),
    StreamRate = Per(stream, fun(Us) -> Items / (Us / 1.0e6) end),
    [row(callback_roundtrip, us_per_call, median(CbUs), N * Rounds, Rounds,
         "erlang.call() of a registered no-op fun, inside a request",
         lists:min(CbUs), lists:max(CbUs)),
     row(erlang_send_rate, msgs_per_s, median(SendRate), N * Rounds, Rounds,
         "erlang.send() from one Python loop, until the last message arrives",
         lists:min(SendRate), lists:max(SendRate)),
     row(stream_eval_rate, items_per_s, median(StreamRate), Items * Rounds, Rounds,
         "py:stream_eval of a 100k-item generator",
         lists:min(StreamRate), lists:max(StreamRate))].

%% asyncio (docs/asyncio.md): py:async_call throughput, how fast Erlang and a
%% socket wake the shared loop, asyncio.sleep precision and TCP echo on
%% ErlangEventLoop and on the stdlib loop side by side, the idle loop's CPU.
asyncio(Cfg = #{rounds := Rounds, tp_rounds := TpRounds, tp_round_ms := RoundMs}) ->
    {ok, _} = py:eval(<<"exec(src, __import__('sys').modules.setdefault('bench_asyncio', "
                        "__import__('types').ModuleType('bench_asyncio')).__dict__)">>,
                      #{src => ?ASYNCIO_HELPERS}),
    %% Task throughput: N callers, each async_call + async_await in a loop.
    Call = {fun() -> py:async_await(py:async_call(bench_asyncio, echo, [1])) end,
            fun py:context/0},
    Groups = [begin
                  {_, _, Pids, Workers, _} = tp_group(N, Call, "_async"),
                  {list_to_atom("asyncio_tasks_" ++ integer_to_list(N) ++ "_callers"),
                   N, Pids, Workers}
              end || N <- [1, 50]],
    _ = [tp_round(Pids, RoundMs) || {_, _, Pids, _} <- Groups],
    Samples = [[{Name, tp_round(Pids, RoundMs)} || {Name, _, Pids, _} <- rotate(Groups, I)]
               || I <- lists:seq(1, TpRounds)],
    _ = [tp_stop(Workers) || {_, _, _, Workers} <- Groups],
    ByName = maps:groups_from_list(fun({K, _}) -> K end, fun({_, V}) -> V end,
                                   lists:append(Samples)),
    TaskRows = [begin
                    Rates = [C / (Us / 1.0e6) || {C, Us} <- maps:get(Name, ByName)],
                    row(Name, tasks_per_s, median(Rates), 0, TpRounds,
                        io_lib:format("~b callers: py:async_call of `async def echo(x)` "
                                      "+ py:async_await", [N]),
                        lists:min(Rates), lists:max(Rates))
                end || {Name, N, _, _} <- Groups],
    %% Wake-ups: Erlang -> context thread -> Erlang (the floor), the same
    %% plus a call_soon_threadsafe wake of the loop thread, which sends; and a
    %% gen_tcp round trip to an asyncio echo server on the shared loop (epoll
    %% readiness) against one to an Erlang echo server.
    Self = self(),
    Direct = fun() -> {ok, none} = py:call(bench_asyncio, notify_direct, [Self]),
                      receive woke -> ok end end,
    ViaLoop = fun() -> {ok, none} = py:call(bench_asyncio, notify_via_loop, [Self]),
                       receive woke -> ok end end,
    {ok, PyPort} = py:call(bench_asyncio, start_echo_server, []),
    {ok, ErlListen} = gen_tcp:listen(0, [binary, {active, false}, {nodelay, true}]),
    {ok, ErlPort} = inet:port(ErlListen),
    Echo = spawn_link(fun() -> {ok, S} = gen_tcp:accept(ErlListen), erl_echo(S) end),
    Connect = fun(Port) -> {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Port,
                                                     [binary, {active, false}, {nodelay, true}]),
                           S end,
    {PySock, ErlSock} = {Connect(PyPort), Connect(ErlPort)},
    Ping = fun(S) -> fun() -> ok = gen_tcp:send(S, <<"ping">>),
                              {ok, <<"ping">>} = gen_tcp:recv(S, 4) end end,
    R = interleave(Cfg, [{direct, Direct}, {via_loop, ViaLoop},
                         {tcp_loop, Ping(PySock)}, {tcp_erl, Ping(ErlSock)}]),
    _ = [gen_tcp:close(S) || S <- [PySock, ErlSock, ErlListen]],
    unlink(Echo),
    WakeRows = [latency_row(direct, R, asyncio_wake_floor,
                            "py:call that erlang.send()s at once (context thread)"),
                latency_row(via_loop, R, asyncio_wake_via_loop,
                            "py:call that wakes the loop (call_soon_threadsafe), which sends"),
                latency_row(tcp_loop, R, asyncio_tcp_rtt_loop,
                            "gen_tcp ping to an asyncio echo server on the shared loop"),
                latency_row(tcp_erl, R, asyncio_tcp_rtt_erlang,
                            "gen_tcp ping to an Erlang echo process (for scale)")],
    %% asyncio.sleep(0.001) and TCP echo, each loop in turn, round by round.
    Kinds = [erlang, stdlib],
    SleepN = 50,
    EchoS = case maps:get(quick, Cfg) of true -> 0.2; false -> 0.5 end,
    Runs = [[{K, loop_round(K, SleepN, EchoS)} || K <- rotate(Kinds, I)]
             || I <- lists:seq(1, max(3, Rounds div 2))],
    Of = fun(K, Field) -> [maps:get(Field, M) || {K2, M} <- lists:append(Runs), K2 =:= K] end,
    SampleRow = fun(K, Field, Name, Unit, What) ->
                        Us = lists:append(Of(K, Field)),
                        row(list_to_atom(Name ++ atom_to_list(K)), Unit, median(Us),
                            length(Us), length(Runs),
                            io_lib:format("~s on the ~s loop: median, min/max of ~b",
                                          [What, K, length(Us)]),
                            lists:min(Us), lists:max(Us))
                end,
    EchoRow = fun(K) ->
                      Rates = Of(K, echo),
                      row(list_to_atom("asyncio_tcp_echo_" ++ atom_to_list(K)), req_per_s,
                          median(Rates), 0, length(Rates),
                          io_lib:format("TCP echo over loopback on the ~s loop: 16 stream "
                                        "clients, 100-byte requests", [K]),
                          lists:min(Rates), lists:max(Rates))
              end,
    Ratios = lists:zipwith(fun(A, B) -> A / B end, Of(erlang, echo), Of(stdlib, echo)),
    LoopRows = [SampleRow(K, F, N, U, W)
                || {F, N, U, W} <- [{sleeps, "asyncio_sleep_1ms_", us, "asyncio.sleep(0.001)"},
                                    {sleeps_sub, "asyncio_sleep_0.3ms_", us,
                                     "asyncio.sleep(0.0003)"},
                                    {wake, "asyncio_thread_wake_", us_per_call,
                                     "a thread's call_soon_threadsafe until the callback "
                                     "runs (self-pipe)"}],
                   K <- Kinds] ++
               [EchoRow(erlang), EchoRow(stdlib),
                row(asyncio_tcp_echo_vs_stdlib, ratio, median(Ratios), 0, length(Ratios),
                    "TCP echo requests/s, ErlangEventLoop / stdlib loop, per round",
                    lists:min(Ratios), lists:max(Ratios))],
    %% The idle shared loop: CPU of its thread, and of the whole VM process,
    %% over one second with nothing to do.
    {ok, _} = py:call(bench_asyncio, stop_echo_server, []),
    {ok, [L0, P0]} = py:call(bench_asyncio, cpu_seconds, []),
    receive after 1000 -> ok end,
    {ok, [L1, P1]} = py:call(bench_asyncio, cpu_seconds, []),
    IdleRows = [row(asyncio_idle_loop_cpu, ms_per_s, (L1 - L0) * 1000, 1, 1,
                    "CPU time of the idle shared loop's thread over 1 s",
                    (L1 - L0) * 1000, (L1 - L0) * 1000),
                row(asyncio_idle_process_cpu, ms_per_s, (P1 - P0) * 1000, 1, 1,
                    "CPU time of the whole VM process over the same second",
                    (P1 - P0) * 1000, (P1 - P0) * 1000)],
    TaskRows ++ WakeRows ++ LoopRows ++ IdleRows.

loop_round(Kind, SleepN, EchoS) ->
    Sleeps = fun(D) -> {ok, L} = py:call(bench_asyncio, sleep_samples, [Kind, D, SleepN],
                                         #{}, 60000),
                       [S * 1.0e6 || S <- L] end,
    {ok, Rate} = py:call(bench_asyncio, tcp_echo, [Kind, 16, EchoS, 100], #{}, 60000),
    {ok, Wake} = py:call(bench_asyncio, thread_wake_us, [Kind, 500], #{}, 60000),
    #{sleeps => Sleeps(0.001), sleeps_sub => Sleeps(0.0003), echo => Rate, wake => [Wake]}.

erl_echo(S) ->
    case gen_tcp:recv(S, 0) of
        {ok, Data} -> ok = gen_tcp:send(S, Data), erl_echo(S);
        {error, _} -> ok
    end.

%% Programs (docs/security.md, "Programs through ports"): the time per
%% `true' run from Python in the VM, by erlang.subprocess.run and by asyncio
%% on ErlangEventLoop, next to subprocess.run in a plain interpreter (the
%% embedded Python's executable, run as a port; it times itself). Each round
%% runs N programs in a Python loop; the rows are medians per program.
programs(#{quick := Quick}) ->
    N = 40,
    Rounds = case Quick of true -> 3; false -> 7 end,
    ok = py:exec(<<"import time, asyncio, erlang, erlang.subprocess as esp\n"
                   "def run_true(n):\n"
                   "    t = time.perf_counter()\n"
                   "    for _ in range(n):\n"
                   "        esp.run(['true'])\n"
                   "    return (time.perf_counter() - t) / n * 1e6\n"
                   "async def _aio(n):\n"
                   "    for _ in range(n):\n"
                   "        p = await asyncio.create_subprocess_exec('true')\n"
                   "        await p.wait()\n"
                   "def aio_true(n):\n"
                   "    t = time.perf_counter()\n"
                   "    erlang.run(_aio(n))\n"
                   "    return (time.perf_counter() - t) / n * 1e6\n">>),
    {ok, Exe} = py:eval(<<"__import__('sys').executable">>),
    Plain = "import subprocess, time\nn = " ++ integer_to_list(N) ++ "\n"
            "t = time.perf_counter()\nfor _ in range(n):\n    subprocess.run(['true'])\n"
            "print((time.perf_counter() - t) / n * 1e6)\n",
    Samples = [{ok(py:call('__main__', run_true, [N], #{}, 60000)),
                ok(py:call('__main__', aio_true, [N], #{}, 60000)),
                plain_python(Exe, Plain)} || _ <- lists:seq(1, Rounds)],
    Row = fun(Name, I, Desc) ->
                  L = [element(I, S) || S <- Samples],
                  row(Name, us_per_call, median(L), N * Rounds, Rounds, Desc,
                      lists:min(L), lists:max(L))
          end,
    [Row(program_erlang_subprocess_run_true, 1,
         "erlang.subprocess.run(['true']) from Python in the VM (a port per program)"),
     Row(program_asyncio_subprocess_exec_true, 2,
         "asyncio.create_subprocess_exec('true') + wait() on ErlangEventLoop in the VM"),
     Row(program_plain_subprocess_run_true, 3,
         "subprocess.run(['true']) in a plain interpreter (fork/exec), for comparison")].

ok({ok, V}) -> V.

plain_python(Exe, Code) ->
    Port = open_port({spawn_executable, binary_to_list(Exe)},
                     [{args, ["-c", Code]}, exit_status, binary, stderr_to_stdout]),
    Out = collect_port(Port, []),
    binary_to_float(string:trim(Out)).

collect_port(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect_port(Port, [Acc, D]);
        {Port, {exit_status, 0}} -> iolist_to_binary(Acc)
    after 60000 -> error(plain_python_timeout)
    end.

%% The data plane (docs/channels.md, docs/shared_dict.md, docs/event_loop.md).
-define(DATA_HELPERS, <<"
import time
import erlang

def drain(ch):
    it = iter(erlang.Channel(ch))
    first = next(it)
    t = time.perf_counter()
    n = 1
    for _ in it:
        n += 1
    return [n, time.perf_counter() - t]

async def echo(x):
    return x

def sd_get_us(h, n):
    sd = erlang.SharedDict(h)
    sd['key']
    t = time.perf_counter()
    for _ in range(n):
        sd['key']
    return (time.perf_counter() - t) / n * 1e6
">>).

data(Cfg = #{quick := Quick, tp_rounds := TpRounds, tp_round_ms := RoundMs}) ->
    {ok, _} = py:eval(<<"exec(src, __import__('sys').modules.setdefault('bench_data', "
                        "__import__('types').ModuleType('bench_data')).__dict__)">>,
                      #{src => ?DATA_HELPERS}),
    Rounds = case Quick of true -> 3; false -> 7 end,
    %% Channel: one Erlang process sends M 64-byte binaries, Python drains
    %% them with `for msg in channel'; the rate is Python's, from its first
    %% message to its last.
    M = case Quick of true -> 200000; false -> 500000 end,
    Bin = binary:copy(<<"x">>, 64),
    Chan = [begin
                {ok, Ch} = py_channel:new(),
                Self = self(),
                {Pid, Mon} = spawn_monitor(fun() ->
                                                   Self ! {drained, py:call(bench_data, drain, [Ch])}
                                           end),
                ok = send_n(Ch, Bin, M),
                ok = py_channel:close(Ch),
                {ok, [M, Secs]} = receive {drained, R} -> R end,
                receive {'DOWN', Mon, process, Pid, _} -> ok end,
                (M - 1) / Secs
            end || _ <- lists:seq(1, Rounds)],
    %% Shared dict: set then get of one key from one Erlang process.
    {ok, SD} = py:shared_dict_new(),
    Pairs = case Quick of true -> 100000; false -> 300000 end,
    ok = set_get(SD, 1000),
    Dict = [begin
                T0 = erlang:monotonic_time(),
                ok = set_get(SD, Pairs),
                2 * Pairs / (to_us(erlang:monotonic_time() - T0) / 1.0e6)
            end || _ <- lists:seq(1, Rounds)],
    %% The same from Python: `sd[key]' in a loop, in a worker context and in
    %% an isolated one (a call into the VM per get), and a channel drained
    %% by an isolated child (docs/isolated.md).
    {IsoDict, WorkerDict, IsoChan, IsoM} = data_isolated(SD, Bin, Rounds, Quick),
    BufferRows = data_buffers(Rounds),
    %% py_event_loop: create_task + await of `async def echo(x)'.
    Call = {fun() -> py_event_loop:await(py_event_loop:create_task(bench_data, echo, [1])) end,
            fun py:context/0},
    Groups = [begin
                  {_, _, Pids, Workers, _} = tp_group(N, Call, "_loop"),
                  {list_to_atom("loop_tasks_" ++ integer_to_list(N) ++ "_callers"), N, Pids, Workers}
              end || N <- [1, 50]],
    _ = [tp_round(Pids, RoundMs) || {_, _, Pids, _} <- Groups],
    Samples = [[{Name, tp_round(Pids, RoundMs)} || {Name, _, Pids, _} <- rotate(Groups, I)]
               || I <- lists:seq(1, TpRounds)],
    _ = [tp_stop(Workers) || {_, _, _, Workers} <- Groups],
    ByName = maps:groups_from_list(fun({K, _}) -> K end, fun({_, V}) -> V end,
                                   lists:append(Samples)),
    _ = Cfg,
    [row(channel_erlang_to_python_64b, msgs_per_s, median(Chan), M * Rounds, Rounds,
         "py_channel:send of 64-byte binaries, received by `for msg in Channel(ch)`",
         lists:min(Chan), lists:max(Chan)),
     row(shared_dict_set_get_erlang, ops_per_s, median(Dict), 2 * Pairs * Rounds, Rounds,
         "py:shared_dict_set/3 then py:shared_dict_get/2, one process (2 ops a pair)",
         lists:min(Dict), lists:max(Dict)),
     row(shared_dict_get_python_worker_us, us_per_op, median(WorkerDict), 0, Rounds,
         "`sd[key]` in a Python loop, worker context", lists:min(WorkerDict),
         lists:max(WorkerDict)),
     row(shared_dict_get_python_isolated_us, us_per_op, median(IsoDict), 0, Rounds,
         "`sd[key]` in a Python loop, isolated context (a call into the VM per get)",
         lists:min(IsoDict), lists:max(IsoDict)),
     row(channel_erlang_to_isolated_64b, msgs_per_s, median(IsoChan), IsoM * Rounds, Rounds,
         "py_channel:send of 64-byte binaries, received by `for msg in Channel(ch)` in an "
         "isolated context", lists:min(IsoChan), lists:max(IsoChan))] ++ BufferRows ++
    [begin
         Rates = [C / (Us / 1.0e6) || {C, Us} <- maps:get(Name, ByName)],
         row(Name, tasks_per_s, median(Rates), 0, TpRounds,
             io_lib:format("~b callers: py_event_loop:create_task of `async def echo(x)` "
                           "+ await", [N]),
             lists:min(Rates), lists:max(Rates))
     end || {Name, N, _, _} <- Groups].

data_isolated(SD, Bin, Rounds, Quick) ->
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    ok = py:exec(Ctx, ?DATA_HELPERS),
    {N, M} = case Quick of true -> {2000, 5000}; false -> {5000, 20000} end,
    Iso = [begin {ok, Us} = py:call(Ctx, '__main__', sd_get_us, [SD, N]), Us end
           || _ <- lists:seq(1, Rounds)],
    Worker = [begin {ok, Us} = py:call(bench_data, sd_get_us, [SD, 100 * N]), Us end
              || _ <- lists:seq(1, Rounds)],
    Chan = [begin
                {ok, Ch} = py_channel:new(),
                ok = send_n(Ch, Bin, M),
                ok = py_channel:close(Ch),
                {ok, [M, Secs]} = py:call(Ctx, '__main__', drain, [Ch]),
                #{closed := true} = py_channel:info(Ch),      %% Ch held until here
                (M - 1) / Secs
            end || _ <- lists:seq(1, Rounds)],
    ok = py_context:stop(Ctx),
    {Iso, Worker, Chan, M}.

%% py_buffer read by a worker context and by an isolated one (docs/isolated.md,
%% "Shared dicts, channels and buffers"), side by side in each round: read()
%% of an 8 MiB body, a for loop over 1 MiB of 80-byte lines, MB/s from the
%% caller's side (the call included); and readline() a line in a child.
data_buffers(Rounds) ->
    {ok, W} = py_context:new(#{mode => worker}),
    {ok, I} = py_context:new(#{mode => isolated}),
    Code = <<"import time\n"
             "def read_all(b):\n    return len(b.read())\n"
             "def lines(b):\n    return sum(1 for _ in b)\n"
             "def readline_us(b, n):\n"
             "    t = time.perf_counter()\n"
             "    for _ in range(n):\n        b.readline()\n"
             "    return (time.perf_counter() - t) * 1e6 / n\n">>,
    ok = py:exec(W, Code),
    ok = py:exec(I, Code),
    Body = binary:copy(<<"0123456789abcdef">>, 512 * 1024),
    Lines = binary:copy(<<(binary:copy(<<"x">>, 79))/binary, "\n">>, 13107),
    Written = fun(Data) -> {ok, B} = py_buffer:new(), ok = py_buffer:write(B, Data),
                           ok = py_buffer:close(B), B end,
    Rate = fun(Ctx, Fun, Data, Want) ->
                   B = Written(Data),
                   T0 = erlang:monotonic_time(),
                   {ok, Want} = py:call(Ctx, '__main__', Fun, [B]),
                   byte_size(Data) / to_us(erlang:monotonic_time() - T0)
           end,
    Samples = [[{{Kind, What}, Rate(Ctx, What, Data, Want)}
                || {Kind, Ctx} <- rotate([{worker, W}, {isolated, I}], N),
                   {What, Data, Want} <- [{read_all, Body, byte_size(Body)},
                                          {lines, Lines, 13107}]]
               || N <- lists:seq(1, Rounds)],
    By = maps:groups_from_list(fun({K, _}) -> K end, fun({_, V}) -> V end,
                               lists:append(Samples)),
    PerLine = [begin {ok, Us} = py:call(I, '__main__', readline_us, [Written(Lines), 2000]), Us end
               || _ <- lists:seq(1, Rounds)],
    ok = py_context:stop(W),
    ok = py_context:stop(I),
    Row = fun(Name, Key, Desc) ->
                  V = maps:get(Key, By),
                  row(Name, mb_per_s, median(V), 0, Rounds, Desc, lists:min(V), lists:max(V))
          end,
    [Row(buffer_read_8mib_worker, {worker, read_all}, "py_buffer of 8 MiB, `b.read()`, worker context"),
     Row(buffer_read_8mib_isolated, {isolated, read_all},
         "py_buffer of 8 MiB, `b.read()`, isolated context (1 MiB a call into the VM)"),
     Row(buffer_lines_1mib_worker, {worker, lines},
         "py_buffer of 1 MiB in 80-byte lines, `for line in b`, worker context"),
     Row(buffer_lines_1mib_isolated, {isolated, lines},
         "py_buffer of 1 MiB in 80-byte lines, `for line in b`, isolated context "
         "(64 KiB of lines a call)"),
     row(buffer_readline_isolated_us, us_per_op, median(PerLine), 2000 * Rounds, Rounds,
         "`b.readline()` a line in an isolated context (a call into the VM each)",
         lists:min(PerLine), lists:max(PerLine))].

send_n(_, _, 0) -> ok;
send_n(Ch, B, N) -> ok = py_channel:send(Ch, B), send_n(Ch, B, N - 1).

set_get(_, 0) -> ok;
set_get(SD, N) ->
    ok = py:shared_dict_set(SD, <<"key">>, N),
    N = py:shared_dict_get(SD, <<"key">>),
    set_get(SD, N - 1).

count_to(0) -> ok;
count_to(N) -> receive _ -> count_to(N - 1) end.

row(Name, Unit, Value, N, Rounds, Desc, Min, Max) ->
    M = #{name => atom_to_binary(Name), unit => Unit, value => Value, n => N,
          rounds => Rounds, desc => iolist_to_binary(Desc), min => Min, max => Max},
    case spec(Name) of
        none -> M;
        {Better, Target, Peer} ->
            Pass = case Target of
                       none -> undefined;
                       _ when Better =:= lower -> Value =< Target;
                       _ -> Value >= Target
                   end,
            M#{better => Better, target => Target, peer => Peer, pass => Pass}
    end.

median([]) -> 0.0;
median(L) ->
    S = lists:sort(L),
    N = length(S),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, S);
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.

resource() ->
    {ok, Ctx} = py_context:resource(py:context()),
    Ctx.

to_us(Native) -> erlang:convert_time_unit(Native, native, nanosecond) / 1000.

ms_since(T0) -> to_us(erlang:monotonic_time() - T0) / 1000.

%% Output.

table(Title, Ms) ->
    io:format("~n== ~s ==~n", [Title]),
    io:format("~-34s ~10s ~-16s ~12s ~9s ~4s  ~s~n",
              ["name", "value", "unit", "target", "best peer", "pass", "what"]),
    _ = [table_row(M) || M <- Ms],
    ok.

table_row(#{name := Name, error := Reason}) ->
    io:format("~-34s ERROR ~0P~n", [Name, Reason, 30]);
table_row(M = #{name := Name, unit := Unit, value := V, desc := Desc}) ->
    Target = case maps:get(target, M, none) of
                 none -> "-";
                 T -> [case maps:get(better, M) of lower -> "<= "; higher -> ">= " end, num(T)]
             end,
    Pass = case maps:get(pass, M, undefined) of
               true -> "ok";
               false -> "FAIL";
               undefined -> "-"
           end,
    io:format("~-34s ~10s ~-16s ~12s ~9s ~4s  ~s~n",
              [Name, num(V), atom_to_list(Unit), Target, num(maps:get(peer, M, none)),
               Pass, Desc]).

num(none) -> "-";
num(undefined) -> "-";
num(I) when is_integer(I) -> integer_to_list(I);
num(F) when abs(F) >= 1000 -> integer_to_list(round(F));
num(F) when abs(F) >= 100 -> float_to_list(F, [{decimals, 1}]);
num(F) -> float_to_list(F, [{decimals, 2}]).

json_line(#{name := Name, error := Reason}) ->
    io:format("{\"name\": ~s, \"error\": ~s}~n",
              [json_str(Name), json_str(io_lib:format("~0P", [Reason, 30]))]);
json_line(M = #{name := Name, unit := Unit, value := V, n := N, rounds := Rounds}) ->
    Fields = [{"name", json_str(Name)}, {"unit", json_str(atom_to_binary(Unit))},
              {"value", json_num(V)}, {"n", json_num(N)}, {"rounds", json_num(Rounds)},
              {"min", json_num(maps:get(min, M))}, {"max", json_num(maps:get(max, M))},
              {"target", json_num(maps:get(target, M, none))},
              {"best_peer", json_num(maps:get(peer, M, none))},
              {"better", case maps:get(better, M, none) of
                             none -> "null";
                             B -> json_str(atom_to_binary(B))
                         end},
              {"pass", case maps:get(pass, M, undefined) of
                           undefined -> "null";
                           P -> atom_to_list(P)
                       end}],
    io:format("{~s}~n", [lists:join(", ", [["\"", K, "\": ", Val] || {K, Val} <- Fields])]).

json_num(none) -> "null";
json_num(undefined) -> "null";
json_num(I) when is_integer(I) -> integer_to_list(I);
json_num(F) when abs(F) >= 1000 -> float_to_list(F, [{decimals, 1}, compact]);
json_num(F) -> float_to_list(F, [{decimals, 4}, compact]).

json_str(S) ->
    B = unicode:characters_to_binary(S),
    ["\"", [json_char(C) || <<C/utf8>> <= B], "\""].

json_char($") -> "\\\"";
json_char($\\) -> "\\\\";
json_char(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
json_char(C) -> <<C/utf8>>.
