%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Shared dicts and channels across an isolated context's boundary
%% (py_bridge, priv/python/erlang/_bridge.py): the code of a worker context
%% runs unchanged in a child OS process.
-module(py_isolated_data_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-import(py_test_lib, [in_new_process/1, timed/1]).

-define(WAIT_FOR, <<"
import erlang
def wait_for(pid, ref):
    erlang.send(pid, erlang.Atom('waiting'))
    return erlang.Channel(ref).receive()
">>).

-export([handle_only_in_payload/1]).
-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([sdict_erlang_to_child/1, sdict_child_to_erlang/1, sdict_handle_paths/1,
         sdict_destroyed/1, sdict_freed_handle/1, channel_pinned/1, sdict_same_as_worker/1,
         not_a_handle/1, channel_erlang_to_child/1, channel_child_to_erlang/1,
         channel_blocking_receive/1, channel_receive_timeout_interrupts/1,
         channel_nested_request_while_waiting/1, channel_close/1,
         channel_async_receive/1, channel_from_thread/1, byte_channel/1,
         channel_same_as_worker/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [sdict_erlang_to_child, sdict_child_to_erlang, sdict_handle_paths, sdict_destroyed,
     sdict_freed_handle, channel_pinned, sdict_same_as_worker, not_a_handle, channel_erlang_to_child,
     channel_child_to_erlang, channel_blocking_receive, channel_receive_timeout_interrupts,
     channel_nested_request_while_waiting, channel_close, channel_async_receive,
     channel_from_thread, byte_channel, channel_same_as_worker, handle_only_in_payload].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(_Case, Config) ->
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    ok = py:exec(Ctx, <<"import erlang, asyncio, threading">>),
    [{ctx, Ctx} | Config].

end_per_testcase(_Case, Config) ->
    ok = py_context:stop(?config(ctx, Config)).

doc(Text) ->
    ct:comment("~ts", [Text]).

ev(Config, Code, Locals) ->
    py:eval(?config(ctx, Config), Code, Locals).

ex(Config, Code) ->
    ok = py:exec(?config(ctx, Config), Code).

%% Call Func in a linked process of its own (its own namespace: Code defines
%% Func there); the result comes as {got, Result}.
spawn_call(Ctx, Code, Func, Args) ->
    Self = self(),
    spawn_link(fun() -> ok = py:exec(Ctx, Code),
                        Self ! {got, py:call(Ctx, '__main__', Func, Args)}
               end).

%% Shared dicts.

sdict_erlang_to_child(Config) ->
    doc("What Erlang stores, the child reads with the whole SharedDict API."),
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"config">>, #{<<"host">> => <<"localhost">>, port => 8080}),
    ok = py:shared_dict_set(SD, {user, 42}, [admin, <<"alice">>]),
    ex(Config, <<"
def read(h):
    sd = erlang.SharedDict(h)
    missing = []
    try:
        sd['nope']
    except KeyError:
        missing.append('getitem')
    return (sd['config']['host'], sd['config']['port'], sd[(erlang.Atom('user'), 42)],
            sd.get('nope'), sd.get('nope', 7), 'config' in sd, 'nope' in sd, len(sd),
            sorted(map(repr, sd.keys())), len(sd.items()), len(sd.values()),
            sorted(map(repr, sd)), sd.to_dict()['config']['host'], missing)
">>),
    {ok, {<<"localhost">>, 8080, [admin, <<"alice">>], none, 7, true, false, 2,
          [_, _], 2, 2, [_, _], <<"localhost">>, [<<"getitem">>]}} =
        py:call(?config(ctx, Config), '__main__', read, [SD]),
    ok = py:shared_dict_destroy(SD).

sdict_child_to_erlang(Config) ->
    doc("What the child stores, Erlang reads; the child's deletions and "
        "setdefault/pop/update reach the VM's dict."),
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"gone">>, 1),
    ex(Config, <<"
def write(h):
    sd = erlang.SharedDict(h)
    sd['result'] = {'status': 'ok', 'n': [1, 2.5, None]}
    sd[erlang.Atom('flag')] = True
    del sd['gone']
    try:
        del sd['gone']
    except KeyError:
        pass
    first = sd.setdefault('sd', 'first')
    again = sd.setdefault('sd', 'second')
    sd.update({'a': 1}, b=2)
    popped = (sd.pop('a'), sd.pop('a', 'default'))
    return (first, again, popped)
">>),
    {ok, {<<"first">>, <<"first">>, {1, <<"default">>}}} =
        py:call(?config(ctx, Config), '__main__', write, [SD]),
    #{<<"status">> := <<"ok">>, <<"n">> := [1, 2.5, none]} =
        py:shared_dict_get(SD, <<"result">>),
    true = py:shared_dict_get(SD, flag),
    undefined = py:shared_dict_get(SD, <<"gone">>),
    2 = py:shared_dict_get(SD, <<"b">>),
    ?assertEqual(lists:sort([<<"result">>, flag, <<"sd">>, <<"b">>]),
                 lists:sort(py:shared_dict_keys(SD))).

sdict_handle_paths(Config) ->
    doc("A handle reaches the child as a call argument, an eval local, an "
        "erlang.call result and inside a map; the child gives back the very "
        "same handle."),
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, k, v),
    Ctx = ?config(ctx, Config),
    ok = py:register_function(bridge_test_sd, fun([]) -> SD end),
    try
        {ok, v} = py:eval(Ctx, <<"erlang.SharedDict(h)[erlang.Atom('k')]">>, #{h => SD}),
        {ok, v} = py:eval(Ctx, <<"erlang.SharedDict(erlang.bridge_test_sd())[erlang.Atom('k')]">>,
                          #{}),
        {ok, v} = py:eval(Ctx, <<"erlang.SharedDict(m['sd'])[erlang.Atom('k')]">>,
                          #{m => #{<<"sd">> => SD}}),
        {ok, Back} = py:eval(Ctx, <<"h">>, #{h => SD}),
        true = Back =:= SD,
        {ok, Back2} = py:eval(Ctx, <<"erlang.bridge_test_sd()">>, #{}),
        true = Back2 =:= SD,
        ok = py:exec(Ctx, <<"def keep(h):\n    global kept\n    kept = erlang.SharedDict(h)\n">>),
        {ok, none} = py:call(Ctx, '__main__', keep, [SD]),
        {ok, Kept} = py:eval(Ctx, <<"kept._h">>, #{}),
        true = Kept =:= SD,
        v = py:shared_dict_get(Kept, k),
        {ok, true} = py:eval(Ctx, <<"kept == erlang.SharedDict(h)">>, #{h => SD})
    after
        ok = py:unregister_function(bridge_test_sd)
    end.

sdict_destroyed(Config) ->
    doc("A destroyed dict raises the worker context's RuntimeError in the child; "
        "destroyed by the child, it is destroyed for Erlang; by its owner's death too."),
    Ctx = ?config(ctx, Config),
    {ok, SD} = py:shared_dict_new(),
    ok = py:exec(Ctx, <<"def keep(h):\n    global kept\n    kept = erlang.SharedDict(h)\n">>),
    {ok, none} = py:call(Ctx, '__main__', keep, [SD]),
    ok = py:shared_dict_destroy(SD),
    Msg = "the shared dict has been destroyed",
    {error, {'RuntimeError', Msg}} = py:eval(Ctx, <<"kept['k']">>, #{}),
    {error, {'RuntimeError', Msg}} = py:eval(Ctx, <<"kept.__setitem__('k', 1)">>, #{}),
    {error, {'RuntimeError', Msg}} = py:eval(Ctx, <<"len(kept)">>, #{}),
    {error, {'RuntimeError', Msg}} = py:eval(Ctx, <<"kept.keys()">>, #{}),
    {ok, none} = py:eval(Ctx, <<"kept.destroy()">>, #{}),
    {ok, SD2} = py:shared_dict_new(),
    {ok, none} = py:eval(Ctx, <<"erlang.SharedDict(h).destroy()">>, #{h => SD2}),
    {'EXIT', {{badarg, shared_dict_destroyed}, _}} = (catch py:shared_dict_get(SD2, <<"k">>)),
    Self = self(),
    Owner = spawn(fun() -> {ok, SD3} = py:shared_dict_new(),
                           ok = py:shared_dict_set(SD3, a, 1),
                           Self ! {sd, SD3},
                           receive stop -> ok end
                  end),
    SD3 = receive {sd, S} -> S end,
    {ok, 1} = py:eval(Ctx, <<"erlang.SharedDict(h)[erlang.Atom('a')]">>, #{h => SD3}),
    Mon = monitor(process, Owner),
    Owner ! stop,
    receive {'DOWN', Mon, process, Owner, _} -> ok end,
    {error, {'RuntimeError', Msg}} =
        py:eval(Ctx, <<"erlang.SharedDict(h)[erlang.Atom('a')]">>, #{h => SD3}).

sdict_freed_handle(Config) ->
    doc("A handle the child keeps after its Erlang side is gone (the dict's owner "
        "died, no term holds it) raises the destroyed dict's RuntimeError, never "
        "crashes; the pin the VM held for it goes at the next sweep."),
    Ctx = ?config(ctx, Config),
    Keep = <<"import erlang, sys, types\n"
             "def keep(h):\n"
             "    store = sys.modules.setdefault('bridge_store', types.ModuleType('bridge_store'))\n"
             "    store.kept = erlang.SharedDict(h)\n"
             "    store.kept['x'] = 1\n">>,
    in_new_process(fun() ->
                           {ok, SD} = py:shared_dict_new(),
                           ok = py:exec(Ctx, Keep),
                           {ok, none} = py:call(Ctx, '__main__', keep, [SD]),
                           1 = py:shared_dict_get(SD, <<"x">>)
                   end),
    [erlang:garbage_collect(P) || P <- processes()],
    ok = gen_server:call(py_bridge, sweep),
    {error, {'RuntimeError', "the shared dict has been destroyed"}} =
        py:eval(Ctx, <<"__import__('bridge_store').kept['x']">>, #{}),
    {ok, none} = py:eval(Ctx, <<"__import__('bridge_store').kept.destroy()">>, #{}).

channel_pinned(Config) ->
    doc("A channel the child keeps lives on after the Erlang process that made it "
        "is gone (the VM pins it), until it is closed and drained."),
    Ctx = ?config(ctx, Config),
    Keep = <<"import erlang, sys, types\n"
             "def keep(h):\n"
             "    store = sys.modules.setdefault('bridge_store', types.ModuleType('bridge_store'))\n"
             "    store.ch = erlang.Channel(h)\n">>,
    ok = gen_server:call(py_bridge, sweep),
    Before = py_bridge:pinned(),
    in_new_process(fun() ->
                           {ok, Ch} = py_channel:new(),
                           ok = py:exec(Ctx, Keep),
                           {ok, none} = py:call(Ctx, '__main__', keep, [Ch]),
                           ok = py_channel:send(Ch, one),
                           ok = py_channel:send(Ch, two)
                   end),
    [erlang:garbage_collect(P) || P <- processes()],
    ok = gen_server:call(py_bridge, sweep),
    Before = py_bridge:pinned() - 1,
    {ok, one} = py:eval(Ctx, <<"__import__('bridge_store').ch.receive(1000)">>, #{}),
    {ok, none} = py:eval(Ctx, <<"__import__('bridge_store').ch.send(3)">>, #{}),
    {ok, none} = py:eval(Ctx, <<"__import__('bridge_store').ch.close()">>, #{}),
    {ok, [two, 3]} = py:eval(Ctx, <<"list(__import__('bridge_store').ch)">>, #{}),
    ok = gen_server:call(py_bridge, sweep),
    Before = py_bridge:pinned(),
    {error, {'ChannelClosed', _}} =
        py:eval(Ctx, <<"__import__('bridge_store').ch.try_receive()">>, #{}).

sdict_same_as_worker(Config) ->
    doc("The same Python code gives the same results on a worker context and on an "
        "isolated one."),
    Code = <<"
def roundtrip(h):
    sd = erlang.SharedDict(h)
    sd[(erlang.Atom('k'), 1)] = {'nested': [b'\\xff', 1.5, erlang.Atom('x'), None]}
    sd['big'] = 2 ** 100
    sd['text'] = 'caf\\u00e9'
    sd['bytes'] = b'abc'
    return sorted((repr(k), repr(v)) for k, v in sd.items())
">>,
    ok = py:exec(?config(ctx, Config), Code),
    {ok, W} = py_context:new(#{mode => worker}),
    try
        ok = py:exec(W, <<"import erlang\n", Code/binary>>),
        {ok, SD1} = py:shared_dict_new(),
        {ok, SD2} = py:shared_dict_new(),
        {ok, FromWorker} = py:call(W, '__main__', roundtrip, [SD1]),
        {ok, FromChild} = py:call(?config(ctx, Config), '__main__', roundtrip, [SD2]),
        ?assertEqual(FromWorker, FromChild),
        ?assertEqual(lists:sort([{K, py:shared_dict_get(SD1, K)} || K <- py:shared_dict_keys(SD1)]),
                     lists:sort([{K, py:shared_dict_get(SD2, K)} || K <- py:shared_dict_keys(SD2)]))
    after
        py_context:stop(W)
    end.

not_a_handle(Config) ->
    doc("A term that is no shared dict or channel raises TypeError, as in a worker "
        "context; a channel is no shared dict and the other way round."),
    {ok, SD} = py:shared_dict_new(),
    {ok, Ch} = py_channel:new(),
    {ok, BCh} = py_byte_channel:new(),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.SharedDict(r)">>, #{r => make_ref()}),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.SharedDict(r)">>, #{r => Ch}),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.SharedDict(r)">>, #{r => 42}),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.Channel(r)">>, #{r => SD}),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.Channel(r)">>, #{r => make_ref()}),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.ByteChannel(r)">>, #{r => Ch}),
    {ok, <<"ByteChannel">>} = ev(Config, <<"type(erlang.ByteChannel(r)).__name__">>, #{r => BCh}),
    {ok, <<"Channel">>} = ev(Config, <<"type(erlang.Channel(r)).__name__">>, #{r => BCh}),
    ok = py_byte_channel:close(BCh),
    ok = py_channel:close(Ch),
    ok = py:shared_dict_destroy(SD).

%% Channels.

channel_erlang_to_child(Config) ->
    doc("Terms Erlang sends are received in the child by receive, try_receive and "
        "for, converted as in a worker context; replies go back with "
        "erlang.channel.reply."),
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, {request, self(), <<"data">>}),
    ok = py_channel:send(Ch, {request, self(), <<"more">>}),
    ok = py_channel:send(Ch, [atom, 1.5, {bytes, <<"b">>}]),
    ok = py_channel:send(Ch, last),
    ok = py_channel:close(Ch),
    ex(Config, <<"
from erlang.channel import Channel, reply

def process(ref):
    ch = Channel(ref)
    first = ch.receive()
    _, pid, data = first
    reply(pid, ('response', data.upper(), first[0] == 'request', type(first[0]).__name__))
    second = ch.try_receive()
    reply(second[1], ('response', second[2].upper()))
    rest = [m for m in ch]
    return (rest, ch.try_receive() if False else None, ch.closed)
">>),
    {ok, {[[atom, 1.5, <<"b">>], last], none, true}} =
        py:call(?config(ctx, Config), '__main__', process, [Ch]),
    receive {<<"response">>, <<"DATA">>, true, <<"Atom">>} -> ok end,
    receive {<<"response">>, <<"MORE">>} -> ok end,
    {error, {'ChannelClosed', _}} = ev(Config, <<"erlang.Channel(c).try_receive()">>, #{c => Ch}),
    {error, {'ChannelClosed', _}} = ev(Config, <<"erlang.Channel(c).receive(10)">>, #{c => Ch}).

channel_child_to_erlang(Config) ->
    doc("The child sends, Erlang receives; backpressure and close give the worker "
        "context's errors."),
    {ok, Ch} = py_channel:new(#{max_size => 100}),
    ex(Config, <<"
def produce(ref):
    c = erlang.Channel(ref)
    for i in range(2):
        c.send((erlang.Atom('item'), i))
    return c.info()
">>),
    {ok, #{<<"count">> := 2, <<"max_size">> := 100, <<"closed">> := false, <<"size">> := _}} =
        py:call(?config(ctx, Config), '__main__', produce, [Ch]),
    {ok, {item, 0}} = py_channel:try_receive(Ch),
    {ok, {item, 1}} = py_channel:recv(Ch, 1000),
    ok = py_channel:send(Ch, binary:copy(<<"x">>, 60)),
    {error, {'RuntimeError', "channel busy (backpressure)"}} =
        ev(Config, <<"erlang.Channel(c).send(b'y' * 60)">>, #{c => Ch}),
    ok = py_channel:close(Ch),
    {error, {'ChannelClosed', _}} = ev(Config, <<"erlang.Channel(c).send(1)">>, #{c => Ch}),
    {ok, Ch2} = py_channel:new(),
    {ok, none} = ev(Config, <<"erlang.Channel(c).close()">>, #{c => Ch2}),
    {error, closed} = py_channel:send(Ch2, x),
    {ok, #{<<"max_size">> := none, <<"closed">> := true}} =
        ev(Config, <<"erlang.Channel(c).info()">>, #{c => Ch2}).

channel_blocking_receive(Config) ->
    doc("receive() waits in the VM until Erlang sends; receive(T) times out with "
        "TimeoutError after about T ms."),
    {ok, Ch} = py_channel:new(),
    Ctx = ?config(ctx, Config),
    _ = spawn_call(Ctx, ?WAIT_FOR, wait_for, [self(), Ch]),
    receive waiting -> ok end,
    ok = py_channel:send(Ch, {hello, 1}),
    receive {got, {ok, {hello, 1}}} -> ok end,
    {Ms, {error, {'TimeoutError', "channel receive timeout"}}} =
        timed(fun() -> ev(Config, <<"erlang.Channel(c).receive(150)">>, #{c => Ch}) end),
    true = Ms >= 150 andalso Ms < 2000,
    {error, {'TimeoutError', _}} = ev(Config, <<"erlang.Channel(c).receive(0)">>, #{c => Ch}),
    ok = py_channel:send(Ch, now),
    {ok, now} = ev(Config, <<"erlang.Channel(c).receive(0)">>, #{c => Ch}).

channel_receive_timeout_interrupts(Config) ->
    doc("A call's timeout ends a receive that waits (the context goes on at once), "
        "and the message sent after it is not lost: the next receive gets it."),
    {ok, Ch} = py_channel:new(),
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"def wait_for(ref):\n    return erlang.Channel(ref).receive()\n">>),
    {Ms, {error, timeout}} =
        timed(fun() -> py:call(Ctx, '__main__', wait_for, [Ch], #{timeout => 200}) end),
    true = Ms < 1000,
    {ok, #{generation := 1}} = py_context:child_info(Ctx),    %% interrupted, not killed
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    ok = py_channel:send(Ch, kept),
    {ok, kept} = py:call(Ctx, '__main__', wait_for, [Ch], #{timeout => 5000}),
    %% an interrupted `for' loop too
    ok = py:exec(Ctx, <<"def take_all(ref):\n    return [m for m in erlang.Channel(ref)]\n">>),
    {error, timeout} = py:call(Ctx, '__main__', take_all, [Ch], #{timeout => 100}),
    ok = py_channel:send(Ch, again),
    {ok, again} = py_channel:recv(Ch, 1000).

channel_nested_request_while_waiting(Config) ->
    doc("While one request waits on a channel, other processes' requests on the same "
        "context run (no deadlock); the wait ends when the message comes."),
    {ok, Ch} = py_channel:new(),
    Ctx = ?config(ctx, Config),
    _ = spawn_call(Ctx, ?WAIT_FOR, wait_for, [self(), Ch]),
    receive waiting -> ok end,
    {ok, 6} = in_new_process(fun() -> py:eval(Ctx, <<"2 * 3">>, #{}) end),
    {ok, <<"v">>} = in_new_process(fun() ->
                                           {ok, SD} = py:shared_dict_new(),
                                           ok = py:shared_dict_set(SD, <<"k">>, <<"v">>),
                                           R = py:eval(Ctx, <<"__import__('erlang').SharedDict(h)['k']">>,
                                                       #{h => SD}),
                                           ok = py:shared_dict_destroy(SD),
                                           R
                                   end),
    ok = py_channel:send(Ch, done),
    receive {got, {ok, done}} -> ok end.

channel_close(Config) ->
    doc("Closing the channel ends a receive that waits (ChannelClosed) and a for loop; "
        "messages queued before the close are still received."),
    {ok, Ch} = py_channel:new(),
    Ctx = ?config(ctx, Config),
    Drain = <<"
import erlang
def drain(pid, ref):
    ch = erlang.Channel(ref)
    erlang.send(pid, erlang.Atom('waiting'))
    got = [m for m in ch]
    try:
        ch.receive()
    except erlang.ChannelClosed:
        return (got, 'closed')
">>,
    _ = spawn_call(Ctx, Drain, drain, [self(), Ch]),
    receive waiting -> ok end,
    ok = py_channel:send(Ch, 1),
    ok = py_channel:send(Ch, 2),
    ok = py_channel:close(Ch),
    receive {got, {ok, {[1, 2], <<"closed">>}}} -> ok end,
    {ok, Ch2} = py_channel:new(),
    Waiter = <<"import erlang\ndef waiter(pid, ref):\n    erlang.send(pid, erlang.Atom('waiting'))\n"
               "    try:\n        erlang.Channel(ref).receive(10000)\n"
               "    except erlang.ChannelClosed:\n        return 'closed'\n">>,
    _ = spawn_call(Ctx, Waiter, waiter, [self(), Ch2]),
    receive waiting -> ok end,
    {Ms, ok} = timed(fun() -> ok = py_channel:close(Ch2),
                              receive {got, {ok, <<"closed">>}} -> ok end
                     end),
    true = Ms < 2000.

channel_async_receive(Config) ->
    doc("await async_receive() and async for in the child's asyncio, woken when "
        "Erlang sends; a cancelled wait (wait_for's timeout) takes no message."),
    {ok, Ch} = py_channel:new(),
    Ctx = ?config(ctx, Config),
    Collect = <<"
import asyncio, erlang
async def collect(pid, ref):
    ch = erlang.Channel(ref)
    try:
        await asyncio.wait_for(ch.async_receive(), 0.05)
        early = 'message'
    except asyncio.TimeoutError:
        early = 'timeout'
    erlang.send(pid, erlang.Atom('waiting'))
    out = []
    async for item in ch:
        out.append(item * 2)
    return (early, out)

def run_collect(pid, ref):
    return asyncio.run(collect(pid, ref))
">>,
    _ = spawn_call(Ctx, Collect, run_collect, [self(), Ch]),
    receive waiting -> ok end,
    [ok = py_channel:send(Ch, I) || I <- [1, 2, 3]],
    ok = py_channel:close(Ch),
    receive {got, {ok, {<<"timeout">>, [2, 4, 6]}}} -> ok end.

channel_from_thread(Config) ->
    doc("A Python thread of the child (no request) receives and sends too."),
    {ok, In} = py_channel:new(),
    {ok, Out} = py_channel:new(),
    ok = py:exec(?config(ctx, Config), <<"
def start(inp, out):
    def run():
        i, o = erlang.Channel(inp), erlang.Channel(out)
        for m in i:
            o.send(m + 1)
        o.close()
    threading.Thread(target=run, daemon=True).start()
">>),
    {ok, none} = py:call(?config(ctx, Config), '__main__', start, [In, Out]),
    ok = py_channel:send(In, 1),
    {ok, 2} = py_channel:recv(Out, 5000),
    ok = py_channel:send(In, 41),
    ok = py_channel:close(In),
    {ok, 42} = py_channel:recv(Out, 5000),
    {error, closed} = py_channel:recv(Out, 5000).

byte_channel(Config) ->
    doc("A byte channel gives bytes in the child (valid UTF-8 too) and takes only "
        "bytes from it."),
    {ok, Ch} = py_byte_channel:new(),
    ok = py_byte_channel:send(Ch, <<"HTTP/1.1 200 OK\r\n">>),
    ok = py:exec(?config(ctx, Config), <<"
from erlang import ByteChannel

def echo_status(ref):
    ch = ByteChannel(ref)
    line = ch.receive_bytes()
    assert type(line) is bytes
    empty = ch.try_receive_bytes()
    ch.send_bytes(b'got ' + line.split()[1])
    return empty
">>),
    {ok, none} = py:call(?config(ctx, Config), '__main__', echo_status, [Ch]),
    {ok, <<"got 200">>} = py_byte_channel:recv(Ch, 1000),
    {error, {'TypeError', _}} =
        ev(Config, <<"erlang.ByteChannel(c).send_bytes('text')">>, #{c => Ch}),
    ok = py_byte_channel:close(Ch),
    {error, {'ByteChannelClosed', _}} =
        ev(Config, <<"erlang.ByteChannel(c).receive_bytes()">>, #{c => Ch}).

channel_same_as_worker(Config) ->
    doc("The same messages received by the same code on a worker context and on an "
        "isolated one convert the same."),
    Msgs = [{request, self(), <<"data">>}, #{a => [1, 2.5]}, <<255, 0>>, {bytes, <<"b">>},
            [], nan, 1 bsl 80, "str"],
    Code = <<"def take_all(ref):\n    return [repr(m) for m in erlang.Channel(ref)]\n">>,
    ok = py:exec(?config(ctx, Config), Code),
    {ok, W} = py_context:new(#{mode => worker}),
    try
        ok = py:exec(W, <<"import erlang\n", Code/binary>>),
        Results = [begin
                       {ok, Ch} = py_channel:new(),
                       [ok = py_channel:send(Ch, M) || M <- Msgs],
                       ok = py_channel:close(Ch),
                       {ok, R} = py:call(C, '__main__', take_all, [Ch]),
                       #{closed := true} = py_channel:info(Ch),
                       R
                   end || C <- [W, ?config(ctx, Config)]],
        [FromWorker, FromChild] = Results,
        ?assertEqual(FromWorker, FromChild)
    after
        py_context:stop(W)
    end.

handle_only_in_payload(_Config) ->
    doc("A handle that only the request's payload holds lives until the child is done "
        "with it (external term format does not hold NIF resources), in a sync call "
        "and in a cast."),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    Self = self(),
    ok = py:register_function(iso_data_gc, fun([P]) -> erlang:garbage_collect(P), ok end),
    ok = py:register_function(iso_data_done, fun([V]) -> Self ! {done, V}, ok end),
    Code = <<"import erlang\n"
                        "def use(h, p):\n"
                        "    erlang.iso_data_gc(p)\n"
                        "    d = erlang.SharedDict(h)\n"
                        "    d['k'] = 1\n"
                        "    return d['k']\n"
                        "def use_cast(h, p):\n"
                        "    erlang.iso_data_done(use(h, p))">>,
    ok = py:exec(Ctx, Code),
    Caller = fun() ->
                     {ok, SD} = py:shared_dict_new(),
                     py:call(Ctx, '__main__', use, [SD, self()])
             end,
    ?assertEqual({ok, 1}, Caller()),
    _ = spawn_link(fun() ->
                           ok = py:exec(Ctx, Code),  %% its own namespace
                           {ok, SD} = py:shared_dict_new(),
                           ok = py:cast(Ctx, '__main__', use_cast, [SD, self()]),
                           receive never -> ok end
                   end),
    receive {done, V} -> ?assertEqual(1, V) end,
    ok = py:unregister_function(iso_data_gc),
    ok = py:unregister_function(iso_data_done),
    ok = py_context:stop(Ctx).
