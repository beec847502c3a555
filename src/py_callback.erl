%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Erlang functions exposed to Python, and the runner of their calls.
%%
%% The registry is the ETS table `py_functions' (name as a binary -> fun or
%% `{Module, Function}'); every change is also published to the NIF, so that
%% Python can tell whether a name is registered (`hasattr(erlang, name)',
%% `from erlang import name') without a round trip to Erlang.
%%
%% A call made inside a sync request runs in the caller's callback helper, a
%% process linked to the caller (py_context), so that the caller keeps its
%% deadline. A call from a Python thread that belongs to no request, or from
%% a request nobody waits for synchronously (cast, spawn_call, parallel),
%% comes to this server, which runs it in a fresh process, so that calls
%% from many threads run side by side. This server
%% also forwards `erlang.send' to destinations the NIF cannot reach itself
%% (remote pids, `{Name, Node}').
-module(py_callback).
-behaviour(gen_server).

-export([start_link/0, register_function/2, unregister_function/1, run/2]).
-export([names/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
-export_type([callback/0, result/0]).

-type callback() :: fun(([term()]) -> term()) | {module(), atom()}.
-type result() :: {ok, term()}
                | {error, {erlang, error | exit | throw, term(), list(), binary()}}
                | {error, {not_registered, binary()}}.

-define(TAB, py_functions).

%% API.

%% @doc Start the registry (registered as `py_callback').
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Register (or replace) a function callable from Python as `Name'.
-spec register_function(atom() | binary(), callback()) -> ok.
register_function(Name, Callback) ->
    gen_server:call(?MODULE, {register, key(Name), Callback}).

%% @doc Remove a registered function (no error when absent).
-spec unregister_function(atom() | binary()) -> ok.
unregister_function(Name) ->
    gen_server:call(?MODULE, {unregister, key(Name)}).

%% @doc Run a registered function on its argument list, in the calling
%% process; exceptions become `{error, {erlang, Class, Reason, Stack, Text}}'.
-spec run(atom() | binary(), list()) -> result().
run(Name, Args) ->
    Key = key(Name),
    case lookup(Key) of
        [{_, Callback}] ->
            try {ok, invoke(Callback, Args)}
            catch Class:Reason:Stack ->
                Text = iolist_to_binary(erl_error:format_exception(Class, Reason, Stack)),
                {error, {erlang, Class, Reason, Stack, Text}}
            end;
        [] ->
            {error, {not_registered, Key}}
    end.

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    _ = ets:new(?TAB, [named_table, protected, set, {read_concurrency, true}]),
    ok = publish(),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({register, Key, Callback}, _From, State) ->
    true = ets:insert(?TAB, {Key, Callback}),
    {reply, publish(), State};
handle_call({unregister, Key}, _From, State) ->
    true = ets:delete(?TAB, Key),
    {reply, publish(), State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({py_callback, none, Id, Name, Args}, State) ->
    _ = proc_lib:spawn(fun() ->
                               ok = py_semaphore:exempt(),
                               py_context:callback_reply(Id, run(Name, Args))
                       end),
    {noreply, State};
handle_info({py_send, Dest, Msg}, State) ->
    _ = catch erlang:send(Dest, Msg, [noconnect]),
    {noreply, State};
handle_info(_Msg, State) ->
    {noreply, State}.

%% Internal.

%% Built-in functions behind the Python API (their dotted names cannot clash
%% with a Python identifier), then the registry.
lookup(<<"erlang_python.state_get">>) -> [{get, fun([K]) -> state_get(K) end}];
lookup(<<"erlang_python.state_set">>) -> [{set, fun([K, V]) -> py_state:store(K, V) end}];
lookup(<<"erlang_python.state_delete">>) -> [{del, fun([K]) -> py_state:remove(K) end}];
lookup(<<"erlang_python.state_keys">>) -> [{keys, fun([]) -> py_state:keys() end}];
lookup(<<"erlang_python.state_incr">>) -> [{incr, fun([K, N]) -> py_state:incr(K, N) end}];
lookup(<<"erlang_python.program">>) -> [{program, fun py_program:python/1}];
lookup(<<"erlang_python.whereis">>) -> [{whereis, fun([N]) -> whereis_name(N) end}];
lookup(<<"erlang_python.data">>) -> [{data, fun py_bridge:op/1}];
lookup(Key) -> ets:lookup(?TAB, Key).

whereis_name(Name) when is_atom(Name) ->
    case whereis(Name) of undefined -> none; Pid -> Pid end;
whereis_name(Name) when is_binary(Name) ->
    try binary_to_existing_atom(Name) of A -> whereis_name(A)
    catch error:badarg -> none
    end;
whereis_name(_) ->
    none.

state_get(Key) ->
    case py_state:fetch(Key) of
        {ok, Value} -> {found, Value};
        {error, not_found} -> not_found
    end.

invoke({M, F}, Args) -> M:F(Args);
invoke(Fun, Args) when is_function(Fun, 1) -> Fun(Args).

key(Name) when is_atom(Name) -> atom_to_binary(Name, utf8);
key(Name) when is_binary(Name) -> Name;
key(Name) -> erlang:error({badarg, {name, Name}}).

publish() ->
    Names = [K || {K, _} <- ets:tab2list(?TAB)],
    ok = py_isolated:publish(Names),
    py_context:publish_functions(Names).

%% @doc The names of the registered functions (an isolated context's child
%% gets them when it starts).
-spec names() -> [binary()].
names() ->
    try [K || {K, _} <- ets:tab2list(?TAB)]
    catch error:badarg -> []
    end.
