%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Shared dicts and channels for an isolated context's child: the VM's
%% half of the bridge (the child's half is priv/python/erlang/_bridge.py).
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
-module(py_bridge).
-behaviour(gen_server).

-export([start_link/0, op/1, pinned/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% The longest wait the child may ask for in one call (ms).
-define(MAX_WAIT, 60000).
%% How often pins of finished handles are dropped (ms).
-define(SWEEP_MS, 5000).
-define(PINS, py_bridge_pins).

%% API.

%% @doc Start the server that owns the pins (registered as `py_bridge').
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc How many handles children have seen are pinned now.
-spec pinned() -> non_neg_integer().
pinned() ->
    ets:info(?PINS, size).

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
op(Other) ->
    erlang:error({badarg, {bridge_op, Other}}).

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    _ = ets:new(?PINS, [named_table, public, set, {write_concurrency, true}]),
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
handle_cast(_Msg, St) ->
    {noreply, St}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(sweep, St) ->
    _ = sweep(),
    _ = erlang:send_after(?SWEEP_MS, self(), sweep),
    {noreply, St};
handle_info(_Msg, St) ->
    {noreply, St}.

%% Internal.

%% Drop the pins of destroyed dicts and of closed, drained channels.
sweep() ->
    Done = [H || {H, Kind} <- ets:tab2list(?PINS), finished(Kind, H)],
    _ = [ets:delete(?PINS, H) || H <- Done],
    ok.

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
