%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Buffers: bytes Erlang writes and Python reads as a file
%% (erlang_python 4.x API). Passed to Python, a buffer is an
%% `erlang.PyBuffer': `read', `readline', `readlines', iteration by line,
%% `seek', `tell', `find', a read-only memoryview; a read that must wait
%% releases the GIL until the bytes come or the buffer is closed. In an
%% isolated context's child the same `erlang.PyBuffer' API runs each call in
%% the VM (py_bridge; docs/isolated.md), and a memoryview is of a copy.
-module(py_buffer).

-export([new/0, new/1, write/2, close/1, info/1]).

%% @doc A buffer of unknown length (64 KiB, growing).
-spec new() -> {ok, reference()}.
new() ->
    new(undefined).

%% @doc A buffer for ContentLength bytes (allocated at once), or
%% `undefined'.
-spec new(non_neg_integer() | undefined) -> {ok, reference()} | {error, enomem}.
new(N) when N =:= undefined; is_integer(N), N >= 0 ->
    py_shared:buffer_new(N);
new(N) ->
    erlang:error({badarg, {content_length, N}}).

%% @doc Append Data: `ok', `{error, closed}' after close/1, `{error,
%% view_held}' when the buffer must grow while Python holds a memoryview.
-spec write(reference(), iodata()) -> ok | {error, closed | view_held | enomem}.
write(Buf, Data) ->
    py_shared:buffer_write(Buf, Data).

%% @doc The end of the data: readers get what is left, then EOF.
-spec close(reference()) -> ok.
close(Buf) ->
    py_shared:buffer_close(Buf).

%% @doc `#{size => BytesWritten, read => ReadPosition, eof => ClosedByWriter,
%% closed => ClosedByReader}' (the reader closes it with Python's `close()').
-spec info(reference()) -> #{size := non_neg_integer(), read := non_neg_integer(),
                             eof := boolean(), closed := boolean()}.
info(Buf) ->
    py_shared:buffer_info(Buf).
