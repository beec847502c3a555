%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Shared dicts, channels and buffers for an isolated context's child:
%% the VM's half of the bridge (the child's half is
%% priv/python/erlang/_bridge.py and _pybuffer.py).
%%
%% A child OS process cannot reach the VM's shared dicts and channels
%% (c_src/shared/). A handle passed to it crosses as the external form of its
%% reference, which the VM decodes back to the same resource while it lives;
%% the child's `_erlang.sdict_*' and `_erlang.ch_*' functions call the
%% built-in function `erlang_python.data' (py_callback) with that handle, and
%% op/1 runs the operation here, in the process that serves the child's
%% callback (a helper of the waiting caller, or a fresh process).
%%
%% Answers are plain terms, never exceptions: the child turns them into the
%% errors the NIF raises in-process (`RuntimeError' for a destroyed dict,
%% `erlang.ChannelClosed'...). A handle whose resource is gone (no Erlang term
%% holds it any more, so the VM freed it) answers `gone': a destroyed dict, a
%% closed channel.
%%
%% A handle that crossed holds nothing in the VM (its external form is a
%% weak name), so the first time a child asks what a handle is (`kind') the
%% handle is pinned in this server's table until the dict is destroyed or
%% the channel closed and drained (a sweep every 5 s looks): the
%% child can keep a handle the Erlang side no longer holds, as Python code in
%% a worker context can.
%%
%% A receive that finds the channel empty waits here, in a `receive' (no
%% scheduler blocked), up to the time the child gives, and answers `ready'
%% without taking the message: the child takes it with its next call. So a
%% request stopped while it waits (a timeout: the child drops the callback's
%% answer) loses no message.
%%
%% Buffers: every operation of erlang.PyBuffer is one here (`buf_*', at
%% most 1 MiB a read); a read that must wait waits as a receive does, and
%% answers `ready' without taking the bytes. The child that first sees a
%% buffer (`open') pins it for itself (process of the callback: serving/2
%% says which child it serves) until its last PyBuffer of it is dropped
%% (`buf_release'), its context gets a new child, or the context ends: a
%% buffer is often big, and a child that never reads it to its end must
%% not keep it alive.
-module(py_bridge).
-behaviour(gen_server).

-export([start_link/0, op/1, pinned/0, serving/2, buffers_pinned/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% The longest wait the child may ask for in one call (ms).
-define(MAX_WAIT, 60000).
%% How often pins of finished handles are dropped (ms).
-define(SWEEP_MS, 5000).
-define(PINS, py_bridge_pins).
%% Buffers a child holds: {{{ContextPid, Generation}, Handle}}.
-define(BUFS, py_bridge_buffers).
%% The context processes watched: {ContextPid, Generation}.
-define(CHILDREN, py_bridge_children).
%% The most a buffer read takes in one call (bytes).
-define(CHUNK, 1048576).
-define(CHILD_KEY, '$py_bridge_child').

%% API.

%% @doc Start the server that owns the pins (registered as `py_bridge').
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc How many handles children have seen are pinned now.
-spec pinned() -> non_neg_integer().
pinned() ->
    ets:info(?PINS, size).

%% @doc How many (child, buffer) pairs are pinned now.
-spec buffers_pinned() -> non_neg_integer().
buffers_pinned() ->
    ets:info(?BUFS, size).

%% @doc The calling process serves a callback of the child `Generation' of
%% the isolated context `Context' (py_isolated): the buffers it opens are
%% pinned for that child, until it drops them or is gone.
-spec serving(pid(), non_neg_integer()) -> ok.
serving(Context, Generation) ->
    _ = put(?CHILD_KEY, {Context, Generation}),
    ok.

%% @doc Run one operation of the child's bridge: `[Op | Args]' as the child
%% sends it (priv/python/erlang/_bridge.py). An unknown operation raises
%% `badarg' (an `erlang.ErlangError' in the child).
-spec op([term()]) -> term().
op([kind, H]) ->
    Kind = py_shared:kind(H),
    _ = Kind =:= none orelse Kind =:= buffer orelse ets:insert_new(?PINS, {H, Kind}),
    Kind;
op([sdict_get, H, K]) ->
    sdict(fun() -> Miss = make_ref(),
                   case py_shared:sdict_get(H, K, Miss) of
                       Miss -> not_found;
                       V -> {ok, V}
                   end
          end);
op([sdict_set, H, K, V]) ->
    sdict(fun() -> py_shared:sdict_set(H, K, V) end);
op([sdict_del, H, K]) ->
    sdict(fun() -> Miss = make_ref(),
                   case py_shared:sdict_get(H, K, Miss) of
                       Miss -> false;
                       _ -> ok = py_shared:sdict_del(H, K), true
                   end
          end);
op([sdict_keys, H]) ->
    sdict(fun() -> {ok, py_shared:sdict_keys(H)} end);
op([sdict_len, H]) ->
    sdict(fun() -> {ok, length(py_shared:sdict_keys(H))} end);
op([sdict_items, H]) ->
    sdict(fun() -> Miss = make_ref(),
                   {ok, [{K, V} || K <- py_shared:sdict_keys(H),
                                   V <- [py_shared:sdict_get(H, K, Miss)], V =/= Miss]}
          end);
op([sdict_destroy, H]) ->
    sdict(fun() -> py_shared:sdict_destroy(H) end);
op([ch_take, H, Bytes]) when is_boolean(Bytes) ->
    take(H, Bytes);
op([ch_recv, H, Bytes, Ms]) when is_boolean(Bytes), is_integer(Ms), Ms >= 0 ->
    case take(H, Bytes) of
        empty -> await(H, Ms);
        Got -> Got
    end;
op([ch_await, H, Ms]) when is_integer(Ms), Ms >= 0 ->
    await(H, Ms);
op([ch_send, H, T]) ->
    channel(fun() -> case py_shared:channel_send(H, T) of
                         {error, closed} -> closed;
                         Sent -> Sent
                     end
            end, closed);
op([ch_close, H]) ->
    channel(fun() -> py_shared:channel_close(H) end, ok);
op([ch_info, H]) ->
    channel(fun() -> Info = #{max_size := Max} = py_shared:channel_info(H),
                     Info#{max_size := case Max of infinity -> none; _ -> Max end}
            end, #{size => 0, count => 0, max_size => none, closed => true});
op([open, H]) ->
    case op([kind, H]) of
        buffer -> pin_buffer(H, get(?CHILD_KEY)), buffer;
        Kind -> Kind
    end;
op([open, H, Dropped]) ->
    ok = op([buf_release, Dropped]),
    op([open, H]);
op([buf_read, H, Max, Mode, Ms]) when is_integer(Max), Max >= 0, is_integer(Ms), Ms >= 0,
                                      (Mode =:= any orelse Mode =:= line orelse
                                       Mode =:= lines orelse Mode =:= full) ->
    N = min(Max, ?CHUNK),
    buffer(fun() -> case py_shared:buffer_take(H, N, Mode) of
                        {ok, Bin} -> {bytes, Bin};
                        empty -> py_shared:buffer_await(H, N, Mode, min(Ms, ?MAX_WAIT));
                        Other -> Other
                    end
           end);
op([buf_peek, H, Offset, Max]) when is_integer(Offset), Offset >= 0, is_integer(Max), Max >= 0 ->
    buffer(fun() -> {bytes, py_shared:buffer_peek(H, Offset, min(Max, ?CHUNK))} end);
op([buf_seek, H, Offset, Whence]) when is_integer(Offset), is_integer(Whence) ->
    buffer(fun() -> py_shared:buffer_seek(H, Offset, Whence) end);
op([buf_find, H, Sub, Start, End]) when is_binary(Sub), is_integer(Start), is_integer(End) ->
    buffer(fun() -> py_shared:buffer_find(H, Sub, Start, End) end);
op([buf_state, H]) ->
    buffer(fun() -> py_shared:buffer_info(H) end);
op([buf_close, H]) ->
    buffer(fun() -> py_shared:buffer_close_reader(H) end);
op([buf_release, Dropped]) when is_list(Dropped) ->
    Child = get(?CHILD_KEY),
    _ = [release_buffer(D, Child) || D <- Dropped],
    ok;
op(Other) ->
    erlang:error({badarg, {bridge_op, Other}}).

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    _ = ets:new(?PINS, [named_table, public, set, {write_concurrency, true}]),
    _ = ets:new(?BUFS, [named_table, public, set, {write_concurrency, true}]),
    _ = ets:new(?CHILDREN, [named_table, public, set]),
    _ = erlang:send_after(?SWEEP_MS, self(), sweep),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(sweep, _From, St) ->
    {reply, sweep(), St};
handle_call(_Request, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({watch, Context}, St) ->
    _ = erlang:monitor(process, Context),
    {noreply, St};
handle_cast(_Msg, St) ->
    {noreply, St}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(sweep, St) ->
    _ = sweep(),
    _ = erlang:send_after(?SWEEP_MS, self(), sweep),
    {noreply, St};
handle_info({'DOWN', _, process, Context, _}, St) ->
    true = ets:delete(?CHILDREN, Context),
    _ = ets:match_delete(?BUFS, {{{Context, '_'}, '_'}}),
    {noreply, St};
handle_info(_Msg, St) ->
    {noreply, St}.

%% Internal.

%% A buffer a child holds stays alive until the child drops it (buf_release)
%% or dies (a newer generation of its context, or the context's end).
pin_buffer(H, {Context, Gen} = Child) when is_pid(Context), is_integer(Gen) ->
    case ets:lookup(?CHILDREN, Context) of
        [{_, Gen}] ->
            true = ets:insert(?BUFS, {{Child, H}});
        [{_, Newer}] when Newer > Gen ->
            ok;  %% from a child replaced already
        Seen ->
            true = ets:insert(?BUFS, {{Child, H}}),
            true = ets:insert(?CHILDREN, {Context, Gen}),
            drop_before(Context, Gen),
            _ = Seen =:= [] andalso gen_server:cast(?MODULE, {watch, Context})
    end,
    ok;
pin_buffer(_H, _NotAChild) ->
    ok.

%% The context's child is of generation Gen now: the pins of the ones
%% before it go.
drop_before(Context, Gen) ->
    _ = ets:select_delete(?BUFS, [{{{{Context, '$1'}, '_'}}, [{'<', '$1', Gen}], [true]}]),
    ok.

%% A buffer the child dropped (its last PyBuffer of it is gone).
release_buffer(H, Child) ->
    _ = Child =:= undefined orelse ets:delete(?BUFS, {Child, H}),
    ok.

%% A buffer the VM freed (the child never pinned it, or dropped it).
buffer(Fun) ->
    try Fun()
    catch error:badarg -> gone
    end.

%% Drop the pins of destroyed dicts and of closed, drained channels.
sweep() ->
    Done = [H || {H, Kind} <- ets:tab2list(?PINS), finished(Kind, H)],
    _ = [ets:delete(?PINS, H) || H <- Done],
    %% Contexts gone (their DOWN may still be on its way).
    _ = [begin ets:delete(?CHILDREN, C), ets:match_delete(?BUFS, {{{C, '_'}, '_'}}) end
         || {C, _} <- ets:tab2list(?CHILDREN), not is_process_alive(C)],
    %% Children that died and were replaced (their context lives on): asked
    %% in a process of its own, since a context may be slow to answer.
    Children = ets:tab2list(?CHILDREN),
    _ = Children =:= [] orelse
        spawn(fun() -> [drop_before(Context, Now) || {Context, Gen} <- Children,
                                                     Now <- [generation(Context)], Now > Gen,
                                                     ets:update_element(?CHILDREN, Context,
                                                                        {2, Now})]
              end),
    ok.

%% The generation of an isolated context's child now (0 when unknown).
generation(Context) ->
    try py_isolated:child_info(Context) of
        {ok, #{generation := Gen}} -> Gen;
        _ -> 0
    catch _:_ -> 0
    end.

finished(shared_dict, H) ->
    try py_shared:sdict_keys(H), false
    catch error:_ -> true
    end;
finished(_Channel, H) ->
    case py_shared:channel_info(H) of
        #{closed := true, count := 0} -> true;
        _ -> false
    end.

%% A destroyed dict, or one the VM freed: the child raises the NIF's
%% RuntimeError for both.
sdict(Fun) ->
    try Fun()
    catch error:{badarg, shared_dict_destroyed} -> destroyed;
          error:badarg -> gone;
          error:enomem -> enomem
    end.

%% A channel the VM freed (no Erlang term held it) is a closed one.
channel(Fun, Gone) ->
    try Fun()
    catch error:badarg -> Gone
    end.

%% A byte channel's binaries go as {bytes, B}: bytes in the child even when
%% they are valid UTF-8.
take(H, Bytes) ->
    channel(fun() -> case py_shared:channel_try_receive(H) of
                         {ok, B} when Bytes, is_binary(B) -> {ok, {bytes, B}};
                         {ok, _} = Ok -> Ok;
                         {error, Why} -> Why
                     end
            end, closed).

await(H, Ms) ->
    channel(fun() -> py_shared:channel_await(H, min(Ms, ?MAX_WAIT)) end, ready).
