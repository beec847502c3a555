%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Pools of contexts, which pool a call goes to, and the state read on
%% every py:call (the 4.x `py_context_router' API).
%%
%% The `default' pool is the default contexts (py_router). Named pools are
%% started with start_pool/2,3: their contexts are temporary children of
%% py_context_sup, and each process is served by one context of a pool for
%% life (chosen as py_router chooses a default context: in turn, skipping
%% contexts held by a long call), kept in its process dictionary.
%%
%% Registrations (py:register_pool/2) send the calls of a module, or of one
%% function of it, to a pool: `{M, F}' beats `{M, `_'}' beats `default'.
%% Names may be atoms, binaries or strings: `json', `<<"json">>' and
%% `"json"' are the same module (the registry keeps atoms, made when a name
%% is registered, so that the common call by atoms needs no conversion).
%%
%% py:call reads one persistent_term, `{Routes, Limit}': `Routes' is `none'
%% while nothing is registered, `Limit' `infinity' or the semaphore
%% (py_semaphore). This server is its only writer; it also watches the
%% processes that take slots, so that a killed caller's slot comes back.
-module(py_context_router).
-behaviour(gen_server).

-export([get_context/0, get_context/1, bind_context/1, bind_context/2,
         unbind_context/0, unbind_context/1, start_pool/2, start_pool/3, stop_pool/1,
         pool_started/1, num_contexts/0, num_contexts/1, contexts/0, contexts/1,
         lookup_pool/2, list_pool_registrations/0, register_pool/2, unregister_pool/1]).
-export([start_link/0, plan/2, limit/0, route/1, forget/1, holder/1, set_limit/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export_type([pool/0, limit/0]).

-type pool() :: atom().
%% The semaphore: a counter of the slots taken and the maximum.
-type limit() :: infinity | {atomics:atomics_ref(), pos_integer()}.
-type key() :: py:py_module() | {py:py_module(), py:py_func()}.

-define(HOT, {py, hot}).
-define(IDLE, {none, infinity}).
-define(POOLS, py_pools).
-define(POOL_PDICT(P), {'$py_pool', P}).
-define(UNBOUND, '$py_unbound').
%% A node that comes back may not run erlang_python yet: tries, 500 ms apart.
-define(RESTORE_TRIES, 20).

%% API: contexts of the caller.

%% @doc The caller's context (py:context/0).
-spec get_context() -> pid().
get_context() ->
    py:context().

%% @doc The caller's context in a pool (chosen on first use, then kept), or
%% the N-th default context. Raises `error({pool_not_started, Pool})'.
-spec get_context(pool() | pos_integer()) -> pid().
get_context(N) when is_integer(N) ->
    py:context(N);
get_context(default) ->
    py:context();
get_context(Pool) when is_atom(Pool) ->
    case route(Pool) of
        {Pid, _} -> Pid;
        none -> erlang:error({pool_not_started, Pool})
    end;
get_context(Pool) ->
    erlang:error({badarg, {pool, Pool}}).

%% @doc Send the caller's later calls (default pool) to context Ctx, until
%% unbind_context/0.
-spec bind_context(pid()) -> ok.
bind_context(Ctx) ->
    Chosen = {_, _} = known(Ctx),
    case get(?UNBOUND) of
        undefined -> put(?UNBOUND, py_router:cached());
        _ -> ok
    end,
    py_router:adopt(Chosen).

%% @doc Send the caller's later calls of pool Pool to context Ctx.
-spec bind_context(pool(), pid()) -> ok.
bind_context(default, Ctx) ->
    bind_context(Ctx);
bind_context(Pool, Ctx) when is_atom(Pool) ->
    Chosen = known(Ctx),
    _ = put(?POOL_PDICT(Pool), Chosen),
    ok;
bind_context(Pool, _Ctx) ->
    erlang:error({badarg, {pool, Pool}}).

%% @doc Undo bind_context/1: the caller's calls go to the context it had
%% before (or, if it had none, to one chosen at its next call).
-spec unbind_context() -> ok.
unbind_context() ->
    case erase(?UNBOUND) of
        undefined -> ok;
        none -> py_router:forget();
        Previous -> py_router:adopt(Previous)
    end.

%% @doc Undo bind_context/2: the next call of that pool chooses a context.
-spec unbind_context(pool()) -> ok.
unbind_context(default) ->
    unbind_context();
unbind_context(Pool) when is_atom(Pool) ->
    forget(Pool);
unbind_context(Pool) ->
    erlang:error({badarg, {pool, Pool}}).

%% API: pools.

%% @doc start_pool(Pool, Size, worker).
-spec start_pool(pool(), pos_integer()) -> {ok, [pid()]} | {error, term()}.
start_pool(Pool, Size) ->
    start_pool(Pool, Size, worker).

%% @doc Start a pool of Size contexts of mode Mode (`worker', or `owngil':
%% `{error, {owngil_unsupported, Reason}}' before Python 3.12):
%% `{error, already_started}' if it runs. The `default' pool is the
%% default contexts (py:start_contexts/1).
%%
%% `start_pool(Pool, Size, #{mode => Mode, nodes => Nodes})' places the
%% contexts across Nodes in turn (each runs erlang_python; `node()' is this
%% one): contexts on other nodes are owned by this server and routed to
%% like local ones (py_remote). A node that goes down leaves the pool (its
%% callers' calls there end with `{error, {nodedown, Node}}' and their next
%% call chooses again); when it comes back, its contexts are started again.
-spec start_pool(pool(), pos_integer(), py_opts:mode() | #{mode => py_opts:mode(),
                                                           nodes => [node(), ...]}) ->
          {ok, [pid()]} | {error, term()}.
start_pool(Pool, Size, #{} = Opts) when is_atom(Pool), Pool =/= default, is_integer(Size),
                                        Size > 0 ->
    Mode = maps:get(mode, Opts, worker),
    Nodes = case maps:get(nodes, Opts, [node()]) of
                [_ | _] = Ns -> [N || N <- Ns, is_atom(N)] =:= Ns orelse
                                    erlang:error({badarg, {nodes, Ns}}),
                                Ns;
                Bad -> erlang:error({badarg, {nodes, Bad}})
            end,
    _ = [erlang:error({badarg, {option, K}}) || K <- maps:keys(Opts), K =/= mode, K =/= nodes],
    case py_opts:mode(Mode, fun py_context:python_version/0) of
        ok ->
            Slots = [{I, lists:nth((I - 1) rem length(Nodes) + 1, Nodes)}
                     || I <- lists:seq(1, Size)],
            case call({claim, Pool, Mode}) of
                ok -> start_slots(Pool, Mode, Slots, []);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end;
start_pool(Pool, Size, Mode) when is_atom(Pool), is_integer(Size), Size > 0 ->
    case py_opts:mode(Mode, fun py_context:python_version/0) of
        ok when Pool =:= default ->
            case pool_started(default) of
                true -> {error, already_started};
                false -> py:start_contexts(#{contexts => Size, mode => Mode})
            end;
        ok ->
            case call({claim, Pool, Mode}) of
                ok -> start_contexts(Pool, Mode, 1, Size, []);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end;
start_pool(Pool, Size, _Mode) when is_atom(Pool) ->
    erlang:error({badarg, {size, Size}});
start_pool(Pool, _Size, _Mode) ->
    erlang:error({badarg, {pool, Pool}}).

%% @doc Stop a pool and its contexts (`ok' also when it does not run).
%% Processes that used it choose again if it is started again.
-spec stop_pool(pool()) -> ok.
stop_pool(default) ->
    py:stop_contexts();
stop_pool(Pool) when is_atom(Pool) ->
    _ = call({drop, Pool}),
    lists:foreach(fun({Pid, {py_remote, _}}) -> _ = py_context:stop(Pid);
                     ({Pid, _}) -> _ = py_context_sup:stop_context(Pid)
                  end,
                  py_router:pool(Pool));
stop_pool(Pool) ->
    erlang:error({badarg, {pool, Pool}}).

%% @doc Whether a pool runs.
-spec pool_started(pool()) -> boolean().
pool_started(default) ->
    py_router:defaults() =/= [];
pool_started(Pool) when is_atom(Pool) ->
    try ets:member(?POOLS, Pool)
    catch error:badarg -> false
    end;
pool_started(Pool) ->
    erlang:error({badarg, {pool, Pool}}).

%% @doc How many default contexts run.
-spec num_contexts() -> non_neg_integer().
num_contexts() ->
    length(contexts()).

%% @doc How many contexts of a pool run.
-spec num_contexts(pool()) -> non_neg_integer().
num_contexts(Pool) ->
    length(contexts(Pool)).

%% @doc The default contexts.
-spec contexts() -> [pid()].
contexts() ->
    [Pid || {Pid, _} <- py_router:defaults()].

%% @doc The contexts of a pool.
-spec contexts(pool()) -> [pid()].
contexts(default) ->
    contexts();
contexts(Pool) when is_atom(Pool) ->
    [Pid || {Pid, _} <- py_router:pool(Pool)];
contexts(Pool) ->
    erlang:error({badarg, {pool, Pool}}).

%% API: registrations.

%% @doc Send the calls (py:call/3-5) of a module, or of `{Module, Func}',
%% to a pool.
-spec register_pool(pool(), key()) -> ok.
register_pool(Pool, Key) when is_atom(Pool) ->
    call({register, normalise(Key), Key, Pool});
register_pool(Pool, _Key) ->
    erlang:error({badarg, {pool, Pool}}).

%% @doc Remove a registration (`ok' also when there was none).
-spec unregister_pool(key()) -> ok.
unregister_pool(Key) ->
    call({unregister, normalise(Key)}).

%% @doc The pool a call of `Module.Func' goes to: `default' when no
%% registration matches.
-spec lookup_pool(py:py_module(), py:py_func()) -> pool().
lookup_pool(Module, Func) ->
    M = checked_key(module, Module),
    F = checked_key(function, Func),
    case persistent_term:get(?HOT, ?IDLE) of
        {none, _} -> default;
        {Routes, _} -> match(Routes, M, F)
    end.

%% @doc The registrations, as given to register_pool/2.
-spec list_pool_registrations() -> [{key(), pool()}].
list_pool_registrations() ->
    call(registrations).

%% Internal API (py, py_semaphore).

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @private
%% @doc What py:call/3-5 does for `Module.Func': `direct' (no registration,
%% no limit: the caller's default context), or the pool and the limit.
-spec plan(term(), term()) -> direct | {pool(), limit()}.
plan(Module, Func) ->
    case persistent_term:get(?HOT, ?IDLE) of
        ?IDLE -> direct;
        {none, Limit} -> {default, Limit};
        {Routes, Limit} -> {match(Routes, key(Module), key(Func)), Limit}
    end.

%% @private
%% @doc The semaphore of py:call.
-spec limit() -> limit().
limit() ->
    element(2, persistent_term:get(?HOT, ?IDLE)).

%% @private
%% @doc The caller's context in a named pool (chosen on first use, then
%% kept), `none' when the pool has no context.
-spec route(pool()) -> {pid(), py_nif:ctx()} | none.
route(Pool) ->
    case get(?POOL_PDICT(Pool)) of
        undefined ->
            case py_router:pool(Pool) of
                [] -> none;
                Contexts ->
                    Chosen = py_router:choose(Contexts),
                    _ = put(?POOL_PDICT(Pool), Chosen),
                    Chosen
            end;
        Chosen ->
            Chosen
    end.

%% @private
%% @doc Drop the caller's context of a pool (it has stopped).
-spec forget(pool()) -> ok.
forget(Pool) ->
    _ = erase(?POOL_PDICT(Pool)),
    ok.

%% @private
%% @doc A counter of the slots the caller holds, watched by this server:
%% when the caller dies, what it holds is given back to Global.
-spec holder(atomics:atomics_ref()) -> {ok, atomics:atomics_ref()} | {error, term()}.
holder(Global) ->
    call({holder, Global, self()}).

%% @private
%% @doc Set the maximum of the semaphore (`infinity': no limit).
-spec set_limit(pos_integer() | infinity) -> ok.
set_limit(Max) ->
    call({limit, Max}).

%% gen_server.

%% @private
-spec init([]) -> {ok, map()}.
init([]) ->
    process_flag(trap_exit, true),
    _ = ets:new(?POOLS, [named_table, protected, set, {read_concurrency, true}]),
    State = #{global => atomics:new(1, [{signed, true}]), max => py_opts:max_concurrent(),
              routes => #{}, keys => #{}, holders => #{}, spans => #{}},
    ok = publish(State),
    {ok, State}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({claim, Pool, Mode}, _From, State) ->
    case ets:insert_new(?POOLS, {Pool, Mode}) of
        true -> {reply, ok, State};
        false -> {reply, {error, already_started}, State}
    end;
handle_call({drop, Pool}, _From, #{spans := Spans} = State) ->
    true = ets:delete(?POOLS, Pool),
    {reply, ok, State#{spans => maps:remove(Pool, Spans)}};
handle_call({start_remote, Pool, Mode, I, Node}, _From, #{spans := Spans} = State) ->
    %% Started from here: this server owns the context (py_remote).
    ok = case State of
             #{nodes_watched := true} -> ok;
             #{} -> net_kernel:monitor_nodes(true)
         end,
    Span = maps:get(Pool, Spans, #{mode => Mode, slots => #{}}),
    New = State#{spans => Spans#{Pool => Span#{slots => (maps:get(slots, Span))#{I => Node}}},
                 nodes_watched => true},
    {reply, start_remote(Pool, Mode, I, Node), New};
handle_call({register, Norm, Key, Pool}, _From, #{routes := R, keys := K} = State) ->
    New = State#{routes => R#{Norm => Pool}, keys => K#{Norm => Key}},
    ok = publish(New),
    {reply, ok, New};
handle_call({unregister, Norm}, _From, #{routes := R, keys := K} = State) ->
    New = State#{routes => maps:remove(Norm, R), keys => maps:remove(Norm, K)},
    ok = publish(New),
    {reply, ok, New};
handle_call(registrations, _From, #{routes := R, keys := K} = State) ->
    {reply, lists:sort([{maps:get(N, K), P} || {N, P} <- maps:to_list(R)]), State};
handle_call({holder, Global, Pid}, _From, #{global := Global, holders := H} = State) ->
    case H of
        #{Pid := {_, Own}} ->
            {reply, {ok, Own}, State};
        #{} ->
            Own = atomics:new(1, [{signed, true}]),
            Mon = erlang:monitor(process, Pid),
            {reply, {ok, Own}, State#{holders => H#{Pid => {Mon, Own}}}}
    end;
handle_call({holder, _Stale, _Pid}, _From, State) ->
    {reply, {error, stale}, State};
handle_call({limit, Max}, _From, State) ->
    New = State#{max => Max},
    ok = publish(New),
    {reply, ok, New};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
%% A holder died: the slots it held (killed mid-call) come back.
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', _, process, Pid, _}, #{global := Global, holders := H} = State) ->
    case maps:take(Pid, H) of
        {{_, Own}, Rest} ->
            case atomics:get(Own, 1) of
                0 -> ok;
                N -> atomics:sub(Global, 1, N)
            end,
            {noreply, State#{holders => Rest}};
        error ->
            {noreply, State}
    end;
handle_info({nodeup, Node}, State) ->
    {noreply, restore(Node, ?RESTORE_TRIES, State)};
handle_info({restore, Node, Tries}, State) ->
    {noreply, restore(Node, Tries, State)};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, _State) ->
    _ = persistent_term:erase(?HOT),
    ok.

%% Internal.

call(Request) ->
    try gen_server:call(?MODULE, Request)
    catch exit:{noproc, _} -> {error, not_running}
    end.

%% The hot term, written only when it changes (a put of a new value makes
%% every process that holds the old one copy it at its next GC).
publish(#{global := Global, max := Max, routes := R}) ->
    Routes = case map_size(R) of 0 -> none; _ -> R end,
    Limit = case Max of infinity -> infinity; _ -> {Global, Max} end,
    case persistent_term:get(?HOT, undefined) of
        {Routes, Limit} -> ok;
        _ -> persistent_term:put(?HOT, {Routes, Limit})
    end.

match(Routes, M, F) ->
    case maps:find({M, F}, Routes) of
        {ok, Pool} -> Pool;
        error ->
            case maps:find({M, '_'}, Routes) of
                {ok, Pool} -> Pool;
                error -> default
            end
    end.

%% A module or function name as the registry keeps it: an atom (made at
%% registration, so that a call naming it by an atom, the common case, is
%% looked up with no conversion); raises badarg.
normalise({Module, '_'}) -> {name(module, Module), '_'};
normalise({Module, Func}) -> {name(module, Module), name(function, Func)};
normalise(Module) -> {name(module, Module), '_'}.

name(_What, A) when is_atom(A) -> A;
name(What, Name) ->
    case unicode_name(Name) of
        B when is_binary(B) -> binary_to_atom(B, utf8);
        _ -> erlang:error({badarg, {What, Name}})
    end.

%% The registry key of a name in a call: names that were never registered
%% are no atoms yet (and are not made into any).
key(A) when is_atom(A) -> A;
key(Name) ->
    case unicode_name(Name) of
        B when is_binary(B) ->
            try binary_to_existing_atom(B, utf8)
            catch error:badarg -> unregistered
            end;
        _ -> invalid
    end.

checked_key(What, Name) ->
    case key(Name) of
        invalid -> erlang:error({badarg, {What, Name}});
        Key -> Key
    end.

unicode_name(B) when is_binary(B) -> B;
unicode_name(L) when is_list(L) ->
    try unicode:characters_to_binary(L)
    catch error:badarg -> invalid
    end;
unicode_name(_) -> invalid.

known(Ctx) when is_pid(Ctx) ->
    case py_router:lookup(Ctx) of
        {ok, Res} -> {Ctx, Res};
        error -> erlang:error({badarg, {context, Ctx}})
    end;
known(Ctx) ->
    erlang:error({badarg, {context, Ctx}}).

start_contexts(_Pool, _Mode, I, Size, Acc) when I > Size ->
    {ok, lists:reverse(Acc)};
start_contexts(Pool, Mode, I, Size, Acc) ->
    case py_context_sup:start_context(#{pool => {Pool, I}, mode => Mode}) of
        {ok, Pid} ->
            start_contexts(Pool, Mode, I + 1, Size, [Pid | Acc]);
        {error, _} = Error ->
            ok = stop_pool(Pool),
            Error
    end.

%% The slots of a pool spread over nodes: those of this node start as
%% start_contexts/5 does, the others from this server (start_remote/4).
start_slots(_Pool, _Mode, [], Acc) ->
    {ok, [Pid || {_, Pid} <- lists:keysort(1, Acc)]};
start_slots(Pool, Mode, [{I, Node} | Rest], Acc) ->
    Started = case Node =:= node() of
                  true -> py_context_sup:start_context(#{pool => {Pool, I}, mode => Mode});
                  false -> call({start_remote, Pool, Mode, I, Node})
              end,
    case Started of
        {ok, Pid} ->
            start_slots(Pool, Mode, Rest, [{I, Pid} | Acc]);
        {error, _} = Error ->
            ok = stop_pool(Pool),
            Error
    end.

%% A context of slot I of Pool on Node, registered with py_router (which
%% monitors it: it leaves the pool when it stops or its node goes down).
start_remote(Pool, Mode, I, Node) ->
    case py_remote:new_context(Node, #{mode => Mode}) of
        {ok, Pid} ->
            ok = py_router:register(Pid, {py_remote, Pid}, {pool, Pool, I}),
            {ok, Pid};
        {error, _} = Error ->
            Error
    end.

%% Node is up again: start the contexts its slots lack, trying again later
%% while erlang_python does not run there yet.
restore(Node, Tries, #{spans := Spans} = State) ->
    Missing = [{Pool, Mode, I}
               || {Pool, #{mode := Mode, slots := Slots}} <- maps:to_list(Spans),
                  {I, N} <- maps:to_list(Slots), N =:= Node,
                  not lists:keymember(I, 1, slots_running(Pool))],
    Failed = [M || {Pool, Mode, I} = M <- Missing,
                   element(1, start_remote(Pool, Mode, I, Node)) =:= error],
    _ = Failed =/= [] andalso Tries > 1 andalso
        erlang:send_after(500, self(), {restore, Node, Tries - 1}),
    State.

%% The slots of Pool that have a running context.
slots_running(Pool) ->
    [{I, Pid} || {Pid, I} <- py_router:pool_slots(Pool)].

