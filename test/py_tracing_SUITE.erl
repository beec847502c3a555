%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Tracing spans: off by default (nothing recorded), span trees
%% (ids, parents, times, events, status), the decorator for sync and async
%% functions, threads, contexts started later, and the bounded store
%% (oldest dropped, drops counted).
-module(py_tracing_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([off_by_default/1, span_tree/1, error_status/1, decorator/1, threads/1,
         later_context/1, bounded_store/1]).

all() ->
    [off_by_default, span_tree, error_status, decorator, threads, later_context,
     bounded_store].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(off_by_default, Config) ->
    ok = py:clear_traces(),
    Config;
init_per_testcase(_Case, Config) ->
    ok = py:clear_traces(),
    ok = py:enable_tracing(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = py:disable_tracing(),
    ok = py:clear_traces().

%% Cases.

off_by_default(_Config) ->
    doc("Until enable_tracing/0 a span records nothing (and still runs its block); "
        "after disable_tracing/0 neither."),
    Code = <<"import erlang\n"
             "with erlang.Span('quiet', n=1) as s:\n"
             "    s.event('e')\n"
             "    ran = True\n">>,
    ok = py:exec(Code),
    {ok, true} = py:eval(<<"ran">>),
    {ok, []} = spans(0),
    ok = py:enable_tracing(),
    ok = py:exec(Code),
    {ok, [#{name := <<"quiet">>}]} = spans(1),
    ok = py:disable_tracing(),
    ok = py:exec(Code),
    {ok, [#{name := <<"quiet">>}]} = spans(1).

span_tree(_Config) ->
    doc("Nested spans: ids, parent links, attributes, events, times and durations as "
        "erlang_python 4.x's span maps; the caller's pid."),
    Self = self(),
    ok = py:exec(<<"import erlang, time\n"
                   "with erlang.Span('request', path='/orders', n=3) as root:\n"
                   "    root.event('parsed', size=10)\n"
                   "    with erlang.Span('db') as db:\n"
                   "        time.sleep(0.02)\n"
                   "        db.set_attribute('rows', 7)\n"
                   "    with erlang.Span('render'):\n"
                   "        pass\n">>),
    {ok, [Db, Render, Root]} = spans(3),
    #{name := <<"request">>, parent_id := undefined, span_id := RootId, status := ok,
      attributes := #{<<"path">> := <<"/orders">>, <<"n">> := 3}, end_attrs := #{},
      events := [#{name := <<"parsed">>, attrs := #{<<"size">> := 10}, time := EvTime}],
      start_time := Start, end_time := End, duration_us := Duration, pid := Self} = Root,
    true = is_integer(RootId) andalso RootId > 0 andalso RootId < 1 bsl 64,
    #{name := <<"db">>, parent_id := RootId, span_id := DbId, duration_us := DbUs,
      attributes := #{<<"rows">> := 7}, events := []} = Db,
    #{name := <<"render">>, parent_id := RootId, span_id := RenderId} = Render,
    3 = length(lists:usort([RootId, DbId, RenderId])),
    true = DbUs >= 20000,
    true = Duration >= DbUs,
    End = Start + Duration,
    true = Start =< EvTime andalso EvTime =< End,
    true = abs(os:system_time(microsecond) - Start) < 60000000.

error_status(_Config) ->
    doc("A block that raises ends its span with status error and the exception in "
        "end_attrs; the exception still propagates."),
    {error, {'ValueError', "bad input"}} =
        py:exec(<<"import erlang\n"
                  "with erlang.Span('risky'):\n"
                  "    raise ValueError('bad input')\n">>),
    {ok, [#{name := <<"risky">>, status := error,
            end_attrs := #{<<"exception">> := <<"bad input">>,
                           <<"exception_type">> := <<"ValueError">>}}]} = spans(1).

decorator(_Config) ->
    doc("@erlang.trace() wraps sync and async functions in spans named after them or "
        "as given, with its attributes; nesting links them."),
    ok = py:exec(<<"import erlang, asyncio\n"
                   "@erlang.trace()\n"
                   "def inner(x):\n"
                   "    return x + 1\n"
                   "@erlang.trace(name='outer', kind='demo')\n"
                   "def outer(x):\n"
                   "    return inner(x) * 2\n"
                   "@erlang.trace\n"
                   "async def fetch(x):\n"
                   "    await asyncio.sleep(0)\n"
                   "    return x\n">>),
    {ok, 22} = py:call('__main__', outer, [10]),
    {ok, 5} = py:eval(<<"asyncio.run(fetch(5))">>),
    {ok, [Inner, Outer, Fetch]} = spans(3),
    #{name := <<"inner">>, parent_id := OuterId} = Inner,
    #{name := <<"outer">>, span_id := OuterId, parent_id := undefined,
      attributes := #{<<"kind">> := <<"demo">>}} = Outer,
    #{name := <<"fetch">>, status := ok} = Fetch,
    {ok, <<"inner">>} = py:eval(<<"inner.__name__">>).

threads(_Config) ->
    doc("Spans in Python threads are recorded with their own parents (none from the "
        "thread that started them) and no caller pid."),
    ok = py:exec(<<"import erlang, threading\n"
                   "def work(i):\n"
                   "    with erlang.Span(f'job{i}'):\n"
                   "        with erlang.Span(f'step{i}'):\n"
                   "            pass\n"
                   "with erlang.Span('main'):\n"
                   "    ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]\n"
                   "    [t.start() for t in ts]\n"
                   "    [t.join() for t in ts]\n">>),
    {ok, Spans} = spans(7),
    ById = maps:from_list([{Id, S} || #{span_id := Id} = S <- Spans]),
    Jobs = [S || #{name := <<"job", _/binary>>} = S <- Spans],
    3 = length(Jobs),
    [undefined] = lists:usort([P || #{parent_id := P} <- Jobs]),
    [undefined] = lists:usort([P || #{pid := P} <- Jobs]),
    [<<"job", I/binary>> = maps:get(name, maps:get(P, ById))
     || #{name := <<"step", I/binary>>, parent_id := P} <- Spans],
    ok.

later_context(_Config) ->
    doc("Tracing switched on applies to a context started afterwards, an own-GIL one "
        "too (Python 3.12+), and switching off reaches it."),
    Mode = case py:subinterp_supported() of
               true -> owngil;
               false -> worker
           end,
    {ok, Ctx} = py_context:new(#{mode => Mode}),
    try
        ok = py:exec(Ctx, <<"import erlang\nwith erlang.Span('late'):\n    pass\n">>),
        {ok, [#{name := <<"late">>}]} = spans(1),
        ok = py:disable_tracing(),
        ok = py:exec(Ctx, <<"with erlang.Span('off'):\n    pass\n">>),
        {ok, [#{name := <<"late">>}]} = spans(1)
    after
        py_context:stop(Ctx)
    end.

bounded_store(_Config) ->
    doc("The store keeps the most recent spans up to its capacity, drops the oldest and "
        "counts them; clear_traces/0 empties it."),
    #{capacity := Cap} = py_tracer:stats(),
    ok = py_tracer:set_capacity(5),
    try
        ok = py:exec(<<"import erlang\n"
                       "for i in range(12):\n"
                       "    with erlang.Span(f's{i}'):\n"
                       "        pass\n">>),
        {ok, Kept} = spans(5),
        [<<"s7">>, <<"s8">>, <<"s9">>, <<"s10">>, <<"s11">>] = [N || #{name := N} <- Kept],
        #{count := 5, capacity := 5, dropped := 7} = py_tracer:stats(),
        ok = py:clear_traces(),
        #{count := 0, dropped := 0} = py_tracer:stats(),
        {ok, []} = py:get_traces()
    after
        py_tracer:set_capacity(Cap)
    end.

%% Helpers.

%% The spans once N have arrived (a span is a message to py_tracer sent
%% before the request that ran it replied; the store's call queues behind).
spans(N) ->
    {ok, Spans} = py:get_traces(),
    N = length(Spans),
    {ok, Spans}.

doc(Text) ->
    ct:comment("~ts", [Text]).
