%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Generators to Erlang: py:stream/3,4, py:stream_eval/1,2 and the
%% message protocol of py:stream_start/3,4 (credit, errors, cancel).
%%
%% Synchronisation: while a stream waits for credit its context thread
%% serves other requests, and it serves them only then; so a py:eval from
%% the consumer answers exactly when the generator is parked waiting for
%% credit, which makes "how far ahead is Python" an exact question.
-module(py_stream_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([stream_eval/0, stream_eval/1, stream_call/0, stream_call/1,
         async_generators/0, async_generators/1, start_and_ack/0, start_and_ack/1,
         window_holds/0, window_holds/1, backpressure/0, backpressure/1,
         error_mid_stream/0, error_mid_stream/1, cancel_runs_finally/0,
         cancel_runs_finally/1, cancel_async/0, cancel_async/1,
         cancel_after_done/0, cancel_after_done/1, consumer_dies/0, consumer_dies/1,
         bad_options/0, bad_options/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [stream_eval, stream_call, async_generators, start_and_ack, window_holds, backpressure,
     error_mid_stream, cancel_runs_finally, cancel_async, cancel_after_done, consumer_dies,
     bad_options].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

-define(GENS, <<"import asyncio, itertools, erlang\n"
                "produced = 0\n"
                "finally_ran = []\n"
                "def gen(n, step=1):\n"
                "    for i in range(0, n * step, step):\n"
                "        yield i\n"
                "def counted(n, size=0):\n"
                "    global produced\n"
                "    for i in range(n):\n"
                "        produced += 1\n"
                "        yield bytes(size) if size else i\n"
                "def failing():\n"
                "    yield 1\n"
                "    yield 2\n"
                "    raise ValueError('bad item')\n"
                "def endless(tag):\n"
                "    try:\n"
                "        for i in itertools.count():\n"
                "            yield i\n"
                "    finally:\n"
                "        finally_ran.append(tag)\n"
                "async def agen(n):\n"
                "    for i in range(n):\n"
                "        await asyncio.sleep(0)\n"
                "        yield i * 10\n"
                "async def aendless(tag):\n"
                "    try:\n"
                "        i = 0\n"
                "        while True:\n"
                "            await asyncio.sleep(0)\n"
                "            yield i\n"
                "            i += 1\n"
                "    finally:\n"
                "        finally_ran.append(tag)\n">>).

%% Cases.

stream_eval() ->
    [{doc, "stream_eval collects the items of any iterable an expression gives: the "
      "issue's example, locals, an empty generator; a non-iterable is a TypeError."}].
stream_eval(_Config) ->
    {ok, [0, 1, 4, 9, 16]} = py:stream_eval(<<"(x**2 for x in range(5))">>),
    {ok, [<<"a">>, <<"b">>]} = py:stream_eval(<<"iter(s)">>, #{s => [<<"a">>, <<"b">>]}),
    {ok, [3, 2, 1]} = py:stream_eval(<<"(n - i for i in range(n))">>, #{n => 3}),
    {ok, []} = py:stream_eval(<<"(x for x in ())">>),
    {error, {'TypeError', _}} = py:stream_eval(<<"42">>),
    ok.

stream_call() ->
    [{doc, "stream/3,4 collect the items of a generator function defined with py:exec "
      "(with args and kwargs) and of library callables."}].
stream_call(_Config) ->
    ok = py:exec(?GENS),
    {ok, [0, 1, 2, 3, 4]} = py:stream('__main__', gen, [5]),
    {ok, [0, 3, 6]} = py:stream('__main__', gen, [3], #{step => 3}),
    {ok, [0, 1, 2]} = py:stream(builtins, range, [3]),
    {ok, [{0, <<"a">>}, {1, <<"b">>}]} = py:stream(builtins, enumerate, [[<<"a">>, <<"b">>]]),
    {ok, 100000} = length_of(py:stream('__main__', gen, [100000])),
    ok.

async_generators() ->
    [{doc, "Async generators work in stream/3 and stream_start/3, in order."}].
async_generators(_Config) ->
    ok = py:exec(?GENS),
    {ok, [0, 10, 20, 30]} = py:stream('__main__', agen, [4]),
    {ok, []} = py:stream('__main__', agen, [0]),
    {ok, Ref} = py:stream_start('__main__', agen, [5]),
    {[0, 10, 20, 30, 40], done} = consume(Ref, ack),
    ok.

start_and_ack() ->
    [{doc, "stream_start sends {py_stream, Ref, {data, Item}} in order, then "
      "{py_stream, Ref, done}; acks one by one or N at a time both drain the stream."}].
start_and_ack(_Config) ->
    ok = py:exec(?GENS),
    {ok, Ref1} = py:stream_start('__main__', gen, [10], #{window => 3}),
    true = is_reference(Ref1),
    Expected = lists:seq(0, 9),
    {Expected, done} = consume(Ref1, ack),
    {ok, Ref2} = py:stream_start('__main__', gen, [7], #{window => 3, kwargs => #{step => 2}}),
    {[0, 2, 4, 6, 8, 10, 12], done} = consume_batches(Ref2, 3),
    {ok, Ref3} = py:stream_start('__main__', gen, [0]),
    {[], done} = consume(Ref3, ack),
    ok.

window_holds() ->
    [{doc, "With no acks, exactly `window` items arrive and Python stops right after "
      "producing one more (it waits for credit); each ack lets exactly one more through."}].
window_holds(_Config) ->
    ok = py:exec(?GENS),
    {ok, 0} = py:eval(<<"produced">>),
    {ok, Ref} = py:stream_start('__main__', counted, [1000], #{window => 5}),
    %% The eval is served only once the generator waits for credit.
    {ok, 6} = py:eval(<<"produced">>),
    5 = stream_messages(Ref),
    ok = py:stream_ack(Ref, 2),
    {ok, 8} = py:eval(<<"produced">>),
    7 = stream_messages(Ref),
    ok = py:stream_cancel(Ref),
    0 = stream_messages(Ref),
    ok.

backpressure() ->
    [{doc, "A generator of 10^7 items of 1 KiB with window 64 and a slow consumer (it "
      "checks Python's progress before each ack): the mailbox never holds more than 64 "
      "items, Python is never more than window + 1 items ahead, memory stays flat; "
      "then the stream is cancelled."}].
backpressure(_Config) ->
    ok = py:exec(?GENS),
    Window = 64,
    {ok, Ref} = py:stream_start('__main__', counted, [10000000, 1024], #{window => Window}),
    Mem0 = erlang:memory(total),
    Rounds = 3000,
    MaxAhead = slow_consume(Ref, Window, Rounds, 0, 0),
    ct:log("max produced - consumed: ~p, memory growth: ~p bytes",
           [MaxAhead, erlang:memory(total) - Mem0]),
    true = MaxAhead =< Window + 1,
    true = erlang:memory(total) - Mem0 < 64 * 1024 * 1024,
    ok = py:stream_cancel(Ref),
    {ok, Produced} = py:eval(<<"produced">>),
    true = Produced =< Rounds + Window + 1,
    0 = stream_messages(Ref),
    ok.

error_mid_stream() ->
    [{doc, "An exception raised mid-stream arrives after the items before it, as "
      "{py_stream, Ref, {error, {'ValueError', Msg}}}; stream/3 returns the error."}].
error_mid_stream(_Config) ->
    ok = py:exec(?GENS),
    {ok, Ref} = py:stream_start('__main__', failing, []),
    {[1, 2], {error, {'ValueError', "bad item"}}} = consume(Ref, ack),
    {error, {'ValueError', "bad item"}} = py:stream('__main__', failing, []),
    {ok, 1} = py:eval(<<"1">>),
    ok.

cancel_runs_finally() ->
    [{doc, "stream_cancel stops an endless generator both while it waits for credit and "
      "while the consumer keeps acking: its finally has run by the time stream_cancel "
      "returns (the next request sees it), and no {py_stream, Ref, _} message is left "
      "or arrives later. Each way 30 times: the cancel races with the generator "
      "reaching its wait."}].
cancel_runs_finally(_Config) ->
    ok = py:exec(?GENS),
    Tags = lists:seq(1, 30),
    lists:foreach(fun(Tag) -> cancel_once(endless, Tag, 4, noack) end, Tags),
    lists:foreach(fun(Tag) -> cancel_once(endless, -Tag, 1000, ack) end, Tags),
    Expected = Tags ++ [-T || T <- Tags],
    {ok, Expected} = py:eval(<<"finally_ran">>),
    ok.

cancel_async() ->
    [{doc, "Cancelling an async generator closes it too: its finally runs (30 times)."}].
cancel_async(_Config) ->
    ok = py:exec(?GENS),
    Tags = lists:seq(1, 30),
    lists:foreach(fun(Tag) -> cancel_once(aendless, Tag, 2, noack) end, Tags),
    {ok, Tags} = py:eval(<<"finally_ran">>),
    ok.

cancel_after_done() ->
    [{doc, "Cancelling a stream that has already finished (its done message unread) "
      "is ok and removes that message; cancelling an unknown ref is ok."}].
cancel_after_done(_Config) ->
    ok = py:exec(?GENS),
    {ok, Ref} = py:stream_start('__main__', gen, [3], #{window => 10}),
    %% Sync point: the generator has finished once this answers.
    {ok, 1} = py:eval(<<"1">>),
    4 = stream_messages(Ref),
    ok = py:stream_cancel(Ref),
    0 = stream_messages(Ref),
    ok = py:stream_cancel(make_ref()),
    ok = py:stream_ack(make_ref()),
    ok.

consumer_dies() ->
    [{doc, "A consumer that dies while its stream waits for credit stops the stream "
      "(finally runs, seen through the shared state) and the context stays usable."}].
consumer_dies(_Config) ->
    Test = self(),
    ok = py:state_remove(<<"consumer_dies">>),
    {Consumer, Mon} = spawn_monitor(fun() ->
        ok = py:exec(<<"import erlang\n"
                       "def endless():\n"
                       "    try:\n"
                       "        while True:\n"
                       "            yield 0\n"
                       "    finally:\n"
                       "        erlang.state_set('consumer_dies', 'finally')\n">>),
        {ok, _Ref} = py:stream_start('__main__', endless, [], #{window => 2}),
        {ok, 1} = py:eval(<<"1">>),
        Test ! {parked, self(), py:context()},
        receive never -> ok end
    end),
    Ctx = receive {parked, Consumer, C} -> C after 10000 -> ct:fail(not_parked) end,
    exit(Consumer, kill),
    receive {'DOWN', Mon, process, Consumer, killed} -> ok end,
    {ok, 2} = py:call(Ctx, builtins, abs, [-2], #{timeout => 10000}),
    {ok, <<"finally">>} = py:state_fetch(<<"consumer_dies">>),
    ok.

bad_options() ->
    [{doc, "A window that is not a positive integer, bad options and bad ack counts "
      "raise badarg."}].
bad_options(_Config) ->
    {'EXIT', {{badarg, _}, _}} = (catch py:stream_start(builtins, range, [3], #{window => 0})),
    {'EXIT', {{badarg, _}, _}} = (catch py:stream_start(builtins, range, [3], #{window => x})),
    {'EXIT', {{badarg, _}, _}} = (catch py:stream_start(builtins, range, [3], [])),
    {'EXIT', {{badarg, _}, _}} = (catch py:stream_ack(make_ref(), 0)),
    ok.

%% Internal.

length_of({ok, L}) -> {ok, length(L)}.

%% Receive the whole stream, acking each item: {Items, done | {error, R}}.
consume(Ref, ack) ->
    consume_n(Ref, infinity, ack).

consume_n(Ref, N, Ack) ->
    consume_n(Ref, N, Ack, []).

consume_n(_Ref, 0, _Ack, Acc) ->
    {lists:reverse(Acc), more};
consume_n(Ref, N, Ack, Acc) ->
    receive
        {py_stream, Ref, {data, Item}} ->
            Ack =:= ack andalso py:stream_ack(Ref),
            consume_n(Ref, dec(N), Ack, [Item | Acc]);
        {py_stream, Ref, done} ->
            {lists:reverse(Acc), done};
        {py_stream, Ref, {error, _} = Error} ->
            {lists:reverse(Acc), Error}
    after 10000 ->
        ct:fail({stream_stalled, lists:reverse(Acc)})
    end.

dec(infinity) -> infinity;
dec(N) -> N - 1.

%% Receive the stream acking every Batch items at once.
consume_batches(Ref, Batch) ->
    consume_batches(Ref, Batch, []).

consume_batches(Ref, Batch, Acc) ->
    case consume_n(Ref, Batch, noack) of
        {Items, more} ->
            ok = py:stream_ack(Ref, Batch),
            consume_batches(Ref, Batch, [Items | Acc]);
        {Items, End} ->
            {lists:append(lists:reverse([Items | Acc])), End}
    end.

%% Each round: wait until the generator parks (sync point), check the
%% mailbox and how far ahead Python is, then take one item and ack it.
%% Returns the largest produced - consumed seen.
slow_consume(_Ref, _Window, 0, _Consumed, Max) ->
    Max;
slow_consume(Ref, Window, Rounds, Consumed, Max) ->
    %% Bounded: a Python that ignored credit would never park to answer.
    {ok, Produced} = py:eval(<<"produced">>, #{}, 5000),
    {message_queue_len, Queued} = process_info(self(), message_queue_len),
    true = Queued =< Window,
    Ahead = Produced - Consumed,
    true = Ahead =< Window + 1,
    receive
        {py_stream, Ref, {data, <<0:1024/unit:8>>}} -> ok = py:stream_ack(Ref)
    after 10000 ->
        ct:fail({stream_stalled, Consumed})
    end,
    slow_consume(Ref, Window, Rounds - 1, Consumed + 1, max(Max, Ahead)).

%% Start an endless generator, take two items, cancel it: its finally has
%% run (it appended Tag to finally_ran) and no message of it is left.
%% `noack': cancelled while it waits for credit; `ack': while it runs.
cancel_once(Gen, Tag, Window, Ack) ->
    {ok, Ref} = py:stream_start('__main__', Gen, [Tag], #{window => Window}),
    {[0, 1], more} = consume_n(Ref, 2, Ack),
    Ack =:= ack andalso py:stream_ack(Ref, 100000),
    ok = py:stream_cancel(Ref),
    {ok, [Tag]} = py:eval(<<"finally_ran[-1:]">>),
    0 = stream_messages(Ref).

%% How many messages of stream Ref are in the mailbox (after a sync point
%% on the context, so that nothing of the stream is still on its way).
stream_messages(Ref) ->
    {ok, _} = py:eval(<<"None">>),
    {messages, Msgs} = process_info(self(), messages),
    length([M || {py_stream, R, _} = M <- Msgs, R =:= Ref]).
