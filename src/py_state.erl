%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc State shared by Erlang and Python: an ETS table (owned by this
%% server) that Erlang reads and writes directly and Python reaches through
%% `erlang.state_get/state_set/...', which call the functions below.
%% Counters use ets:update_counter/4, so increments are atomic under any
%% concurrency.
-module(py_state).
-behaviour(gen_server).

-export([start_link/0, store/2, fetch/1, remove/1, keys/0, clear/0, incr/2]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(TAB, py_state).

%% API.

%% @doc Start the owner of the table.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Store Value under Key.
-spec store(term(), term()) -> ok.
store(Key, Value) ->
    true = ets:insert(?TAB, {Key, Value}),
    ok.

%% @doc The value under Key.
-spec fetch(term()) -> {ok, term()} | {error, not_found}.
fetch(Key) ->
    case ets:lookup(?TAB, Key) of
        [{_, Value}] -> {ok, Value};
        [] -> {error, not_found}
    end.

%% @doc Remove Key.
-spec remove(term()) -> ok.
remove(Key) ->
    true = ets:delete(?TAB, Key),
    ok.

%% @doc Every key.
-spec keys() -> [term()].
keys() ->
    ets:select(?TAB, [{{'$1', '_'}, [], ['$1']}]).

%% @doc Remove every key.
-spec clear() -> ok.
clear() ->
    true = ets:delete_all_objects(?TAB),
    ok.

%% @doc Add N to the integer counter Key (created at 0) and return it;
%% `error({badarg, ...})' when Key holds something else.
-spec incr(term(), integer()) -> integer().
incr(Key, N) when is_integer(N) ->
    try ets:update_counter(?TAB, Key, {2, N}, {Key, 0})
    catch error:badarg -> erlang:error({badarg, {not_a_counter, Key}})
    end;
incr(_Key, N) ->
    erlang:error({badarg, {n, N}}).

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    _ = ets:new(?TAB, [named_table, public, set, {read_concurrency, true},
                       {write_concurrency, true}]),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.
