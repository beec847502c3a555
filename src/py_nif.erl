%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @private
%% @doc The NIF boundary: `-on_load' and one stub per C function, nothing
%% else. Only py_runtime, py_context and py_router call it.
-module(py_nif).

-export([runtime_start/5, runtime_stop/0, runtime_status/0, python_version/0,
         context_new/4, context_stop/1, submit/4, submit/5, reply_wait/3, interrupt/2, interrupt_running/1, context_load/1,
         ref_context/1, is_ref/1, callback_reply/2, callback_publish/1,
         stream_credit/3, callback_helper/2, finish/1, sandbox_configure/2]).
-export([os_signal/2]).
-export([data_kind/1]).
-export([buffer_take/4, buffer_cancel_wait/2, buffer_peek/3, buffer_seek/3, buffer_find/4,
         buffer_close_reader/1]).
%% The data plane (c_src/shared/): shared dicts, channels, buffers.
-export([sdict_new/0, sdict_get/2, sdict_set/3, sdict_del/2, sdict_keys/1, sdict_destroy/1,
         channel_new/2, channel_send/2, channel_close/1, channel_info/1,
         channel_try_receive/1, channel_wait/2, channel_cancel_wait/2,
         buffer_new/1, buffer_write/2, buffer_close/1, buffer_info/1]).
-export_type([ctx/0]).

-nifs([runtime_start/5, runtime_stop/0, runtime_status/0, python_version/0,
       context_new/4, context_stop/1, submit/4, submit/5, reply_wait/3, interrupt/2, interrupt_running/1, context_load/1,
       ref_context/1, is_ref/1, callback_reply/2, callback_publish/1,
       stream_credit/3, callback_helper/2, finish/1, sandbox_configure/2,
       sdict_new/0, sdict_get/2, sdict_set/3, sdict_del/2, sdict_keys/1, sdict_destroy/1,
       channel_new/2, channel_send/2, channel_close/1, channel_info/1,
       channel_try_receive/1, channel_wait/2, channel_cancel_wait/2,
       buffer_new/1, buffer_write/2, buffer_close/1, buffer_info/1]).
-nifs([os_signal/2]).
-nifs([data_kind/1]).
-nifs([buffer_take/4, buffer_cancel_wait/2, buffer_peek/3, buffer_seek/3, buffer_find/4,
       buffer_close_reader/1]).
-on_load(init/0).

-opaque ctx() :: reference().

-spec init() -> ok | {error, term()}.
init() ->
    Priv = case code:priv_dir(erlang_python) of
               {error, bad_name} ->
                   filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
               Dir -> Dir
           end,
    erlang:load_nif(filename:join(Priv, "py_nif"), 0).

-define(NOT_LOADED, erlang:nif_error({not_loaded, ?MODULE, ?LINE})).

%% @doc Start CPython (dirty IO): executable, sys.path additions, limits
%% (nesting depth, atoms Python may create, bytes of freed large blocks kept).
-spec runtime_start(binary(), [binary()], pos_integer(), non_neg_integer(),
                    non_neg_integer()) -> ok | {error, term()}.
runtime_start(_Executable, _Paths, _MaxDepth, _AtomCap, _AllocCache) -> ?NOT_LOADED.

%% @doc Finalize CPython (dirty IO). Contexts must be stopped first.
-spec runtime_stop() -> ok | {error, not_running}.
runtime_stop() -> ?NOT_LOADED.

%% @doc Whether the runtime runs.
%% @doc The version of the libpython the NIF loaded, without starting it.
-spec python_version() -> {non_neg_integer(), non_neg_integer(), non_neg_integer()}.
python_version() -> ?NOT_LOADED.

-spec runtime_status() -> running | stopped.
runtime_status() -> ?NOT_LOADED.

%% @doc A new context owned (and monitored) by Owner (dirty IO): its thread
%% spins SpinUs for new work; its callers spin up to ReplySpinNs
%% (=< 100000) for a reply (reply_wait/3). Mode is the kind of interpreter:
%% `worker' (the main one) or `owngil' (a sub-interpreter with its own GIL,
%% Python 3.12+; `{error, owngil_unsupported}' before).
-spec context_new(pid(), non_neg_integer(), non_neg_integer(), worker | owngil) ->
          {ok, ctx()} | {error, term()}.
context_new(_Owner, _SpinUs, _ReplySpinNs, _Mode) -> ?NOT_LOADED.

%% @doc Stop a context: queued requests get `{error, closed}' (dirty IO).
-spec context_stop(ctx()) -> ok.
context_stop(_Ctx) -> ?NOT_LOADED.

%% @doc Enqueue a request; the reply `{Tag, Ref, Result}' is sent to the
%% caller (no reply when Tag is `none').
-spec submit(ctx(), atom(), reference(), term()) -> ok | {error, closed}.
submit(_Ctx, _Tag, _Ref, _Payload) -> ?NOT_LOADED.

%% @doc submit/4 with a timeout in milliseconds: at its deadline the request
%% is dropped or interrupted, and the reply is `{Tag, Ref, {error, timeout}}'.
%% Exactly one reply comes either way. Returns the request's id.
-spec submit(ctx(), atom(), reference(), term(), timeout()) ->
          pos_integer() | {error, closed}.
submit(_Ctx, _Tag, _Ref, _Payload, _Timeout) -> ?NOT_LOADED.

%% @doc Spin on this scheduler, for at most the context's reply spin, until
%% request Id of Ctx has been answered or has sent its caller more than Seen
%% messages mid-request (`erlang.call' requests): `true' when it has.
-spec reply_wait(ctx(), pos_integer(), non_neg_integer()) -> boolean().
reply_wait(_Ctx, _Id, _Seen) -> ?NOT_LOADED.

%% @doc Cancel a request: `cancelled' means no reply will come, `not_found'
%% that the reply has been (or is being) sent.
-spec interrupt(ctx(), reference()) -> cancelled | not_found.
interrupt(_Ctx, _Ref) -> ?NOT_LOADED.

%% @doc A context's load: the requests queued, and the age in microseconds
%% (since its submit) of the oldest request running, 0 when none runs.
%% @doc Interrupt the request that runs Python on Ctx now: it gets
%% `erlang.CallInterrupted', and its caller `{error, interrupted}' as its
%% reply; `not_running' when none runs.
-spec interrupt_running(ctx()) -> ok | not_running.
interrupt_running(_Ctx) -> ?NOT_LOADED.

-spec context_load(ctx()) -> {non_neg_integer(), non_neg_integer()} | closed.
context_load(_Ctx) -> ?NOT_LOADED.

%% @doc The context that owns a Python object reference.
-spec ref_context(reference()) -> {ok, ctx()} | {error, closed}.
ref_context(_Ref) -> ?NOT_LOADED.

%% @doc Whether a term is a Python object reference.
-spec is_ref(term()) -> boolean().
is_ref(_Term) -> ?NOT_LOADED.

%% @doc Deliver the result of an `erlang.call' from Python.
-spec callback_reply(non_neg_integer(), term()) -> ok | {error, not_found}.
callback_reply(_Id, _Result) -> ?NOT_LOADED.

%% @doc Publish the names of the registered functions.
-spec callback_publish([binary()]) -> ok.
callback_publish(_Names) -> ?NOT_LOADED.

%% @doc Let a stream request send N more items.
-spec stream_credit(ctx(), reference(), pos_integer()) -> ok | not_found.
stream_credit(_Ctx, _Ref, _N) -> ?NOT_LOADED.

%% @doc The calling process's erlang.call messages from this context go to
%% Helper (which runs them for it; its own requests use the caller's
%% namespace), or again to the caller itself (`none').
-spec callback_helper(ctx(), pid() | none) -> ok | {error, closed | noproc | enomem}.
callback_helper(_Ctx, _Helper) -> ?NOT_LOADED.

%% @doc Build the large maps a reply left as placeholders (dirty CPU).
-spec finish(term()) -> term().
finish(_Result) -> ?NOT_LOADED.

%% @doc The sandbox policy for the next start of the interpreter, and how
%% many denials a second are sent to py_sandbox_log.
-spec sandbox_configure(default | strict, non_neg_integer()) ->
          ok | {error, {already_running, default | strict}}.
sandbox_configure(_Policy, _LogLimit) -> ?NOT_LOADED.

%% @doc Send signal Signal (1..64) to OS process OsPid (an isolated
%% context's child): `ok', or `{error, not_found}' when it is gone.
-spec os_signal(pos_integer(), 1..64) -> ok | {error, not_found | unsupported}.
os_signal(_OsPid, _Signal) -> ?NOT_LOADED.

%% The data plane (c_src/shared/; py_shared calls these).

%% @doc A shared dict owned by the caller (destroyed when it dies).
-spec sdict_new() -> {ok, reference()}.
sdict_new() -> ?NOT_LOADED.

%% @doc The value under Key.
-spec sdict_get(reference(), term()) -> {ok, term()} | not_found | {error, destroyed}.
sdict_get(_Dict, _Key) -> ?NOT_LOADED.

%% @doc Store Value under Key.
-spec sdict_set(reference(), term(), term()) -> ok | {error, destroyed | enomem}.
sdict_set(_Dict, _Key, _Value) -> ?NOT_LOADED.

%% @doc Remove Key (ok when absent).
-spec sdict_del(reference(), term()) -> ok | {error, destroyed}.
sdict_del(_Dict, _Key) -> ?NOT_LOADED.

%% @doc Every key.
-spec sdict_keys(reference()) -> {ok, [term()]} | {error, destroyed}.
sdict_keys(_Dict) -> ?NOT_LOADED.

%% @doc Destroy a shared dict (its entries are freed).
-spec sdict_destroy(reference()) -> ok.
sdict_destroy(_Dict) -> ?NOT_LOADED.

%% @doc A channel: MaxSize bytes queued at most (0: no limit); Bytes: a byte
%% channel (binaries only, received as Python bytes).
-spec channel_new(non_neg_integer(), boolean()) -> {ok, reference()}.
channel_new(_MaxSize, _Bytes) -> ?NOT_LOADED.

%% @doc Queue a copy of Term.
-spec channel_send(reference(), term()) -> ok | busy | {error, closed}.
channel_send(_Ch, _Term) -> ?NOT_LOADED.

%% @doc Close a channel (receivers drain it, then see it closed).
-spec channel_close(reference()) -> ok.
channel_close(_Ch) -> ?NOT_LOADED.

%% @doc Bytes and messages queued, the limit, whether closed.
-spec channel_info(reference()) -> #{size := non_neg_integer(), count := non_neg_integer(),
                                     max_size := pos_integer() | infinity,
                                     closed := boolean()}.
channel_info(_Ch) -> ?NOT_LOADED.

%% @doc Take the next message without waiting.
-spec channel_try_receive(reference()) -> {ok, term()} | empty | closed.
channel_try_receive(_Ch) -> ?NOT_LOADED.

%% @doc `{py_channel_ready, Ref}' comes to the caller at the next message or
%% the close (`ready': one is there already).
-spec channel_wait(reference(), reference()) -> ok | ready.
channel_wait(_Ch, _Ref) -> ?NOT_LOADED.

%% @doc The wait of channel_wait/2 is over.
-spec channel_cancel_wait(reference(), reference()) -> ok.
channel_cancel_wait(_Ch, _Ref) -> ?NOT_LOADED.

%% @doc A buffer for ContentLength bytes (`undefined': 64 KiB, growing).
-spec buffer_new(non_neg_integer() | undefined) -> {ok, reference()} | {error, enomem}.
buffer_new(_ContentLength) -> ?NOT_LOADED.

%% @doc Append bytes.
-spec buffer_write(reference(), iodata()) -> ok | {error, closed | view_held | enomem}.
buffer_write(_Buf, _Data) -> ?NOT_LOADED.

%% @doc The end of the data.
-spec buffer_close(reference()) -> ok.
buffer_close(_Buf) -> ?NOT_LOADED.

%% @doc Bytes written, the read position, whether closed by the writer
%% (`eof') and by the reader (`closed').
-spec buffer_info(reference()) -> #{size := non_neg_integer(), read := non_neg_integer(),
                                    eof := boolean(), closed := boolean()}.
