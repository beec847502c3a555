%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Which context serves a caller.
%%
%% A process keeps its context for life (its Python namespace lives there):
%% the choice is cached in its process dictionary. Its first call goes to a
%% default context that is not held by a long call, not to a hash of its
%% pid, so that one call sleeping or waiting on I/O does not delay callers
%% that have no state on its context; among those, to each in turn, so that
%% callers spread evenly. The table `py_contexts' (owned by this server) maps
%% context pids to their NIF resources.
-module(py_router).
-behaviour(gen_server).

-export([start_link/0, register/3, unregister/1, lookup/1, route/0, forget/0,
         defaults/0, pool/1, pool_slots/1, choose/1, cached/0, adopt/1]).
-export([all/0, handles/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TAB, py_contexts).
-define(PDICT, '$py_context').

%% API.

%% @doc Start the router (and its table).
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Record a running context; `Default' is its slot among the default
%% contexts, `{pool, Name, Slot}' in a named pool (py_context_router), or
%% `false' for one made with py_context:new/1.
-spec register(pid(), py_nif:ctx() | {py_remote, pid()},
               pos_integer() | {pool, atom(), pos_integer()} | false) -> ok.
register(Pid, Ctx, Default) ->
    gen_server:call(?MODULE, {register, Pid, Ctx, Default}).

%% @doc Forget a context that is stopping.
-spec unregister(pid()) -> ok.
unregister(Pid) ->
    gen_server:call(?MODULE, {unregister, Pid}).

%% @doc The resource of a context pid.
-spec lookup(pid()) -> {ok, py_nif:ctx()} | error.
lookup(Pid) ->
    try ets:lookup(?TAB, Pid) of
        [{_, Ctx, _}] -> {ok, Ctx};
        [] -> error
    catch
        error:badarg -> error %% the application is not running
    end.

%% @doc The calling process's context (chosen on first use, then kept);
%% `none' when no context runs.
-spec route() -> {pid(), py_nif:ctx()} | none.
route() ->
    case get(?PDICT) of
        undefined ->
            case defaults() of
                [] -> none;
                Contexts ->
                    Chosen = choose(Contexts),
                    put(?PDICT, Chosen),
                    Chosen
            end;
        Chosen ->
            Chosen
    end.

%% @doc Drop the calling process's cached context (it has stopped).
-spec forget() -> ok.
forget() ->
    _ = erase(?PDICT),
    ok.

%% @doc The calling process's context if it has chosen one, else `none'.
-spec cached() -> {pid(), py_nif:ctx()} | none.
cached() ->
    case get(?PDICT) of
        undefined -> none;
        Chosen -> Chosen
    end.

