%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Channels: Erlang terms queued for Python (erlang_python 4.x API).
%%
%% ```
%% {ok, Ch} = py_channel:new(#{max_size => 65536}),
%% ok = py_channel:send(Ch, {request, self(), <<"data">>}),
%% ok = py_channel:close(Ch).
%% '''
%%
%% Python receives with `erlang.Channel(Ch)': `receive(timeout_ms)',
%% `try_receive()', `await async_receive()', `for' and `async for'. A message
%% is a copy of the term, converted when Python takes it: atoms stay atoms
%% (`erlang.Atom'), unlike 4.x. Any number of senders and receivers, on any
%% context or thread, share a channel (docs/channels.md).
-module(py_channel).

-export([new/0, new/1, send/2, close/1, info/1, try_receive/1, recv/1, recv/2]).
-export_type([channel/0]).

-type channel() :: reference().

%% @doc An unbounded channel.
-spec new() -> {ok, channel()}.
new() ->
    new(#{}).

%% @doc A channel; option `max_size': bytes queued at most (send/2 answers
%% `busy' beyond; a message larger than that still goes into an empty
%% channel). The size of a message is its binaries' bytes and 8 per other
%% word, roughly its memory.
-spec new(#{max_size => pos_integer()}) -> {ok, channel()}.
new(Opts) when is_map(Opts) ->
    py_shared:channel_new(max_size(Opts), false);
new(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Queue a copy of Term: `ok', `busy' (over max_size) or
%% `{error, closed}'.
-spec send(channel(), term()) -> ok | busy | {error, closed}.
send(Ch, Term) ->
    py_shared:channel_send(Ch, Term).

%% @doc Close the channel: receivers take what is queued, then see it closed
%% (Python: `erlang.ChannelClosed', the end of a `for' loop).
-spec close(channel()) -> ok.
close(Ch) ->
    py_shared:channel_close(Ch).

%% @doc `#{size => Bytes, count => Messages, max_size => Bytes | infinity,
%% closed => boolean()}'.
-spec info(channel()) -> #{size := non_neg_integer(), count := non_neg_integer(),
                           max_size := pos_integer() | infinity, closed := boolean()}.
info(Ch) ->
    py_shared:channel_info(Ch).

%% @doc Take the next message from Erlang (what Python sent with
%% `Channel.send', or any message) without waiting.
-spec try_receive(channel()) -> {ok, term()} | {error, empty | closed}.
try_receive(Ch) ->
    py_shared:channel_try_receive(Ch).

%% @doc recv/2 without a timeout.
-spec recv(channel()) -> {ok, term()} | {error, closed}.
recv(Ch) ->
    recv(Ch, infinity).

%% @doc Take the next message, waiting up to Timeout ms (in a `receive':
%% no scheduler is blocked).
-spec recv(channel(), timeout()) -> {ok, term()} | {error, timeout | closed}.
recv(Ch, Timeout) when Timeout =:= infinity; is_integer(Timeout), Timeout >= 0 ->
    py_shared:channel_recv(Ch, Timeout);
recv(_Ch, Timeout) ->
    erlang:error({badarg, {timeout, Timeout}}).

max_size(Opts) ->
    maps:fold(fun(max_size, N, _) when is_integer(N), N > 0 -> N;
                 (max_size, infinity, _) -> 0;
                 (K, V, _) -> erlang:error({badarg, {K, V}})
              end, 0, Opts).
