%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Channels and byte channels: py_channel, py_byte_channel,
%% erlang.Channel, erlang.ByteChannel (c_src/shared/channel.c,
%% c_src/pymod/channel_py.c, priv/python/erlang/_channel.py).
-module(py_channel_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([send_receive/1, atoms_stay_atoms/1, close_drains/1, info_and_busy/1,
         receive_timeout/1, receive_waits_for_sender/1, try_receive/1,
         async_receive_erlang_loop/1, async_receive_stdlib_loop/1,
         async_receive_is_event_driven/1, many_receivers/1, python_sends/1,
         erlang_recv/1, context_manager/1, receive_interrupted_by_timeout/1,
         byte_channel/1, bad_input/1, channel_module_path/1, big_terms/1,
         owngil_receivers/1]).

-define(HELPERS, <<"
import asyncio, threading, time
import erlang
from erlang import Atom, Channel, ChannelClosed, ByteChannel

def drain(ch):
    return list(Channel(ch))

def recv(ch, timeout):
    return Channel(ch).receive(timeout)

async def arecv_all(ch):
    return [m async for m in Channel(ch)]

def arecv_erlang(ch):
    return erlang.run(arecv_all(ch))

def arecv_stdlib(ch):
    return asyncio.run(arecv_all(ch))

def try_recv(ch):
    c = Channel(ch)
    out = [c.try_receive()]
    return out

def wait_then_flag(ch, pid):
    # tell Erlang we are waiting, then block in an async receive
    async def main():
        loop = asyncio.get_running_loop()
        loop.call_soon(erlang.send, pid, Atom('waiting'))
        t0 = time.process_time()
        msg = await Channel(ch).async_receive()
        return (msg, time.process_time() - t0)
    return erlang.run(main())

def workers(ch, n):
    out = []
    lock = threading.Lock()
    def work():
        for m in Channel(ch):
            with lock:
                out.append(m)
    ts = [threading.Thread(target=work) for _ in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    return sorted(out)

def send_back(ch, items):
    c = Channel(ch)
    for i in items:
        c.send(i)
    return c.info()

def with_block(ch):
    with Channel(ch) as c:
        first = c.receive()
    return (first, c.closed)
">>).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [send_receive, atoms_stay_atoms, close_drains, info_and_busy, receive_timeout,
     receive_waits_for_sender, try_receive, async_receive_erlang_loop,
     async_receive_stdlib_loop, async_receive_is_event_driven, many_receivers, python_sends,
     erlang_recv, context_manager, receive_interrupted_by_timeout, byte_channel, bad_input,
     channel_module_path, big_terms, owngil_receivers].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, _} = py:eval(<<"exec(src, __import__('sys').modules.setdefault('chan_helpers', "
                        "__import__('types').ModuleType('chan_helpers')).__dict__)">>,
                      #{src => ?HELPERS}),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

call(F, A) -> py:call(chan_helpers, F, A).

send_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, {request, self(), <<"data">>}),
    ok = py_channel:send(Ch, #{<<"k">> => [1, 2.5, <<"x">>]}),
    ok = py_channel:close(Ch),
    Self = self(),
    {ok, [{request, Self, <<"data">>}, #{<<"k">> := [1, 2.5, <<"x">>]}]} = call(drain, [Ch]).

atoms_stay_atoms(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, {request, data}),
    {ok, true} = py:eval(<<"(lambda m: isinstance(m[0], erlang.Atom) and m == ('request', 'data'))"
                           "(erlang.Channel(ch).receive())">>, #{ch => Ch}),
    ok = py_channel:send(Ch, {request, data}),
    {ok, {request, data}} = call(recv, [Ch, 1000]).

close_drains(_Config) ->
    {ok, Ch} = py_channel:new(),
    [ok = py_channel:send(Ch, I) || I <- lists:seq(1, 200)],
    ok = py_channel:close(Ch),
    {error, closed} = py_channel:send(Ch, 201),
    {ok, L} = call(drain, [Ch]),
    L = lists:seq(1, 200),
    {error, {'ChannelClosed', _}} = call(recv, [Ch, 0]),
    {ok, []} = call(drain, [Ch]).

info_and_busy(_Config) ->
    {ok, Ch} = py_channel:new(#{max_size => 100}),
    #{size := 0, count := 0, max_size := 100, closed := false} = py_channel:info(Ch),
    ok = py_channel:send(Ch, binary:copy(<<"x">>, 60)),
    busy = py_channel:send(Ch, binary:copy(<<"x">>, 60)),
    #{size := 60, count := 1} = py_channel:info(Ch),
    {ok, _} = call(recv, [Ch, 0]),
    ok = py_channel:send(Ch, binary:copy(<<"x">>, 60)),
    %% One message larger than max_size still goes into an empty channel.
    {ok, Big} = py_channel:new(#{max_size => 10}),
    ok = py_channel:send(Big, binary:copy(<<"y">>, 50)),
    busy = py_channel:send(Big, <<"z">>),
    ok = py_channel:close(Ch),
    #{closed := true} = py_channel:info(Ch),
    {ok, #{max_size := infinity}} = {ok, py_channel:info(element(2, py_channel:new()))},
    %% Python's view.
    {ok, #{<<"size">> := 60, <<"count">> := 1, <<"max_size">> := 100, <<"closed">> := true}} =
        py:eval(<<"erlang.Channel(ch).info()">>, #{ch => Ch}).

receive_timeout(_Config) ->
    {ok, Ch} = py_channel:new(),
    T0 = erlang:monotonic_time(millisecond),
    {error, {'TimeoutError', "channel receive timeout"}} = call(recv, [Ch, 100]),
    true = erlang:monotonic_time(millisecond) - T0 >= 100,
    {error, {'TimeoutError', _}} = call(recv, [Ch, 0]).

receive_waits_for_sender(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() -> Self ! {got, call(recv, [Ch, -1])} end),
    %% The receiver waits (GIL released): another call runs meanwhile.
    {ok, 4.0} = py:call(math, sqrt, [16]),
    ok = py_channel:send(Ch, late),
    receive {got, {ok, late}} -> ok end,
    receive {'DOWN', Mon, process, Pid, normal} -> ok end.

try_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, [none]} = call(try_recv, [Ch]),
    ok = py_channel:send(Ch, 1),
    {ok, [1]} = call(try_recv, [Ch]),
    ok = py_channel:close(Ch),
    {error, {'ChannelClosed', _}} = call(try_recv, [Ch]).

async_receive_erlang_loop(_Config) ->
    {ok, Ch} = py_channel:new(),
    spawn_link(fun() -> [ok = py_channel:send(Ch, I) || I <- lists:seq(1, 50)],
                        ok = py_channel:close(Ch) end),
    {ok, L} = call(arecv_erlang, [Ch]),
    L = lists:seq(1, 50).

async_receive_stdlib_loop(_Config) ->
    {ok, Ch} = py_channel:new(),
    spawn_link(fun() -> [ok = py_channel:send(Ch, I) || I <- lists:seq(1, 50)],
                        ok = py_channel:close(Ch) end),
    {ok, L} = call(arecv_stdlib, [Ch]),
    L = lists:seq(1, 50).

async_receive_is_event_driven(_Config) ->
    %% The loop sleeps until the message comes: nearly no CPU while waiting.
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {res, call(wait_then_flag, [Ch, Self])} end),
    receive waiting -> ok end,
    Until = erlang:monotonic_time(millisecond) + 300,
    wait_until(Until),
    ok = py_channel:send(Ch, wake),
    receive {res, {ok, {wake, Cpu}}} -> true = Cpu < 0.1 end.

wait_until(Until) ->
    receive after max(0, Until - erlang:monotonic_time(millisecond)) -> ok end.

many_receivers(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {res, call(workers, [Ch, 4])} end),
    [ok = py_channel:send(Ch, I) || I <- lists:seq(1, 1000)],
    ok = py_channel:close(Ch),
    receive {res, {ok, L}} -> L = lists:seq(1, 1000) end.

python_sends(_Config) ->
    {ok, Ch} = py_channel:new(#{max_size => 64}),
    {ok, #{<<"count">> := 2}} = call(send_back, [Ch, [{a, 1}, <<"two">>]]),
    {ok, {a, 1}} = py_channel:try_receive(Ch),
    {ok, <<"two">>} = py_channel:recv(Ch, 0),
    {error, empty} = py_channel:try_receive(Ch),
    {error, {'RuntimeError', "channel busy (backpressure)"}} =
        call(send_back, [Ch, [binary:copy(<<"a">>, 50), binary:copy(<<"b">>, 50)]]),
    ok = py_channel:close(Ch),
    {error, {'ChannelClosed', _}} = call(send_back, [Ch, [1]]).

erlang_recv(_Config) ->
    {ok, Ch} = py_channel:new(),
    {error, timeout} = py_channel:recv(Ch, 50),
    {messages, []} = process_info(self(), messages),
    Self = self(),
    spawn_link(fun() -> Self ! {r, py_channel:recv(Ch)} end),
    ok = py_channel:send(Ch, hello),
    receive {r, {ok, hello}} -> ok end,
    spawn_link(fun() -> Self ! {r, py_channel:recv(Ch, 5000)} end),
    ok = py_channel:close(Ch),
    receive {r, {error, closed}} -> ok end.

context_manager(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, first),
    {ok, {first, true}} = call(with_block, [Ch]),
    {error, closed} = py_channel:send(Ch, x).

receive_interrupted_by_timeout(_Config) ->
    {ok, Ch} = py_channel:new(),
    {error, timeout} = py:call(chan_helpers, recv, [Ch, -1], #{}, 100),
    %% The context serves again, and the channel still works.
    {ok, 4.0} = py:call(math, sqrt, [16]),
    ok = py_channel:send(Ch, after_timeout),
    {ok, after_timeout} = call(recv, [Ch, 1000]).

byte_channel(_Config) ->
    {ok, Ch} = py_byte_channel:new(),
    ok = py_byte_channel:send(Ch, <<"HTTP/1.1 200 OK\r\n">>),
    ok = py_byte_channel:send(Ch, <<0, 255>>),
    {'EXIT', {{badarg, _}, _}} = (catch py_byte_channel:send(Ch, not_binary)),
    {'EXIT', {badarg, _}} = (catch py_channel:send(Ch, not_binary)),
    ok = py:exec(<<"
def bytes_roundtrip(ch):
    c = erlang.ByteChannel(ch)
    a = c.receive_bytes()
    b = c.try_receive_bytes()
    c.send_bytes(b'reply ' + a[:4])
    return (type(a).__name__, a, b, c.try_receive_bytes())
">>),
    {ok, {<<"bytes">>, <<"HTTP/1.1 200 OK\r\n">>, <<0, 255>>, <<"reply HTTP">>}} =
        py:call('__main__', bytes_roundtrip, [Ch]),
    ok = py:exec(<<"
def bytes_back(ch):
    erlang.ByteChannel(ch).send_bytes(b'to erlang')
">>),
    {ok, none} = py:call('__main__', bytes_back, [Ch]),
    {ok, <<"to erlang">>} = py_byte_channel:recv(Ch, 1000),
    {error, empty} = py_byte_channel:try_receive(Ch),
    {error, timeout} = py_byte_channel:recv(Ch, 10),
    ok = py_byte_channel:send(Ch, <<"last">>),
    ok = py_byte_channel:close(Ch),
    {ok, [<<"last">>]} = py:eval(<<"list(erlang.ByteChannel(ch))">>, #{ch => Ch}),
    {error, {'ByteChannelClosed', _}} = py:eval(<<"erlang.ByteChannel(ch).receive_bytes()">>,
                                                #{ch => Ch}),
    {error, {'TypeError', _}} = py:eval(<<"erlang.ByteChannel(ch).send_bytes('str')">>, #{ch => Ch}),
    %% A term channel is not a byte channel.
    {ok, TCh} = py_channel:new(),
    {error, {'TypeError', _}} = py:eval(<<"erlang.ByteChannel(ch)">>, #{ch => TCh}),
    #{closed := true} = py_byte_channel:info(Ch),
    {ok, Async} = py_byte_channel:new(),
    ok = py_byte_channel:send(Async, <<"async_bytes">>),
    ok = py:exec(<<"
async def areceive(ch):
    return await erlang.ByteChannel(ch).async_receive_bytes()
">>),
    {ok, <<"async_bytes">>} = py:eval(<<"erlang.run(areceive(ch))">>, #{ch => Async}),
    ok.

bad_input(_Config) ->
    {'EXIT', {{badarg, {max_size, 0}}, _}} = (catch py_channel:new(#{max_size => 0})),
    {'EXIT', {{badarg, {max_size, -1}}, _}} = (catch py_channel:new(#{max_size => -1})),
    {'EXIT', {{badarg, {other, 1}}, _}} = (catch py_channel:new(#{other => 1})),
    {'EXIT', {{badarg, {opts, x}}, _}} = (catch py_channel:new(x)),
    {'EXIT', {badarg, _}} = (catch py_channel:send(make_ref(), 1)),
    {'EXIT', {badarg, _}} = (catch py_channel:close(self())),
    {'EXIT', {badarg, _}} = (catch py_channel:info(<<>>)),
    {'EXIT', {badarg, _}} = (catch py_channel:try_receive(1)),
    {'EXIT', {{badarg, {timeout, -5}}, _}} = (catch py_channel:recv(element(2, py_channel:new()), -5)),
    {'EXIT', {{badarg, _}, _}} = (catch py_byte_channel:new(#{max_size => x})),
    {'EXIT', {{badarg, {content_length, -1}}, _}} = (catch py_buffer:new(-1)),
    {error, {'TypeError', _}} = py:eval(<<"erlang.Channel(42)">>),
    {ok, SD} = py:shared_dict_new(),
    {error, {'TypeError', _}} = py:eval(<<"erlang.Channel(sd)">>, #{sd => SD}),
    {ok, Ch} = py_channel:new(),
    {error, {'TypeError', _}} = py:eval(<<"erlang.Channel(ch).receive('soon')">>, #{ch => Ch}),
    ok.

channel_module_path(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, {request, self(), <<"compute">>}),
    ok = py:exec(<<"
from erlang.channel import Channel, ChannelClosed, reply

def handle_one(channel_ref):
    ch = Channel(channel_ref)
    msg = ch.receive()
    if msg[0] == 'request':
        _, sender_pid, data = msg
        reply(sender_pid, ('response', data.upper()))
">>),
    {ok, none} = py:call('__main__', handle_one, [Ch]),
    receive {<<"response">>, <<"COMPUTE">>} -> ok after 5000 -> ct:fail(no_reply) end.

big_terms(_Config) ->
    {ok, Ch} = py_channel:new(),
    Big = lists:seq(1, 100000),
    ok = py_channel:send(Ch, Big),                 %% copied on a dirty scheduler
    ok = py_channel:send(Ch, binary:copy(<<"z">>, 1 bsl 20)),
    {ok, 100000} = py:eval(<<"len(erlang.Channel(ch).receive())">>, #{ch => Ch}),
    {ok, 1048576} = py:eval(<<"len(erlang.Channel(ch).receive())">>, #{ch => Ch}),
    ok.

owngil_receivers(_Config) ->
    case py:subinterp_supported() of
        false -> {skip, "own-GIL contexts need Python 3.12"};
        true ->
            {ok, Ch} = py_channel:new(),
            {ok, Buf} = py_buffer:new(),
            {ok, Ctx} = py_context:new(#{mode => owngil}),
            try
                ok = py_channel:send(Ch, {from_erlang, [1, 2]}),
                {ok, {from_erlang, [1, 2]}} =
                    py:eval(Ctx, <<"__import__('erlang').Channel(ch).receive(1000)">>, #{ch => Ch}),
                {ok, none} = py:eval(Ctx, <<"__import__('erlang').Channel(ch).send('back')">>,
                                     #{ch => Ch}),
                {ok, <<"back">>} = py_channel:recv(Ch, 1000),
                ok = py_buffer:write(Buf, <<"owngil\n">>),
                ok = py_buffer:close(Buf),
                {ok, <<"owngil\n">>} = py:eval(Ctx, <<"b.readline()">>, #{b => Buf}),
                %% Async on the sub-interpreter's own loop.
                ok = py:exec(Ctx, <<"
import asyncio, erlang
async def arecv(ch, pid):
    loop = asyncio.get_running_loop()
    loop.call_soon(erlang.send, pid, erlang.Atom('go'))
    return await erlang.Channel(ch).async_receive()
">>),
                {ok, async_one} = py_async_relay(Ctx, Ch),
                receive sent -> ok end
            after
                py_context:stop(Ctx)
            end
    end.

%% Start the async receive on the own-GIL context, then release the sender.
py_async_relay(Ctx, Ch) ->
    Self = self(),
    Sender = spawn_link(fun() -> receive go -> ok end, ok = py_channel:send(Ch, async_one),
                                 Self ! sent end),
    py:eval(Ctx, <<"erlang.run(arecv(ch, pid))">>, #{ch => Ch, pid => Sender}).