%% @doc Take another process's context as the caller's own (a callback
%% helper serves on its owner's context); `none' leaves the choice to route/0.
-spec adopt({pid(), py_nif:ctx()} | none) -> ok.
adopt(none) ->
    ok;
adopt({_, _} = Chosen) ->
    _ = put(?PDICT, Chosen),
    ok.

%% @doc The default contexts, in slot order.
-spec defaults() -> [{pid(), py_nif:ctx()}].
defaults() ->
    try ets:select(?TAB, [{{'_', '_', '$1'}, [{is_integer, '$1'}], ['$_']}]) of
        Slots -> [{Pid, Ctx} || {Pid, Ctx, _} <- lists:keysort(3, Slots)]
    catch
        error:badarg -> [] %% the application is not running
    end.

%% @doc Every running context of this node: default, in a pool, or made
%% with py_context:new/1.
-spec all() -> [pid()].
all() ->
    %% Not those of a pool on other nodes (py_remote): they run there.
    [Pid || {Pid, _} <- handles()].

%% @doc Every running context of this node with its handle (the NIF
%% resource, or an isolated context's: py_isolated tells those of registry
%% changes).
-spec handles() -> [{pid(), term()}].
handles() ->
    try ets:select(?TAB, [{{'$1', '$2', '_'}, [], [{{'$1', '$2'}}]}]) of
        Contexts -> [C || {_, Ctx} = C <- Contexts, not is_remote(Ctx)]
    catch
        error:badarg -> []
    end.

%% @doc The contexts of a named pool, in slot order.
-spec pool(atom()) -> [{pid(), py_nif:ctx()}].
pool(Name) ->
    try ets:select(?TAB, [{{'_', '_', {pool, Name, '_'}}, [], ['$_']}]) of
        Slots -> [{Pid, Ctx} || {Pid, Ctx, _} <- lists:keysort(3, Slots)]
    catch
        error:badarg -> []
    end.

%% @doc The slots of a named pool that have a running context: `{Pid, Slot}'.
-spec pool_slots(atom()) -> [{pid(), pos_integer()}].
pool_slots(Name) ->
    try ets:select(?TAB, [{{'$1', '_', {pool, Name, '$2'}}, [], [{{'$1', '$2'}}]}])
    catch
        error:badarg -> []
    end.

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    _ = ets:new(?TAB, [named_table, protected, set, {read_concurrency, true}]),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({register, Pid, Ctx, Default}, _From, Mons) ->
    true = ets:insert(?TAB, {Pid, Ctx, Default}),
    {reply, ok, Mons#{Pid => erlang:monitor(process, Pid)}};
handle_call({unregister, Pid}, _From, Mons) ->
    true = ets:delete(?TAB, Pid),
    case maps:take(Pid, Mons) of
        {Mon, Rest} -> erlang:demonitor(Mon, [flush]), {reply, ok, Rest};
        error -> {reply, ok, Mons}
    end;
handle_call(_Request, _From, Mons) ->
    {reply, {error, unknown_call}, Mons}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, Mons) ->
    {noreply, Mons}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', _, process, Pid, _}, Mons) ->
    true = ets:delete(?TAB, Pid),
    {noreply, maps:remove(Pid, Mons)};
handle_info(_Msg, Mons) ->
    {noreply, Mons}.

%% Internal.

%% A context whose oldest running request was submitted this long ago is
%% held by a long call (or has a queue that long): new callers go elsewhere.
-define(HELD_US, 1000).

%% @doc The contexts in turn (one counter for all callers), skipping those held
%% by a long call; when every one is held, the one with the fewest requests
%% waiting (ties in turn order).
%%
%% The turn is taken first and alone decides where the search starts, so
%% two processes routed at the same instant start at different contexts and,
%% while both are free, take different ones. Picking the n-th of the free
%% contexts instead (as this did) let two callers that read the loads at
%% slightly different instants see different lists of free contexts, and
%% their turns could then name the same one: four simultaneous 2 s sleeps
%% ended at 2/2/4/6 s on two contexts.
%%
%% Not the instantaneous queue length alone: with calls of a microsecond or
%% two, it says which context's thread happened to be awake at that instant
%% (one asleep keeps a queued request for its ~50 us wake-up), and 64
%% callers starting together split anywhere from [32,32] to [1,63]. Turns
%% rather than counts of past assignments: a count never forgets, and after
%% 10,000 short-lived callers split 4,383 / 5,751, the next 1,368 new
%% callers would all have gone to one context.
-spec choose([{pid(), py_nif:ctx()}, ...]) -> {pid(), py_nif:ctx()}.
choose(Contexts) ->
    Turn = atomics:add_get(turns(), 1, 1),
    {Before, After} = lists:split(Turn rem length(Contexts), Contexts),
    first_free(After ++ Before, []).

first_free([C = {_, Ctx} | Rest], Held) ->
    case load(Ctx) of
        {_, AgeUs} when AgeUs < ?HELD_US -> C;
        {Queued, _} -> first_free(Rest, [{Queued, length(Held), C} | Held])
    end;
first_free([], Held) ->
    {_, _, C} = lists:min(Held),
    C.

turns() ->
    case persistent_term:get({?MODULE, turns}, undefined) of
        undefined ->
            Turns = atomics:new(1, [{signed, false}]),
            persistent_term:put({?MODULE, turns}, Turns),
            Turns;
        Turns ->
            Turns
    end.

is_remote({py_remote, _}) -> true;
is_remote(_) -> false.

%% A context on another node (py_remote) reports no load here: the turn
%% alone places callers on it.
load({py_remote, _}) ->
    {0, 0};

load({py_isolated, _, _} = Ctx) ->
    py_isolated:load(Ctx);
load(Ctx) ->
    case py_nif:context_load(Ctx) of
        closed -> {infinity, infinity}; %% an atom: above every integer
        Load -> Load
    end.