buffer_info(_Buf) -> ?NOT_LOADED.

%% @doc Which data plane handle a term is (an isolated context's bridge
%% names handles by their reference: src/py_bridge.erl).
-spec data_kind(term()) -> shared_dict | channel | byte_channel | buffer | none.
data_kind(_Term) -> ?NOT_LOADED.

%% Erlang's reads of a buffer (c_src/shared/buffer_read.c): an isolated
%% context's child reads through them (src/py_bridge.erl).

%% @doc Take up to Max bytes as Mode says (`any': at least one; `line':
%% through a newline; `lines': through the last newline; `full': Max), or
%% with a reference only look: `ready', or `wait' and `{py_buffer_ready,
%% Ref}' comes at the next write or close.
-spec buffer_take(reference(), non_neg_integer(), any | line | lines | full,
                  false | reference()) ->
          {ok, binary()} | eof | empty | closed | ready | wait.
buffer_take(_Buf, _Max, _Mode, _Wait) -> ?NOT_LOADED.

%% @doc The wait buffer_take/4 registered is over.
-spec buffer_cancel_wait(reference(), reference()) -> ok.
buffer_cancel_wait(_Buf, _Ref) -> ?NOT_LOADED.

%% @doc Up to Max unread bytes from Offset past the read position, which
%% does not move.
-spec buffer_peek(reference(), non_neg_integer(), non_neg_integer()) -> binary().
buffer_peek(_Buf, _Offset, _Max) -> ?NOT_LOADED.

%% @doc Move the read position (Whence 0: from the start, 1: from it, 2:
%% from the end, after the writer's close).
-spec buffer_seek(reference(), integer(), integer()) ->
          {ok, non_neg_integer()} | {error, closed | whence | not_eof | outside}.
buffer_seek(_Buf, _Offset, _Whence) -> ?NOT_LOADED.

%% @doc Where Sub is in the unread bytes [Start, End), or -1.
-spec buffer_find(reference(), binary(), integer(), integer()) -> integer().
buffer_find(_Buf, _Sub, _Start, _End) -> ?NOT_LOADED.

%% @doc Close the reader's side (erlang.PyBuffer.close/0).
-spec buffer_close_reader(reference()) -> ok.
buffer_close_reader(_Buf) -> ?NOT_LOADED.
