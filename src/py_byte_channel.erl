%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Byte channels: raw binaries between Erlang and Python, no term
%% conversion (erlang_python 4.x API). Python: `erlang.ByteChannel(Ch)'
%% (`receive_bytes', `try_receive_bytes', `async_receive_bytes',
%% `send_bytes', iteration), which always gives `bytes'.
-module(py_byte_channel).

-export([new/0, new/1, send/2, try_receive/1, recv/1, recv/2, close/1, info/1]).

%% @doc An unbounded byte channel.
-spec new() -> {ok, py_channel:channel()}.
new() ->
    new(#{}).

%% @doc A byte channel; option `max_size' (bytes), as py_channel:new/1.
-spec new(#{max_size => pos_integer()}) -> {ok, py_channel:channel()}.
new(Opts) when is_map(Opts) ->
    Max = maps:fold(fun(max_size, N, _) when is_integer(N), N > 0 -> N;
                       (max_size, infinity, _) -> 0;
                       (K, V, _) -> erlang:error({badarg, {K, V}})
                    end, 0, Opts),
    py_shared:channel_new(Max, true);
new(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Queue a binary: `ok', `busy' or `{error, closed}'.
-spec send(py_channel:channel(), binary()) -> ok | busy | {error, closed}.
send(Ch, Bin) when is_binary(Bin) ->
    py_shared:channel_send(Ch, Bin);
send(_Ch, Bin) ->
    erlang:error({badarg, {binary, Bin}}).

%% @doc The next binary (what Python sent with `send_bytes'), not waiting.
-spec try_receive(py_channel:channel()) -> {ok, binary()} | {error, empty | closed}.
try_receive(Ch) ->
    py_shared:channel_try_receive(Ch).

%% @doc recv/2 without a timeout.
-spec recv(py_channel:channel()) -> {ok, binary()} | {error, closed}.
recv(Ch) ->
    recv(Ch, infinity).

%% @doc The next binary, waiting up to Timeout ms.
-spec recv(py_channel:channel(), timeout()) -> {ok, binary()} | {error, timeout | closed}.
recv(Ch, Timeout) ->
    py_channel:recv(Ch, Timeout).

%% @doc Close the channel.
-spec close(py_channel:channel()) -> ok.
close(Ch) ->
    py_shared:channel_close(Ch).

%% @doc As py_channel:info/1.
-spec info(py_channel:channel()) -> map().
info(Ch) ->
    py_shared:channel_info(Ch).
