%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The data plane's side of the NIF boundary: shared dicts, channels and
%% buffers (c_src/shared/). py, py_channel, py_byte_channel and py_buffer
%% check their arguments and call these; nothing here blocks a scheduler.
-module(py_shared).

-export([sdict_new/0, sdict_get/3, sdict_set/3, sdict_del/2, sdict_keys/1,
         sdict_destroy/1]).
-export([channel_new/2, channel_send/2, channel_close/1, channel_info/1,
         channel_try_receive/1, channel_recv/2]).
-export([buffer_new/1, buffer_write/2, buffer_close/1, buffer_info/1]).
-export([buffer_take/3, buffer_await/4, buffer_peek/3, buffer_seek/3, buffer_find/4,
         buffer_close_reader/1]).
-export([kind/1, channel_await/2]).

%% Shared dicts.

%% @doc A new shared dict owned by the caller.
-spec sdict_new() -> {ok, reference()}.
sdict_new() ->
    py_nif:sdict_new().

%% @doc The value under Key, or Default.
-spec sdict_get(reference(), term(), term()) -> term().
sdict_get(Dict, Key, Default) ->
    case py_nif:sdict_get(Dict, Key) of
        {ok, Value} -> Value;
        not_found -> Default;
        {error, destroyed} -> destroyed()
    end.

%% @doc Store Value under Key.
-spec sdict_set(reference(), term(), term()) -> ok.
sdict_set(Dict, Key, Value) ->
    case py_nif:sdict_set(Dict, Key, Value) of
        ok -> ok;
        {error, destroyed} -> destroyed();
        {error, enomem} -> erlang:error(enomem)
    end.

%% @doc Remove Key (ok when absent).
-spec sdict_del(reference(), term()) -> ok.
sdict_del(Dict, Key) ->
    case py_nif:sdict_del(Dict, Key) of
        ok -> ok;
        {error, destroyed} -> destroyed()
    end.

%% @doc Every key, in no particular order.
-spec sdict_keys(reference()) -> [term()].
sdict_keys(Dict) ->
    case py_nif:sdict_keys(Dict) of
        {ok, Keys} -> Keys;
        {error, destroyed} -> destroyed()
    end.

%% @doc Destroy the dict (again: ok).
-spec sdict_destroy(reference()) -> ok.
sdict_destroy(Dict) ->
    py_nif:sdict_destroy(Dict).

-spec destroyed() -> no_return().
destroyed() ->
    erlang:error({badarg, shared_dict_destroyed}).

%% Channels.

%% @doc A new channel (MaxSize 0: no limit; Bytes: a byte channel).
-spec channel_new(non_neg_integer(), boolean()) -> {ok, reference()}.
channel_new(MaxSize, Bytes) ->
    py_nif:channel_new(MaxSize, Bytes).

%% @doc Queue a copy of Term.
-spec channel_send(reference(), term()) -> ok | busy | {error, closed}.
channel_send(Ch, Term) ->
    py_nif:channel_send(Ch, Term).

%% @doc Close the channel.
-spec channel_close(reference()) -> ok.
channel_close(Ch) ->
    py_nif:channel_close(Ch).

%% @doc What is queued, the limit, whether closed.
-spec channel_info(reference()) -> map().
channel_info(Ch) ->
    py_nif:channel_info(Ch).

%% @doc The next message, without waiting.
-spec channel_try_receive(reference()) -> {ok, term()} | {error, empty | closed}.
channel_try_receive(Ch) ->
    case py_nif:channel_try_receive(Ch) of
        {ok, _} = Ok -> Ok;
        Other -> {error, Other}
    end.

