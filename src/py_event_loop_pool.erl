%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc A pool of event loops, each an ErlangEventLoop on a thread of its
%% own, with the task API of py_event_loop (erlang_python 4.x). A process
%% always gets the same loop (its pid hashed), so its tasks, timers and
%% namespace stay together and in order. The number of loops is the app env
%% `event_loop_pool_size' (default: the number of schedulers); they start on
%% first use.
%%
%% 4.x's own-GIL loop sessions (`event_loop_pool_owngil') are not built:
%% get_stats/0 says `owngil_enabled => false'; own-GIL parallelism is had
%% with own-GIL contexts (docs/contexts.md).
-module(py_event_loop_pool).
-behaviour(gen_server).

-export([get_loop/0, get_all_loops/0, get_stats/0, is_owngil_enabled/0,
         create_task/3, create_task/4, run/3, run/4, spawn_task/3, spawn_task/4,
         await/1, await/2, exec/1, exec/2, eval/1, eval/2]).
-export([loop_name/1, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(LOOPS, {?MODULE, loops}).
-define(TIMEOUT, 5000).

%% API.

%% @doc The caller's loop: `{ok, Loop}' (always the same one for a process).
-spec get_loop() -> {ok, py_event_loop:loop()} | {error, term()}.
get_loop() ->
    case loops() of
        {ok, Loops} -> {ok, element(erlang:phash2(self(), tuple_size(Loops)) + 1, Loops)};
        Error -> Error
    end.

%% @doc Every loop of the pool.
-spec get_all_loops() -> [py_event_loop:loop()].
get_all_loops() ->
    case loops() of
        {ok, Loops} -> tuple_to_list(Loops);
        _ -> []
    end.