%% @doc The next message, waiting up to Timeout ms for it (in a receive:
%% the channel sends `{py_channel_ready, Ref}' when one comes).
-spec channel_recv(reference(), timeout()) -> {ok, term()} | {error, timeout | closed}.
channel_recv(Ch, Timeout) ->
    Deadline = case Timeout of
                   infinity -> infinity;
                   _ -> erlang:monotonic_time(millisecond) + Timeout
               end,
    recv_loop(Ch, Deadline).

recv_loop(Ch, Deadline) ->
    case py_nif:channel_try_receive(Ch) of
        {ok, _} = Ok -> Ok;
        closed -> {error, closed};
        empty ->
            Ref = make_ref(),
            case py_nif:channel_wait(Ch, Ref) of
                ready ->
                    recv_loop(Ch, Deadline);
                ok ->
                    receive
                        {py_channel_ready, Ref} -> recv_loop(Ch, Deadline)
                    after left(Deadline) ->
                        ok = py_nif:channel_cancel_wait(Ch, Ref),
                        receive {py_channel_ready, Ref} -> ok after 0 -> ok end,
                        case py_nif:channel_try_receive(Ch) of
                            {ok, _} = Ok -> Ok;
                            closed -> {error, closed};
                            empty -> {error, timeout}
                        end
                    end
            end
    end.

left(infinity) -> infinity;
left(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% Buffers.

%% @doc A new buffer.
-spec buffer_new(non_neg_integer() | undefined) -> {ok, reference()} | {error, enomem}.
buffer_new(ContentLength) ->
    py_nif:buffer_new(ContentLength).

%% @doc Append bytes.
-spec buffer_write(reference(), iodata()) -> ok | {error, closed | view_held | enomem}.
buffer_write(Buf, Data) ->
    py_nif:buffer_write(Buf, Data).

%% @doc The end of the data.
-spec buffer_close(reference()) -> ok.
buffer_close(Buf) ->
    py_nif:buffer_close(Buf).

%% @doc Bytes written, read position, whether closed by the writer (`eof')
%% and by the reader (`closed').
-spec buffer_info(reference()) -> #{size := non_neg_integer(), read := non_neg_integer(),
                                    eof := boolean(), closed := boolean()}.
buffer_info(Buf) ->
    py_nif:buffer_info(Buf).

%% Erlang's reads of a buffer (an isolated context's bridge, py_bridge).

-type take_mode() :: any | line | lines | full.

%% @doc Take up to Max bytes from the read position, without waiting:
%% `any' at least one byte, `line' through the first newline, `lines'
%% through the last newline (else as `line'), `full' Max bytes; what is left
%% after the writer's close. `empty': not enough yet; `eof': closed by the
%% writer and all read; `closed': closed by the reader. The copy is made on
%% the calling scheduler: keep Max small (py_bridge takes 1 MiB at most).
-spec buffer_take(reference(), non_neg_integer(), take_mode()) ->
          {ok, binary()} | eof | empty | closed.
buffer_take(Buf, Max, Mode) ->
    py_nif:buffer_take(Buf, Max, Mode, false).

%% @doc Wait up to Timeout ms, in a receive, until buffer_take/3 with the
%% same arguments would not answer `empty' (nothing is taken): `ready',
%% `timeout', or `closed' (by the reader). `ready' at a timeout when a
%% write came as it ended: ask again.
-spec buffer_await(reference(), non_neg_integer(), take_mode(), timeout()) ->
          ready | timeout | closed.
buffer_await(Buf, Max, Mode, Timeout) ->
    Deadline = case Timeout of
                   infinity -> infinity;
                   _ -> erlang:monotonic_time(millisecond) + Timeout
               end,
    await_loop(Buf, Max, Mode, Deadline).

await_loop(Buf, Max, Mode, Deadline) ->
    Ref = make_ref(),
    case py_nif:buffer_take(Buf, Max, Mode, Ref) of
        wait ->
            receive
                {py_buffer_ready, Ref} -> await_loop(Buf, Max, Mode, Deadline)
            after left(Deadline) ->
                ok = py_nif:buffer_cancel_wait(Buf, Ref),
                receive {py_buffer_ready, Ref} -> ready after 0 -> timeout end
            end;
        Now ->
            Now
    end.

%% @doc Up to Max unread bytes from Offset past the read position (which
%% does not move).
-spec buffer_peek(reference(), non_neg_integer(), non_neg_integer()) -> binary().
buffer_peek(Buf, Offset, Max) ->
    py_nif:buffer_peek(Buf, Offset, Max).

%% @doc Move the read position as Python's `seek(Offset, Whence)'.
-spec buffer_seek(reference(), integer(), integer()) ->
          {ok, non_neg_integer()} | {error, closed | whence | not_eof | outside}.
buffer_seek(Buf, Offset, Whence) ->
    py_nif:buffer_seek(Buf, Offset, Whence).

%% @doc Where Sub is in the unread bytes [Start, End) (counted from the read
%% position), or -1.
-spec buffer_find(reference(), binary(), integer(), integer()) -> integer().
buffer_find(Buf, Sub, Start, End) ->
    py_nif:buffer_find(Buf, Sub, Start, End).

%% @doc Close the reader's side, as Python's `close()'.
-spec buffer_close_reader(reference()) -> ok.
buffer_close_reader(Buf) ->
    py_nif:buffer_close_reader(Buf).

%% Handles named by reference (an isolated context's bridge, py_bridge).

%% @doc Which handle Term is: `none' for any other term (a reference whose
%% resource is gone included).
-spec kind(term()) -> shared_dict | channel | byte_channel | buffer | none.
kind(Term) ->
    py_nif:data_kind(Term).

%% @doc Wait up to Timeout ms until the channel has a message or is closed,
%% without taking it: `ready' or `timeout'.
-spec channel_await(reference(), timeout()) -> ready | timeout.
channel_await(Ch, Timeout) ->
    Ref = make_ref(),
    case py_nif:channel_wait(Ch, Ref) of
        ready ->
            ready;
        ok ->
            receive
                {py_channel_ready, Ref} -> ready
            after Timeout ->
                ok = py_nif:channel_cancel_wait(Ch, Ref),
                receive {py_channel_ready, Ref} -> ready after 0 -> timeout end
            end
    end.