%% @doc `#{num_loops, supported, owngil_enabled, started}'.
-spec get_stats() -> #{atom() => term()}.
get_stats() ->
    Started = persistent_term:get(?LOOPS, undefined) =/= undefined,
    #{num_loops => size(), supported => true, owngil_enabled => false, started => Started}.

%% @doc Always false (see the module doc).
-spec is_owngil_enabled() -> false.
is_owngil_enabled() ->
    false.

%% @doc py_event_loop:create_task/3 on the caller's loop.
-spec create_task(atom() | binary(), atom() | binary(), list()) -> reference().
create_task(Module, Func, Args) ->
    create_task(Module, Func, Args, #{}).

%% @doc py_event_loop:create_task/4 on the caller's loop.
-spec create_task(atom() | binary(), atom() | binary(), list(), map()) -> reference().
create_task(Module, Func, Args, Kwargs) ->
    py_event_loop:create_task_on(loop(), Module, Func, Args, Kwargs).

%% @doc py_event_loop:run/3 on the caller's loop.
-spec run(atom() | binary(), atom() | binary(), list()) -> {ok, term()} | {error, term()}.
run(Module, Func, Args) ->
    run(Module, Func, Args, #{}).

%% @doc py_event_loop:run/4 on the caller's loop.
-spec run(atom() | binary(), atom() | binary(), list(), map()) -> {ok, term()} | {error, term()}.
run(Module, Func, Args, Opts) when is_map(Opts) ->
    await(create_task(Module, Func, Args, maps:get(kwargs, Opts, #{})),
          maps:get(timeout, Opts, ?TIMEOUT));
run(_Module, _Func, _Args, Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc py_event_loop:spawn_task/3 on the caller's loop.
-spec spawn_task(atom() | binary(), atom() | binary(), list()) -> ok.
spawn_task(Module, Func, Args) ->
    spawn_task(Module, Func, Args, #{}).

%% @doc py_event_loop:spawn_task/4 on the caller's loop.
-spec spawn_task(atom() | binary(), atom() | binary(), list(), map()) -> ok.
spawn_task(Module, Func, Args, Kwargs) ->
    py_event_loop:spawn_task_on(loop(), Module, Func, Args, Kwargs).

%% @doc py_event_loop:await/1.
-spec await(reference()) -> {ok, term()} | {error, term()}.
await(Ref) ->
    py_event_loop:await(Ref).

%% @doc py_event_loop:await/2.
-spec await(reference(), timeout()) -> {ok, term()} | {error, term()}.
await(Ref, Timeout) ->
    py_event_loop:await(Ref, Timeout).

%% @doc py_event_loop:exec/2 on the caller's loop.
-spec exec(iodata()) -> ok | {error, term()}.
exec(Code) ->
    py_event_loop:exec(loop(), Code).

%% @doc py_event_loop:exec/2 on a given loop.
-spec exec(py_event_loop:loop(), iodata()) -> ok | {error, term()}.
exec(Loop, Code) ->
    py_event_loop:exec(Loop, Code).

%% @doc py_event_loop:eval/2 on the caller's loop.
-spec eval(iodata()) -> {ok, term()} | {error, term()}.
eval(Code) ->
    py_event_loop:eval(loop(), Code).

%% @doc py_event_loop:eval/2 on a given loop.
-spec eval(py_event_loop:loop(), iodata()) -> {ok, term()} | {error, term()}.
eval(Loop, Code) ->
    py_event_loop:eval(Loop, Code).

%% @private The name the Python side knows a loop of the pool by.
-spec loop_name(py_event_loop:loop()) -> binary().
loop_name(Loop) ->
    {ok, Loops} = loops(),
    index_name(Loop, tuple_to_list(Loops), 1).

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% Internal.

loops() ->
    case persistent_term:get(?LOOPS, undefined) of
        undefined ->
            try gen_server:call(?MODULE, start, 30000)
            catch exit:{noproc, _} -> {error, not_running}
            end;
        Loops ->
            {ok, Loops}
    end.

loop() ->
    case get_loop() of
        {ok, Loop} -> Loop;
        {error, Reason} -> erlang:error({event_loop, Reason})
    end.

size() ->
    case application:get_env(erlang_python, event_loop_pool_size, default) of
        N when is_integer(N), N > 0 -> N;
        _ -> erlang:system_info(schedulers)
    end.

index_name(Loop, [Loop | _], I) -> <<"pool_", (integer_to_binary(I))/binary>>;
index_name(Loop, [_ | Rest], I) -> index_name(Loop, Rest, I + 1);
index_name(_Loop, [], _) -> <<"none">>.

%% gen_server.

%% @private
-spec init([]) -> {ok, map()}.
init([]) ->
    process_flag(trap_exit, true),
    {ok, #{loops => []}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(start, _From, State = #{loops := []}) ->
    case start_loops(size(), 1, []) of
        {ok, Loops} ->
            persistent_term:put(?LOOPS, list_to_tuple(Loops)),
            {reply, {ok, list_to_tuple(Loops)}, State#{loops := Loops}};
        {error, _} = Error ->
            {reply, Error, State}
    end;
handle_call(start, _From, State = #{loops := Loops}) ->
    {reply, {ok, list_to_tuple(Loops)}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

start_loops(N, I, Acc) when I > N ->
    {ok, lists:reverse(Acc)};
start_loops(N, I, Acc) ->
    {ok, Ch} = py_shared:channel_new(0, false),
    Name = <<"pool_", (integer_to_binary(I))/binary>>,
    case py:call('erlang._evloop', start_loop, [Ch, Name]) of
        {ok, ok} ->
            start_loops(N, I + 1, [Ch | Acc]);
        {error, _} = Error ->
            _ = [py_shared:channel_close(C) || C <- [Ch | Acc]],
            Error
    end.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
%% Closing a loop's channel ends its thread (erlang._evloop.TaskQueue).
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{loops := Loops}) ->
    _ = persistent_term:erase(?LOOPS),
    _ = [py_shared:channel_close(L) || L <- Loops],
    ok.
